// What edits cost a real server process in memory (peak RSS growth, Linux /proc): one edit at the
// decoded-pixel limit (a 4096x4096 image, n=3), three such at once, and three requests of 16
// single-colour 4096x4096 PNGs (refused from their headers). Run: npx tsx bench/memory.bench.ts
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { canMeasure, peakRssGrowth, postEdit } from '../test/e2e/edit-memory.ts';
import { spawnServer, stopServer, tempDir } from '../test/e2e/helpers.ts';
import { solidPng, TEST_KEY } from '../test/helpers/app.ts';

const dir = tempDir('easel-bench-memory-');
const server = await spawnServer({
  EASEL_DATA_DIR: join(dir, 'data'),
  EASEL_API_KEYS: TEST_KEY,
  EASEL_IMAGE_CLASSIFIER: 'none',
});
try {
  const pid = server.child.pid!;
  if (!canMeasure(pid)) {
    console.log(JSON.stringify({ bench: 'memory', skipped: 'needs Linux /proc/<pid>/clear_refs' }));
  } else {
    await postEdit(server.base, [await solidPng(64, 64)]);
    const big = await solidPng(4096, 4096, [90, 160, 60, 255]);
    const atLimit = { n: '3', output_format: 'jpeg' };
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    const cases: Array<[string, () => Promise<Array<{ status: number }>>]> = [
      ['one edit at the per-edit limit (4096x4096, n=3)', async () => [await postEdit(server.base, [big], atLimit)]],
      [
        'three edits at the per-edit limit at once',
        () => Promise.all([1, 2, 3].map(() => postEdit(server.base, [big], atLimit))),
      ],
      [
        'three 16 x 4096x4096 single-colour edits at once (refused)',
        () =>
          Promise.all(
            [1, 2, 3].map(() =>
              postEdit(
                server.base,
                Array.from({ length: 16 }, () => big),
              ),
            ),
          ),
      ],
    ];
    for (const [name, burst] of cases) {
      const { result, growthBytes } = await peakRssGrowth(pid, burst);
      console.log(
        JSON.stringify({
          bench: 'memory',
          case: name,
          peak_rss_growth_mib: mib(growthBytes),
          statuses: result.map((r) => r.status),
        }),
      );
    }
  }
} finally {
  await stopServer(server);
  rmSync(dir, { recursive: true, force: true });
}
