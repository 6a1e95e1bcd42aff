// Reusable scratch buffers, grown on demand and never shrunk, so steady-state calls allocate nothing.
// Single-threaded JS makes a named buffer safe as long as no op re-enters itself with the same name.
// The shared ones live in SharedArrayBuffer, for scratch that the worker pool's parts all write.

import { type FloatArray, sharedArrayLike } from './tensor.js';

const f32 = new Map<string, FloatArray>();
const f64 = new Map<string, FloatArray>();
const shared32 = new Map<string, FloatArray>();
const shared64 = new Map<string, FloatArray>();

// The buffer named `name` in `map`, at least n long: grown (to max(n, 2× its length)) when shorter.
function grown<T extends FloatArray | Int32Array>(map: Map<string, T>, name: string, n: number, make: (len: number) => T): T {
  let buf = map.get(name);
  if (buf === undefined || buf.length < n) {
    buf = make(Math.max(n, buf === undefined ? 0 : buf.length * 2));
    map.set(name, buf);
  }
  return buf;
}

/** A scratch array of at least n elements, of the same type as `like`. Contents are unspecified. */
export function workspaceLike(name: string, n: number, like: FloatArray): FloatArray {
  return like instanceof Float64Array ? workspace64(name, n) : workspace32(name, n);
}

export function workspace64(name: string, n: number): Float64Array {
  return grown(f64, name, n, (len) => new Float64Array(len)) as Float64Array;
}

function workspace32(name: string, n: number): Float32Array {
  return grown(f32, name, n, (len) => new Float32Array(len)) as Float32Array;
}

const i32 = new Map<string, Int32Array>();

/** An Int32Array scratch of at least n elements (offset tables), grown like the others. */
export function workspaceInt32(name: string, n: number): Int32Array {
  return grown(i32, name, n, (len) => new Int32Array(len));
}

/** As workspaceLike, in shared memory (where SharedArrayBuffer exists), for the worker pool. */
export function sharedWorkspaceLike(name: string, n: number, like: FloatArray): FloatArray {
  return grown(like instanceof Float64Array ? shared64 : shared32, name, n, (len) => sharedArrayLike(len, like));
}

/** Total bytes held by workspaces, shared ones included (for the memory bench). */
export function workspaceBytes(): number {
  let b = 0;
  for (const m of [f32, f64, shared32, shared64, i32]) for (const a of m.values()) b += a.byteLength;
  return b;
}

/**
 * Drop every workspace (they are grown, never shrunk): after a one-shot run of a large graph its
 * scratch would otherwise stay allocated for as long as the program runs. The next call grows them anew.
 */
export function releaseWorkspaces(): void {
  for (const m of [f32, f64, shared32, shared64, i32]) m.clear();
}
