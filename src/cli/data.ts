// Datasets for the CLI: IDX directories (MNIST / Fashion-MNIST layout, gzipped or not) and the
// Fashion-MNIST subset bundled under fixtures/.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBytes } from './files.js';
import { gunzipIfNeeded, idxToDataset, parseIdx } from '../train/idx.js';
import type { Dataset } from '../train/fit.js';

/** The bundled subset: fixtures/fashion-mnist, two levels above dist/cli or src/cli. */
export const BUNDLED_DATA = fileURLToPath(new URL('../../fixtures/fashion-mnist/', import.meta.url));

/** Fashion-MNIST's training-set pixel mean and standard deviation (on [0, 1]). */
const MEAN = 0.286, STD = 0.353;

async function readIdx(dir: string, stem: string): Promise<ReturnType<typeof parseIdx>> {
  for (const name of [`${stem}.gz`, stem]) {
    const p = join(dir, name);
    if (existsSync(p)) {
      const raw = readBytes(p, 'IDX file');
      let bytes: Uint8Array;
      try {
        bytes = await gunzipIfNeeded(raw, p);
      } catch (e) {
        const m = (e as Error).message;
        throw new Error(m.startsWith(p) ? m : `${p}: not a valid gzip file (${m})`);
      }
      return parseIdx(bytes, p);
    }
  }
  throw new Error(`data directory '${dir}' has no ${stem}[.gz]`);
}

export async function loadIdxDir(dir: string): Promise<{ train: Dataset; test: Dataset }> {
  if (!existsSync(dir)) throw new Error(`data directory '${dir}' does not exist`);
  const train = idxToDataset(await readIdx(dir, 'train-images-idx3-ubyte'), await readIdx(dir, 'train-labels-idx1-ubyte'));
  const test = idxToDataset(await readIdx(dir, 't10k-images-idx3-ubyte'), await readIdx(dir, 't10k-labels-idx1-ubyte'));
  for (const d of [train, test]) for (let i = 0; i < d.x.size; i++) d.x.data[i] = (d.x.data[i] - MEAN) / STD;
  return { train, test };
}
