// The diffusion engine behind the whole API, on tiny random models generated at test time: the
// official openai client, DALL-E 2 operations, streaming, masked and unmasked edits, and the
// faults (a missing model folder, a model that fails at run time) that must stay contained.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { AzureOpenAI, InternalServerError, toFile } from 'openai';

import type { DeploymentConfig } from '../../src/config/index.ts';
import { GraphBuilder } from '../../tools/model-builder/onnx.ts';
import { writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';
import { decode, halfMask, solidPng, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { download, startListening, waitFor } from './helpers.ts';

const API_VERSION = '2025-04-01-preview';
let app: TestApp;
let base: string;
let modelsDir: string;

/** A UNet with the right contract that fails inside onnxruntime: a Reshape no latent size fits. */
async function breakUnet(folder: string): Promise<void> {
  const g = new GraphBuilder('unet');
  const sample = g.input('sample', 'float32', ['batch_size', 4, 'height', 'width']);
  g.input('timestep', 'float32', ['steps']);
  g.input('encoder_hidden_states', 'float32', ['batch_size', 'sequence_length', 32]);
  const shape = g.initializer('odd_shape', 'int64', [2], BigInt64Array.from([-1n, 3n]));
  const flat = g.node('Reshape', [sample, shape], ['flat']);
  const back = g.node('Shape', [sample], ['sample_shape']);
  g.node('Reshape', [flat, back], ['out_sample']);
  g.output('out_sample', 'float32', ['batch_size', 4, 'height', 'width']);
  await writeFile(join(folder, 'unet/model.onnx'), g.encode().model);
}

const diffusion = (name: string, model: DeploymentConfig['model'], folder: string, extra = {}): DeploymentConfig => ({
  name,
  model,
  engine: 'diffusion',
  diffusion: { folder, steps: 2, ...extra },
});

before(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'easel-models-'));
  await writeTinyModel(join(modelsDir, 'tiny'), {});
  await writeTinyModel(join(modelsDir, 'tiny-inpaint'), { inpainting: true });
  await writeTinyModel(join(modelsDir, 'broken'), {});
  await breakUnet(join(modelsDir, 'broken'));
  await writeTinyModel(join(modelsDir, 'no-encoder'), {});
  await rm(join(modelsDir, 'no-encoder', 'vae_encoder'), { recursive: true });
  ({ app, base } = await startListening({
    config: {
      models: { dir: modelsDir },
      // Small native squares keep the tiny models fast; the API still answers the requested sizes.
      deployments: [
        diffusion('dall-e-3', 'dall-e-3', 'tiny', { resolution: 128 }),
        diffusion('gpt-image-1', 'gpt-image-1', 'tiny', { resolution: 128 }),
        diffusion('dall-e-2', 'dall-e-2', 'tiny', { resolution: 128 }),
        diffusion('inpaint', 'gpt-image-1', 'tiny-inpaint', { resolution: 128 }),
        diffusion('broken', 'dall-e-3', 'broken', { resolution: 128 }),
        diffusion('missing', 'dall-e-3', 'not-pulled-yet'),
        diffusion('no-encoder', 'gpt-image-1', 'no-encoder', { resolution: 128 }),
        { name: 'cards', model: 'dall-e-3', engine: 'placeholder' },
      ],
    },
  }));
  await app.modelsLoaded;
});
after(async () => {
  await app?.dispose();
  await rm(modelsDir, { recursive: true, force: true });
});

function client() {
  return new AzureOpenAI({ endpoint: base, apiKey: TEST_KEY, apiVersion: API_VERSION, maxRetries: 0 });
}

