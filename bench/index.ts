// `npm run bench`: every benchmark in turn, each in its own process so they don't share a heap.
// Output: JSON lines, one per figure. The diffusion bench runs the `small` preset unless asked for
// a real architecture: `npm run bench -- --preset sd-turbo` (or sd15; or EASEL_BENCH_PRESET);
// `--preset scale-out` runs only the scale-out figures (API nodes and workers on real services);
// `--sections speedup,sdxl,configs,healthz` picks its sections, `--factors` adds the factor survey.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { preset: { type: 'string' }, sections: { type: 'string' }, factors: { type: 'boolean' } },
});
if (values.preset !== undefined && !['small', 'sd-turbo', 'sd15', 'scale-out'].includes(values.preset)) {
  console.error(`--preset must be small, sd-turbo, sd15 or scale-out, got "${values.preset}"`);
  process.exit(2);
}
// `--preset scale-out`: only the scale-out figures (real processes from dist/ and the services of
// scripts/services: PostgreSQL, Redis, radosgw), after building dist/.
const scaleOut = values.preset === 'scale-out';
const env = {
  ...process.env,
  ...(values.preset && !scaleOut ? { EASEL_BENCH_PRESET: values.preset } : {}),
  ...(values.sections ? { EASEL_BENCH_SECTIONS: values.sections } : {}),
};
const diffusionArgs = values.factors ? ['--factors'] : [];
const onnxruntime = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

console.log(
  JSON.stringify({
    bench: 'machine',
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    available_parallelism: availableParallelism(),
    ram_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime_node: onnxruntime,
    // Machines are shared: the load at the start says how quiet this run was.
    load_1m: Math.round(loadavg()[0]! * 100) / 100,
    date: new Date().toISOString().slice(0, 10),
  }),
);
if (scaleOut) {
  const build = spawnSync(process.execPath, ['tools/build.mjs'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const files = scaleOut
  ? ['bench/scale-out.bench.ts']
  : [
      'bench/placeholder.bench.ts',
      'bench/http.bench.ts',
      'bench/memory.bench.ts',
      'bench/safety.bench.ts',
      'bench/diffusion.bench.ts',
    ];
for (const file of files) {
  const extra = file === 'bench/diffusion.bench.ts' ? diffusionArgs : [];
  const result = spawnSync(process.execPath, ['--import', 'tsx', file, ...extra], { stdio: 'inherit', env });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
