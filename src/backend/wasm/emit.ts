// A small WebAssembly bytecode emitter: just enough of the binary format (WebAssembly Core
// Specification 2.0, §5) to write our SIMD kernels in TypeScript, with no toolchain and no committed
// binary. A function body is built as a list of bytes through the Code builder's named instructions.

/** Value types (§5.3.1). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

// unsigned and signed LEB128 (§5.2.2)
// (appended to `out`, which is returned: the emitter runs once per thread at start-up, before the JIT
// has optimised anything, so it appends in place rather than building and spreading small arrays)
export function uleb(n: number, out: number[] = []): number[] {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number, out: number[] = []): number[] {
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

// b appended to out, by a loop (a spread of an array costs more in code the JIT has not optimised)
function append(out: number[], b: readonly number[]): number[] {
  for (let i = 0; i < b.length; i++) out.push(b[i]);
  return out;
}
// byte strings joined, each copied once (TypedArray.set)
function cat(parts: ArrayLike<number>[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  for (let i = 0, at = 0; i < parts.length; at += parts[i].length, i++) out.set(parts[i], at);
  return out;
}
const vec = (items: ArrayLike<number>[]): Uint8Array => cat([uleb(items.length), ...items]);
const section = (id: number, body: Uint8Array): Uint8Array => cat([[id], uleb(body.length), body]);
const name = (s: string): Uint8Array => cat([uleb(s.length), new TextEncoder().encode(s)]); // ASCII names

/** Instructions of one function body; locals are numbered after the parameters. */
export class Code {
  readonly bytes: number[] = [];
  private readonly op = (...b: number[]): this => { append(this.bytes, b); return this; };
  // an opcode, then an unsigned LEB128 immediate
  private readonly opU = (opcode: number, imm: number): this => { this.bytes.push(opcode); uleb(imm, this.bytes); return this; };
  // SIMD instructions: prefix 0xfd, then the opcode as unsigned LEB128 (§5.4.8)
  private readonly simd = (opcode: number, ...imm: number[]): this => { append(this.opU(0xfd, opcode).bytes, imm); return this; };
  // memarg: alignment exponent, then offset (§5.4.6)
  private readonly mem = (align: number, offset: number): number[] => uleb(offset, uleb(align));

