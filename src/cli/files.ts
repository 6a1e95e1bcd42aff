// File I/O for the CLI: reads with errors naming the path, writes that never leave a partial or
// clobbered file (write a temporary sibling, fsync, rename over the target).

import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, realpathSync, renameSync, rmSync, rmdirSync, unlinkSync, writeSync, writeFileSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { leavesFolder, showText } from '../tensor/untrusted.js';
import { serializeSafetensors, type SafeEntry } from '../io/safetensors.js';
import { type Checkpoint, parseCheckpoint, parseRawCheckpoint, serializeCheckpoint } from '../io/checkpoint.js';
import { type OnnxModel, readOnnx } from '../io/onnx_read.js';
import type { Dialect } from '../io/dialects.js';
import { parseNpyAdopting, serializeNpy } from '../io/npy.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * mkdir -p, one level at a time: Node 20's mkdirSync(…, { recursive: true }) never returns for some
 * paths (under /proc, for one), which would hang a command on a bad --out. Returns the folders it
 * created, deepest last; if one cannot be made, those made before it are removed again.
 */
function ensureDir(dir: string): string[] {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      if (!statSync(d).isDirectory()) throw new Error(`'${d}' is not a directory`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.push(d);
      if (dirname(d) === d) break;
    }
  }
  const created: string[] = [];
  try {
    for (const d of missing.reverse()) { mkdirSync(d); created.push(d); }
  } catch (e) {
    removeCreated(created);
    throw e;
  }
  return created;
}

/** Remove folders ensureDir created (deepest first), if they are still empty. */
function removeCreated(created: readonly string[]): void {
  for (let i = created.length - 1; i >= 0; i--) try { rmdirSync(created[i]); } catch { /* not empty: not ours to force */ }
}

function kindOf(st: Stats): string {
  return st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : st.isDirectory() ? 'a directory' : 'not a regular file';
}

// Node's own limit for reading a file whole (readFileSync's)
const MAX_PLAIN_READ = 2 ** 31 - 1;

/**
 * Reads only regular files: a FIFO or a device would block or never end. `shared`: into a
 * SharedArrayBuffer (where it exists), so that tensors viewed in place (an aligned safetensors or
 * .pth) are already memory the worker pool's threads can read, without a copy per weight. `limited`
 * (unless shared): a file over 2 GiB is refused from its size, unread; a 3 GB file given as an input
 * would otherwise be read to the end before its first byte is checked (checkpoints, read shared,
 * take any size).
 */
