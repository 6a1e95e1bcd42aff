// A pool worker: imports every module that defines a kernel (defineKernel registers it by name),
// then serves the pool's messages. Started by src/backend/threads.ts; not part of the public API. These
// two imports are the one place src/backend reaches up into src/ops (test/layering.test.ts allows it).
import '../ops/conv2d_im2col.js';
import '../ops/conv2d_winograd.js';
import { serveWorker } from './threads.js';

serveWorker();
