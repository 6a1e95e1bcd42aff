// Protocol Buffers wire format, encoding only (https://protobuf.dev/programming-guides/encoding/):
// each field is a tag varint (field << 3 | wire type) then a varint (type 0), a 4-byte little-endian
// value (type 5) or a varint length and that many bytes (type 2: strings, bytes, sub-messages).
// Sub-messages are kept as a tree and written once into one buffer, so large tensors are copied once.

const VARINT = 0, LEN = 2, I32 = 5;

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
