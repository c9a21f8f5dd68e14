// SIGTERM with sync requests running and queued, against a real process: queued jobs are answered
// 503 at once (in Azure's envelope, so clients retry elsewhere), a running job that finishes within
// the grace period is answered normally, one that does not is aborted with 503, and the process
// exits with 0 after answering everyone. Checked by the order of events, not by timings.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { TEST_KEY } from '../helpers/app.ts';
import { type ServerProcess, spawnServer, stopServer, tempDir, waitFor } from './helpers.ts';

let server: ServerProcess | undefined;
const dir = tempDir('easel-shutdown-');
after(async () => {
  if (server) await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
});

test(
  'SIGTERM: queued requests get 503 at once, running ones finish or get 503 at the grace period, then the process exits 0',
  { timeout: 120_000 },
  async () => {
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ queue: { concurrency: 2, shutdownGraceSeconds: 3 } }));
    server = await spawnServer(
      {
        EASEL_DATA_DIR: join(dir, 'data'),
        EASEL_API_KEYS: TEST_KEY,
        EASEL_CONFIG: config,
        EASEL_LOG_LEVEL: 'info',
        EASEL_IMAGE_CLASSIFIER: 'none',
      },
      ['test/e2e/fixtures/serve-held-engine.ts'],
    );
    const { base, child } = server;
    const events: string[] = [];
    const generate = (name: string, prompt: string) =>
      fetch(`${base}/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'api-key': TEST_KEY },
        body: JSON.stringify({ prompt, response_format: 'b64_json', size: '1024x1024' }),
      }).then(async (response) => {
        events.push(`answered ${name}`);
        return {
          status: response.status,
          body: (await response.json()) as { data?: unknown[]; error?: { code: string; message: string } },
        };
      });
    const started = (prompt: string) =>
      waitFor(`the engine to start "${prompt}"`, () =>
        server!.stderr().includes(`engine started: ${prompt}\n`) ? true : undefined,
      );
    const waiting = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return Number(/^easel_queue_waiting_jobs (\d+)/m.exec(text)?.[1] ?? 0);
    };

    const finishing = generate('finishing', 'finish on SIGTERM');
    await started('finish on SIGTERM');
    const hanging = generate('hanging', 'hang');
    await started('hang');
    const queued = ['queued 1', 'queued 2', 'queued 3'].map((prompt) => generate(prompt, prompt));
    await waitFor('three jobs waiting', async () => ((await waiting()) === 3 ? true : undefined));

    const exited = server.exited.then((result) => (events.push('exited'), result));
    child.kill('SIGTERM');

    for (const answer of await Promise.all(queued)) {
      assert.equal(answer.status, 503);
      assert.deepEqual(Object.keys(answer.body), ['error']);
      assert.equal(answer.body.error?.code, 'ServiceUnavailable');
      assert.match(String(answer.body.error?.message), /shutting down/);
    }
    const done = await finishing;
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.data?.length, 1);
    const cut = await hanging;
    assert.equal(cut.status, 503, JSON.stringify(cut.body));
    assert.equal(cut.body.error?.code, 'ServiceUnavailable');

    assert.deepEqual(
      await exited,
      { code: 0, signal: null },
      server
        .stdout()
        .split('\n')
        .filter((l) => !l.includes('incoming request'))
        .slice(-8)
        .join('\n'),
    );
    // Queued answers came first, the aborted running job at the end of the grace period, and the
    // process exited only after every client had its answer.
    const at = (event: string) => events.indexOf(event);
    for (const name of ['queued 1', 'queued 2', 'queued 3'])
      assert.ok(at(`answered ${name}`) < at('answered hanging'), events.join(', '));
    assert.equal(events.at(-1), 'exited', events.join(', '));
    assert.ok(!server.stderr().includes('engine started: queued'), 'no queued job ever started');
    assert.match(server.stdout(), /"msg":"stopped"/);
    assert.doesNotMatch(server.stdout(), /did not finish within the grace period/);
  },
);
