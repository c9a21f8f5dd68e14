// `npm run bench`: every benchmark in turn, each in its own process so they don't share a heap.
// Output: JSON lines, one per figure. The diffusion bench runs the `small` preset unless asked for
// the real SD-Turbo architecture: `npm run bench -- --preset sd-turbo` or EASEL_BENCH_PRESET=sd-turbo.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { preset: { type: 'string' } } });
if (values.preset !== undefined && !['small', 'sd-turbo'].includes(values.preset)) {
  console.error(`--preset must be small or sd-turbo, got "${values.preset}"`);
  process.exit(2);
}
const env = values.preset ? { ...process.env, EASEL_BENCH_PRESET: values.preset } : process.env;
const onnxruntime = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

console.log(
  JSON.stringify({
    bench: 'machine',
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    ram_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime_node: onnxruntime,
    // Machines are shared: the load at the start says how quiet this run was.
    load_1m: Math.round(loadavg()[0]! * 100) / 100,
    date: new Date().toISOString().slice(0, 10),
  }),
);
for (const file of ['bench/placeholder.bench.ts', 'bench/http.bench.ts', 'bench/memory.bench.ts', 'bench/safety.bench.ts', 'bench/diffusion.bench.ts']) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit', env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
