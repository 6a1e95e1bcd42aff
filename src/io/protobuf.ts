// Protocol Buffers wire format (https://protobuf.dev/programming-guides/encoding/), both ways: each
// field is a tag varint (field << 3 | wire type) then a varint (type 0), an 8-byte value (type 1), a
// varint length and that many bytes (type 2: strings, bytes, packed repeated scalars, sub-messages)
// or a 4-byte little-endian value (type 5). Writing: sub-messages are kept as a tree and written once
// into one buffer, so large tensors are copied once. Reading: fields() walks one message's fields in
// order without copying (a LEN field is a view), each read bounds-checked, every error naming the
// byte offset; nested messages are read by their caller, so the reader itself never recurses.

const VARINT = 0, I64 = 1, LEN = 2, I32 = 5;

export class ProtoError extends Error {
  override name = 'ProtoError';
}

/** One field as read: its number, wire type, where it starts, and its value. */
export interface ProtoField {
  field: number;
  wire: number;
  /** byte offset of the tag in the whole input */
  at: number;
  /** VARINT: the raw 64-bit value; I64/I32: the 8 or 4 raw bytes; LEN: the payload (a view) */
  varint: bigint;
  bytes: Uint8Array;
  /** byte offset of `bytes` in the whole input (LEN) */
  bytesAt: number;
}

/**
 * The fields of the message in bytes[start, end), in order. `base` is bytes' own offset in the
 * input, so offsets in errors are file offsets.
 */
export function* protoFields(bytes: Uint8Array, start = 0, end = bytes.length, base = 0, what = 'message'): Generator<ProtoField, void, void> {
  let pos = start;
  const varint = (): bigint => {
    const [v, next] = readVarint(bytes, pos, end, base, what);
    pos = next;
    return v;
  };
  while (pos < end) {
    const at = pos;
    const tag = varint();
    const field = Number(tag >> 3n), wire = Number(tag & 7n);
    if (field === 0) throw new ProtoError(`protobuf: ${what}: field number 0 at byte offset ${base + at} (not a protobuf message, or corrupted)`);
    const f: ProtoField = { field, wire, at: base + at, varint: 0n, bytes: EMPTY, bytesAt: 0 };
    if (wire === VARINT) f.varint = varint();
    else if (wire === I64 || wire === I32) {
      const n = wire === I64 ? 8 : 4;
      if (pos + n > end) throw new ProtoError(`protobuf: ${what}: field ${field} at byte offset ${base + at} needs ${n} bytes past the end of its message (truncated?)`);
      f.bytes = bytes.subarray(pos, pos + n);
      f.bytesAt = base + pos;
      pos += n;
    } else if (wire === LEN) {
      const n = varint();
      if (n > BigInt(end - pos)) throw new ProtoError(`protobuf: ${what}: field ${field} at byte offset ${base + at} declares ${n} bytes, past the end of its message (byte offset ${base + end}; truncated?)`);
      f.bytes = bytes.subarray(pos, pos + Number(n));
      f.bytesAt = base + pos;
      pos += Number(n);
    } else {
      throw new ProtoError(`protobuf: ${what}: field ${field} at byte offset ${base + at} has wire type ${wire} (groups are not used by this format, or the data is corrupted)`);
    }
    yield f;
  }
}

const EMPTY = new Uint8Array(0);

/** int64 as protobuf writes it (two's complement in 64 bits) → a number; refuses what a double cannot hold exactly. */
export function int64Of(f: ProtoField, what: string): number {
  const v = BigInt.asIntN(64, f.varint);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new ProtoError(`protobuf: ${what} at byte offset ${f.at} is ${v}, beyond 2^53`);
  return Number(v);
}

/** A repeated int64 field, packed (LEN) or not (one VARINT per element): the values it adds. */
export function int64sOf(f: ProtoField, what: string): number[] {
  if (f.wire === VARINT) return [int64Of(f, what)];
  if (f.wire !== LEN) throw new ProtoError(`protobuf: ${what} at byte offset ${f.at} has wire type ${f.wire}, expected a varint or packed varints`);
  const out: number[] = [];
  for (const g of packedVarints(f.bytes, f.bytesAt, what)) out.push(int64Of(g, what));
  return out;
}

