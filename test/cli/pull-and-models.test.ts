import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadModel } from '../../src/engines/diffusion/model/index.ts';
import { TAESD_NARROW, writeTinyAutoencoder } from '../../tools/model-builder/taesd.ts';
import { writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';
import { type FakeHub, repoFiles, startFakeHub } from '../helpers/fake-hub.ts';
import { runCli } from './run-cli.ts';

let root: string;
let hub: FakeHub;
let gated: FakeHub;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'easel-cli-'));
  await writeTinyModel(join(root, 'source'));
  const files = await repoFiles(join(root, 'source'), {
    'unet/diffusion_pytorch_model.safetensors': Buffer.alloc(4000),
  });
  hub = await startFakeHub();
  hub.addRepo('easel-test/tiny-sd', files);
  // A TAESD export in the optimum layout of a whole autoencoder, as the public ONNX exports are.
  await writeTinyAutoencoder(join(root, 'taesd'), { config: TAESD_NARROW });
  const taesd = new Map(
    [...(await repoFiles(join(root, 'taesd'), { 'README.md': 'TAESD' }))].map(([path, bytes]) => [
      path.replace(/^vae_tiny_/, 'vae_'),
      bytes,
    ]),
  );
  hub.addRepo('deinferno/taesd-onnx', taesd);
  hub.addRepo('easel-test/not-taesd', new Map([['README.md', Buffer.from('nothing here')]]));
  gated = await startFakeHub({ token: 'hf_secret' });
  gated.addRepo('easel-test/gated', files);
});
after(async () => {
  await hub.close();
  await gated.close();
  rmSync(root, { recursive: true, force: true });
});

const dataDir = (name: string) => join(root, name);

