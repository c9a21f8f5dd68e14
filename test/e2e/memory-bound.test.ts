// Memory a burst of edits can take from a real server process: 16 single-colour 4096x4096 PNGs make
// a ~35 KB request that decodes to 1 GiB; three at once must not decode anything before admission,
// and edits within the limits stay within the decoded-pixel budget (README, "Operations").
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadConfig } from '../../src/config/index.ts';
import { solidPng, TEST_KEY } from '../helpers/app.ts';
import { canMeasure, peakRssGrowth, postEdit } from './edit-memory.ts';
import { type ServerProcess, spawnServer, stopServer, tempDir } from './helpers.ts';

const MiB = 2 ** 20;
const limits = loadConfig({}).limits;
/** The decoded pixels one edit, or all edits in flight, may hold, as RGBA bytes. */
const perEditBytes = limits.maxEditPixels * 4;
const inFlightBytes = limits.maxPixelsInFlight * 4;
/**
 * The README's bound on RSS growth: up to 3x the pixel bytes, for libvips' working copies (an
 * encoder copies the image it writes) and memory the allocator keeps.
 */
const RSS_FACTOR = 3;

let server: ServerProcess;
const dir = tempDir('easel-memory-');
before(async () => {
  server = await spawnServer({
    EASEL_DATA_DIR: join(dir, 'data'),
    EASEL_API_KEYS: TEST_KEY,
    EASEL_IMAGE_CLASSIFIER: 'none',
  });
  // Warm up: sharp, the routes and the placeholder engine are loaded before anything is measured.
  assert.equal((await postEdit(server.base, [await solidPng(64, 64)])).status, 200);
});
after(async () => {
  await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('edit memory', { skip: process.platform !== 'linux' && 'needs /proc to read the peak RSS' }, () => {
  test(
    'three 16 x 4096x4096 edits at once are refused from their headers: the peak RSS grows by far less than one edit may hold',
    { timeout: 120_000 },
    async (t) => {
      if (!canMeasure(server.child.pid!)) return t.skip('/proc/<pid>/clear_refs is not available');
      const big = await solidPng(4096, 4096);
      const images = Array.from({ length: 16 }, () => big);
      const { result, growthBytes } = await peakRssGrowth(server.child.pid!, () =>
        Promise.all([1, 2, 3].map(() => postEdit(server.base, images))),
      );
      for (const answer of result) assert.deepEqual(answer, { status: 400, code: 'invalid_image' });
      t.diagnostic(`peak RSS growth: ${Math.round(growthBytes / MiB)} MiB`);
      assert.ok(
        growthBytes < perEditBytes,
        `grew ${Math.round(growthBytes / MiB)} MiB, more than ${perEditBytes / MiB} MiB`,
      );
    },
  );

  test(
    'three edits at the per-edit limit at once: at most the in-flight budget is admitted, and the peak RSS stays within the stated bound',
    { timeout: 300_000 },
    async (t) => {
      if (!canMeasure(server.child.pid!)) return t.skip('/proc/<pid>/clear_refs is not available');
      // One 4096x4096 image and n=3: 4 x 4096² decoded pixels, exactly limits.maxEditPixels.
      const big = await solidPng(4096, 4096, [90, 160, 60, 255]);
      const { result, growthBytes } = await peakRssGrowth(server.child.pid!, () =>
        Promise.all(
          [1, 2, 3].map(() => postEdit(server.base, [big], { n: '3', output_format: 'jpeg', quality: 'low' })),
        ),
      );
      const ok = result.filter((r) => r.status === 200).length;
      for (const answer of result)
        assert.ok(answer.status === 200 || (answer.status === 429 && answer.code === '429'), JSON.stringify(answer));
      assert.ok(ok >= 1 && ok <= limits.maxPixelsInFlight / limits.maxEditPixels, JSON.stringify(result));
      t.diagnostic(`admitted ${ok} of 3; peak RSS growth: ${Math.round(growthBytes / MiB)} MiB`);
      assert.ok(
        growthBytes < RSS_FACTOR * inFlightBytes,
        `grew ${Math.round(growthBytes / MiB)} MiB, more than ${(RSS_FACTOR * inFlightBytes) / MiB} MiB`,
      );
    },
  );
});
