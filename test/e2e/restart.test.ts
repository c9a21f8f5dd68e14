// Persistence across restarts: links and operations outlive the process, a SIGKILL mid-job leaves
// no operation stuck, and `npm start` generates its key once and keeps it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { decode, startTestApp, TEST_KEY } from '../helpers/app.ts';
import { download, serverScope, stopServer, waitFor } from './helpers.ts';

const OPS = 'api-version=2023-06-01-preview';
const { newDataDir, start } = serverScope('easel-restart-');

interface Operation {
  id: string;
  status: string;
  result?: { data: { url?: string }[] };
  error?: { code?: unknown; message?: unknown };
}

async function submit(base: string, key: string, body: object): Promise<string> {
  const response = await fetch(`${base}/openai/images/generations:submit?${OPS}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'api-key': key },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 202, await response.clone().text());
  return ((await response.json()) as { id: string }).id;
}

async function getOperation(base: string, key: string, id: string): Promise<Operation> {
  const response = await fetch(`${base}/openai/operations/images/${id}?${OPS}`, { headers: { 'api-key': key } });
  assert.equal(response.status, 200);
  return (await response.json()) as Operation;
}

const ended = (status: string) => !['notRunning', 'running'].includes(status);

/** Same path and query, another server. */
const rebase = (url: string, base: string) => {
  const u = new URL(url);
  return `${base}${u.pathname}${u.search}`;
};

describe('restart on the same data directory (in process)', () => {
  it('image links and a succeeded operation still work after close() and a new app', async () => {
    const dataDir = newDataDir();
    const a = await startTestApp({ dataDir });
    const baseA = (await a.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');

    const generated = await fetch(`${baseA}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': TEST_KEY },
      body: JSON.stringify({ prompt: 'a harbour at night', size: '1792x1024' }),
    });
    assert.equal(generated.status, 200);
    const imageUrl = ((await generated.json()) as { data: { url: string }[] }).data[0]!.url;
    const before = await download(imageUrl);
    assert.equal(before.status, 200);

    const id = await submit(baseA, TEST_KEY, { prompt: 'a lantern', n: 2, size: '256x256' });
    const done = await waitFor('the operation to end', async () => {
      const op = await getOperation(baseA, TEST_KEY, id);
      return ended(op.status) ? op : undefined;
    });
    assert.equal(done.status, 'succeeded');
    const opBytes = await Promise.all(done.result!.data.map(async (item) => (await download(item.url!)).bytes));

    await a.close(); // not dispose(): the data directory must survive
    const b = await startTestApp({ dataDir });
    try {
      const baseB = (await b.server.listen({ host: '127.0.0.1', port: 0 })).replace(/\/+$/, '');
      assert.notEqual(baseB, baseA);
      const again = await download(rebase(imageUrl, baseB));
      assert.equal(again.status, 200);
      assert.ok(again.bytes.equals(before.bytes), 'the same bytes after the restart');
      const image = await decode(again.bytes);
      assert.deepEqual([image.width, image.height], [1792, 1024]);

      const op = await getOperation(baseB, TEST_KEY, id);
      assert.equal(op.status, 'succeeded');
      assert.equal(op.result?.data.length, 2);
      for (const [i, item] of op.result!.data.entries()) {
        assert.ok(item.url!.startsWith(`${baseB}/`), 'links are built for the server that answers');
        const file = await download(item.url!);
        assert.equal(file.status, 200);
        assert.ok(file.bytes.equals(opBytes[i]!));
      }
    } finally {
      await b.dispose();
    }
  });
});

