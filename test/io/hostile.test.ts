// Hostile files at the library level, one test per class of fault (Faults III): messages describe
// untrusted values by bounded, escaped summaries (never by serialising them); every parser is linear
// in its input; no raw JavaScript error escapes a reader, whatever the bytes; valid files that
// PyTorch reads are read. The CLI side of the same classes is in test/cli/faults.test.ts.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/io/checkpoint.js';
import { unpickle } from '../../src/io/pickle.js';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import { readZip, writeZip } from '../../src/io/zip.js';
import { describeValue, showText, terminalSafe } from '../../src/tensor/untrusted.js';
import { fixturePath } from '../helpers.js';

const enc = new TextEncoder();
/** Raw pickle bytes from opcodes (numbers) and text (UTF-8). */
const pk = (...parts: (number | string | Uint8Array)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else for (const b of typeof p === 'string' ? enc.encode(p) : p) out.push(b);
  }
  return Uint8Array.from(out);
};
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const uni = (s: string) => { const b = enc.encode(s); return pk(0x58, ...u32(b.length), b); }; // BINUNICODE
const GLOBAL = (mod: string, name: string) => pk(0x63, `${mod}\n${name}\n`);
const [PROTO2, MARK, STOP, TUPLE, REDUCE, EMPTY_DICT, EMPTY_LIST, APPEND, SETITEM, NEWFALSE, BINPERSID, LIST] =
  [pk(0x80, 2), 0x28, 0x2e, 0x74, 0x52, 0x7d, 0x5d, 0x61, 0x73, 0x89, 0x51, 0x6c];
const BINPUT = (i: number) => pk(0x71, i), BINGET = (i: number) => pk(0x68, i), BININT1 = (i: number) => pk(0x4b, i);

/** {'x': _rebuild_tensor_v2(storage of 4 floats, 0, SIZE, (1,), False, {})} with SIZE pushed by `size`. */
function tensorPickle(size: Uint8Array): Uint8Array {
  const storage = pk(MARK, uni('storage'), GLOBAL('torch', 'FloatStorage'), uni('0'), uni('cpu'), BININT1(4), TUPLE, BINPERSID);
  return pk(PROTO2, EMPTY_DICT, uni('x'), GLOBAL('torch._utils', '_rebuild_tensor_v2'), MARK, storage, BININT1(0), size,
    MARK, BININT1(1), TUPLE, NEWFALSE, EMPTY_DICT, TUPLE, REDUCE, SETITEM, STOP);
}
const asPth = (pkl: Uint8Array) => writeZip([['a/data.pkl', pkl], ['a/data/0', new Uint8Array(16)]]);

/** What every refusal of a hostile file must look like: our error, short, one line, no control characters. */
function refusedCleanly(f: () => unknown, msg?: RegExp): string {
  let err: unknown;
  const t = performance.now();
  try { f(); } catch (e) { err = e; }
  const ms = performance.now() - t;
  expect(err, 'it must throw').toBeInstanceOf(Error);
  const m = (err as Error).message;
  expect((err as Error).name, m).not.toMatch(/^(TypeError|RangeError|ReferenceError|SyntaxError)$/);
  expect(m).not.toMatch(/Cannot read properties|undefined|\[object Object\]|is not a function|is not iterable|circular structure|call stack/);
  expect(m.length, m.slice(0, 300)).toBeLessThan(600);
  expect(m).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  expect(ms, m).toBeLessThan(2000); // each case is < 50 ms here; 2 s only guards against a hang on a busy machine
  if (msg !== undefined) expect(m).toMatch(msg);
  return m;
}

