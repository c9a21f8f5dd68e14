import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

import { type LoadedModel, loadModel } from '../../src/engines/diffusion/model/index.ts';
import { type TinyModelOptions, writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';

/**
 * Tiny random models written under one temporary folder and opened with one thread each; every
 * session is released and the folder removed after the calling file's tests. Call at top level.
 */
export async function tinyModels(prefix: string) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const loaded: LoadedModel[] = [];
  after(async () => {
    await Promise.all(loaded.map((m) => m.release()));
    await rm(root, { recursive: true, force: true });
  });
  return {
    root,
    async load(name: string, options: TinyModelOptions = {}): Promise<LoadedModel> {
      await writeTinyModel(join(root, name), options);
      const model = await loadModel(join(root, name), { intraOpNumThreads: 1 });
      loaded.push(model);
      return model;
    },
  };
}