  get(i: number): this { return this.opU(0x20, i); }
  set(i: number): this { return this.opU(0x21, i); }
  tee(i: number): this { return this.opU(0x22, i); }
  i32(v: number): this { this.bytes.push(0x41); sleb(v, this.bytes); return this; }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Mul(): this { return this.op(0x6c); }
  i32LtU(): this { return this.op(0x49); }
  i32LeU(): this { return this.op(0x4d); }
  i32Eqz(): this { return this.op(0x45); }
  i32Eq(): this { return this.op(0x46); }
  i32And(): this { return this.op(0x71); }
  i32Shl(): this { return this.op(0x74); }
  i32Or(): this { return this.op(0x72); }
  i32Xor(): this { return this.op(0x73); }
  /** return from the function, its results on the stack */
  return(): this { return this.op(0x0f); }
  i32LtS(): this { return this.op(0x48); }
  i32GtS(): this { return this.op(0x4a); }
  /** [a, b, c] → c ? a : b */
  select(): this { return this.op(0x1b); }
  /** if with no result (closed by end) */
  if(): this { return this.op(0x04, 0x40); }
  /** the other arm of an if */
  else(): this { return this.op(0x05); }
  /** block with no result */
  block(): this { return this.op(0x02, 0x40); }
  /** loop with no result */
  loop(): this { return this.op(0x03, 0x40); }
  end(): this { return this.op(0x0b); }
  br(depth: number): this { return this.opU(0x0c, depth); }
  brIf(depth: number): this { return this.opU(0x0d, depth); }
  i32Load(offset = 0): this { return this.op(0x28, ...this.mem(2, offset)); }
  i32Store(offset = 0): this { return this.op(0x36, ...this.mem(2, offset)); }
  i32Load16S(offset = 0): this { return this.op(0x2e, ...this.mem(1, offset)); }
  i32Store16(offset = 0): this { return this.op(0x3b, ...this.mem(1, offset)); }
  f32Add(): this { return this.op(0x92); }
  f32Load(offset = 0): this { return this.op(0x2a, ...this.mem(2, offset)); }
  f32Store(offset = 0): this { return this.op(0x38, ...this.mem(2, offset)); }
  v128Load(offset = 0): this { return this.simd(0x00, ...this.mem(4, offset)); }
  v128Store(offset = 0): this { return this.simd(0x0b, ...this.mem(4, offset)); }
  /** load one f32 and splat it to four lanes */
  v128Load32Splat(offset = 0): this { return this.simd(0x09, ...this.mem(2, offset)); }
  /** all-zero v128 */
  v128Zero(): this { return this.simd(0x0c, ...new Array<number>(16).fill(0)); }
  /** load one f32 into lane `lane` of the v128 on the stack: [addr, v] → v */
  v128Load32Lane(lane: number, offset = 0): this { return this.simd(0x56, ...this.mem(2, offset), lane); }
  /** store lane `lane` of a v128 as 8 bytes (two f32 of a demoted pair): [addr, v] → */
  v128Store64Lane(lane: number, offset = 0): this { return this.simd(0x5b, ...this.mem(3, offset), lane); }
  f64Const(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    return this.op(0x44, ...b);
  }
  f64x2Splat(): this { return this.simd(0x14); }
  /** f32 → f64, exact */
  f64PromoteF32(): this { return this.op(0xbb); }
  /** load two f32 into lanes 0 and 1 (8 bytes), zeros above */
  v128Load64Zero(offset = 0): this { return this.simd(0x5d, ...this.mem(3, offset)); }
  /** store lane `lane` of a v128 as one f32: [addr, v] → */
  v128Store32Lane(lane: number, offset = 0): this { return this.simd(0x5a, ...this.mem(2, offset), lane); }
  f64Load(offset = 0): this { return this.op(0x2b, ...this.mem(3, offset)); }
  f64Add(): this { return this.op(0xa0); }
  f64Sub(): this { return this.op(0xa1); }
  f64Mul(): this { return this.op(0xa2); }
  /** f64 → f32, rounded to nearest */
  f32DemoteF64(): this { return this.op(0xb6); }
  /** load one f64 and splat it to both lanes */
  v128Load64Splat(offset = 0): this { return this.simd(0x0a, ...this.mem(3, offset)); }
  /** i8x16.shuffle by f32 lanes: [a, b] → (c₀, c₁, c₂, c₃), lane l taken from a's lanes 0–3 or b's 4–7 */
  f32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    return this.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }
  /** i8x16.shuffle: [a, b] → lanes 2 and 3 of the f32x4 a in lanes 0 and 1 (and 2 and 3; b unused) */
  f32x4HighToLow(): this { return this.f32x4Shuffle([2, 3, 2, 3]); }
  /** i8x16.shuffle: [a, b] → (a₀, a₁, b₀, b₁) as f32x4 lanes */
  f32x4JoinLow(): this { return this.f32x4Shuffle([0, 1, 4, 5]); }
  /** i8x16.shuffle: [a, b] → (a₀, a₂, b₀, b₂) as f32x4 lanes: every second float of the eight */
  f32x4Evens(): this { return this.f32x4Shuffle([0, 2, 4, 6]); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Sub(): this { return this.simd(0xf1); }
  f64x2Mul(): this { return this.simd(0xf2); }
  /** lanes 0 and 1 (f32) widened to f64: exact */
  f64x2PromoteLowF32x4(): this { return this.simd(0x5f); }
  /** the two f64 lanes rounded to f32 (to nearest) in lanes 0 and 1, lanes 2 and 3 zero */
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }
  f32x4Add(): this { return this.simd(0xe4); }
  i32x4Splat(): this { return this.simd(0x11); }
  i32x4ExtractLane(lane: number): this { return this.simd(0x1b, lane); }
  /** [v, n] → each lane shifted left by n */
  i32x4Shl(): this { return this.simd(0xab); }
  i32x4MinS(): this { return this.simd(0xb6); }
  i32x4MaxS(): this { return this.simd(0xb8); }
  /** lanes a ≤ b as all ones, else 0 (false for NaN) */
  f32x4Le(): this { return this.simd(0x45); }
  /** [a, b] → a & ~b */
  v128AndNot(): this { return this.simd(0x4f); }
  f32x4Mul(): this { return this.simd(0xe6); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Splat(): this { return this.simd(0x13); }
  f32Const(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.op(0x43, ...b);
  }
  /** load one f32 into lane 0, zeros above */
  v128Load32Zero(offset = 0): this { return this.simd(0x5c, ...this.mem(2, offset)); }
  /** i32x4.dot_i16x8_s: lane j of the result is a[2j]·b[2j] + a[2j+1]·b[2j+1] (signed 16-bit, exact in 32) */
  i32x4DotI16x8S(): this { return this.simd(0xba); }
  i32x4Add(): this { return this.simd(0xae); }
  /** i16x8 lanes 0–3 of a and b interleaved: a0 b0 a1 b1 a2 b2 a3 b3 (lanes 4–7 with `high`) */
  i16x8Interleave(high: boolean): this {
    const lanes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const l = 2 * (i + (high ? 4 : 0));
      lanes.push(l, l + 1, 16 + l, 17 + l);
    }
    return this.simd(0x0d, ...lanes);
  }
  /** relaxed SIMD's f32x4.relaxed_madd: [a, b, c] → a·b + c, rounded once where the hardware fuses
   * the multiply and the add, twice where it does not (the engine's choice, fixed for a machine) */
  f32x4RelaxedMadd(): this { return this.simd(0x105); }
  /** pseudo-maximum pmax(a, b) = a < b ? b : a: with b = 0 it is a ReLU that keeps NaN and −0 */
  f32x4Pmax(): this { return this.simd(0xeb); }
}

export interface FunctionDef {
  name: string;
  params: number[];
  /** what it returns (none: a kernel writes its results to memory) */
  results?: number[];
  /** types of the extra locals, in order after the parameters */
  locals: number[];
  body: Code;
}

/** A module importing its memory as env.memory and exporting the functions. */
export function wasmModule(funcs: FunctionDef[]): Uint8Array {
  const types = section(1, vec(funcs.map((f) => cat([[0x60], vec(f.params.map((t) => [t])), vec((f.results ?? []).map((t) => [t]))]))));
  const imports = section(2, vec([cat([name('env'), name('memory'), [0x02, 0x00], uleb(1)])])); // memory, min 1 page
  const functions = section(3, vec(funcs.map((_, i) => uleb(i))));
  const exports = section(7, vec(funcs.map((f, i) => cat([name(f.name), [0x00], uleb(i)]))));
  const bodies = funcs.map((f) => {
    // consecutive locals of one type are declared as one (count, type) pair
    const groups: number[][] = [];
    for (const t of f.locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body = cat([vec(groups.map(([n, t]) => uleb(n).concat(t))), f.body.bytes, [0x0b]]);
    return cat([uleb(body.length), body]);
  });
  const code = section(10, vec(bodies));
  return cat([[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], types, imports, functions, exports, code]);
}