describe('readiness and unavailable deployments', () => {
  it('/readyz lists each deployment: loaded models with their family, a missing folder with its reason', async () => {
    const response = await fetch(`${base}/readyz`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      status: string;
      storage: string;
      deployments: Record<string, { status: string; reason?: string; family?: string; engine: string }>;
    };
    assert.equal(body.status, 'ready');
    assert.equal(body.storage, 'ok');
    assert.equal(body.deployments['dall-e-3']!.status, 'ready');
    assert.equal(body.deployments['dall-e-3']!.family, 'sd1');
    assert.equal(body.deployments['dall-e-3']!.engine, 'diffusion:tiny');
    assert.equal(body.deployments.cards!.engine, 'placeholder');
    assert.equal(body.deployments.missing!.status, 'unavailable');
    assert.match(body.deployments.missing!.reason!, /not-pulled-yet: the folder does not exist/);
    assert.doesNotMatch(JSON.stringify(body), new RegExp(modelsDir), 'no full paths');
  });

  it('a request to the missing model answers 503 with the reason; the others keep serving', async () => {
    const response = await fetch(`${base}/openai/deployments/missing/images/generations?api-version=${API_VERSION}`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a cat' }),
    });
    assert.equal(response.status, 503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'ServiceUnavailable');
    assert.match(body.error.message, /'missing' is not available: the model could not be loaded: .*does not exist/);
    const ok = await client().images.generate({ model: 'cards', prompt: 'still here' });
    assert.ok(ok.data?.[0]?.url);
  });

  it('an onnxruntime failure fails that job with a clear 500; the server and other jobs go on', async () => {
    const failed = client().images.generate({ model: 'broken', prompt: 'a cat', response_format: 'b64_json' });
    const fine = client().images.generate({ model: 'dall-e-3', prompt: 'a cat', response_format: 'b64_json' });
    await assert.rejects(failed, (error: unknown) => {
      assert.ok(error instanceof InternalServerError);
      assert.match(error.message, /image generation failed: diffusion failed: .*Reshape/);
      return true;
    });
    assert.ok((await fine).data?.[0]?.b64_json);
    // The broken model's worker survived its failure: a second job fails the same way, not with a crash.
    await assert.rejects(client().images.generate({ model: 'broken', prompt: 'again' }), /Reshape/);
  });
});

describe('generations', () => {
  it('dall-e-3 through the openai client: the requested size, the style in revised_prompt, the same bytes for the same request', async () => {
    const ask = () =>
      client().images.generate({
        model: 'dall-e-3',
        prompt: 'a lighthouse at dawn',
        size: '1792x1024',
        style: 'natural',
        response_format: 'b64_json',
      });
    const first = await ask();
    const image = await decode(Buffer.from(first.data![0]!.b64_json!, 'base64'));
    assert.deepEqual([image.width, image.height], [1792, 1024]);
    assert.equal(first.data![0]!.revised_prompt, 'a lighthouse at dawn, natural colors, soft natural light, realistic');
    assert.equal((await ask()).data![0]!.b64_json, first.data![0]!.b64_json);
  });

  it('gpt-image-1 n=3 gives three different images of the requested size', async () => {
    const result = await client().images.generate({
      model: 'gpt-image-1',
      prompt: 'three cats',
      n: 3,
      size: '1024x1536',
      quality: 'low',
    });
    assert.equal(result.data!.length, 3);
    const images = await Promise.all(result.data!.map((d) => decode(Buffer.from(d.b64_json!, 'base64'))));
    for (const image of images) assert.deepEqual([image.width, image.height], [1024, 1536]);
    assert.notDeepEqual(images[0]!.data, images[1]!.data);
  });

  it('streaming sends partial images from the denoising steps, then the final image', async () => {
    const stream = await client().images.generate({
      model: 'gpt-image-1',
      prompt: 'a stream of cats',
      stream: true,
      partial_images: 1,
      size: '1024x1024',
      quality: 'high',
    });
    const kinds: string[] = [];
    for await (const event of stream) {
      kinds.push(event.type);
      if (event.type === 'image_generation.partial_image') {
        const preview = await decode(Buffer.from(event.b64_json, 'base64'));
        assert.deepEqual([preview.width, preview.height], [1024, 1024]);
      }
    }
    assert.deepEqual(kinds, ['image_generation.partial_image', 'image_generation.completed']);
  });

  it('DALL-E 2 operations: submit, poll until succeeded, download a 512x512 PNG', async () => {
    const submit = await fetch(`${base}/openai/images/generations:submit?api-version=2023-06-01-preview`, {
      method: 'POST',
      headers: { 'api-key': TEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a red fox', size: '512x512', n: 2 }),
    });
    assert.equal(submit.status, 202);
    const location = submit.headers.get('operation-location')!;
    const done = await waitFor('the operation to succeed', async () => {
      const operation = (await (await fetch(location, { headers: { 'api-key': TEST_KEY } })).json()) as {
        status: string;
        result?: { data: { url: string }[] };
      };
      return operation.status === 'succeeded' || operation.status === 'failed' ? operation : undefined;
    });
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result!.data.length, 2);
    const file = await download(done.result!.data[0]!.url);
    assert.equal(file.type, 'image/png');
    const image = await decode(file.bytes);
    assert.deepEqual([image.width, image.height], [512, 512]);
  });
});

