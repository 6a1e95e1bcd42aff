// Which kernels run the float32 GEMMs: 'js' (the TypeScript reference, float64 accumulation) or
// 'wasm' (WebAssembly SIMD, f32x4, float32 accumulation; src/backend/wasm/gemm_simd.ts). float64
// always runs on 'js'. The default is the fastest available: 'wasm' where WebAssembly SIMD exists.
// On 'wasm', the GEMM's multiply-adds are fused (relaxed SIMD's f32x4.relaxed_madd, one rounding)
// where the engine has relaxed SIMD and the machine fuses, else a multiply and an add.
import { gemmModuleBytes, maddProbeBytes } from './wasm/gemm_code.js';

export type Backend = 'js' | 'wasm';

let simd: boolean | null = null;

/** Whether this engine runs WebAssembly SIMD (our module validates). */
export function wasmAvailable(): boolean {
  if (simd === null) {
    try {
      simd = typeof WebAssembly === 'object' && WebAssembly.validate(gemmModuleBytes() as BufferSource);
    } catch {
      simd = false;
    }
  }
  return simd;
}

let current: Backend | null = null;

/** 'wasm' (default where available) or 'js'. Throws for 'wasm' where WebAssembly SIMD is missing. */
export function setBackend(b: Backend): void {
  if (b !== 'js' && b !== 'wasm') throw new Error(`setBackend: expected 'js' or 'wasm', got ${JSON.stringify(b)}`);
  if (b === 'wasm' && !wasmAvailable()) throw new Error("setBackend: WebAssembly SIMD is not available here; use 'js'");
  current = b;
}

export function getBackend(): Backend {
  current ??= wasmAvailable() ? 'wasm' : 'js';
  return current;
}

/** Whether this engine validates relaxed SIMD now (not remembered: a process of ours may turn on the
 * V8 flag that Node 20 keeps it behind, src/cli/relaxed_simd.ts). */
export function relaxedSimdValidates(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(maddProbeBytes() as BufferSource);
  } catch {
    return false;
  }
}

let fmaHere: boolean | null = null;

/** Whether the GEMM can fuse its multiply-adds here: the engine has relaxed SIMD (Chromium, Node ≥ 22;
 * Node 20 with --experimental-wasm-relaxed-simd) and its relaxed_madd rounds once on this machine,
 * probed on (1 + 2⁻²³)·(1 − 2⁻²³) − 1: −2⁻⁴⁶ rounded once, 0 rounded twice. */
export function fusedMultiplyAddAvailable(): boolean {
  if (fmaHere === null) {
    fmaHere = false;
    try {
      const bytes = maddProbeBytes();
      if (wasmAvailable() && relaxedSimdValidates()) {
        const memory = new WebAssembly.Memory({ initial: 1 });
        const probe = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), { env: { memory } }).exports.maddProbe as (p: number) => void;
        const f = new Float32Array(memory.buffer, 0, 12);
        f.fill(1 + 2 ** -23, 0, 4).fill(1 - 2 ** -23, 4, 8).fill(-1, 8, 12);
        probe(0);
        fmaHere = f.subarray(0, 4).every((v) => v === -(2 ** -46));
      }
    } catch {
      fmaHere = false;
    }
  }
  return fmaHere;
}

/** Why the fused kernel cannot run here (for errors). */
export const FUSED_MISSING = 'this engine has no fused multiply-add in WebAssembly (relaxed SIMD: Chromium, Node ≥ 22, Node 20 run with --experimental-wasm-relaxed-simd; and a CPU that fuses)';

let fma: boolean | null = null;

/**
 * Whether the 'wasm' GEMM fuses each multiply-add (one rounding: results differ in the last bits
 * from the unfused kernel, within the same error bounds). The default is true where
 * `fusedMultiplyAddAvailable()`; pin false for the bits of engines without relaxed SIMD. Every
 * thread of the pool runs the caller's choice.
 */
export function setFusedMultiplyAdd(on: boolean): void {
  if (typeof on !== 'boolean') throw new Error(`setFusedMultiplyAdd: expected true or false, got ${JSON.stringify(on)}`);
  if (on && !fusedMultiplyAddAvailable()) throw new Error(`setFusedMultiplyAdd: ${FUSED_MISSING}`);
  fma = on;
}

/** Whether the 'wasm' GEMM fuses its multiply-adds now (the default, or what setFusedMultiplyAdd pinned). */
export function getFusedMultiplyAdd(): boolean {
  fma ??= fusedMultiplyAddAvailable();
  return fma;
}
