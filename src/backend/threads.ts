// The one worker pool. A kernel's work is cut into parts; part 0 runs on the calling thread and the
// others on workers (worker_threads in Node, module Web Workers in browsers) that see the operands
// through SharedArrayBuffer. The calling thread blocks until every part is done, so the API stays
// synchronous.
//
// Determinism: a kernel's parts write disjoint outputs, and every output element is computed by the
// same sequence of floating-point operations whichever part computes it (parts split only dimensions
// that are not summed over). So results are bitwise identical for every thread count.

import { checkNumber } from '../tensor/check.js';
import { sharedArrayLike } from '../tensor/tensor.js';
import { sharedWorkspaceLike, workspaceLike } from '../tensor/workspace.js';
import { type Backend, getBackend, getFusedMultiplyAdd, setBackend, setFusedMultiplyAdd } from './backend.js';

type KernelFn<A> = (args: A, part: number, parts: number) => void;

export interface Kernel<A> {
  readonly name: string;
  readonly run: KernelFn<A>;
}

const kernels = new Map<string, KernelFn<never>>();

/** Registers a kernel under a name the workers can look up (they import the same modules). */
export function defineKernel<A>(name: string, run: KernelFn<A>): Kernel<A> {
  if (kernels.has(name)) throw new Error(`pool: kernel '${name}' defined twice`);
  kernels.set(name, run as KernelFn<never>);
  return { name, run };
}

/** [lo, hi) of part `part` when n items are cut into `parts` contiguous pieces. */
export function partRange(n: number, part: number, parts: number): [number, number] {
  return [Math.floor((n * part) / parts), Math.floor((n * (part + 1)) / parts)];
}

/** [lo, hi) of part `part` when n rows are cut into runs of whole 4-row strips (the SIMD GEMM's tile
 * height: a part's rows then start where a prepared operand's packed strips do). */
export function stripRange(n: number, part: number, parts: number): [number, number] {
  const [s0, s1] = partRange(Math.ceil(n / 4), part, parts);
  return [Math.min(n, 4 * s0), Math.min(n, 4 * s1)];
}

// ---- environment -------------------------------------------------------------------------------

interface NodeWorker {
  postMessage(m: unknown): void;
  terminate(): Promise<number>;
  unref(): void;
  on(ev: string, f: (e: unknown) => void): void;
}
interface WorkerThreadsModule {
  Worker: new (url: URL, opts?: object) => NodeWorker;
  isMainThread: boolean;
  parentPort: { on(ev: 'message', f: (m: unknown) => void): void } | null;
  receiveMessageOnPort(port: unknown): { message: unknown } | undefined;
}

// Node's getBuiltinModule (Node ≥ 20.16) loads node:worker_threads synchronously, without a
// top-level await (which would break loading this package with require) and without a bundler seeing it.
const nodeProcess = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown; versions?: { node?: string } } }).process;
const isNode = typeof nodeProcess?.versions?.node === 'string';

function workerThreads(): WorkerThreadsModule | null {
  const get = nodeProcess?.getBuiltinModule;
  return typeof get === 'function' ? (get('node:worker_threads') as WorkerThreadsModule) : null;
}

function hardwareThreads(): number {
  if (isNode) {
    const os = nodeProcess?.getBuiltinModule?.('node:os') as { availableParallelism?: () => number } | undefined;
    return os?.availableParallelism?.() ?? 1;
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/** More threads than this are refused (a typo, not a machine). */
export const MAX_THREADS = 256;

/** Threads used when setThreads has not been called: the available cores, at most 8. */
const DEFAULT_MAX_THREADS = 8;

// Why the pool cannot run (null: it can). Shared memory needs SharedArrayBuffer, which browsers only
// give cross-origin-isolated pages; Node needs getBuiltinModule to start workers synchronously.
let unavailable: string | null | undefined;
function unavailableReason(): string | null {
  if (unavailable === undefined) unavailable = findUnavailableReason();
  return broken ?? unavailable;
}
function findUnavailableReason(): string | null {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') {
    return 'SharedArrayBuffer is not available (in a browser, serve the page cross-origin isolated: COOP same-origin and COEP require-corp)';
  }
  if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) {
    return 'the page is not cross-origin isolated (COOP same-origin and COEP require-corp), so memory cannot be shared';
  }
  if (isNode && workerThreads() === null) return 'this Node has no getBuiltinModule (Node ≥ 20.16 has it)';
  if (!isNode && typeof (globalThis as { Worker?: unknown }).Worker !== 'function') return 'Web Workers are not available here';
  return null;
}