describe('edits', () => {
  const editUrl = (deployment: string) =>
    `${base}/openai/deployments/${deployment}/images/edits?api-version=${API_VERSION}`;
  async function postEdit(deployment: string, fields: Record<string, string>, image: Buffer, mask?: Buffer) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'image.png');
    if (mask) form.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'mask.png');
    return fetch(editUrl(deployment), { method: 'POST', headers: { 'api-key': TEST_KEY }, body: form });
  }

  for (const deployment of ['gpt-image-1', 'inpaint']) {
    it(`${deployment}: a masked edit through the openai client keeps every pixel outside the mask exactly`, async () => {
      const input = await solidPng(96, 64, [200, 40, 40, 255]);
      const result = await client().images.edit({
        model: deployment,
        prompt: 'a blue sky',
        image: await toFile(input, 'in.png', { type: 'image/png' }),
        mask: await toFile(await halfMask(96, 64), 'mask.png', { type: 'image/png' }),
      });
      const out = await decode(Buffer.from(result.data![0]!.b64_json!, 'base64'));
      const original = await decode(input);
      assert.deepEqual([out.width, out.height], [96, 64]);
      let changedLeft = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 96; x++) {
          const i = (y * 96 + x) * 4;
          const same = out.data.subarray(i, i + 4).equals(original.data.subarray(i, i + 4));
          if (x >= 48) assert.ok(same, `pixel ${x},${y} outside the mask changed`);
          else if (!same) changedLeft++;
        }
      }
      assert.ok(changedLeft > 1000, 'the masked half was repainted');
    });
  }

  it('a model without a vae_encoder generates, and refuses edits with 400 OperationNotSupported', async () => {
    assert.ok((await client().images.generate({ model: 'no-encoder', prompt: 'a cat' })).data?.[0]?.b64_json);
    const response = await postEdit('no-encoder', { prompt: 'a cat' }, await solidPng(64, 64));
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'OperationNotSupported');
    assert.match(body.error.message, /no vae_encoder/);
  });

  it('an unmasked edit takes strength; out-of-range strength answers 400 naming it', async () => {
    const input = await solidPng(64, 64, [20, 160, 90, 255]);
    const low = await postEdit('gpt-image-1', { prompt: 'autumn', strength: '0.3' }, input);
    assert.equal(low.status, 200);
    const high = await postEdit('gpt-image-1', { prompt: 'autumn', strength: '1' }, input);
    assert.notEqual(
      ((await low.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json,
      ((await high.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json,
    );
    for (const strength of ['0', '1.5', '-1', 'lots']) {
      const bad = await postEdit('gpt-image-1', { prompt: 'autumn', strength }, input);
      assert.equal(bad.status, 400, strength);
      const body = (await bad.json()) as { error: { code: string; param: string } };
      assert.equal(body.error.param, 'strength');
    }
  });

  it("without a mask, the image's own transparent pixels mark the area to edit", async () => {
    const input = await halfMask(64, 64); // left half transparent, right half opaque
    const response = await postEdit('gpt-image-1', { prompt: 'fill the gap' }, input);
    assert.equal(response.status, 200);
    const out = await decode(
      Buffer.from(((await response.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json, 'base64'),
    );
    const original = await decode(input);
    const i = (10 * 64 + 60) * 4;
    assert.deepEqual(out.data.subarray(i, i + 4), original.data.subarray(i, i + 4));
    assert.equal(out.data[(10 * 64 + 5) * 4 + 3], 255, 'the edited area is opaque');
  });
});

describe('metrics', () => {
  it("/metrics has per-stage model times, load times and each deployment's state after a diffusion generation", async () => {
    await client().images.generate({ model: 'dall-e-3', prompt: 'a metered cat', response_format: 'b64_json' });
    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((line) => line.startsWith(`${series} `))
          ?.split(' ')[1],
      );
    for (const stage of ['text_encoder', 'unet', 'vae_decoder']) {
      assert.ok(value(`easel_engine_stage_seconds_count{deployment="dall-e-3",stage="${stage}"}`) >= 1, stage);
    }
    assert.ok(value('easel_model_load_seconds{deployment="dall-e-3"}') > 0);
    assert.equal(value('easel_deployment_up{deployment="dall-e-3",engine="diffusion:tiny"}'), 1);
    assert.equal(value('easel_deployment_up{deployment="missing",engine="diffusion:not-pulled-yet"}'), 0);
    assert.ok(value('easel_images_generated_total{deployment="dall-e-3",engine="diffusion:tiny"}') >= 1);
    assert.doesNotMatch(text, /metered|easel-models-/, 'no prompts, no paths');
  });
});
