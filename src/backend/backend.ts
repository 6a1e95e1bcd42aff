// Which kernels run the float32 GEMMs: 'js' (the TypeScript reference, float64 accumulation) or
// 'wasm' (WebAssembly SIMD, f32x4, float32 accumulation; src/backend/wasm/gemm_simd.ts). float64
// always runs on 'js'. The default is the fastest available: 'wasm' where WebAssembly SIMD exists.
import { gemmModuleBytes } from './wasm/gemm_code.js';

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
