// The wire format at its edges, on bytes written out by hand from the encoding guide
// (protobuf.dev/programming-guides/encoding): a field may end exactly at its message's end and not
// one byte later, a varint has at most 10 bytes, field number 0 does not exist, strings are UTF-8.
// Nested messages are read by passing [start, end) of the parent's LEN field, so "past the end of its
// message" is tested with an end before the end of the bytes (a parent's next field follows).
import { describe, expect, it } from 'vitest';
import { ProtoMessage, int64Of, protoFields, stringOf } from '../../src/io/protobuf.js';

const all = (b: number[], end = b.length) => [...protoFields(Uint8Array.from(b), 0, end)];

describe('protobuf reader: each bound exactly', () => {
  it('a LEN field ending at its message\'s end is read; one declaring a byte more is refused, even when the parent has that byte', () => {
    const b = [0x0a, 0x03, 0x61, 0x62, 0x63, 0x10, 0x01]; // field 1 LEN "abc", then the parent's field 2 = 1
    expect(stringOf(all(b, 5)[0], 'name')).toBe('abc');
    const longer = b.slice();
    longer[1] = 0x04;
    expect(() => all(longer, 5)).toThrow(/field 1 at byte offset 0 declares 4 bytes, past the end of its message \(byte offset 5/);
  });

  it('a fixed32 and a fixed64 ending at the end are read; cut one byte short they are refused', () => {
    const f32 = [0x0d, 1, 2, 3, 4, 0x10, 0x01], f64 = [0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x10];
    expect(Array.from(all(f32, 5)[0].bytes)).toEqual([1, 2, 3, 4]);
    expect(Array.from(all(f64, 9)[0].bytes)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(() => all(f32, 4)).toThrow(/field 1 at byte offset 0 needs 4 bytes past the end/);
    expect(() => all(f64, 8)).toThrow(/field 1 at byte offset 0 needs 8 bytes past the end/);
  });

  it('a 10-byte varint (2⁶⁴ − 1, and −1 as int64) is read; an 11-byte one is refused', () => {
    const ten = [0x08, ...Array(9).fill(0xff), 0x01];
    const [f] = all(ten);
    expect(f.varint).toBe(2n ** 64n - 1n);
    expect(int64Of(f, 'v')).toBe(-1);
    expect(() => all([0x08, ...Array(10).fill(0x80), 0x00])).toThrow(/a varint at byte offset 1 is longer than 10 bytes/);
  });

  it('field number 0 and invalid UTF-8 are refused, naming the byte offset', () => {
    expect(() => all([0x00, 0x01])).toThrow(/field number 0 at byte offset 0/);
    expect(() => stringOf(all([0x0a, 0x02, 0xc3, 0x28])[0], 'node name')).toThrow(/node name at byte offset 0 is not valid UTF-8/);
  });

  it('the writer encodes negative int64 as ten bytes of two\'s complement (the guide\'s −2: fe ff ff ff ff ff ff ff ff 01)', () => {
    expect(Array.from(new ProtoMessage().varint(1, -2).encode())).toEqual([0x08, 0xfe, ...Array(8).fill(0xff), 0x01]);
  });
});