// ---- state ----------------------------------------------------------------------------------------

let requested = Math.max(1, Math.min(DEFAULT_MAX_THREADS, hardwareThreads()));
let warned = false;
let broken: string | null = null;
let workers: { terminate(): void; post(m: unknown): void }[] = [];
// ctrl[0]: parts still running on workers; ctrl[1]: 1 when a part failed; ctrl[2]: background jobs
// not yet done; ctrl[3]: 1 when one failed (its message in errText's second half); ctrl[4]: messages
// posted to the workers so far (the doorbell a polling worker watches: serveWorker); ctrl[5]:
// messages the workers took while polling (workerMessages)
let ctrl: Int32Array | null = null;
// claims[slot]: the id of the last scope whose background job in that slot a thread took (see claim)
let claims: Int32Array | null = null;
// ready[i] = 1 once worker i serves kernels (workers start in the background: until they are
// ready, kernels run on fewer threads, which changes no bits)
let ready: Int32Array | null = null;
let errText: Uint8Array | null = null;
const ERR_BYTES = 1024;

/**
 * Threads for the heavy kernels (convolutions forward and backward, SGD's update): 1 = this thread
 * only. The default is the available cores, at most 8. Outputs do not depend on it, bit for bit.
 * Conv2d and Linear modules built while it is above 1 keep their weights in shared memory, where
 * the workers read and update them without a copy.
 */
export function setThreads(n: number): void {
  checkNumber(n, 'count', 'setThreads: n');
  if (n > MAX_THREADS) throw new Error(`setThreads: n must be at most ${MAX_THREADS}, got ${n}`);
  requested = n; // idle workers cost nothing and stay for the next raise
}

/** The thread count the next parallel kernel may use (1 where workers cannot run here). */
export function getThreads(): number {
  return requested > 1 && unavailableReason() === null ? requested : 1;
}

/** Stops the workers (they restart on demand). Node exits without this: the workers are unref'd. */
function stopWorkers(): void {
  for (const w of workers) w.terminate();
  workers = [];
  ready?.fill(0);
}

// Whether Atomics.wait may block here (not on a browser's main thread, where the caller spins).
let canBlock: boolean | null = null;
/** ms a caller spins for its parts before it sleeps in Atomics.wait: the parts of a kernel end close
 * together, and a thread woken from Atomics.wait resumes only some 25–30 µs later on a VM (a
 * pool's round trip with nothing to do was 64 µs with both sides sleeping, 20 with one polling and
 * 6 with both: A0's deploy forward at batch 1 on two threads makes 21 of them). */
const CALLER_SPIN_MS = 0.2;
// Waits until the count of work left at a[i] is 0 (or below: work counted down twice, which the
// caller reports, rather than waiting forever).
function waitForZero(a: Int32Array, i: number): void {
  const t0 = performance.now();
  for (let s = 1; Atomics.load(a, i) > 0; s++) {
    if ((s & 255) === 0 && performance.now() - t0 > CALLER_SPIN_MS) break;
  }
  if (canBlock === null) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
      canBlock = true;
    } catch {
      canBlock = false;
    }
  }
  for (let v = Atomics.load(a, i); v > 0; v = Atomics.load(a, i)) {
    if (canBlock) Atomics.wait(a, i, v);
  }
}

function workerUrl(): URL {
  // Tests run the TypeScript sources, whose workers must run the build (npm test builds first).
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/backend/worker.js', here) : new URL('./worker.js', here);
}

// The parent's Node options minus those that only make sense for the main script (a worker given
// --input-type or --eval refuses to start) and those a worker refuses (below).
let execArgv: string[] | null = null;
function workerExecArgv(): string[] {
  return execArgv ??= mainScriptArgvRemoved();
}

function mainScriptArgvRemoved(): string[] {
  const argv = (nodeProcess as { execArgv?: string[] } | undefined)?.execArgv ?? [];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print' || a === '--input-type') { i++; continue; }
    if (a.startsWith('--input-type=') || a.startsWith('--eval=') || a.startsWith('--print=')) continue;
    out.push(a);
  }
  return out;
}