export function readBytes(path: string, what: string, shared = false, limited = !shared): Uint8Array {
  let st: Stats | undefined;
  try { st = statSync(path); } catch { /* the read below names the error */ }
  if (st !== undefined && !st.isFile()) throw new Error(`${what} '${path}' is ${kindOf(st)}, not a regular file; refusing to read it`);
  try {
    if (st !== undefined && limited && st.size > MAX_PLAIN_READ) throw new Error(`File size (${st.size}) is greater than 2 GiB`);
    if (st !== undefined) return readWhole(path, bytesOf(st.size, shared));
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // a view, not a second copy of the file
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${what} '${path}' does not exist`);
    if (code === 'EISDIR') throw new Error(`${what} '${path}' is a directory`);
    throw new Error(`cannot read ${what} '${path}': ${(e as Error).message}`);
  }
}

// n zeroed bytes, in a SharedArrayBuffer when asked for and one exists
function bytesOf(n: number, shared: boolean): Uint8Array {
  return new Uint8Array(shared && typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(n) : new ArrayBuffer(n));
}

// The file's bytes into `out` (sized by a stat before); a file that shrank since is cut, one that grew is read to `out`'s length.
function readWhole(path: string, out: Uint8Array): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const n = readAt(fd, out, 0);
    return n === out.length ? out : out.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

// Bytes of fd from `position` into `out`, until it is full or the file ends; returns how many. Read
// a chunk at a time into one small buffer and copied from there: memory the kernel's read wrote into
// directly was measured slow to read back the first time on this project's machine (a 33 MB
// checkpoint: 122 ms to read, then 63 ms for the first pass of the finiteness check and 10 ms for
// the second); copied by TypedArray.set, the same file took 131 ms and the check 9 ms.
const READ_CHUNK = 1 << 18;
let staging: Uint8Array | null = null;
function readAt(fd: number, out: Uint8Array, position: number): number {
  const chunk = staging ??= new Uint8Array(READ_CHUNK);
  let at = 0;
  while (at < out.length) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, out.length - at), position + at);
    if (n === 0) break;
    out.set(n === chunk.length ? chunk : chunk.subarray(0, n), at);
    at += n;
  }
  return at;
}

/** Prefix a parser's error with the file it came from. */
function inFile<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Any checkpoint (safetensors, .pth zip or legacy), recognised by its bytes; keys in the official names. */
export function readCheckpointFile(path: string, opts: { key?: string } = {}): Checkpoint {
  const bytes = readBytes(path, 'checkpoint', true);
  return inFile(path, () => parseCheckpoint(bytes, opts));
}

/** Any network's state dict, keys as the file has them (convert --blocks). */
export function readRawCheckpointFile(path: string, opts: { key?: string } = {}): Omit<Checkpoint, 'dialect'> {
  const bytes = readBytes(path, 'checkpoint');
  return inFile(path, () => parseRawCheckpoint(bytes, opts));
}

/** The format an output path's extension names. */
export function checkpointFormatOf(path: string, flag: string): 'pth' | 'safetensors' {
  if (/\.(pth|pt|bin|pth\.tar)$/i.test(path)) return 'pth'; // .pth.tar: apple's MobileOne checkpoints, a torch.save zip despite the name
  if (/\.safetensors$/i.test(path)) return 'safetensors';
  throw new Error(`${flag} '${path}': name the output .pth, .pt, .bin or .pth.tar (PyTorch) or .safetensors`);
}

/** Official-named entries written in the format the extension names, with keys in `names`. */
export function writeCheckpointFile(path: string, entries: Map<string, SafeEntry>, opts: { names?: Dialect; metadata?: Record<string, string>; flag?: string } = {}): void {
  const format = checkpointFormatOf(path, opts.flag ?? 'output');
  writeFileAtomic(path, serializeCheckpoint(entries, { format, names: opts.names, metadata: opts.metadata }));
}

/**
 * An ONNX model and its external data (ONNX's convention for models over 2 GiB: tensors stored in
 * files named relative to the model). A location must stay inside the model's folder: an absolute
 * path, a '..' step or a symlink leading out is refused, as are ranges past the file's end; only the
 * declared byte range is read.
 */
export function readOnnxFile(path: string): OnnxModel {
  // shared: the pool's workers read the weights where they lie; at most 2 GiB, protobuf's own limit
  // (larger models keep their weights in external data files)
  const bytes = readBytes(path, 'ONNX model', true, true);
  const folder = realpathSync(dirname(resolve(path)));
  const externalData = (location: string, offset: number, length: number): Uint8Array => {
    const shown = `'${showText(location, 80)}'`;
    if (location === '' || leavesFolder(location)) throw new Error(`external data ${shown} is not a path inside the model's folder; refused`);
    let real: string;
    try { real = realpathSync(join(folder, location)); } catch { throw new Error(`external data ${shown} does not exist next to the model`); }
    if (!real.startsWith(folder + '/')) throw new Error(`external data ${shown} leads outside the model's folder (through a link); refused`);
    const fd = openSync(real, 'r');
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`external data ${shown} is ${kindOf(st)}, not a regular file`);
      if (offset + length > st.size) throw new Error(`external data ${shown}: bytes ${offset} to ${offset + length} run past its ${st.size}-byte end`);
      const out = bytesOf(length, true); // as the model's bytes
      if (readAt(fd, out, offset) < length) throw new Error(`external data ${shown} ended early`);
      return out;
    } finally {
      closeSync(fd);
    }
  };
  return inFile(path, () => readOnnx(bytes, { externalData, adoptBytes: true })); // the bytes are ours alone: tensors view them
}

