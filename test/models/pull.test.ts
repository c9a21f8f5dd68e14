import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';

import { inspectModelFolder } from '../../src/engines/diffusion/model/index.ts';
import {
  MARKER_FILE,
  type ModelMarker,
  PULL_NOTE_FILE,
  PullError,
  type PullEvent,
  pullModel,
  type PullOptions,
} from '../../src/models/index.ts';
import { writeTinyModel } from '../../tools/model-builder/tiny-sd.ts';
import { type FakeHub, repoFiles, sha256, startFakeHub } from '../helpers/fake-hub.ts';

const REPO = 'easel-test/tiny-sd';
/** Files a real repository keeps beside the ONNX export; none of them may be downloaded. */
const NOT_LAYOUT = {
  'README.md': '# tiny\n',
  '.gitattributes': '*.onnx filter=lfs\n',
  'unet/diffusion_pytorch_model.safetensors': Buffer.alloc(6000, 7),
  'unet/diffusion_pytorch_model.fp16.safetensors': Buffer.alloc(3000, 8),
  'text_encoder/model.fp16.safetensors': Buffer.alloc(3000, 9),
  'vae/config.json': '{}',
  'onnx/unet/model.onnx': 'not this one',
};
const BIG = 'text_encoder/model.onnx'; // ~80 kB, an LFS file served by the CDN

let root: string;
let modelSource: string;
let hub: FakeHub;
let modelsDir: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'easel-pull-'));
  modelSource = join(root, 'source');
  await writeTinyModel(modelSource, { externalData: true });
});
after(() => rmSync(root, { recursive: true, force: true }));

beforeEach(async () => {
  hub = await startFakeHub();
  hub.addRepo(REPO, await repoFiles(modelSource, NOT_LAYOUT));
  modelsDir = mkdtempSync(join(root, 'models-'));
});
afterEach(() => hub.close());

function pull(options: Partial<PullOptions> = {}) {
  return pullModel({
    source: REPO,
    modelsDir,
    hub: { endpoint: hub.endpoint },
    retries: 0,
    retryDelayMs: 0,
    ...options,
  });
}

async function pullError(promise: Promise<unknown>): Promise<PullError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof PullError, `expected a PullError, got ${String(error)}`);
  return error;
}

const cdnRequests = (path: string) => {
  const blob = `/blobs/${sha256(readFileSync(join(modelSource, path)))}`;
  return hub.requests.filter((r) => r.server === 'cdn' && r.path === blob);
};