describe('a real server process', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${signal} while operations run or wait: after a restart every operation ends, failed ones with an error`, async () => {
      const dataDir = newDataDir();
      const env = { EASEL_DATA_DIR: dataDir, EASEL_API_KEYS: TEST_KEY, EASEL_QUEUE_CONCURRENCY: '1' };
      const first = await start(env);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push(await submit(first.base, TEST_KEY, { prompt: `lighthouse ${i}`, n: 10, size: '1024x1024' }));

      // Kill it while at least one operation has not ended (concurrency 1, ten 1024² images each).
      const pendingAtKill = await waitFor('an operation to be running', async () => {
        const statuses = await Promise.all(
          ids.map(async (id) => (await getOperation(first.base, TEST_KEY, id)).status),
        );
        return statuses.includes('running') ? statuses.filter((s) => !ended(s)).length : undefined;
      });
      await stopServer(first, signal);
      assert.ok(pendingAtKill > 0);
      // SIGTERM is a clean stop: the waiting operations stay queued for the next start.
      if (signal === 'SIGTERM') assert.equal(first.child.exitCode, 0, first.stderr());

      const second = await start(env);
      const final = await waitFor(
        'every operation to end after the restart',
        async () => {
          const ops = await Promise.all(ids.map((id) => getOperation(second.base, TEST_KEY, id)));
          return ops.every((op) => ended(op.status)) ? ops : undefined;
        },
        60_000,
        200,
      );

      for (const op of final) {
        assert.ok(['succeeded', 'failed'].includes(op.status), `${op.id} ended ${op.status}`);
        if (op.status === 'failed') {
          assert.equal(typeof op.error?.code, 'string', JSON.stringify(op));
          assert.equal(typeof op.error?.message, 'string', JSON.stringify(op));
        } else {
          assert.equal(op.result?.data.length, 10);
        }
      }
      const succeeded = final.find((op) => op.status === 'succeeded');
      assert.ok(succeeded, 'the waiting operations were resumed and finished');
      const file = await download(succeeded.result!.data[9]!.url!);
      assert.equal(file.status, 200);
      const image = await decode(file.bytes);
      assert.deepEqual([image.width, image.height], [1024, 1024]);

      assert.equal((await fetch(`${second.base}/healthz`)).status, 200);
      await stopServer(second, 'SIGTERM');
      assert.equal(second.child.exitCode, 0, second.stderr());
      assert.equal(second.stderr(), '');
      const logged = second
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'));
      const errors = logged.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
      assert.deepEqual(errors, [], 'no error-level log lines after the restart');
    });
  }

  it('npm start without EASEL_API_KEYS: prints a new key once, saves it, and keeps it on the next start', async () => {
    const dataDir = newDataDir();
    const first = await start({ EASEL_DATA_DIR: dataDir });
    assert.equal((await fetch(`${first.base}/healthz`)).status, 200);
    const printed = /A new API key was generated[^\n]*\n\s*\n\s*([0-9a-f]{32})\s/.exec(first.stdout());
    assert.ok(printed, `the key is printed on stdout:\n${first.stdout()}`);
    const key = printed[1]!;
    const saved = JSON.parse(readFileSync(join(dataDir, 'api-keys.json'), 'utf8')) as { keys: string[] };
    assert.deepEqual(saved.keys, [key]);

    const generate = (base: string, apiKey: string) =>
      fetch(`${base}/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'api-key': apiKey },
        body: JSON.stringify({ prompt: 'a key' }),
      });
    assert.equal((await generate(first.base, key)).status, 200);
    await stopServer(first, 'SIGTERM');
    assert.equal(first.child.exitCode, 0, first.stderr());

    const second = await start({ EASEL_DATA_DIR: dataDir });
    assert.equal((await fetch(`${second.base}/healthz`)).status, 200);
    assert.doesNotMatch(second.stdout(), /A new API key/);
    assert.ok(!second.stdout().includes(key), 'the key is not printed again');
    assert.equal((await generate(second.base, key)).status, 200);
    assert.equal((await generate(second.base, 'some-other-key-123')).status, 401);
    assert.deepEqual((JSON.parse(readFileSync(join(dataDir, 'api-keys.json'), 'utf8')) as { keys: string[] }).keys, [
      key,
    ]);
  });
});
