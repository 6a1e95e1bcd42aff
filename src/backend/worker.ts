// A pool worker: imports every module that defines a kernel (defineKernel registers it by name),
// then serves the pool's messages. Started by src/backend/threads.ts; not part of the public API. These
// imports are the one place src/backend reaches up into src/ops and src/train (test/layering.test.ts
// allows it): the worker is an entry point, as a program's main module is.
import '../ops/conv2d.js';
import '../ops/conv2d_im2col.js';
import '../ops/conv2d_winograd.js';
import '../ops/conv2d_integer.js';
import '../ops/sgd.js';
import { serveWorker } from './threads.js';
import { wasmAvailable } from './backend.js';
import { getInstance } from './wasm/instance.js';

// The kernels' module built now, while the caller is likely still reading its files, rather than
// inside the first part this worker runs (~20 ms on this project's machine).
if (wasmAvailable()) getInstance();
// Training by halves (train.*) imports the network's modules: only when a step first asks for it,
// so that an inference-only process's workers start without them (a one-shot `repvgg forward` ran
// 7–14 ms slower with them imported at start).
serveWorker((name) => (name.startsWith('train.') ? import('../train/data_parallel.js') : null));