// V8's flags (--expose-gc, --max-old-space-size, --experimental-wasm-relaxed-simd) apply to the whole
// process, workers included, and Node refuses them in a worker's execArgv, naming them in the error
// (ERR_WORKER_INVALID_EXEC_ARGV): the worker starts again without them, and so do the next ones.
function startNodeWorker(wt: WorkerThreadsModule, url: URL): NodeWorker {
  try {
    return new wt.Worker(url, { execArgv: workerExecArgv() });
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    const refused = new Set(String((e as Error).message).replace(/^[^:]*:\s*/, '').split(/,\s*/));
    execArgv = workerExecArgv().filter((a) => !refused.has(a));
    return new wt.Worker(url, { execArgv });
  }
}

function failed(why: string): void {
  broken = why;
  stopWorkers();
  warnOnce(why);
}

// Starts workers up to `count` in the background.
function spawnWorkers(count: number): void {
  if (ctrl === null) {
    ctrl = new Int32Array(new SharedArrayBuffer(24));
    claims = new Int32Array(new SharedArrayBuffer(4 * JOB_SLOTS));
    ready = new Int32Array(new SharedArrayBuffer(4 * MAX_THREADS));
    errText = new Uint8Array(new SharedArrayBuffer(2 * ERR_BYTES));
  }
  if (workers.length >= count) return; // (every parallel call comes here: the URL and the module only when a worker starts)
  const url = workerUrl();
  const wt = workerThreads();
  for (let i = workers.length; i < count; i++) {
    let w: { terminate(): void; post(m: unknown): void };
    if (isNode && wt !== null) {
      let nw: NodeWorker;
      try {
        nw = startNodeWorker(wt, url);
      } catch (e) {
        failed(`a worker thread could not start: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
      nw.unref(); // the library must not keep a Node process alive
      nw.on('error', (e) => failed(`a worker thread failed: ${e instanceof Error ? e.message : String(e)}`));
      w = { post: (m) => nw.postMessage(m), terminate: () => void nw.terminate() };
    } else {
      const W = (globalThis as unknown as { Worker: new (u: URL, o: object) => { postMessage(m: unknown): void; terminate(): void; onerror: unknown } }).Worker;
      const bw = new W(url, { type: 'module' });
      bw.onerror = (e: { message?: string }) => failed(`a worker failed: ${e.message ?? 'could not load it'}`);
      w = { post: (m) => bw.postMessage(m), terminate: () => bw.terminate() };
    }
    w.post({ type: 'init', ctrl, claims, errText, ready, index: i });
    workers.push(w);
  }
}

function readyWorkers(): number {
  let k = 0;
  while (k < workers.length && Atomics.load(ready!, k) === 1) k++;
  return k;
}

/** Resolves once `n` workers serve kernels (tests and the bench wait for it; kernels need not). */
export async function workersReady(n = requested - 1): Promise<void> {
  if (n <= 0 || unavailableReason() !== null) return;
  spawnWorkers(n);
  while (readyWorkers() < n) {
    if (broken !== null) throw new Error(broken);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Starts the workers the next parallel kernel will use, in the background, and returns at once: a
 * caller that is about to read files before its heavy work lets them start meanwhile (kernels do not
 * wait for them either way).
 */
export function startWorkers(): void {
  if (getThreads() > 1) spawnWorkers(getThreads() - 1);
}

// The thread count onOneThread set aside (1 outside it): background jobs may still use its workers.
let setAside = 1;

/** f() with every kernel on this thread and nothing in shared memory for them ('auto' times its
 * candidates so: see conv2d.ts); background jobs (runInBackground) still go to the workers. */
export function onOneThread<T>(f: () => T): T {
  const saved = requested, savedAside = setAside;
  setAside = Math.max(setAside, requested);
  requested = 1;
  try {
    return f();
  } finally {
    requested = saved;
    setAside = savedAside;
  }
}

function warnOnce(why: string): void {
  if (warned) return;
  warned = true;
  console.warn(`repvgg-ts: running on one thread: ${why}`);
}

/**
 * Runs kernel(args, p, parts) for p = 0 … parts − 1, part 0 here and the rest on workers, and returns
 * when all are done. `args` must hold typed arrays over SharedArrayBuffer for everything the workers
 * touch. parts is clamped to the threads available; with one part nothing leaves this thread.
 */
export function parallel<A>(kernel: Kernel<A>, args: A, parts: number): void {
  parts = Math.max(1, Math.min(parts, getThreads()));
  if (parts > 1) {
    spawnWorkers(parts - 1);
    parts = Math.min(parts, 1 + readyWorkers());
  }
  if (parts === 1) {
    kernel.run(args, 0, 1);
    return;
  }
  poolStats.workerParts += parts - 1;
  flushBackground(); // ahead of the parts in the workers' queues, as they were asked for first
  const c = ctrl!;
  Atomics.store(c, 0, parts - 1);
  Atomics.store(c, 1, 0);
  // the caller's backend and kind of GEMM travel with the work, so that every part runs the same kernels
  const backend = getBackend(), fused = backend === 'wasm' && getFusedMultiplyAdd();
  for (let p = 1; p < parts; p++) postToWorker(p - 1, { type: 'run', kernel: kernel.name, args, part: p, parts, backend, fused });
  let failure: unknown = null;
  try {
    kernel.run(args, 0, parts);
  } catch (e) {
    failure = e;
  }
  waitForZero(c, 0);
  if (failure !== null && !(failure instanceof AnotherPartFailed)) throw failure;
  if (Atomics.load(c, 1) !== 0) throw workerError(0);
  if (failure !== null) throw failure;
}

/** Whether a part of the parallel kernel running now has failed on a worker (for a part that waits
 * on another: it stops waiting). */
export function workerPartFailed(): boolean {
  return ctrl !== null && Atomics.load(ctrl, 1) !== 0;
}

/** What a part throws when it stops because another part failed: parallel() then reports that
 * part's error, which says why, instead of this one. */
export class AnotherPartFailed extends Error {}

// The message a worker left in errText's half `half` (0: a part's, 1: a background job's).
function workerError(half: 0 | 1): Error {
  const bytes = errText!.slice(half * ERR_BYTES, (half + 1) * ERR_BYTES);
  const end = bytes.indexOf(0);
  return new Error(`worker: ${new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end))}`);
}

// ---- background jobs ------------------------------------------------------------------------------
// Work whose result nobody reads until later (a conv's dW, read by the optimizer after the backward
// pass) runs whole on a worker while this thread goes on (the next layer's dx): two threads then
// share a training step whose kernels are each too small to split. Only inside backgroundScope,
// which returns once every job is done, so no caller ever sees a result still being written. A job
// is the same kernel a single part runs here: the same bits wherever it runs. Jobs wait in a queue
// until flushBackground (or a parallel kernel, or the scope's end) posts them, one message per
// worker: a post costs ~7 µs alone and 20–30 in a training step, the size of a small conv's dW. At
// the scope's end this thread runs the jobs no worker has started (each is claimed in `claims`
// first, by whichever thread gets to it), the last queued first, instead of waiting for them.

/** slot: the job's place in `claims`; scope: its scope's id */
interface Job { kernel: string; args: unknown; slot: number; scope: number }
/** jobs a scope can hold (past them, runInBackground declines: the caller runs the work itself) */
const JOB_SLOTS = 1024;
let scopeDepth = 0;
let scopesOpened = 0;
let jobsPosted = 0;
let queued: Job[] = [];
// the scope's jobs so far
let scopeJobs: Job[] = [];

// Whether this thread takes `job`: claims[slot] holds the id of the last scope whose job in that slot
// was taken, and ids only grow, so exactly one thread moves it to the job's id, and a worker still
// going through an older message after its scope ended finds a newer id and leaves the job.
function claim(c: Int32Array, job: Job): boolean {
  for (;;) {
    const old = Atomics.load(c, job.slot);
    if (old >= job.scope) return false;
    if (Atomics.compareExchange(c, job.slot, old, job.scope) === old) return true;
  }
}
// what runs here once the jobs are done (their `then`), in the order they were queued
let afterJobs: (() => void)[] = [];

/** Whether runInBackground may take a job now (a scope open, threads set, the pool able to run):
 * a caller checks it before copying operands into shared memory for one. */
export function backgroundPossible(): boolean {
  return scopeDepth > 0 && Math.max(requested, setAside) > 1 && unavailableReason() === null;
}

/**
 * f(), during which kernels may run in the background (runInBackground); returns (or throws) only
 * when all of them are done. Scopes nest: the outermost waits.
 */
export function backgroundScope<T>(f: () => T): T {
  if (scopeDepth++ === 0) scopesOpened++;
  let failure: unknown = null, result: T | undefined;
  try {
    result = f();
  } catch (e) {
    failure = e;
  } finally {
    scopeDepth--;
  }
  if (scopeDepth === 0 && ctrl !== null) {
    flushBackground();
    const jobs = scopeJobs;
    scopeJobs = [];
    for (let i = jobs.length - 1; i >= 0; i--) {
      const job = jobs[i];
      if (!claim(claims!, job)) continue;
      try {
        (kernels.get(job.kernel) as KernelFn<unknown>)(job.args, 0, 1);
      } catch (e) {
        failure ??= e;
      }
      Atomics.sub(ctrl, 2, 1);
    }
    waitForZero(ctrl, 2);
    // below zero: a job ran twice (two threads took it), and the count no longer says what is running
    if (Atomics.load(ctrl, 2) < 0) failure = new Error('pool: a background job ran on two threads');
    if (failure === null && Atomics.load(ctrl, 3) !== 0) failure = workerError(1);
    Atomics.store(ctrl, 3, 0);
    const then = afterJobs;
    afterJobs = [];
    if (failure === null) for (const f of then) f();
  }
  if (failure !== null) throw failure;
  return result!;
}

/**
 * Queues kernel(args, 0, 1) for a worker and returns true, inside a backgroundScope with a worker
 * ready and fewer than JOB_SLOTS jobs in it; else false (the caller runs it itself). `args`: what the workers read and write in shared
 * memory, left untouched by everyone else until the scope ends. `then` runs on this thread once all
 * jobs are done, before the scope returns.
 */
export function runInBackground<A>(kernel: Kernel<A>, args: A, then?: () => void): boolean {
  if (!backgroundPossible() || scopeJobs.length === JOB_SLOTS) return false;
  spawnWorkers(Math.max(requested, setAside) - 1);
  if (readyWorkers() === 0) return false;
  Atomics.add(ctrl!, 2, 1);
  poolStats.backgroundJobs++;
  const job = { kernel: kernel.name, args, slot: scopeJobs.length, scope: scopesOpened };
  queued.push(job);
  scopeJobs.push(job);
  if (then !== undefined) afterJobs.push(then);
  return true;
}

/** Posts the queued background jobs: the ready workers take them in turn, one message each. */
export function flushBackground(): void {
  if (queued.length === 0) return;
  const jobs = queued, n = readyWorkers(); // ≥ 1 unless the pool failed since: then the scope's end runs them here
  queued = [];
  if (n === 0) return;
  const backend = getBackend(), fused = backend === 'wasm' && getFusedMultiplyAdd();
  const share: Job[][] = Array.from({ length: Math.min(n, jobs.length) }, () => []);
  for (const job of jobs) share[jobsPosted++ % share.length].push(job);
  share.forEach((js, i) => postToWorker(i, { type: 'jobs', jobs: js, backend, fused }));
}

// Posts m to worker i and rings the doorbell (after the post: a worker that sees the ring finds the
// message on its port).
function postToWorker(i: number, m: WorkerMessage): void {
  workers[i].post(m);
  Atomics.add(ctrl!, 4, 1);
}

/** Messages posted to the workers so far (doorbell rings), and those the workers took while polling
 * for them rather than from their event loops (tests). */
export function workerMessages(): { posted: number; polled: number } {
  return ctrl === null ? { posted: 0, polled: 0 } : { posted: Atomics.load(ctrl, 4), polled: Atomics.load(ctrl, 5) };
}

// ---- worker side ------------------------------------------------------------------------------------

interface WorkerMessage {
  type: 'init' | 'run' | 'jobs';
  ctrl?: Int32Array;
  claims?: Int32Array;
  errText?: Uint8Array;
  ready?: Int32Array;
  index?: number;
  kernel?: string;
  args?: unknown;
  part?: number;
  parts?: number;
  backend?: Backend;
  fused?: boolean;
  /** background jobs (runInBackground), each counted in ctrl[2], a failure in ctrl[3]; one taken
   * by the caller (its claims slot set) is skipped */
  jobs?: Job[];
}

/** The worker's message loop (called by worker.ts after it has imported the kernels' modules);
 * `loadKernels(name)`: the import that defines a kernel not defined yet, or null (a part of it then
 * runs once the import is done: its caller waits for the part either way). */
export function serveWorker(loadKernels?: (name: string) => Promise<unknown> | null): void {
  let c: Int32Array | null = null;
  let taken: Int32Array | null = null;
  let text: Uint8Array | null = null;
  // handles m; false when a part waits for its kernel's import (its run is then the event loop's)
  const onMessage = (m: WorkerMessage): boolean => {
    if (m.type === 'init') {
      c = m.ctrl!;
      taken = m.claims!;
      text = m.errText!;
      Atomics.store(m.ready!, m.index!, 1);
      return true;
    }
    if (m.type === 'jobs') {
      for (const job of m.jobs!) {
        if (claim(taken!, job)) runKernel(job.kernel, job.args, 0, 1, m, 2);
      }
      return true;
    }
    const run = () => runKernel(m.kernel!, m.args, m.part!, m.parts!, m, 0);
    const loading = kernels.has(m.kernel!) ? null : loadKernels?.(m.kernel!) ?? null;
    // (an import that fails leaves the kernel undefined, which the part then reports)
    if (loading !== null) {
      void loading.then(run, run);
      return false;
    }
    run();
    return true;
  };
  // runs a kernel the caller posted with its backend; `count`: the ctrl slot that counts it down (a
  // failure flagged in the one after it, the message in errText's half for it)
  const runKernel = (name: string, args: unknown, part: number, parts: number, m: WorkerMessage, count: 0 | 2): void => {
    const half = count / 2;
    try {
      const run = kernels.get(name);
      if (run === undefined) throw new Error(`unknown kernel '${name}'`);
      setBackend(m.backend!);
      if (m.backend === 'wasm') setFusedMultiplyAdd(m.fused!);
      run(args as never, part, parts);
    } catch (e) {
      if (Atomics.compareExchange(c!, count + 1, 0, 1) === 0) {
        const msg = new TextEncoder().encode(e instanceof Error ? e.message : String(e)).subarray(0, ERR_BYTES - 1);
        text!.fill(0, half * ERR_BYTES, (half + 1) * ERR_BYTES);
        text!.set(msg, half * ERR_BYTES);
      }
    } finally {
      Atomics.sub(c!, count, 1);
      Atomics.notify(c!, count);
    }
  };
  const wt = isNode ? workerThreads() : null, port = wt?.parentPort ?? null;
  // After a message, a Node worker polls for the next one for up to WORKER_POLL_MS instead of going
  // back to its event loop, whose wake-up costs as much as a small part (CALLER_SPIN_MS): it watches
  // the doorbell (ctrl[4]) and takes what a ring brings with receiveMessageOnPort, in order. The first
  // look takes what came before it started watching. Browsers have no synchronous receive.
  const poll = (): void => {
    const ctl = c!;
    let seen = Atomics.load(ctl, 4) - 1, t0 = performance.now();
    for (let s = 1; ; s++) {
      const ring = Atomics.load(ctl, 4);
      if (ring !== seen) {
        seen = ring;
        for (let r = wt!.receiveMessageOnPort(port); r !== undefined; r = wt!.receiveMessageOnPort(port)) {
          Atomics.add(ctl, 5, 1);
          if (!onMessage(r.message as WorkerMessage)) return;
        }
        t0 = performance.now();
      } else if ((s & 255) === 0 && performance.now() - t0 > WORKER_POLL_MS) return;
    }
  };
  if (port !== null) port.on('message', (m) => { if (onMessage(m as WorkerMessage) && typeof wt!.receiveMessageOnPort === 'function') poll(); });
  else (globalThis as unknown as { onmessage: (e: { data: WorkerMessage }) => void }).onmessage = (e) => void onMessage(e.data);
}

/** ms a worker polls for its next message after one (serveWorker): the caller's work between two
 * parallel kernels (a layer's serial parts, A0's stem on one thread: ~1.3 ms) mostly fits; past it
 * the worker sleeps in its event loop. */
const WORKER_POLL_MS = 2;

// ---- shared memory --------------------------------------------------------------------------------

/** Parts run on workers, and bytes copied into and out of shared memory, so far (tests and bench). */
export const poolStats = { workerParts: 0, copiedBytes: 0, backgroundJobs: 0 };

export function isShared(a: Float32Array | Float64Array): boolean {
  return typeof SharedArrayBuffer === 'function' && a.buffer instanceof SharedArrayBuffer;
}

/** `a` itself if workers can see it, else its copy in the named shared workspace. */
export function shareInput<T extends Float32Array | Float64Array>(name: string, a: T): T {
  if (isShared(a)) return a;
  const s = sharedWorkspaceLike(name, a.length, a).subarray(0, a.length) as T;
  s.set(a);
  poolStats.copiedBytes += a.byteLength;
  return s;
}

// Background jobs' operands that lie outside shared memory: each array's copy, kept with the array,
// and the outermost scope it was last filled for.
const backgroundCopies = new WeakMap<Float32Array | Float64Array, { copy: Float32Array | Float64Array; scope: number }>();

/**
 * For a background job (runInBackground): `a` itself if workers can see it, else its copy in shared
 * memory, kept with `a` (a workspace, as shareInput uses, would be written over by the next call
 * while the job still reads it) and, with `fill`, filled once per outermost scope: the scope's
 * callers leave `a` as it is meanwhile, so a block's input, read by both its convs' dW, is copied once.
 * Without `fill`, a place for a job's output (the caller copies it back when the scope ends).
 */
export function shareForBackground<T extends Float32Array | Float64Array>(a: T, fill: boolean): T {
  if (isShared(a)) return a;
  let c = backgroundCopies.get(a);
  if (c === undefined) backgroundCopies.set(a, c = { copy: sharedArrayLike(a.length, a), scope: -1 });
  if (fill && c.scope !== scopesOpened) {
    c.copy.set(a);
    c.scope = scopesOpened;
    poolStats.copiedBytes += a.byteLength;
  }
  return c.copy as T;
}

/** Where workers can write an output of a's length: `a` itself if shared, else a named workspace. */
export function shareOutput<T extends Float32Array | Float64Array>(name: string, a: T): T {
  return isShared(a) ? a : (sharedWorkspaceLike(name, a.length, a).subarray(0, a.length) as T);
}

/** Copies a shared output back to the caller's array (no-op when it was written in place). */
export function collectOutput<T extends Float32Array | Float64Array>(shared: T, a: T): void {
  if (shared === a) return;
  a.set(shared);
  poolStats.copiedBytes += a.byteLength;
}

/** Multiply-adds below which a part is not worth a message to a worker: a part must outweigh a
 * message's round trip and its copies into shared memory. On 'wasm', lower split the demo's small
 * training convs and two threads ran slower than one; higher, A0's middle layers stopped splitting
 * (docs/performance.md: threads). 'js' kept its earlier value (its GEMM is several times slower per
 * multiply-add, so less work fills the same time). */
const MIN_MACS_PER_PART: Record<Backend, number> = { js: 1 << 17, wasm: 1 << 23 };

/** Sets that threshold for a backend and returns the old one (for the tests, which split small cases to check the bits). */
export function setMinMacsPerPart(backend: Backend, macs: number): number {
  const old = MIN_MACS_PER_PART[backend];
  MIN_MACS_PER_PART[backend] = macs;
  return old;
}

/** How many parts to cut a kernel of `macs` multiply-adds and `units` independent pieces into. */
export function partsFor(macs: number, units: number): number {
  if (requested === 1) return 1;
  const why = unavailableReason();
  if (why !== null) {
    warnOnce(why);
    return 1;
  }
  const t = requested;
  return Math.max(1, Math.min(t, units, Math.floor(macs / MIN_MACS_PER_PART[getBackend()])));
}

/** Whether a conv of `macs` multiply-adds may be cut into parts on the threads set: its backward,
 * which passes partsFor twice its multiply-adds, is the first of its kernels to split. */
export function convCouldSplit(macs: number): boolean {
  return partsFor(2 * macs, Infinity) > 1;
}

/** Scratch that every part can write (shared when parts > 1; the caller's own workspace otherwise). */
export function scratch(name: string, n: number, like: Float32Array | Float64Array, parts: number): Float32Array | Float64Array {
  return parts > 1 ? sharedWorkspaceLike(name, n, like) : workspaceLike(name, n, like);
}
