// A pickle reader that never executes anything (Python's pickletools documents every opcode).
// Pickle is a stack machine whose GLOBAL/REDUCE opcodes would import and call arbitrary Python;
// here a global is only a name. A caller supplies implementations for the few globals it trusts
// (`reducers`, e.g. collections.OrderedDict); any other global becomes an inert PyObject that
// records its name and arguments and is never called. The reader is iterative (no recursion on
// nesting depth), linear in its input (LONG1/LONG4 decode through one hex string, never a shift per
// byte) and every read is bounds-checked against the input.

import { showText } from '../tensor/untrusted.js';

export class PickleError extends Error {
  override name = 'PickleError';
}

/** A global named by GLOBAL/STACK_GLOBAL: only a name, never resolved to code. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
  /** for messages: the name escaped and bounded (it comes from the file) */
  get summary(): string {
    return `global '${showText(this.qualname, 120)}'`;
  }
}

/** What calling an unknown global would have built: an inert record of the call. */
export class PyObject {
  state: PyValue = null;
  constructor(readonly cls: PyGlobal, readonly args: PyValue[]) {}
  get summary(): string {
    return `a pickled '${showText(this.cls.qualname, 120)}' object`;
  }
}

/** Python dict (and OrderedDict): insertion-ordered; keys are JS primitives or the objects themselves. */
export type PyDict = Map<PyValue, PyValue>;

/**
 * None, bool, int (number, or bigint beyond 2^53), float, str, bytes (Uint8Array), list and tuple
 * (arrays), dict (Map), set, PyGlobal, PyObject, or whatever a caller's reducer builds.
 */
export type PyValue = null | boolean | number | bigint | string | object;

export interface UnpickleOptions {
  /** qualname ('collections.OrderedDict') → what calling it with these arguments yields */
  reducers?: ReadonlyMap<string, (args: PyValue[]) => PyValue>;
  /** BINPERSID/PERSID: turns a persistent id (torch: a storage tuple) into a value */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** where this pickle starts in the enclosing file, for error offsets */
  baseOffset?: number;
}

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

