import type { Command } from '../command.js';
import { info } from './info.js';
import { init } from './init.js';
import { forward } from './forward.js';
import { backward } from './backward.js';

export const COMMANDS: Command[] = [info, init, forward, backward];
