// One entry point for every checkpoint a user may hold: the format is read from the bytes (never
// the file name), the state dict found inside its wrapper, and its keys renamed from the dialect
// they are written in to the official names the models use.
//
// Where the state dict is, in order: the dict named by `key` (dots descend: 'model.ema'); the top
// level when every value in it is a tensor; else the first of WRAPPER_KEYS present. A leading
// 'module.' (DataParallel) is removed when every key has it.

import { type SafeEntry, ITEM_SIZE } from './dtypes.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';
import { PickleError, PyObject, type PyValue } from './pickle.js';
import { type PthFormat, TorchTensor, pthFormat, readPth, serializePth } from './pth.js';
import { type Dialect, detectDialect, renameKeys } from './dialects.js';
import { mobileOneNamesOf, normalizeKeys } from './state_dict.js';
import { describeValue, showText } from '../tensor/untrusted.js';

export type CheckpointFormat = 'safetensors' | PthFormat;

/** Checked in this order when the top level is not itself a state dict. */
export const WRAPPER_KEYS = ['state_dict', 'model', 'model_ema', 'ema', 'state_dict_ema'] as const;

export interface Checkpoint {
  format: CheckpointFormat;
  /** the wrapper key the state dict came from (null: the top level) */
  wrapperKey: string | null;
  dialect: Dialect;
  /** tensors under the official names, 'module.' removed */
  entries: Map<string, SafeEntry>;
  /** the wrapper's other top-level keys ('epoch', 'optimizer', 'meta', …), for inspection */
  otherKeys: string[];
  /** safetensors __metadata__ (empty for .pth) */
  metadata: Record<string, string>;
  /**
   * Objects of classes outside the state dict (a wrapper's `epoch` as a numpy scalar, an argparse
   * Namespace, a legacy stream's sys_info): kept as inert records, never imported or called. Where
   * each is (`args`, `sys_info`, `optimizer.state[3]`) and the class it names; the first 50.
   */
  records: { at: string; cls: string }[];
}

/** Walk a value (iteratively: no recursion on a file's nesting, each object once) for pickled objects. */
function inertRecords(roots: [string, PyValue][], skip: PyValue, out: { at: string; cls: string }[] = [], budget = 100_000): { at: string; cls: string }[] {
  const seen = new Set<object>();
  const todo: [string, PyValue][] = roots.slice().reverse();
  while (todo.length > 0 && out.length < 50 && budget-- > 0) {
    const [at, v] = todo.pop()!;
    if (v === null || typeof v !== 'object' || v === skip || seen.has(v) || v instanceof TorchTensor || v instanceof Uint8Array) continue;
    seen.add(v);
    // children are pushed last-first one by one (a spread of a 10⁶-entry dict would overflow the call stack)
    let kids: [string, PyValue][] = [];
    if (v instanceof PyObject) {
      out.push({ at, cls: showText(v.cls.qualname, 120) });
      kids = [[`${at}.__state__`, v.state], ...v.args.map((x, i) => [`${at}(${i})`, x] as [string, PyValue])];
    } else if (v instanceof Map) {
      for (const [k, x] of v) kids.push([`${at}.${typeof k === 'string' ? showText(k, 40) : describeValue(k)}`, x]);
    } else if (Array.isArray(v) || v instanceof Set) {
      let i = 0;
      for (const x of v) kids.push([`${at}[${i++}]`, x]);
    }
    for (let i = kids.length - 1; i >= 0; i--) todo.push(kids[i]);
  }
  return out;
}

function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return n > 0n && n <= BigInt(bytes.length - 8) && bytes[8] === 0x7b; // '{'
}

export function checkpointFormat(bytes: Uint8Array): CheckpointFormat {
  const pth = pthFormat(bytes);
  if (pth !== null) return pth;
  if (isSafetensors(bytes)) return 'safetensors';
  throw new Error('checkpoint: not a safetensors file, a torch.save zip archive or a legacy torch.save stream (unrecognised first bytes)');
}

const show = (k: PyValue): string => (typeof k === 'string' ? `'${showText(k)}'` : describeValue(k));

const isModule = (v: PyValue): boolean => v instanceof PyObject && v.state instanceof Map && (v.state.has('_parameters') || v.state.has('_modules'));

/**
 * A pickled torch.nn.Module (YOLOv5/v7/Ultralytics save {'model': Model, …}) → its state dict, as
 * Module.state_dict() would name it: each module's _parameters and persistent _buffers under its
 * path of _modules names. The module objects are inert records (their classes are never imported
 * or called); only their pickled __dict__ is read. Iterative; at most 10⁶ modules; a module met twice
 * (a cycle, or one module shared by two parents) is refused rather than followed.
 */
