// Reusable scratch buffers, grown on demand and never shrunk, so steady-state calls allocate nothing.
// Single-threaded JS makes a named buffer safe as long as no op re-enters itself with the same name.

import type { FloatArray } from './tensor.js';

const f32 = new Map<string, Float32Array>();
const f64 = new Map<string, Float64Array>();

/** A scratch array of at least n elements, of the same type as `like`. Contents are unspecified. */
export function workspaceLike(name: string, n: number, like: FloatArray): FloatArray {
  return like instanceof Float64Array ? workspace64(name, n) : workspace32(name, n);
}

export function workspace64(name: string, n: number): Float64Array {
  let buf = f64.get(name);
  if (buf === undefined || buf.length < n) {
    buf = new Float64Array(Math.max(n, buf === undefined ? 0 : buf.length * 2));
    f64.set(name, buf);
  }
  return buf;
}

export function workspace32(name: string, n: number): Float32Array {
  let buf = f32.get(name);
  if (buf === undefined || buf.length < n) {
    buf = new Float32Array(Math.max(n, buf === undefined ? 0 : buf.length * 2));
    f32.set(name, buf);
  }
  return buf;
}

/** Total bytes held by workspaces (for the memory bench). */
export function workspaceBytes(): number {
  let b = 0;
  for (const a of f32.values()) b += a.byteLength;
  for (const a of f64.values()) b += a.byteLength;
  return b;
}
