// The pickle reader against bytes written by CPython's pickle module (the hex below; each case's
// Python expression beside it), so the expected values are Python's, not ours.
import { describe, expect, it } from 'vitest';
import { PickleError, PyGlobal, PyObject, type PyValue, unpickle } from '../../src/io/pickle.js';

const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
const load = (h: string | Uint8Array, opts = {}) => unpickle(typeof h === 'string' ? hex(h) : h, opts).value;

// {'a': [1, 2.5, 'x', None, True], 'b': (1, 2), 'big': 2**70, 'neg': -5, 'bytes': b'\x00\x01', 'f': -1e300, 'u': 'ünï'}
const VALUE_BY_PROTOCOL: Record<number, string> = {
  2: '80027d71002858010000006171015d7102284b0147400400000000000058010000007871034e886558010000006271044b014b02867105580300000062696771068a0900000000000000004058030000006e656771074afbffffff580500000062797465737108635f636f646563730a656e636f64650a710958020000000001710a58060000006c6174696e31710b86710c52710d580100000066710e47fe37e43c8800759c580100000075710f5805000000c3bc6ec3af7110752e',
  3: '80037d71002858010000006171015d7102284b0147400400000000000058010000007871034e886558010000006271044b014b02867105580300000062696771068a0900000000000000004058030000006e656771074afbffffff580500000062797465737108430200017109580100000066710a47fe37e43c8800759c580100000075710b5805000000c3bc6ec3af710c752e',
  4: '8004956a000000000000007d94288c0161945d94284b014740040000000000008c0178944e88658c0162944b014b0286948c03626967948a090000000000000000408c036e6567944afbffffff8c0562797465739443020001948c01669447fe37e43c8800759c8c0175948c05c3bc6ec3af94752e',
  5: '8005956a000000000000007d94288c0161945d94284b014740040000000000008c0178944e88658c0162944b014b0286948c03626967948a090000000000000000408c036e6567944afbffffff8c0562797465739443020001948c01669447fe37e43c8800759c8c0175948c05c3bc6ec3af94752e',
};

describe('unpickle', () => {
  for (const [proto, h] of Object.entries(VALUE_BY_PROTOCOL)) {
    it(`reads protocol ${proto} as Python wrote it`, () => {
      const v = load(h) as Map<PyValue, PyValue>;
      expect([...v.keys()]).toEqual(['a', 'b', 'big', 'neg', 'bytes', 'f', 'u']);
      expect(v.get('a')).toEqual([1, 2.5, 'x', null, true]);
      expect(v.get('b')).toEqual([1, 2]);
      expect(v.get('big')).toBe(2n ** 70n);
      expect(v.get('neg')).toBe(-5);
      expect(v.get('bytes')).toEqual(new Uint8Array([0, 1]));
      expect(v.get('f')).toBe(-1e300);
      expect(v.get('u')).toBe('ünï');
    });
  }

  it('reads protocol 0 text opcodes: {"k": [1, "z", 3.5]}', () => {
    expect(load('286470300a566b0a70310a286c70320a49310a61567a0a70330a6146332e350a61732e')).toEqual(new Map([['k', [1, 'z', 3.5]]]));
  });

  it('keeps shared references shared (memo): [a, a] with a = [1]', () => {
    const v = load('80025d7100285d71014b01616801652e') as PyValue[][];
    expect(v).toEqual([[1], [1]]);
    expect(v[0]).toBe(v[1]);
  });

  it('reads a self-referencing list (c = []; c.append(c)) without looping', () => {
    const v = load('80025d71006800612e') as PyValue[];
    expect(v[0]).toBe(v);
  });

  it('reads sets (protocol 4): {1, 2}', () => {
    expect(load('80049509000000000000008f94284b014b02902e')).toEqual(new Set([1, 2]));
  });

  it('never calls a global: os.system("touch /tmp/never") becomes an inert record', () => {
    const v = load('800263706f7369780a73797374656d0a71005810000000746f756368202f746d702f6e6576657271018571025271032e');
    expect(v).toBeInstanceOf(PyObject);
    expect((v as PyObject).cls).toEqual(new PyGlobal('posix', 'system'));
    expect((v as PyObject).args).toEqual(['touch /tmp/never']);
  });

  it('calls only the reducers it is given, with the arguments from the stream', () => {
    const seen: PyValue[][] = [];
    const v = load('800263706f7369780a73797374656d0a71005810000000746f756368202f746d702f6e6576657271018571025271032e',
      { reducers: new Map([['posix.system', (args: PyValue[]) => { seen.push(args); return 'stub'; }]]) });
    expect(v).toBe('stub');
    expect(seen).toEqual([['touch /tmp/never']]);
  });

  it('is iterative: 200,000 nested lists load without a stack overflow', () => {
    const n = 200_000;
    const b = new Uint8Array(2 + n + (n - 1) + 1);
    b.set([0x80, 2]);
    b.fill(0x5d, 2, 2 + n); // EMPTY_LIST ×n
    b.fill(0x61, 2 + n, 2 + n + n - 1); // APPEND ×(n−1): each list into the one below it
    b[b.length - 1] = 0x2e;
    let v = load(b) as PyValue[];
    let depth = 1;
    while (v.length === 1) { v = v[0] as PyValue[]; depth++; }
    expect(depth).toBe(n);
  });

  it('names the byte offset of truncation, unknown opcodes and bad memo references', () => {
    const full = hex(VALUE_BY_PROTOCOL[2]);
    expect(() => load(full.subarray(0, 40))).toThrow(PickleError);
    expect(() => load(full.subarray(0, 40))).toThrow(/truncated.*byte offset/);
    expect(() => load(hex('8002ff'))).toThrow(/unknown opcode \(opcode 0xff at byte offset 2\)/);
    expect(() => load(hex('8002680a2e'))).toThrow(/memo slot 10 was never stored/);
    expect(() => load(hex('8002612e'))).toThrow(/stack underflow/);
  });
});