function moduleStateDict(root: PyObject): { dict: Map<PyValue, PyValue>; classes: { at: string; cls: string }[] } {
  const dict = new Map<PyValue, PyValue>(), classes: { at: string; cls: string }[] = [];
  const seen = new Map<PyObject, string>();
  const todo: [string, PyObject][] = [['', root]];
  let budget = 1_000_000;
  while (todo.length > 0) {
    const [at, m] = todo.pop()!;
    const where = `module '${showText(at.replace(/\.$/, '') || '(root)', 80)}' (${showText(m.cls.qualname, 80)})`;
    if (budget-- <= 0) throw new Error('checkpoint: the module tree has more than 10⁶ modules; refused');
    const first = seen.get(m);
    if (first !== undefined) throw new Error(`checkpoint: ${where} is also module '${showText(first.replace(/\.$/, '') || '(root)', 80)}' (a cycle or a shared module), which this reader does not follow`);
    seen.set(m, at);
    if (!isModule(m)) throw new Error(`checkpoint: ${where} ${m.state instanceof Map ? 'has no _parameters or _modules' : `has state ${describeValue(m.state)}, not a dict`}: not a torch.nn.Module`);
    if (classes.length < 50) classes.push({ at: at || '(root)', cls: showText(m.cls.qualname, 120) });
    const state = m.state as Map<PyValue, PyValue>;
    const part = (name: string): Map<PyValue, PyValue> => {
      const v = state.get(name) ?? new Map();
      if (!(v instanceof Map)) throw new Error(`checkpoint: ${where}: its ${name} is ${describeValue(v)}, not a dict`);
      return v;
    };
    const skip = state.get('_non_persistent_buffers_set');
    const transient = skip instanceof Set ? skip : new Set();
    for (const [kind, entries] of [['_parameters', part('_parameters')], ['_buffers', part('_buffers')]] as const) {
      for (const [name, t] of entries) {
        if (t === null || (kind === '_buffers' && transient.has(name))) continue;
        if (typeof name !== 'string' || !(t instanceof TorchTensor)) throw new Error(`checkpoint: ${where}: ${kind} entry ${show(name)} holds ${describeValue(t)}, not a tensor`);
        dict.set(`${at}${name}`, t);
      }
    }
    const kids = [...part('_modules')];
    for (let i = kids.length - 1; i >= 0; i--) { // in order, depth first, as state_dict() walks
      const [name, c] = kids[i];
      if (c === null) continue;
      if (typeof name !== 'string' || !(c instanceof PyObject)) throw new Error(`checkpoint: ${where}: _modules entry ${show(name)} holds ${describeValue(c)}, not a module`);
      todo.push([`${at}${name}.`, c]);
    }
  }
  return { dict, classes };
}

/** Find the state dict in a torch.save'd object (a pickled module tree is read as its state dict). */
function findStateDict(top: PyValue, key: string | undefined): { dict: Map<PyValue, PyValue>; wrapperKey: string | null; otherKeys: string[]; classes?: { at: string; cls: string }[] } {
  if (top instanceof PyObject && isModule(top) && key === undefined) return { ...moduleStateDict(top), wrapperKey: null, otherKeys: [] };
  if (!(top instanceof Map)) {
    const what = top instanceof PyObject ? `${describeValue(top)} (torch.save(model)?), not a dict` : `${describeValue(top)}, not a dict`;
    throw new Error(`checkpoint: the file holds ${what}; save model.state_dict() instead`);
  }
  const stringKeys = [...top.keys()].filter((k): k is string => typeof k === 'string');
  const pick = (k: string): { dict: Map<PyValue, PyValue>; wrapperKey: string | null; otherKeys: string[]; classes?: { at: string; cls: string }[] } => {
    let v: PyValue | undefined = top.get(k);
    if (v === undefined && k.includes('.')) { // descend 'model.ema'
      v = top;
      for (const part of k.split('.')) v = v instanceof Map ? v.get(part) : undefined;
    }
    if (v === undefined) throw new Error(`checkpoint: no key '${showText(k)}' (top-level keys: ${stringKeys.slice(0, 8).map((s) => `'${showText(s, 60)}'`).join(', ') || 'none'}${stringKeys.length > 8 ? `, … ${stringKeys.length} in all` : ''})`);
    if (v === top) throw new Error(`checkpoint: '${showText(k)}' refers back to the top level (a cycle)`);
    if (v instanceof PyObject && isModule(v)) {
      const tree = moduleStateDict(v);
      return { dict: tree.dict, classes: tree.classes, wrapperKey: k, otherKeys: stringKeys.filter((s) => s !== k) };
    }
    if (!(v instanceof Map)) throw new Error(`checkpoint: '${showText(k)}' holds ${describeValue(v)}, not a state dict`);
    return { dict: v, wrapperKey: k, otherKeys: stringKeys.filter((s) => s !== k) };
  };
  if (key !== undefined) return pick(key);
  if (top.size > 0 && [...top.values()].every((v) => v instanceof TorchTensor)) return { dict: top, wrapperKey: null, otherKeys: [] };
  const found = WRAPPER_KEYS.find((k) => top.has(k));
  const tensors = [...top.values()].filter((v) => v instanceof TorchTensor).length;
  if (found === undefined && tensors > 0) {
    // a plain state dict with something else in it: name the first key that is not a tensor
    const [k, v] = [...top].find(([, x]) => !(x instanceof TorchTensor))!;
    throw new Error(`checkpoint: the top level holds ${tensors} tensors, but key ${show(k)} holds ${describeValue(v)}, not a tensor`);
  }
  if (found === undefined) {
    throw new Error(`checkpoint: no state dict found: the top level is not a dict of tensors and has none of ${WRAPPER_KEYS.map((k) => `'${k}'`).join(', ')} (its keys: ${stringKeys.slice(0, 8).map((s) => `'${showText(s)}'`).join(', ') || 'none'}); name one with --key`);
  }
  return pick(found);
}