/** Read one pickle from bytes[start..]; returns the value and the offset just past STOP. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}, start = 0): { value: PyValue; end: number } {
  const base = opts.baseOffset ?? 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const memo = new Map<number, PyValue>();
  const tuples = new WeakSet<PyValue[]>();
  let pos = start;
  let op = 0, opAt = 0;
  const fail = (why: string): never => { throw new PickleError(`pickle: ${why} (opcode 0x${op.toString(16).padStart(2, '0')} at byte offset ${base + opAt})`); };
  const take = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated: needs ${n} more bytes, the data ends at byte offset ${base + bytes.length}`);
    const at = pos;
    pos += n;
    return at;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: a text argument has no terminating newline');
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8Line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: a text argument has no terminating newline');
    const at = pos;
    pos = end + 1;
    try {
      return utf8.decode(bytes.subarray(at, end));
    } catch {
      return fail('a global\'s name is not valid UTF-8');
    }
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) fail('unexpected MARK on the stack');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('stack underflow');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) fail('no MARK on the stack');
    const items = stack.splice(i + 1) as PyValue[];
    stack.pop();
    return items;
  };
  const tuple = (items: PyValue[]): PyValue[] => {
    tuples.add(items);
    return items;
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const str = (n: number): string => {
    const at = take(n);
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };
  const size64 = (): number => {
    const v = dv.getBigUint64(take(8), true);
    if (v > BigInt(bytes.length)) fail(`a length of ${v} bytes exceeds the ${bytes.length}-byte input`);
    return Number(v);
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof Map)) fail(`SETITEM(S) on a ${typeName(d)}, not a dict`);
    if (kv.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (d as PyDict).set(kv[i], kv[i + 1]);
  };
  const appendItems = (l: PyValue, items: PyValue[]) => {
    if (l instanceof Set) { for (const v of items) l.add(v); return; }
    if (!Array.isArray(l) || tuples.has(l)) fail(`APPEND(S) on a ${typeName(l)}, not a list`);
    for (const v of items) (l as PyValue[]).push(v);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail(`REDUCE calls a ${typeName(fn)}, not a global`);
    if (!Array.isArray(args)) return fail(`REDUCE's arguments are a ${typeName(args)}, not a tuple`);
    const impl = opts.reducers?.get(fn.qualname) ?? DATA_REDUCERS.get(fn.qualname);
    return impl !== undefined ? impl(args) : new PyObject(fn, args);
  };
  const persistent = (pid: PyValue): PyValue => {
    if (opts.persistentLoad === undefined) fail('a persistent id, but this pickle has no storage to resolve it against');
    return opts.persistentLoad!(pid);
  };

  for (;;) {
    opAt = pos;
    op = bytes[take(1)];
    switch (op) {
      case 0x80: take(1); break; // PROTO n
      case 0x95: take(8); break; // FRAME: a length hint only
      case 0x2e: return { value: pop(), end: pos }; // STOP '.'
      case 0x28: stack.push(MARK); break; // MARK '('
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE 'N'
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(dv.getInt32(take(4), true)); break; // BININT
      case 0x4b: stack.push(bytes[take(1)]); break; // BININT1
      case 0x4d: stack.push(dv.getUint16(take(2), true)); break; // BININT2
      case 0x8a: { const n = bytes[take(1)]; stack.push(longLE(bytes.subarray(take(n), pos))); break; } // LONG1
      case 0x8b: { const n = dv.getInt32(take(4), true); if (n < 0) fail('negative LONG4 length'); stack.push(longLE(bytes.subarray(take(n), pos))); break; }
      case 0x49: { // INT (protocol 0): "00"/"01" are False/True
        const s = line();
        if (s === '00' || s === '01') { stack.push(s === '01'); break; }
        if (!/^[-+]?\d+$/.test(s)) fail(`INT argument '${showText(s, 20)}' is not an integer`);
        stack.push(shrink(BigInt(s)));
        break;
      }
      case 0x4c: { // LONG (protocol 0): digits with a trailing 'L'
        const s = line().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s)) fail(`LONG argument '${showText(s, 20)}' is not an integer`);
        stack.push(shrink(BigInt(s)));
        break;
      }
      case 0x47: stack.push(dv.getFloat64(take(8), false)); break; // BINFLOAT: big-endian double
      case 0x46: stack.push(textFloat(line(), fail)); break; // FLOAT (protocol 0)
      case 0x58: stack.push(str(dv.getUint32(take(4), true))); break; // BINUNICODE
      case 0x8c: stack.push(str(bytes[take(1)])); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(size64())); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x54: { const n = dv.getInt32(take(4), true); if (n < 0) fail('negative BINSTRING length'); const at = take(n); stack.push(latin1(bytes.subarray(at, at + n))); break; }
      case 0x55: { const n = bytes[take(1)]; const at = take(n); stack.push(latin1(bytes.subarray(at, at + n))); break; } // SHORT_BINSTRING
      case 0x53: { // STRING: a quoted Python 2 str literal
        const s = line();
        const m = /^(['"])(.*)\1$/.exec(s);
        if (m === null || m[2].includes('\\')) fail('STRING with escapes is not supported');
        stack.push(m![2]);
        break;
      }
      case 0x42: { const n = dv.getUint32(take(4), true); const at = take(n); stack.push(new Uint8Array(bytes.subarray(at, at + n))); break; } // BINBYTES
      case 0x43: { const n = bytes[take(1)]; const at = take(n); stack.push(new Uint8Array(bytes.subarray(at, at + n))); break; } // SHORT_BINBYTES
      case 0x8e: case 0x96: { const n = size64(); const at = take(n); stack.push(new Uint8Array(bytes.subarray(at, at + n))); break; } // BINBYTES8, BYTEARRAY8
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(tuple(popMark())); break; // TUPLE
      case 0x85: stack.push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(tuple([a, b])); break; }
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(tuple([a, b, c])); break; }
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const d: PyDict = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x63: { const mod = utf8Line(); const name = utf8Line(); stack.push(new PyGlobal(mod, name)); break; } // GLOBAL (Python 3 reads its lines as UTF-8)
      case 0x93: { // STACK_GLOBAL
        const name = pop(), mod = pop();
        if (typeof mod !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(new PyGlobal(mod as string, name as string));
        break;
      }
      case 0x52: { const args = pop(), fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(), cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ: cls.__new__(cls, *args)
      case 0x92: { pop(); const args = pop(), cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ_EX (kwargs dropped)
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        // dicts (OrderedDict's _metadata) and tensors carry no state we use
        break;
      }
      case 0x69: { const mod = utf8Line(); const name = utf8Line(); const args = popMark(); stack.push(new PyObject(new PyGlobal(mod, name), args)); break; } // INST
      case 0x6f: { const items = popMark(); if (items.length === 0) fail('OBJ without a class'); const [cls, ...args] = items; stack.push(call(cls, tuple(args))); break; } // OBJ
      case 0x70: memo.set(parseIndex(line(), fail), top()); break; // PUT
      case 0x71: memo.set(bytes[take(1)], top()); break; // BINPUT
      case 0x72: memo.set(dv.getUint32(take(4), true), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(recall(memo, parseIndex(line(), fail), fail)); break; // GET
      case 0x68: stack.push(recall(memo, bytes[take(1)], fail)); break; // BINGET
      case 0x6a: stack.push(recall(memo, dv.getUint32(take(4), true), fail)); break; // LONG_BINGET
      case 0x50: stack.push(persistent(line())); break; // PERSID
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      default:
        fail(op === 0x82 || op === 0x83 || op === 0x84 ? 'the extension registry (EXT1/2/4) is not supported'
          : op === 0x97 || op === 0x98 ? 'out-of-band buffers are not supported' : 'unknown opcode');
    }
  }
}

/** Pure data conversions protocol 2 uses for builtin types; they compute, they call nothing. */
const DATA_REDUCERS = new Map<string, (args: PyValue[]) => PyValue>([
  // bytes under protocol 2: _codecs.encode(latin-1 text, 'latin1')
  ['_codecs.encode', (args) => {
    const [s, enc] = args;
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) return new PyObject(new PyGlobal('_codecs', 'encode'), args);
    return Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0xff);
  }],
  // set and frozenset under protocol 2 (EMPTY_SET is protocol 4): builtins.set([items])
  ...['builtins.set', '__builtin__.set', 'builtins.frozenset', '__builtin__.frozenset'].map((name): [string, (args: PyValue[]) => PyValue] => [name, (args) => {
    const [items] = args;
    if (args.length === 0) return new Set();
    if (!Array.isArray(items)) return new PyObject(new PyGlobal(...(name.split('.') as [string, string])), args);
    return new Set(items);
  }]),
]);