export function readNpyFile(path: string, what = 'input', shared = false): Tensor {
  const bytes = readBytes(path, what, shared, true); // the 2 GiB refusal as before, shared or not
  return inFile(path, () => parseNpyAdopting(bytes, shared));
}

/** What a command does with a path it is given (CommandSpec.files). */
export type FileRole =
  /** a file it reads */
  | 'in'
  /** a folder whose files it reads (train --data) */
  | 'in-dir'
  /** a file it writes (atomically: a temporary sibling renamed over it) */
  | 'out'
  /** a file it reads that an output may name too (train --resume: training continues into it) */
  | 'inout'
  /** a folder it writes whole: it may be new, empty, or hold only files of `names` (a previous run's) */
  | 'out-dir';

export interface CommandFile {
  /** how messages name it: '--out', 'CKPT' */
  flag: string;
  path: string;
  role: FileRole;
  /** out-dir: the files the command writes in it; anything else there makes it refuse */
  names?: readonly string[];
}

const idOf = (st: Stats) => `${st.dev}:${st.ino}`;
const statOrNull = (p: string): Stats | null => { try { return statSync(p); } catch { return null; } };

/**
 * Every check that protects a user's files, made before any work: no output is an input, a file in
 * an input folder, or another output (by device and inode, so symlinks, hard links and './'
 * spellings are caught); an existing output is a regular file (a device or FIFO would be replaced by
 * the rename); an output folder holds nothing the command did not write; and every output's folder
 * can be created and written (probed with a file that is removed again), so that a bad place fails
 * now and not after an hour of training.
 */
export function checkCommandFiles(files: readonly CommandFile[]): void {
  const inputs = new Map<string, string>(); // dev:ino → who reads it
  const inout = new Set<string>();
  for (const f of files) {
    if (f.role !== 'in' && f.role !== 'in-dir' && f.role !== 'inout') continue;
    const st = statOrNull(f.path);
    if (st === null) continue; // a missing input is reported when it is read
    inputs.set(idOf(st), `${f.flag} '${f.path}'`);
    if (f.role === 'inout') inout.add(idOf(st));
    if (f.role === 'in-dir' && st.isDirectory()) {
      let names: string[] = [];
      try { names = readdirSync(f.path); } catch { /* unreadable: reported when it is read */ }
      for (const n of names) {
        const e = statOrNull(join(f.path, n));
        if (e !== null) inputs.set(idOf(e), `'${join(f.path, n)}' in ${f.flag} '${f.path}'`);
      }
    }
  }
  const outputs = new Map<string, string>();
  for (const f of files) {
    if (f.role !== 'out' && f.role !== 'out-dir') continue;
    const st = statOrNull(f.path);
    const who = `${f.flag} '${f.path}'`;
    if (st !== null) {
      const same = inputs.get(idOf(st));
      if (same !== undefined && !inout.has(idOf(st))) throw new Error(`${who} is the same ${st.isDirectory() ? 'folder' : 'file'} as ${same}; refusing to overwrite an input`);
      if (f.role === 'out-dir') checkFolderOutput(f.path, f.flag, f.names, inputs);
      else if (!st.isFile()) throw new Error(`${who} is ${kindOf(st)}, not a regular file; refusing to replace it (write to a regular file)`);
    }
    const key = st !== null ? idOf(st) : resolve(f.path);
    if (outputs.has(key)) throw new Error(`${who} is the same file as ${outputs.get(key)}`);
    outputs.set(key, who);
    probeWritable(f.role === 'out-dir' ? f.path : dirname(resolve(f.path)), who);
  }
}

/**
 * Can files be written in `dir`? Creates the missing folders, writes and removes a probe file, and
 * removes the folders it created: nothing is left behind either way.
 */