/** Copy a state dict's tensors out, after checking what that will cost. */
function materialize(dict: Map<PyValue, PyValue>, fileBytes: number): Map<string, SafeEntry> {
  let need = 0;
  for (const [k, v] of dict) {
    if (typeof k !== 'string') throw new Error(`checkpoint: the state dict has a non-string key (${show(k)})`);
    if (!(v instanceof TorchTensor)) throw new Error(`checkpoint: state dict key '${showText(k as string)}' holds ${describeValue(v)}, not a tensor`);
    need += v.numel * Math.max(4, ITEM_SIZE[v.dtype]); // F16/BF16 widen to float32
  }
  // Views can make tensors overlap, so copies may outgrow the file; real checkpoints share little.
  const limit = 4 * fileBytes + 64 * 2 ** 20;
  if (need > limit) throw new PickleError(`checkpoint: its tensors would need ${(need / 2 ** 20).toFixed(1)} MiB copied out, more than 4× the ${(fileBytes / 2 ** 20).toFixed(1)} MiB file plus 64 MiB (overlapping views?); refused`);
  const out = new Map<string, SafeEntry>();
  for (const [k, v] of dict) out.set(k as string, (v as TorchTensor).toEntry());
  return out;
}

/**
 * Read any supported checkpoint; `key` picks the state dict inside a wrapper explicitly. Tensors of
 * a .pth may be views into `bytes` (no copy): copy an entry before changing `bytes` or the entry.
 */
export function parseCheckpoint(bytes: Uint8Array, opts: { key?: string } = {}): Checkpoint {
  const raw = parseRawCheckpoint(bytes, opts);
  // a MobileOne keeps its own keys (apple's or timm's; MobileOne is built with either naming)
  const mobileOne = mobileOneNamesOf(raw.entries);
  if (mobileOne !== null) return { ...raw, dialect: mobileOne };
  const dialect = detectDialect(raw.entries.keys());
  return { ...raw, dialect, entries: renameKeys(raw.entries, dialect, 'official') };
}

/** The same, for any network's state dict: keys as the file has them (a leading 'module.' dropped), no RepVGG naming required. */
export function parseRawCheckpoint(bytes: Uint8Array, opts: { key?: string } = {}): Omit<Checkpoint, 'dialect'> {
  const format = checkpointFormat(bytes);
  let raw: Map<string, SafeEntry>, wrapperKey: string | null = null, otherKeys: string[] = [], metadata: Record<string, string> = {};
  let records: { at: string; cls: string }[] = [];
  if (format === 'safetensors') {
    if (opts.key !== undefined) throw new Error(`checkpoint: --key '${opts.key}' given, but a safetensors file holds one flat state dict`);
    const f = parseSafetensors(bytes);
    raw = f.tensors;
    metadata = f.metadata;
  } else {
    const pth = readPth(bytes);
    const found = findStateDict(pth.value, opts.key);
    raw = materialize(found.dict, bytes.length);
    wrapperKey = found.wrapperKey;
    otherKeys = found.otherKeys;
    const top = pth.value as Map<PyValue, PyValue>;
    const module = found.classes !== undefined ? (found.wrapperKey === null ? pth.value : (top as Map<PyValue, PyValue>).get(found.wrapperKey)) : undefined;
    records = [
      ...(found.classes ?? []).map((r) => ({ at: `${found.wrapperKey ?? 'model'}${r.at === '(root)' ? '' : `.${r.at.replace(/\.$/, '')}`}`, cls: r.cls })),
      ...(top instanceof Map ? inertRecords([...[...top].filter(([k, v]) => v !== found.dict && v !== module).map(([k, v]) => [typeof k === 'string' ? showText(k, 40) : describeValue(k), v] as [string, PyValue]),
        ...(pth.sysInfo !== undefined ? [['sys_info', pth.sysInfo] as [string, PyValue]] : [])], found.dict) : []),
    ];
  }
  return { format, wrapperKey, entries: normalizeKeys(raw), otherKeys, metadata, records };
}

/** Official-named entries → bytes in `format`, with keys in `names`. */
export function serializeCheckpoint(entries: Map<string, SafeEntry>, opts: { format: 'safetensors' | 'pth'; names?: Dialect; metadata?: Record<string, string> }): Uint8Array {
  const renamed = renameKeys(entries, 'official', opts.names ?? 'official');
  return opts.format === 'pth' ? serializePth(renamed) : serializeSafetensors(renamed, opts.metadata);
}