function recall(memo: Map<number, PyValue>, i: number, fail: (why: string) => never): PyValue {
  const v = memo.get(i);
  if (v === undefined) fail(`memo slot ${i} was never stored`);
  return v as PyValue;
}

function parseIndex(s: string, fail: (why: string) => never): number {
  if (!/^\d+$/.test(s)) fail(`memo index '${showText(s, 20)}' is not a number`);
  return Number(s);
}

function textFloat(s: string, fail: (why: string) => never): number {
  const special: Record<string, number> = { nan: NaN, inf: Infinity, '-inf': -Infinity };
  const v = s.toLowerCase() in special ? special[s.toLowerCase()] : Number(s);
  if (s.trim() === '' || (Number.isNaN(v) && s.toLowerCase() !== 'nan')) fail(`FLOAT argument '${showText(s, 20)}' is not a number`);
  return v;
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Little-endian two's complement (LONG1/LONG4) → number when exact, else bigint. One hex string and
 * one BigInt parse: linear in the length (a shift-and-or per byte is quadratic: 1 MB took minutes).
 */
function longLE(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  const parts: string[] = new Array(b.length);
  for (let i = 0; i < b.length; i++) parts[i] = HEX[b[b.length - 1 - i]];
  let v = BigInt(`0x${parts.join('')}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return shrink(v);
}

function shrink(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list/tuple';
  if (v instanceof Map) return 'dict';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyGlobal) return v.summary;
  if (v instanceof PyObject) return `pickled '${showText(v.cls.qualname, 120)}' object`;
  if (v instanceof Set) return 'set';
  return typeof v;
}

/** Protocol-2 pickle output, just the opcodes a state dict needs (no memo: every value is written once). */
export class PickleWriter {
  private parts: number[] = [0x80, 2]; // PROTO 2
  private readonly enc = new TextEncoder();

  private u32(n: number): void {
    this.parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }

  private text(s: string): void {
    for (const b of this.enc.encode(s)) this.parts.push(b);
  }

  global(module: string, name: string): this {
    this.parts.push(0x63); // GLOBAL 'module\nname\n'
    this.text(`${module}\n${name}\n`);
    return this;
  }

  unicode(s: string): this {
    const b = this.enc.encode(s);
    this.parts.push(0x58); // BINUNICODE
    this.u32(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }

  int(n: number): this {
    if (!Number.isSafeInteger(n)) throw new PickleError(`pickle: cannot write ${n} as an int`);
    if (n >= 0 && n < 256) this.parts.push(0x4b, n); // BININT1
    else if (n >= 0 && n < 65536) this.parts.push(0x4d, n & 0xff, n >> 8); // BININT2
    else if (n >= -(2 ** 31) && n < 2 ** 31) { this.parts.push(0x4a); this.u32(n >>> 0); } // BININT
    else { // LONG1: 8-byte little-endian two's complement
      this.parts.push(0x8a, 8);
      let v = BigInt.asUintN(64, BigInt(n));
      for (let i = 0; i < 8; i++, v >>= 8n) this.parts.push(Number(v & 0xffn));
    }
    return this;
  }

  ints(ns: readonly number[]): this {
    for (const n of ns) this.int(n);
    return this;
  }

  bool(b: boolean): this { this.parts.push(b ? 0x88 : 0x89); return this; }
  mark(): this { this.parts.push(0x28); return this; }
  tuple(): this { this.parts.push(0x74); return this; }
  emptyTuple(): this { this.parts.push(0x29); return this; }
  reduce(): this { this.parts.push(0x52); return this; }
  binpersid(): this { this.parts.push(0x51); return this; }
  setItems(): this { this.parts.push(0x75); return this; }
  stop(): this { this.parts.push(0x2e); return this; }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}