describe('messages describe untrusted values by bounded summaries, never by serialising them', () => {
  it('a tensor size that is a memo DAG (billion laughs), a cycle, a 10⁵-deep nesting or 10⁶ items is refused at once in a short line', () => {
    // laughs: l0 = [1]; l(i) = [l(i-1), l(i-1)], 60 levels: 2⁶⁰ leaves if anything walked it whole
    const POP = 0x30;
    const laughs: (number | Uint8Array)[] = [EMPTY_LIST, BININT1(1), APPEND, BINPUT(0), POP];
    for (let i = 1; i <= 60; i++) laughs.push(MARK, BINGET(i - 1), BINGET(i - 1), LIST, BINPUT(i), POP);
    laughs.push(BINGET(60));
    refusedCleanly(() => parseCheckpoint(asPth(tensorPickle(pk(...laughs)))), /malformed size .*: \[\[a list of 2, a list of 2\], \[a list of 2, a list of 2\]\]$/);
    // a list that contains itself
    refusedCleanly(() => parseCheckpoint(asPth(tensorPickle(pk(EMPTY_LIST, BINPUT(0), BINGET(0), APPEND)))), /malformed size/);
    // 10⁵ nested lists
    const deep = new Uint8Array(199_999).fill(APPEND).fill(EMPTY_LIST, 0, 100_000);
    refusedCleanly(() => parseCheckpoint(asPth(tensorPickle(deep))), /malformed size .*\[\[a list of 1\]\]/);
    // 10⁶ sizes: more dimensions than PyTorch allows, shown as a count
    const wide = new Uint8Array(2_000_002).fill(1);
    for (let i = 1; i < 2_000_001; i += 2) wide[i] = 0x4b; // BININT1 1, a million times
    wide[0] = MARK;
    wide[2_000_001] = LIST;
    refusedCleanly(() => parseCheckpoint(asPth(tensorPickle(wide))), /malformed size .*\(1000000 items\)/);
  });

  it('describeValue and showText are bounded and escaped for any value', () => {
    const cyc: unknown[] = [];
    cyc.push(cyc, cyc);
    expect(describeValue(cyc)).toBe('[[a list of 2, a list of 2], [a list of 2, a list of 2]]');
    expect(describeValue(undefined)).toBe('nothing');
    expect(describeValue({ toString: 1, valueOf: 2 })).toBe('an object'); // String() of it would throw
    expect(describeValue(2n ** 4000n)).toBe('an integer of 501 bytes');
    expect(describeValue('\u001b[31mred\u202e')).toBe("'\\u001b[31mred\\u202e'");
    expect(showText('x'.repeat(1000), 10)).toBe('xxxxxxxxxx… (1000 characters)');
    expect(terminalSafe('a\nb\u0007\r', true)).toBe('a\nb\\u0007\\u000d');
    expect(terminalSafe('a\nb', false)).toBe('a\\u000ab');
  });
});

