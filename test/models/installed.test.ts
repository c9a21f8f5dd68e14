import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { type InstalledModel, listModels, pullModel } from '../../src/models/index.ts';
import { writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';
import { repoFiles, startFakeHub } from '../helpers/fake-hub.ts';

let root: string;
let modelsDir: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'easel-models-'));
  modelsDir = join(root, 'models');
  const source = join(root, 'source');
  await writeTinyModel(source);
  const hub = await startFakeHub();
  try {
    hub.addRepo('easel-test/tiny-sd', await repoFiles(source));
    await pullModel({ source: 'easel-test/tiny-sd', modelsDir, hub: { endpoint: hub.endpoint } });
    // A pull that stopped half-way: a partial file and no marker.
    hub.cutOff('text_encoder/model.onnx', 10_000);
    await pullModel({
      source: 'easel-test/tiny-sd',
      name: 'half',
      modelsDir,
      hub: { endpoint: hub.endpoint },
      retries: 0,
    }).catch(() => {});
  } finally {
    await hub.close();
  }
  await writeTinyModel(join(modelsDir, 'by-hand'), { inpainting: true }); // copied in, never pulled
  await mkdir(join(modelsDir, 'junk'));
  await writeFile(join(modelsDir, 'junk', 'notes.txt'), 'not a model');
  await writeTinyModel(join(root, 'elsewhere'), { scheduler: 'lcm' }); // outside models.dir
});
after(() => rmSync(root, { recursive: true, force: true }));

const byName = (models: InstalledModel[], name: string) => models.find((m) => m.name === name)!;

describe('easel models (listModels)', () => {
  it('describes each folder: family, inpainting, resolution, size, status and source', async () => {
    const report = await listModels({ modelsDir, deployments: [] });
    assert.deepEqual(
      report.models.map((m) => m.name),
      ['by-hand', 'half', 'junk', 'tiny-sd'],
    );

    const pulled = byName(report.models, 'tiny-sd');
    assert.deepEqual(
      [
        pulled.status,
        pulled.family,
        pulled.inpainting,
        pulled.nativeResolution,
        pulled.source?.repo,
        pulled.partialFiles,
      ],
      ['complete', 'sd1', false, 512, 'easel-test/tiny-sd', 0],
    );
    assert.ok(pulled.sizeBytes > 90_000);

    const half = byName(report.models, 'half');
    assert.deepEqual([half.status, half.source?.repo], ['incomplete', 'easel-test/tiny-sd']);
    // The other files in flight when the cut stopped the pull may have stopped too.
    assert.ok(half.partialFiles >= 1);
    assert.ok(half.problems.includes('text_encoder/model.onnx is missing'), half.problems.join('; '));

    const byHand = byName(report.models, 'by-hand');
    assert.deepEqual([byHand.status, byHand.inpainting, byHand.source], ['not-pulled', true, null]);

    const junk = byName(report.models, 'junk');
    assert.equal(junk.status, 'invalid');
    assert.match(junk.problems[0]!, /model_index\.json is missing/);
  });

  it('names the deployments that use each folder, adds folders outside models.dir, and lists missing ones', async () => {
    const report = await listModels({
      modelsDir,
      deployments: [
        { name: 'dall-e-3', folder: join(modelsDir, 'tiny-sd') },
        { name: 'images', folder: join(modelsDir, 'tiny-sd/') },
        { name: 'fast', folder: join(root, 'elsewhere') },
        { name: 'xl', folder: join(modelsDir, 'sdxl-turbo') },
      ],
    });
    assert.deepEqual(byName(report.models, 'tiny-sd').deployments, ['dall-e-3', 'images']);
    assert.deepEqual(byName(report.models, 'by-hand').deployments, []);
    const elsewhere = byName(report.models, 'elsewhere');
    assert.deepEqual([elsewhere.inModelsDir, elsewhere.family, elsewhere.deployments], [false, 'lcm', ['fast']]);
    assert.deepEqual(report.missing, [{ name: 'xl', folder: join(modelsDir, 'sdxl-turbo') }]);
  });

  it('a complete pull that loses its marker counts as installed (not pulled)', async () => {
    const copy = join(root, 'copy-models');
    await mkdir(copy);
    await writeTinyModel(join(copy, 'm'));
    await writeFile(join(copy, 'm', '.easel-model.json.123.tmp'), '{');
    const report = await listModels({ modelsDir: copy, deployments: [] });
    assert.equal(report.models[0]!.status, 'not-pulled');
    await rm(copy, { recursive: true });
  });

  it('a models folder that does not exist yet lists nothing', async () => {
    const report = await listModels({ modelsDir: join(root, 'nope'), deployments: [] });
    assert.deepEqual([report.models, report.missing], [[], []]);
  });
});