function probeWritable(dir: string, who: string): void {
  let created: string[] = [];
  try {
    created = ensureDir(dir);
    const probe = join(dir, `.repvgg-probe.${process.pid}.tmp`);
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (e) {
    throw new Error(`${who}: cannot write there (${showText((e as Error).message, 160)})`);
  } finally {
    removeCreated(created);
  }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A writer killed with SIGKILL (or a power cut) cannot remove its temporary file (.NAME.PID.MS.tmp)
 * or folder (.NAME.PID.tmp, .NAME.PID.old): the next write of NAME removes those of writers that no
 * longer run. A `.old` folder is the previous output, renamed aside a moment before its replacement
 * was renamed in: when NAME itself is missing it is the only copy, so it is put back, not removed.
 */
export function removeStaleTemps(dir: string, name: string): void {
  const re = new RegExp(`^\\.${escapeRegExp(name)}\\.(\\d+)\\.(?:\\d+\\.)?(tmp|old)$`);
  let entries: string[];
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries) {
    const m = re.exec(e);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const p = join(dir, e);
    if (m[2] === 'old' && statOrNull(join(dir, name)) === null) { try { renameSync(p, join(dir, name)); continue; } catch { continue; } }
    rmSync(p, { recursive: true, force: true });
  }
}

/** Temporary files, folders and locks this process owns: what an interrupted command removes. */
const owned = new Set<string>();

/** Remove everything this process owns (SIGINT/SIGTERM handlers call it before exiting). */
function removeOwned(): void {
  for (const p of owned) rmSync(p, { recursive: true, force: true });
  owned.clear();
}

/**
 * An exclusive lock beside `path` (PATH.lock, holding our pid) for as long as `work` runs; a second
 * process is refused while the first is alive. A lock left by a process that no longer exists is taken over.
 */
export async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw new Error(`cannot lock '${path}': ${(e as Error).message}`);
      const pid = Number(readFileSync(lock, 'utf8').trim());
      let alive = Number.isSafeInteger(pid) && pid > 0;
      if (alive) try { process.kill(pid, 0); } catch (k) { alive = (k as NodeJS.ErrnoException).code === 'EPERM'; }
      if (alive) throw new Error(`'${path}' is being written by another process (pid ${pid}, lock file '${lock}'); refusing to write it too`);
      rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  owned.add(lock);
  try {
    return await work();
  } finally {
    rmSync(lock, { force: true });
    owned.delete(lock);
  }
}

/** The one way an interrupted command ends: remove what it owns, say so, exit 130 (SIGINT) or 143. */
export function exitInterrupted(sig: NodeJS.Signals, message: string): never {
  removeOwned();
  process.stderr.write(`${message}\n`);
  process.exit(sig === 'SIGINT' ? 130 : 143);
}

let guards = 0;
const onSignal = (sig: NodeJS.Signals) => exitInterrupted(sig, `repvgg: interrupted by ${sig}; files already written are complete`);

/**
 * Run a synchronous write with SIGINT/SIGTERM handled: a signal that arrives during it is delivered
 * once it has finished (JavaScript cannot be interrupted mid-call), and then removes whatever this
 * process still owns and exits 130/143. The handlers stay attached until the event loop has polled
 * once after the write, so a signal caught during the write is not lost when they are removed.
 */
function withSignalCleanup<T>(write: () => T): T {
  if (guards++ === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    return write();
  } finally {
    // Node reads caught signals in the event loop's poll phase; once the last listener is removed, a
    // signal caught but not yet read is dropped. Two immediates put a poll phase between the write's
    // end and the removal whatever phase we are in (a timer did not: a late loop ran it first).
    setImmediate(() => setImmediate(() => {
      if (--guards === 0) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }));
  }
}

/** bytes: one array, or a sequence of chunks written in order (e.g. an encoder's output, never assembled). */
export function writeFileAtomic(path: string, bytes: Uint8Array | Iterable<Uint8Array>): void {
  withSignalCleanup(() => writeFileAtomicNow(path, bytes));
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
}

// Small chunks are gathered into 1 MiB writes; large ones are written from their own memory.
function writeChunks(fd: number, chunks: Iterable<Uint8Array>): void {
  const stage = new Uint8Array(2 ** 20);
  let used = 0;
  for (const c of chunks) {
    if (used + c.length > stage.length) { writeAll(fd, stage.subarray(0, used)); used = 0; }
    if (c.length >= stage.length) writeAll(fd, c);
    else { stage.set(c, used); used += c.length; }
  }
  writeAll(fd, stage.subarray(0, used));
}