describe('every parser is linear in its input', () => {
  it('a LONG4 of 200 kB decodes in well under a second (a shift per byte is quadratic: 1 MB took minutes), to the right value', () => {
    const n = 200_000;
    const body = new Uint8Array(n).fill(0xff);
    body[n - 1] = 0x7f; // 2^(8n−1) − 1
    const t = performance.now();
    const v = unpickle(pk(PROTO2, 0x8b, ...u32(n), body, STOP)).value as bigint;
    expect(performance.now() - t).toBeLessThan(2000); // ~10 ms here; ~25 s quadratic
    expect(v).toBe((1n << BigInt(8 * n - 1)) - 1n);
    // and a negative one: two's complement, 0x80 0x00 … → −2^(8n−1)
    expect(unpickle(pk(PROTO2, 0x8b, ...u32(3), 0, 0, 0x80, STOP)).value).toBe(-(2 ** 23));
  });

  it('a safetensors header nested 10⁵ deep is refused before JSON.parse recurses, naming the byte offset', () => {
    const json = enc.encode(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    const b = new Uint8Array(8 + json.length);
    new DataView(b.buffer).setBigUint64(0, BigInt(json.length), true);
    b.set(json, 8);
    refusedCleanly(() => parseSafetensors(b), /header nests deeper than 32 levels at byte offset 44/);
    // brackets inside strings do not count: a key of 100 '[' is a valid (empty) tensor name
    const ok = serializeSafetensors(new Map([['['.repeat(100), { dtype: 'F32', shape: [0], data: new Float32Array(0) }]]));
    expect([...parseSafetensors(ok).tensors.keys()]).toEqual(['['.repeat(100)]);
  });
});

describe('no raw JavaScript error escapes a reader, whatever the bytes', () => {
  it('the instances found: OrderedDict([None]), _rebuild_from_type_v2(), a legacy protocol that is an object, safetensors entries without shape or dtype', () => {
    refusedCleanly(() => parseCheckpoint(asPth(pk(PROTO2, GLOBAL('collections', 'OrderedDict'), MARK, MARK, 0x4e, LIST, TUPLE, REDUCE, STOP))), /OrderedDict item 0 is null, not a \(key, value\) pair/);
    refusedCleanly(() => parseCheckpoint(asPth(pk(PROTO2, EMPTY_DICT, uni('x'), GLOBAL('torch._tensor', '_rebuild_from_type_v2'), 0x29, REDUCE, SETITEM, STOP))), /_rebuild_from_type_v2 takes \(func, type, args, state\), got 0 argument/);
    const magic = pk(PROTO2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, STOP);
    refusedCleanly(() => parseCheckpoint(pk(magic, PROTO2, EMPTY_DICT, STOP)), /legacy protocol version a dict of 0 at byte offset 15, expected 1001/);
    const st = (header: unknown) => { const j = enc.encode(JSON.stringify(header)); const b = new Uint8Array(8 + j.length); new DataView(b.buffer).setBigUint64(0, BigInt(j.length), true); b.set(j, 8); return b; };
    refusedCleanly(() => parseSafetensors(st({ t: { data_offsets: [0, 0] } })), /tensor 't' has no dtype/);
    refusedCleanly(() => parseSafetensors(st({ t: { dtype: 'F32', data_offsets: [0, 0] } })), /tensor 't' has no shape/);
    refusedCleanly(() => parseSafetensors(st({ t: { dtype: 'F32', shape: [0] } })), /tensor 't' has no data_offsets/);
  });

  // A grammar of pickle programs over the opcodes and globals a checkpoint uses: every program either
  // loads or is refused by our own error with a short, escaped line. fast-check shrinks any failure.
  const OPS: Uint8Array[] = [
    pk(0x4e), BININT1(0), BININT1(3), pk(0x4a, 0xff, 0xff, 0xff, 0xff), uni('storage'), uni('cpu'), uni('0'), uni('x'), uni('\u001b]0;pwn\u0007'),
    pk(EMPTY_LIST), pk(EMPTY_DICT), pk(0x29), pk(MARK), pk(TUPLE), pk(0x85), pk(0x86), pk(0x87), pk(LIST), pk(0x64),
    pk(APPEND), pk(0x65), pk(SETITEM), pk(0x75), pk(REDUCE), pk(0x81), pk(0x62), pk(BINPERSID), pk(0x32), pk(0x30),
    BINPUT(0), BINPUT(1), BINGET(0), BINGET(1), pk(NEWFALSE), pk(0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0x80),
    GLOBAL('collections', 'OrderedDict'), GLOBAL('torch._utils', '_rebuild_tensor_v2'), GLOBAL('torch', 'FloatStorage'),
    GLOBAL('torch', 'Evil\u001bStorage'), GLOBAL('torch._tensor', '_rebuild_from_type_v2'), GLOBAL('torch._utils', '_rebuild_parameter'),
    GLOBAL('posix', 'system'), GLOBAL('_codecs', 'encode'),
  ];
  it('2000 random pickle programs in a zip: each loads or is refused cleanly', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: OPS.length - 1 }), { maxLength: 40 }), (ops) => {
      const bytes = asPth(pk(PROTO2, ...ops.map((i) => OPS[i]), STOP));
      try { parseCheckpoint(bytes); } catch { refusedCleanly(() => parseCheckpoint(bytes)); }
    }), { numRuns: 2000, seed: 28 });
  });

  const VALUES = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string(),
    fc.constantFrom('F32', 'F64', 'I64', 'BOOL', '\u001b[2J', '__proto__', 'toString'), fc.array(fc.oneof(fc.integer({ min: -2, max: 2 ** 40 }), fc.string()), { maxLength: 4 }),
    fc.constant({ toString: 1 }), fc.constant([1e300, 1e300]));
  it('2000 random safetensors headers (any field missing or of any type, hostile keys): each loads or is refused cleanly', () => {
    fc.assert(fc.property(fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__metadata__', '__proto__', 'constructor', '\u009b31m')),
      fc.oneof(VALUES, fc.record({ dtype: VALUES, shape: VALUES, data_offsets: VALUES }, { requiredKeys: [] }), fc.dictionary(fc.string(), VALUES)), { maxKeys: 4 }), fc.integer({ min: 0, max: 64 }), (header, pad) => {
      const j = enc.encode(JSON.stringify(header));
      const b = new Uint8Array(8 + j.length + pad);
      new DataView(b.buffer).setBigUint64(0, BigInt(j.length), true);
      b.set(j, 8);
      try { parseSafetensors(b); } catch { refusedCleanly(() => parseSafetensors(b)); }
    }), { numRuns: 2000, seed: 28 });
  });

  it('1000 single-byte corruptions of a real checkpoint: each loads or is refused cleanly', () => {
    const good = new Uint8Array(readFileSync(fixturePath('pth/official_legacy_p4.pth')));
    fc.assert(fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, v) => {
      const b = good.slice();
      b[at] = v;
      try { parseCheckpoint(b); } catch { refusedCleanly(() => parseCheckpoint(b)); }
    }), { numRuns: 1000, seed: 28 });
  });
});

