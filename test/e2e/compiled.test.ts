// The shipped build: `npm start` runs the compiled dist/ (built by `npm ci`), not the TypeScript
// sources the other tests load through tsx. This starts it and generates an image with the
// placeholder engine, the image classifier's worker thread (started from its compiled .js file)
// passing it, and serves the playground's assets copied beside the compiled modules.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { COMPILED_SERVE, download, PNG_MAGIC, serverScope } from './helpers.ts';

const { newDataDir, start } = serverScope('easel-compiled-');
const KEY = 'compiled-build-test-key-0123456789';

describe('the compiled server (dist/)', () => {
  it('is what npm start and bin/easel.js run', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.start, `node ${COMPILED_SERVE.join(' ')}`);
    assert.match(readFileSync(join('bin', 'easel.js'), 'utf8'), /import\('\.\.\/dist\/cli\/index\.js'\)/);
  });

  it('generates an image (placeholder engine, image classifier on) and serves the playground', async () => {
    const server = await start({ EASEL_DATA_DIR: newDataDir(), EASEL_API_KEYS: KEY });
    const answer = await fetch(`${server.base}/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': KEY },
      body: JSON.stringify({ prompt: 'a compiled lighthouse', size: '1024x1024' }),
    });
    const body = (await answer.json()) as { data: { url: string; revised_prompt: string }[] };
    assert.equal(answer.status, 200, JSON.stringify(body));
    const image = await download(body.data[0]!.url);
    assert.equal(image.status, 200);
    assert.deepEqual(image.bytes.subarray(0, 4), PNG_MAGIC);

    const page = await download(`${server.base}/`);
    assert.equal(page.status, 200);
    assert.match(page.bytes.toString('utf8'), /<html/i);
  });
});
