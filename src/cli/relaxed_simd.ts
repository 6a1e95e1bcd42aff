// Node 20's V8 has WebAssembly's relaxed SIMD behind a flag (Node ≥ 22 and Chromium run it by
// default); with it the GEMM's block kernels fuse each multiply-add where the CPU does (one rounding,
// ~1.15× the kernel's rate on this repository's bench machine: docs/performance.md, Backends). The
// flag is process-wide, so only a process that is ours sets it: the CLI and the benches, never the
// library (a user's process keeps the engine's defaults; `node --experimental-wasm-relaxed-simd`
// gives them the same).
import v8 from 'node:v8';
import { relaxedSimdValidates } from '../backend/backend.js';

/** Turns relaxed SIMD on in this process where the engine has it behind V8's flag (before any kernel
 * is compiled); returns whether the engine now validates it. */
export function allowRelaxedSimd(): boolean {
  if (relaxedSimdValidates()) return true;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return relaxedSimdValidates();
}