describe('easel pull', () => {
  it('downloads the ONNX layout into <models>/<repo name>: a folder the engine accepts, and a marker listing every file', async () => {
    const events: PullEvent[] = [];
    const result = await pull({ onEvent: (e) => events.push(e) });

    const folder = join(modelsDir, 'tiny-sd');
    assert.equal(result.folder, folder);
    const model = await inspectModelFolder(folder);
    assert.equal(model.family, 'sd1');
    assert.equal(existsSync(join(folder, 'unet/model.onnx_data')), true);

    const marker = JSON.parse(readFileSync(join(folder, MARKER_FILE), 'utf8')) as ModelMarker;
    const commit = hub.repos.get(REPO)!.revisions.main!;
    assert.deepEqual([marker.repo, marker.revision, marker.commit, marker.alias], [REPO, 'main', commit, null]);
    assert.equal(marker.files.length, 15);
    for (const file of marker.files) {
      const source = readFileSync(join(modelSource, file.path));
      assert.deepEqual([file.size, file.sha256], [source.length, sha256(source)], file.path);
      assert.ok(readFileSync(join(folder, file.path)).equals(source), file.path);
    }
    assert.equal(existsSync(join(folder, PULL_NOTE_FILE)), false);

    const listed = events.find((e) => e.type === 'listed');
    assert.deepEqual(listed?.type === 'listed' && listed.skipped.sort(), Object.keys(NOT_LAYOUT).sort());
    assert.equal(events.filter((e) => e.type === 'file-done').length, 15);
  });

  it('skips PyTorch weights, fp16 variants and other files outside the layout', async () => {
    await pull();
    for (const path of Object.keys(NOT_LAYOUT)) assert.equal(existsSync(join(modelsDir, 'tiny-sd', path)), false, path);
    const fetched = hub.requests
      .filter((r) => r.path.includes('/resolve/'))
      .map((r) => r.path.split('/resolve/')[1]!.split('/').slice(1).join('/'));
    assert.deepEqual(
      fetched.filter((p) => Object.keys(NOT_LAYOUT).includes(p)),
      [],
    );
  });

  it('fetches every file from the commit the revision resolved to, and LFS files through the CDN redirect', async () => {
    await pull();
    const commit = hub.repos.get(REPO)!.revisions.main!;
    const resolves = hub.requests.filter((r) => r.server === 'hub' && r.path.includes('/resolve/'));
    assert.equal(resolves.length, 15);
    assert.ok(resolves.every((r) => r.path.startsWith(`/${REPO}/resolve/${commit}/`)));
    assert.equal(cdnRequests(BIG).length, 1);
  });

  it('a second pull of a complete folder checks the files and downloads nothing', async () => {
    await pull();
    const before = hub.requests.length;
    const result = await pull();
    assert.equal(result.alreadyThere, 15);
    assert.equal(result.receivedBytes, 0);
    assert.deepEqual(
      hub.requests.slice(before).map((r) => r.path),
      [`/api/models/${REPO}/revision/main`],
    );
  });

  it('an interrupted download keeps its partial file and the next pull asks only for the rest (Range)', async () => {
    hub.cutOff(BIG, 30_000);
    const error = await pullError(pull());
    assert.equal(error.code, 'network');
    assert.match(error.message, new RegExp(`${BIG}.*run the pull again to resume`));

    const folder = join(modelsDir, 'tiny-sd');
    const partial = join(folder, `${BIG}.incomplete`);
    const kept = statSync(partial).size;
    assert.ok(kept > 0 && kept <= 30_000, `kept ${kept} bytes`);
    assert.equal(existsSync(join(folder, MARKER_FILE)), false, 'no completion marker');
    assert.equal(existsSync(join(folder, PULL_NOTE_FILE)), true);

    const result = await pull();
    assert.equal(result.resumed, 1);
    assert.deepEqual(
      cdnRequests(BIG).map((r) => r.range),
      [undefined, `bytes=${kept}-`],
    );
    assert.ok(readFileSync(join(folder, BIG)).equals(readFileSync(join(modelSource, BIG))));
    assert.equal(existsSync(partial), false);
    assert.equal(existsSync(join(folder, MARKER_FILE)), true);
  });

  it('within one pull, a dropped connection is retried from where it stopped', async () => {
    hub.cutOff(BIG, 30_000);
    const result = await pull({ retries: 2 });
    const ranges = cdnRequests(BIG).map((r) => r.range);
    assert.equal(ranges.length, 2);
    assert.match(ranges[1]!, /^bytes=[1-9]\d*-$/);
    assert.ok(readFileSync(join(result.folder, BIG)).equals(readFileSync(join(modelSource, BIG))));
  });

  it('server trouble (503) and a refused CDN link (403) are retried; a 404 for a listed file is not', async () => {
    hub.failWith('scheduler/scheduler_config.json', 503);
    hub.failWith(BIG, 403);
    await pull({ retries: 1 });
    assert.equal(cdnRequests(BIG).length, 2);
    assert.equal(hub.requests.filter((r) => r.path.endsWith('/scheduler/scheduler_config.json')).length, 2);

    hub.failWith('model_index.json', 404);
    const error = await pullError(pull({ retries: 3, force: true }));
    assert.equal(error.code, 'not-found');
    assert.match(
      error.message,
      /^model_index\.json of easel-test\/tiny-sd@[0-9a-f]{12} was not found on 127\.0\.0\.1:\d+$/,
    );
  });

  it('a stalled response is abandoned after the idle timeout and resumed', async () => {
    hub.cutOff(BIG, 20_000, { stall: true });
    const result = await pull({ retries: 1, idleTimeoutMs: 300 });
    assert.match(cdnRequests(BIG)[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.ok(readFileSync(join(result.folder, BIG)).equals(readFileSync(join(modelSource, BIG))));
  });

  it('a server that ignores Range (200) makes the file start over, and the result is still intact', async () => {
    hub.cutOff(BIG, 30_000);
    await pullError(pull());
    hub.ignoreRange(true);
    const result = await pull();
    assert.equal(cdnRequests(BIG).length, 2);
    assert.ok(readFileSync(join(result.folder, BIG)).equals(readFileSync(join(modelSource, BIG))));
  });

  it('aborting (Ctrl-C) stops with "interrupted" and keeps the partial file for the next pull', async () => {
    hub.cutOff(BIG, 20_000, { stall: true });
    const abort = new AbortController();
    const onEvent = (e: PullEvent) => {
      if (e.type === 'progress' && e.path === BIG && e.bytes > 0) abort.abort();
    };
    const error = await pullError(pull({ signal: abort.signal, onEvent }));
    assert.equal(error.code, 'interrupted');
    const kept = statSync(join(modelsDir, 'tiny-sd', `${BIG}.incomplete`)).size;
    assert.ok(kept > 0);
    await pull();
    assert.equal(cdnRequests(BIG).at(-1)!.range, `bytes=${kept}-`);
  });

  it('a corrupted LFS file fails naming it, and is deleted', async () => {
    hub.corrupt(BIG);
    const error = await pullError(pull());
    assert.equal(error.code, 'integrity');
    assert.match(error.message, /^text_encoder\/model\.onnx is corrupt: sha256 /);
    const folder = join(modelsDir, 'tiny-sd');
    assert.equal(existsSync(join(folder, BIG)), false);
    assert.equal(existsSync(join(folder, `${BIG}.incomplete`)), false);
    assert.equal(existsSync(join(folder, MARKER_FILE)), false);
  });

  it('a corrupted git file fails on its blob sha1, naming it', async () => {
    hub.corrupt('scheduler/scheduler_config.json');
    const error = await pullError(pull());
    assert.equal(error.code, 'integrity');
    assert.match(error.message, /^scheduler\/scheduler_config\.json is corrupt: git blob sha1 /);
  });

  it('an unknown repository: not-found, naming it, with the HF_TOKEN hint when no token was sent', async () => {
    const error = await pullError(pull({ source: 'nobody/nothing' }));
    assert.equal(error.code, 'not-found');
    assert.match(
      error.message,
      /repository nobody\/nothing was not found on 127\.0\.0\.1:\d+ \(if it is private or gated, set HF_TOKEN/,
    );
    const withToken = await pullError(
      pull({ source: 'nobody/nothing', hub: { endpoint: hub.endpoint, token: 'hf_x' } }),
    );
    assert.equal(withToken.code, 'not-found');
    assert.doesNotMatch(withToken.message, /HF_TOKEN/);
  });

  it('an unknown revision: not-found naming the revision', async () => {
    const error = await pullError(pull({ revision: 'v9' }));
    assert.equal(error.code, 'not-found');
    assert.match(error.message, /revision v9 does not exist in easel-test\/tiny-sd/);
  });

  it('a gated repository without a token: unauthorized, saying to set HF_TOKEN', async () => {
    await hub.close();
    hub = await startFakeHub({ token: 'hf_secret' });
    hub.addRepo(REPO, await repoFiles(modelSource));
    const error = await pullError(pull());
    assert.equal(error.code, 'unauthorized');
    assert.match(error.message, /set HF_TOKEN/);
    assert.match(error.message, /gated/);
    const wrong = await pullError(pull({ hub: { endpoint: hub.endpoint, token: 'hf_wrong' } }));
    assert.match(wrong.message, /the token in HF_TOKEN was not accepted/);
  });

  it('with HF_TOKEN: the token goes to the hub and never to the CDN', async () => {
    await hub.close();
    hub = await startFakeHub({ token: 'hf_secret' });
    hub.addRepo(REPO, await repoFiles(modelSource));
    await pull({ hub: { endpoint: hub.endpoint, token: 'hf_secret' } });
    assert.ok(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_secret'));
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    assert.ok(cdn.length > 0);
    assert.ok(cdn.every((r) => r.authorization === undefined));
  });

  it('a hub that cannot be reached: network, naming the host', async () => {
    const endpoint = hub.endpoint;
    await hub.close();
    const error = await pullError(pull({ hub: { endpoint } }));
    assert.equal(error.code, 'network');
    assert.match(error.message, new RegExp(`cannot reach ${new URL(endpoint).host} .*connection was refused`));
    hub = await startFakeHub(); // for afterEach
  });

  it('a repository without an ONNX export is refused before anything is downloaded', async () => {
    hub.addRepo(
      'someone/pytorch-only',
      new Map([
        ['model_index.json', Buffer.from('{}')],
        ['unet/diffusion_pytorch_model.safetensors', Buffer.alloc(5000)],
      ]),
    );
    const error = await pullError(pull({ source: 'someone/pytorch-only' }));
    assert.equal(error.code, 'not-onnx');
    assert.match(error.message, /has no unet\/model\.onnx\. It looks like a PyTorch repository/);
    assert.equal(existsSync(join(modelsDir, 'pytorch-only')), false);
  });

  it('files that arrive intact but do not make a model: invalid-model with the problems, and no marker', async () => {
    const files = await repoFiles(modelSource);
    files.delete('vae_decoder/model.onnx');
    hub.addRepo('someone/half', files);
    const error = await pullError(pull({ source: 'someone/half' }));
    assert.equal(error.code, 'invalid-model');
    assert.deepEqual(error.problems, ['vae_decoder/model.onnx is missing']);
    assert.equal(existsSync(join(modelsDir, 'half', MARKER_FILE)), false);
  });

  it('an alias pulls its repository and revision into a folder named after it', async () => {
    hub.addRepo('aislamov/stable-diffusion-2-1-base-onnx', await repoFiles(modelSource), ['main', 'cpu']);
    const result = await pull({ source: 'sd-2.1-base' });
    assert.equal(result.folder, join(modelsDir, 'sd-2.1-base'));
    assert.deepEqual(
      [result.marker.repo, result.marker.revision, result.marker.alias],
      ['aislamov/stable-diffusion-2-1-base-onnx', 'cpu', 'sd-2.1-base'],
    );
    assert.ok(hub.requests.some((r) => r.path === '/api/models/aislamov/stable-diffusion-2-1-base-onnx/revision/cpu'));
  });

  it('--name picks the folder; a name that is not a plain folder name is refused', async () => {
    const result = await pull({ name: 'my-model' });
    assert.equal(result.folder, join(modelsDir, 'my-model'));
    for (const name of ['../up', 'a/b', '.hidden', '']) {
      assert.equal((await pullError(pull({ name }))).code, 'bad-request', name);
    }
  });

  it('a folder holding another repository, or files easel did not pull, is refused unless --force', async () => {
    await pull({ name: 'taken' });
    hub.addRepo('other/model', await repoFiles(modelSource));
    const error = await pullError(pull({ source: 'other/model', name: 'taken' }));
    assert.equal(error.code, 'folder-taken');
    assert.match(
      error.message,
      /holds easel-test\/tiny-sd: choose another folder with --name, or replace it with --force/,
    );

    await mkdir(join(modelsDir, 'by-hand'));
    await writeFile(join(modelsDir, 'by-hand', 'notes.txt'), 'mine');
    assert.equal((await pullError(pull({ name: 'by-hand' }))).code, 'folder-taken');

    const forced = await pull({ source: 'other/model', name: 'taken', force: true });
    assert.equal(forced.marker.repo, 'other/model');
    assert.equal(forced.alreadyThere, 0, '--force downloads everything again');
  });

  it('pulling a newer commit replaces changed files and removes the ones it no longer has', async () => {
    await pull();
    const folder = join(modelsDir, 'tiny-sd');
    const files = await repoFiles(modelSource);
    files.set(
      'scheduler/scheduler_config.json',
      Buffer.from(
        readFileSync(join(modelSource, 'scheduler/scheduler_config.json'), 'utf8').replace(
          '"steps_offset": 1',
          '"steps_offset": 0',
        ),
      ),
    );
    files.delete('vae_encoder/config.json');
    hub.addRepo(REPO, files, ['main', 'v2']).revisions.main = 'f'.repeat(40);
    const result = await pull();
    assert.equal(result.marker.commit, 'f'.repeat(40));
    assert.equal(result.alreadyThere, 13);
    assert.match(readFileSync(join(folder, 'scheduler/scheduler_config.json'), 'utf8'), /"steps_offset": 0/);
    assert.equal(existsSync(join(folder, 'vae_encoder/config.json')), false);
  });
});
