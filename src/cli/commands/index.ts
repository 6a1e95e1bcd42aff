import type { Command } from '../command.js';
import { info } from './info.js';
import { init } from './init.js';
import { forward } from './forward.js';
import { backward } from './backward.js';
import { convert } from './convert.js';
import { explain } from './explain.js';
import { demo } from './demo.js';
import { verify } from './verify.js';
import { fixtures } from './fixtures.js';
import { train } from './train.js';
import { ablate } from './ablate.js';
import { inspect } from './inspect.js';
import { exportOnnx } from './export.js';
import { web } from './web.js';
import { run } from './run.js';
import { fuseOnnxCommand } from './fuse_onnx.js';

export const COMMANDS: Command[] = [demo, train, ablate, info, init, inspect, forward, backward, convert, exportOnnx, run, fuseOnnxCommand, explain, verify, fixtures, web];
