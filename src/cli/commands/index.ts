import type { Command } from '../command.js';
import { info } from './info.js';
import { init } from './init.js';
import { forward } from './forward.js';
import { backward } from './backward.js';
import { convert } from './convert.js';
import { explain } from './explain.js';

export const COMMANDS: Command[] = [info, init, forward, backward, convert, explain];
