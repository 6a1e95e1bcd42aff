// File I/O for the CLI: reads with errors naming the path, writes that never leave a partial or
// clobbered file (write a temporary sibling, fsync, rename over the target).

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafeEntry } from '../io/safetensors.js';
import { type Checkpoint, parseCheckpoint, serializeCheckpoint } from '../io/checkpoint.js';
import type { Dialect } from '../io/dialects.js';
import { parseNpy, serializeNpy } from '../io/npy.js';
import type { Tensor } from '../tensor/tensor.js';

export function readBytes(path: string, what: string): Uint8Array {
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // a view, not a second copy of the file
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${what} '${path}' does not exist`);
    if (code === 'EISDIR') throw new Error(`${what} '${path}' is a directory`);
    throw new Error(`cannot read ${what} '${path}': ${(e as Error).message}`);
  }
}

/** Prefix a parser's error with the file it came from. */
function inFile<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export function readSafetensorsFile(path: string, what = 'checkpoint'): Map<string, SafeEntry> {
  const bytes = readBytes(path, what);
  return inFile(path, () => parseSafetensors(bytes).tensors);
}

/** Any checkpoint (safetensors, .pth zip or legacy), recognised by its bytes; keys in the official names. */
export function readCheckpointFile(path: string, opts: { key?: string } = {}): Checkpoint {
  const bytes = readBytes(path, 'checkpoint');
  return inFile(path, () => parseCheckpoint(bytes, opts));
}

/** The format an output path's extension names. */
export function checkpointFormatOf(path: string, flag: string): 'pth' | 'safetensors' {
  if (/\.(pth|pt|bin)$/i.test(path)) return 'pth';
  if (/\.safetensors$/i.test(path)) return 'safetensors';
  throw new Error(`${flag} '${path}': name the output .pth, .pt or .bin (PyTorch) or .safetensors`);
}

/** Official-named entries written in the format the extension names, with keys in `names`. */
export function writeCheckpointFile(path: string, entries: Map<string, SafeEntry>, opts: { names?: Dialect; metadata?: Record<string, string>; flag?: string } = {}): void {
  const format = checkpointFormatOf(path, opts.flag ?? 'output');
  writeFileAtomic(path, serializeCheckpoint(entries, { format, names: opts.names, metadata: opts.metadata }));
}

export function readNpyFile(path: string, what = 'input'): Tensor {
  const bytes = readBytes(path, what);
  return inFile(path, () => parseNpy(bytes));
}

export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write '${path}': ${(e as Error).message}`);
  }
}

export function writeSafetensorsFile(path: string, entries: Map<string, SafeEntry>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, serializeSafetensors(entries, metadata));
}

export function writeNpyFile(path: string, t: Tensor): void {
  writeFileAtomic(path, serializeNpy(t));
}