/** A repeated int64 field's raw values (two's complement in 64 bits), packed or not, for callers with their own range rule. */
export function int64sRawOf(f: ProtoField, what: string): bigint[] {
  if (f.wire === VARINT) return [BigInt.asIntN(64, f.varint)];
  if (f.wire !== LEN) throw new ProtoError(`protobuf: ${what} at byte offset ${f.at} has wire type ${f.wire}, expected a varint or packed varints`);
  return [...packedVarints(f.bytes, f.bytesAt, what)].map((g) => BigInt.asIntN(64, g.varint));
}

function* packedVarints(b: Uint8Array, base: number, what: string): Generator<ProtoField, void, void> {
  for (let pos = 0; pos < b.length;) {
    const at = pos;
    const [v, next] = readVarint(b, pos, b.length, base, `${what} (packed)`);
    pos = next;
    yield { field: 0, wire: VARINT, at: base + at, varint: v, bytes: EMPTY, bytesAt: 0 };
  }
}

/**
 * The varint at bytes[pos] (before `end`) as its raw 64-bit value, and the position after it. Up to
 * four bytes (28 bits: tags, lengths, small ints) are summed as a number, longer ones as a bigint.
 */
function readVarint(bytes: Uint8Array, pos: number, end: number, base: number, what: string): [bigint, number] {
  const at = pos;
  let small = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) throw new ProtoError(`protobuf: ${what}: a varint at byte offset ${base + at} runs past the end of its message (byte offset ${base + end}; truncated?)`);
    const b = bytes[pos++];
    small += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return [BigInt(small), pos];
  }
  let v = BigInt(small), shift = 28n;
  for (let i = 4; ; i++) {
    if (pos >= end) throw new ProtoError(`protobuf: ${what}: a varint at byte offset ${base + at} runs past the end of its message (byte offset ${base + end}; truncated?)`);
    if (i === 10) throw new ProtoError(`protobuf: ${what}: a varint at byte offset ${base + at} is longer than 10 bytes`);
    const b = bytes[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [BigInt.asUintN(64, v), pos];
    shift += 7n;
  }
}

/** A LEN field as UTF-8 text (invalid sequences refused, naming the offset). */
export function stringOf(f: ProtoField, what: string): string {
  if (f.wire !== LEN) throw new ProtoError(`protobuf: ${what} at byte offset ${f.at} has wire type ${f.wire}, expected a string`);
  try {
    return UTF8.decode(f.bytes);
  } catch {
    throw new ProtoError(`protobuf: ${what} at byte offset ${f.at} is not valid UTF-8`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export class ProtoMessage {
  private readonly parts: (Uint8Array | ProtoMessage)[] = [];
  private small: number[] = [];
  private cached = -1;

  private flush(): void {
    if (this.small.length > 0) this.parts.push(Uint8Array.from(this.small));
    this.small = [];
  }

  private rawVarint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v)); // negative int64 as ten bytes of two's complement, as protobuf does
    while (x >= 0x80n) {
      this.small.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.small.push(Number(x));
  }

  private tag(field: number, wire: number): void {
    this.cached = -1;
    this.rawVarint((field << 3) | wire);
  }

  varint(field: number, v: number | bigint): this {
    this.tag(field, VARINT);
    this.rawVarint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.small.push(...b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, LEN);
    this.rawVarint(b.length);
    this.flush();
    this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoMessage): this {
    this.tag(field, LEN);
    this.rawVarint(m.size());
    this.flush();
    this.parts.push(m);
    return this;
  }

  size(): number {
    if (this.cached < 0) {
      this.flush();
      this.cached = this.parts.reduce((s, p) => s + (p instanceof ProtoMessage ? p.size() : p.length), 0);
    }
    return this.cached;
  }

  /** The encoding as a sequence of byte arrays, in order, without assembling it (large fields are the caller's own arrays). */
  *chunks(): Generator<Uint8Array, void, void> {
    this.flush();
    for (const p of this.parts) {
      if (p instanceof ProtoMessage) yield* p.chunks();
      else yield p;
    }
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.size());
    this.writeInto(out, 0);
    return out;
  }

  private writeInto(out: Uint8Array, at: number): number {
    this.flush();
    for (const p of this.parts) {
      if (p instanceof ProtoMessage) at = p.writeInto(out, at);
      else { out.set(p, at); at += p.length; }
    }
    return at;
  }
}
