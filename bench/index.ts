// `npm run bench`: every benchmark in turn, each in its own process so they don't share a heap.
// Output: JSON lines, one per figure.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

console.log(JSON.stringify({ bench: 'machine', cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }));
for (const file of ['bench/placeholder.bench.ts', 'bench/http.bench.ts']) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