function writeFileAtomicNow(path: string, bytes: Uint8Array | Iterable<Uint8Array>): void {
  const st = statOrNull(path);
  if (st !== null && !st.isFile()) throw new Error(`output '${path}' is ${kindOf(st)}, not a regular file; refusing to replace it (write to a regular file)`);
  const dir = dirname(path);
  try {
    ensureDir(dir);
  } catch (e) {
    throw new Error(`cannot write '${path}': ${(e as Error).message}`);
  }
  removeStaleTemps(dir, basename(path));
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  owned.add(tmp);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      if (bytes instanceof Uint8Array) writeAll(fd, bytes); // one array: no staging copy
      else writeChunks(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write '${path}': ${(e as Error).message}`);
  } finally {
    owned.delete(tmp);
  }
}

/**
 * An output folder may be new, empty, or a previous output of the same command (only files in
 * `names`, none of them an input); anything else is refused, so that replacing it never deletes a
 * file the command did not write. Without `names` the folder is only checked to be a folder.
 */
function checkFolderOutput(dir: string, flag: string, names?: readonly string[], inputs?: ReadonlyMap<string, string>): void {
  const st = statOrNull(dir);
  if (st === null) return;
  if (!st.isDirectory()) throw new Error(`${flag} '${dir}' is ${st.isFile() ? 'a file' : kindOf(st)}, not a folder`);
  if (names === undefined) return;
  for (const n of readdirSync(dir)) {
    if (!names.includes(n)) throw new Error(`${flag} '${dir}' holds '${showText(n)}', which this command did not write; refusing to replace a folder with other files in it (name a new or empty folder)`);
    const e = statOrNull(join(dir, n));
    if (e !== null && !e.isFile()) throw new Error(`${flag} '${dir}' holds '${showText(n)}', which is ${kindOf(e)}, not a file this command wrote; refusing to replace the folder`);
    const same = e === null ? undefined : inputs?.get(idOf(e));
    if (same !== undefined) throw new Error(`${flag} '${dir}' holds '${showText(n)}', which is ${same}; refusing to overwrite an input`);
  }
}

/**
 * Write a folder of files so that a kill at any moment leaves the previous complete folder or the
 * new complete one: everything is written and fsynced in a sibling temporary folder, then the old
 * folder is renamed aside, the new one renamed into place, and the old one removed. (Between the two
 * renames, a matter of microseconds, the previous folder sits at DIR.<pid>.old.)
 */
export function writeFolderAtomic(dir: string, files: readonly [name: string, bytes: Uint8Array][]): void {
  withSignalCleanup(() => writeFolderAtomicNow(dir, files));
}

function writeFolderAtomicNow(dir: string, files: readonly [name: string, bytes: Uint8Array][]): void {
  // checked again now: a file put into the folder while the command ran is not ours to delete
  checkFolderOutput(dir, 'output folder', files.map(([n]) => n));
  const parent = dirname(resolve(dir));
  ensureDir(parent);
  removeStaleTemps(parent, basename(dir));
  const tmp = join(parent, `.${basename(dir)}.${process.pid}.tmp`), old = join(parent, `.${basename(dir)}.${process.pid}.old`);
  rmSync(tmp, { recursive: true, force: true });
  owned.add(tmp);
  try {
    mkdirSync(tmp);
    for (const [name, bytes] of files) writeFileAtomicNow(join(tmp, name), bytes);
    let moved = false;
    try {
      renameSync(dir, old);
      moved = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    renameSync(tmp, dir);
    if (moved) rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`cannot write folder '${dir}': ${(e as Error).message}`);
  } finally {
    owned.delete(tmp);
  }
}

export function writeSafetensorsFile(path: string, entries: Map<string, SafeEntry>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(entries, metadata));
}

export function writeNpyFile(path: string, t: Tensor): void {
  writeFileAtomic(path, serializeNpy(t));
}