describe('a wrapper\'s other values are walked without recursion or argument spreads', () => {
  it('a 300 000-item list beside the state dict: the inert-record walk finishes, and the error is ours', () => {
    const items = new Uint8Array(600_000);
    for (let i = 0; i < items.length; i += 2) items[i] = 0x4b; // BININT1 0, 300 000 times
    const pkl = pk(PROTO2, EMPTY_DICT, uni('model'), EMPTY_DICT, SETITEM, uni('big'), EMPTY_LIST, MARK, items, 0x65, SETITEM, STOP); // 0x65 APPENDS
    refusedCleanly(() => parseCheckpoint(asPth(pkl)), /not a RepVGG state dict in any known naming/);
  });
});

describe('zip entry names are paths inside the archive', () => {
  it("'..', absolute paths and drive letters are refused, naming the entry (escaped) and its byte offset", () => {
    for (const [name, shown] of [['../../etc/passwd', '../../etc/passwd'], ['/abs/data.pkl', '/abs/data.pkl'], ['a/../../x', 'a/../../x'], ['C:\\x', 'C:\\x'], ['a\\..\\b', 'a\\..\\b']]) {
      refusedCleanly(() => readZip(writeZip([['ok', new Uint8Array(1)], [name, new Uint8Array(1)]])), new RegExp(`entry 1 at byte offset \\d+ is named '${shown.replace(/[.\\/]/g, '\\$&')}', a path outside the archive; refused`));
    }
    // names that only look alike are fine: '..x', 'a..b'
    expect([...readZip(writeZip([['a/..x', new Uint8Array(1)], ['a..b', new Uint8Array(1)]])).keys()]).toEqual(['a/..x', 'a..b']);
    // a control character in a name reaches a message only escaped
    refusedCleanly(() => parseCheckpoint(writeZip([['\u001b[31mred/x', new Uint8Array(1)]])), /records: '\\u001b\[31mred\/x'/);
  });
});
