// Deployments that choose the tiny autoencoder (diffusion.autoencoder "tiny") through the whole API
// on tiny random models that carry vae_tiny_decoder/ and vae_tiny_encoder/: generation, unmasked
// and masked edits (4- and 9-channel UNets), streamed partial images decoded by the tiny decoder,
// and a deployment whose folder lacks the tiny decoder, which is unavailable with the file named.
// Which autoencoder ran is read from /metrics' per-stage series.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { AzureOpenAI, toFile } from 'openai';

import type { DeploymentConfig } from '../../src/config/index.ts';
import { writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';
import { decode, halfMask, solidPng, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { startListening } from './helpers.ts';

const API_VERSION = '2025-04-01-preview';
let app: TestApp;
let base: string;
let modelsDir: string;

const diffusion = (name: string, folder: string, extra = {}): DeploymentConfig => ({
  name,
  model: 'gpt-image-1',
  engine: 'diffusion',
  diffusion: { folder, steps: 2, resolution: 128, ...extra },
});

before(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'easel-tiny-ae-'));
  await writeTinyModel(join(modelsDir, 'taesd'), { tinyAutoencoder: 'narrow' });
  await writeTinyModel(join(modelsDir, 'taesd-inpaint'), { inpainting: true, tinyAutoencoder: 'narrow' });
  await writeTinyModel(join(modelsDir, 'plain'), {});
  ({ app, base } = await startListening({
    config: {
      models: { dir: modelsDir },
      deployments: [
        diffusion('tiny', 'taesd', { autoencoder: 'tiny' }),
        diffusion('full', 'taesd'),
        diffusion('tiny-inpaint', 'taesd-inpaint', { autoencoder: 'tiny' }),
        diffusion('tiny-missing', 'plain', { autoencoder: 'tiny' }),
      ],
    },
  }));
  await app.modelsLoaded;
});
after(async () => {
  await app?.dispose();
  await rm(modelsDir, { recursive: true, force: true });
});

const client = () => new AzureOpenAI({ endpoint: base, apiKey: TEST_KEY, apiVersion: API_VERSION, maxRetries: 0 });

/** Count of model calls of `stage` for `deployment` so far, from /metrics. */
async function stageRuns(deployment: string, stage: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`easel_engine_stage_seconds_count{deployment="${deployment}",stage="${stage}"} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('diffusion.autoencoder "tiny"', () => {
  it('generates through the tiny decoder, never the VAE; a "full" deployment of the same folder uses the VAE', async () => {
    const result = await client().images.generate({ model: 'tiny', prompt: 'a small cat', size: '1024x1024' });
    const image = await decode(Buffer.from(result.data![0]!.b64_json!, 'base64'));
    assert.deepEqual([image.width, image.height], [1024, 1024]);
    assert.equal(await stageRuns('tiny', 'vae_tiny_decoder'), 1);
    assert.equal(await stageRuns('tiny', 'vae_decoder'), 0);
    await client().images.generate({ model: 'full', prompt: 'a small cat', size: '1024x1024' });
    assert.equal(await stageRuns('full', 'vae_decoder'), 1);
    assert.equal(await stageRuns('full', 'vae_tiny_decoder'), 0);
  });

  it('an unmasked edit (img2img) encodes with the tiny encoder', async () => {
    const result = await client().images.edit({
      model: 'tiny',
      prompt: 'autumn',
      image: await toFile(await solidPng(64, 64, [20, 160, 90, 255]), 'in.png', { type: 'image/png' }),
    });
    assert.ok(result.data?.[0]?.b64_json);
    assert.equal(await stageRuns('tiny', 'vae_tiny_encoder'), 1);
    assert.equal(await stageRuns('tiny', 'vae_encoder'), 0);
  });

  it('a masked edit on a 9-channel inpainting model keeps the unmasked half and encodes the masked image with the tiny encoder', async () => {
    const input = await solidPng(96, 64, [200, 40, 40, 255]);
    const result = await client().images.edit({
      model: 'tiny-inpaint',
      prompt: 'a blue sky',
      image: await toFile(input, 'in.png', { type: 'image/png' }),
      mask: await toFile(await halfMask(96, 64), 'mask.png', { type: 'image/png' }),
    });
    const out = await decode(Buffer.from(result.data![0]!.b64_json!, 'base64'));
    const original = await decode(input);
    const i = (10 * 96 + 80) * 4;
    assert.deepEqual(out.data.subarray(i, i + 4), original.data.subarray(i, i + 4));
    assert.equal(
      await stageRuns('tiny-inpaint', 'vae_tiny_encoder'),
      1,
      'the masked image (masked edits start from noise, strength 1)',
    );
    assert.equal(await stageRuns('tiny-inpaint', 'vae_encoder'), 0);
    assert.equal(await stageRuns('tiny-inpaint', 'vae_tiny_decoder'), 1);
  });

  it('streamed partial images come from the tiny decoder, one decode per partial image, in order before the final image', async () => {
    const before = await stageRuns('full', 'preview');
    const stream = await client().images.generate({
      model: 'full',
      prompt: 'a stream of cats',
      stream: true,
      partial_images: 2,
      size: '1024x1024',
      quality: 'high',
    });
    const events: string[] = [];
    for await (const event of stream) {
      events.push(
        event.type === 'image_generation.partial_image' ? `partial ${event.partial_image_index}` : event.type,
      );
    }
    assert.deepEqual(events, ['partial 0', 'partial 1', 'image_generation.completed']);
    assert.equal(
      (await stageRuns('full', 'preview')) - before,
      2,
      'two tiny decodes, none for the steps whose preview is not sent',
    );
  });

  it('a deployment that chooses "tiny" on a folder without it is unavailable, naming vae_tiny_decoder/model.onnx', async () => {
    const body = (await (await fetch(`${base}/readyz`)).json()) as {
      deployments: Record<string, { status: string; reason?: string }>;
    };
    assert.equal(body.deployments['tiny-missing']!.status, 'unavailable');
    assert.match(body.deployments['tiny-missing']!.reason!, /vae_tiny_decoder\/model\.onnx/);
    assert.equal(body.deployments.tiny!.status, 'ready');
  });
});