describe('easel pull', () => {
  it('pulls into <data dir>/models/<name>: progress lines on stderr (not a terminal), a summary on stdout', async () => {
    const run = await runCli(['pull', 'easel-test/tiny-sd'], {
      HF_ENDPOINT: hub.endpoint,
      EASEL_DATA_DIR: dataDir('a'),
    });
    assert.equal(run.code, 0, run.stderr);
    const folder = join(dataDir('a'), 'models', 'tiny-sd');
    assert.match(
      run.stderr,
      new RegExp(
        `^Pulling easel-test/tiny-sd@main \\(commit [0-9a-f]{10}\\) into ${folder}: 14 files, .*; 1 file outside the ONNX layout skipped\n`,
      ),
    );
    assert.match(run.stderr, /^ {2}done: unet\/model\.onnx \(/m);
    assert.match(
      run.stdout,
      new RegExp(`^Pulled easel-test/tiny-sd@main \\(commit [0-9a-f]{10}\\) into ${folder}\n  sd1, 512×512, 14 files`),
    );
    assert.match(run.stdout, /EASEL_MODEL=tiny-sd npm start/);
    assert.equal(existsSync(join(folder, '.easel-model.json')), true);
  });

  it('--quiet prints nothing; EASEL_MODELS_DIR and --name choose the folder', async () => {
    const models = join(root, 'elsewhere');
    const run = await runCli(['pull', 'easel-test/tiny-sd', '--quiet', '--name', 'mine'], {
      HF_ENDPOINT: hub.endpoint,
      EASEL_DATA_DIR: dataDir('b'),
      EASEL_MODELS_DIR: models,
    });
    assert.deepEqual(run, { code: 0, stdout: '', stderr: '' });
    assert.equal(existsSync(join(models, 'mine', '.easel-model.json')), true);
  });

  it('a source that is neither an alias nor owner/name is a usage error (exit 2) saying what a valid one looks like, before any request', async () => {
    for (const source of ['not-a-repo', 'a/b/c', '/x', 'owner/', 'sdxl turbo']) {
      const run = await runCli(['pull', source], { HF_ENDPOINT: 'http://127.0.0.1:9', EASEL_DATA_DIR: dataDir('u') });
      assert.equal(run.code, 2, `${source}: ${run.stderr}`);
      assert.ok(
        run.stderr.startsWith(`easel: ${JSON.stringify(source)} is neither a model alias (sd-turbo, sdxl-turbo,`),
        run.stderr,
      );
      assert.match(
        run.stderr,
        /nor a Hugging Face repository id owner\/name \(e\.g\. stabilityai\/sdxl-turbo\)\nUsage: easel pull/,
      );
      assert.doesNotMatch(run.stderr, /cannot reach/);
    }
  });

  it('an unknown repository exits 1 with the hub message', async () => {
    const run = await runCli(['pull', 'nobody/nothing', '-q'], {
      HF_ENDPOINT: hub.endpoint,
      EASEL_DATA_DIR: dataDir('c'),
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^easel: repository nobody\/nothing was not found on 127\.0\.0\.1:\d+/);
  });

  it('a gated repository: exit 1 saying to set HF_TOKEN; with HF_TOKEN it pulls', async () => {
    const env = { HF_ENDPOINT: gated.endpoint, EASEL_DATA_DIR: dataDir('d') };
    const refused = await runCli(['pull', 'easel-test/gated', '-q'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /set HF_TOKEN/);
    const pulled = await runCli(['pull', 'easel-test/gated', '-q'], { ...env, HF_TOKEN: 'hf_secret' });
    assert.equal(pulled.code, 0, pulled.stderr);
  });

  it('--tiny-autoencoder pulls TAESD from its own repository into vae_tiny_decoder/ and vae_tiny_encoder/; the folder loads', async () => {
    const env = { HF_ENDPOINT: hub.endpoint, EASEL_DATA_DIR: dataDir('t') };
    const run = await runCli(['pull', 'easel-test/tiny-sd', '--tiny-autoencoder', '--name', 'with-tiny'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /Tiny autoencoder: deinferno\/taesd-onnx@main \(commit [0-9a-f]{10}\), 4 files in vae_tiny_decoder\/ and vae_tiny_encoder\//,
    );
    assert.match(run.stdout, /"autoencoder": "tiny"/);
    const folder = join(dataDir('t'), 'models', 'with-tiny');
    for (const part of ['decoder', 'encoder']) {
      assert.deepEqual(
        await readFile(join(folder, `vae_tiny_${part}/model.onnx`)),
        await readFile(join(root, 'taesd', `vae_tiny_${part}/model.onnx`)),
      );
    }
    assert.equal(existsSync(join(folder, '.easel-tiny-autoencoder.json')), true);
    const model = await loadModel(folder, { intraOpNumThreads: 1 });
    assert.ok(model.sessions.tinyDecoder && model.sessions.tinyEncoder);
    await model.release();
    const listed = JSON.parse((await runCli(['models', '--json'], env)).stdout) as {
      models: Array<{ name: string; tiny_autoencoder: boolean }>;
    };
    assert.deepEqual(
      listed.models.map((m) => [m.name, m.tiny_autoencoder]),
      [['with-tiny', true]],
    );

    const again = await runCli(['pull', 'easel-test/tiny-sd', '--tiny-autoencoder', '--name', 'with-tiny', '-q'], env);
    assert.deepEqual(again, { code: 0, stdout: '', stderr: '' }, 'a second pull checks the files and keeps them');
    const wrong = await runCli(
      ['pull', 'easel-test/tiny-sd', '--tiny-autoencoder', 'easel-test/not-taesd', '--name', 'with-tiny', '-q'],
      env,
    );
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /easel-test\/not-taesd@main is not an ONNX tiny autoencoder export: it has no vae_decoder\/model\.onnx/,
    );
  });

  it('a bad --name is a usage error (exit 2); an unreachable hub exits 1 naming the host; a bad HF_ENDPOINT exits 78', async () => {
    const badName = await runCli(['pull', 'easel-test/tiny-sd', '--name', '../up'], {
      HF_ENDPOINT: hub.endpoint,
      EASEL_DATA_DIR: dataDir('e'),
    });
    assert.equal(badName.code, 2);
    const down = await runCli(['pull', 'easel-test/tiny-sd', '-q'], {
      HF_ENDPOINT: 'http://127.0.0.1:9',
      EASEL_DATA_DIR: dataDir('e'),
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^easel: cannot reach 127\.0\.0\.1:9 /);
    // The next step: a folder copied into the models directory, or a mirror.
    assert.ok(
      down.stderr.includes(
        `copy a model folder (the diffusers ONNX layout: model_index.json, unet/model.onnx …) to ${join(dataDir('e'), 'models', 'tiny-sd')}`,
      ),
      down.stderr,
    );
    assert.match(down.stderr, /EASEL_MODEL=tiny-sd/);
    assert.match(down.stderr, /set HF_ENDPOINT/);
    const badEndpoint = await runCli(['pull', 'easel-test/tiny-sd'], {
      HF_ENDPOINT: 'ftp://example',
      EASEL_DATA_DIR: dataDir('e'),
    });
    assert.equal(badEndpoint.code, 78);
    assert.match(badEndpoint.stderr, /^easel: Invalid configuration: HF_ENDPOINT must be an http\(s\) URL/);
  });
});

describe('easel models', () => {
  before(async () => {
    const config = {
      deployments: [
        { name: 'dall-e-3', model: 'dall-e-3', engine: 'diffusion', diffusion: { folder: 'tiny-sd', steps: 2 } },
        { name: 'xl', model: 'gpt-image-1', engine: 'diffusion', diffusion: { folder: 'sdxl-turbo' } },
        { name: 'dall-e-2', model: 'dall-e-2' },
      ],
    };
    await writeFile(join(root, 'config.json'), JSON.stringify(config));
    const run = await runCli(['pull', 'easel-test/tiny-sd', '-q'], {
      HF_ENDPOINT: hub.endpoint,
      EASEL_DATA_DIR: dataDir('m'),
    });
    assert.equal(run.code, 0, run.stderr);
    await writeTinyModel(join(dataDir('m'), 'models', 'copied'), { inpainting: true, tinyAutoencoder: 'narrow' });
  });

  const env = () => ({ EASEL_DATA_DIR: dataDir('m'), EASEL_CONFIG: join(root, 'config.json') });

  it('--json lists each folder with family, status and the deployments using it, and deployments whose folder is missing', async () => {
    const run = await runCli(['models', '--json'], env());
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as {
      models_dir: string;
      models: Array<{
        name: string;
        family: string;
        inpainting: boolean;
        native_resolution: number;
        tiny_autoencoder: boolean;
        status: string;
        deployments: string[];
        source: { repo: string } | null;
      }>;
      missing: Array<{ deployment: string; folder: string }>;
    };
    const modelsDir = join(dataDir('m'), 'models');
    assert.equal(report.models_dir, modelsDir);
    assert.deepEqual(
      report.models.map((m) => [
        m.name,
        m.family,
        m.inpainting,
        m.native_resolution,
        m.tiny_autoencoder,
        m.status,
        m.deployments,
        m.source?.repo ?? null,
      ]),
      [
        ['copied', 'sd1', true, 512, true, 'not-pulled', [], null],
        ['tiny-sd', 'sd1', false, 512, false, 'complete', ['dall-e-3'], 'easel-test/tiny-sd'],
      ],
    );
    assert.deepEqual(report.missing, [{ deployment: 'xl', folder: join(modelsDir, 'sdxl-turbo') }]);
  });

  it('the table names each model, its status and deployments, and how to pull a missing alias', async () => {
    const run = await runCli(['models'], env());
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ {2}NAME +FAMILY +INPAINT +RES +TINY AE +SIZE +STATUS +SOURCE +DEPLOYMENTS$/m);
    assert.match(
      run.stdout,
      /^ {2}tiny-sd +sd1 +no +512 +no +[\d.]+ kB +complete +easel-test\/tiny-sd@[0-9a-f]{7} +dall-e-3$/m,
    );
    assert.match(run.stdout, /^ {2}copied +sd1 +yes +512 +yes .*installed \(not pulled\)/m);
    assert.match(
      run.stdout,
      /Deployments whose model folder is missing:\n {2}xl: .*sdxl-turbo \(easel pull sdxl-turbo\)\n/,
    );
  });
});
