// Milliseconds per image of the placeholder engine at the sizes deployments use.
// Run: npx tsx bench/placeholder.bench.ts  → one JSON line per size (and one with progress previews).
import type { ImageRequest } from '../src/contract/request.ts';
import { PlaceholderEngine } from '../src/engines/placeholder/index.ts';
import { generationRequest } from '../test/helpers/requests.ts';

const WARM_UP_RUNS = 5;
const RUNS = 20;
const engine = new PlaceholderEngine();

async function bench(request: ImageRequest, withPreviews: boolean): Promise<void> {
  const context = withPreviews ? { onProgress: () => {} } : {};
  for (let i = 0; i < WARM_UP_RUNS; i++) await engine.run({ ...request, seed: i }, context);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await engine.run({ ...request, seed: 1000 + i }, context);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  const mean = times.reduce((sum, t) => sum + t, 0) / times.length;
  console.log(
    JSON.stringify({
      bench: 'placeholder',
      size: `${request.width}x${request.height}`,
      previews: withPreviews,
      ms_per_image: round(mean / request.n),
      median_ms: round((times[Math.floor(times.length / 2)] as number) / request.n),
      // The fastest run is the least disturbed by other work on a shared machine.
      min_ms: round((times[0] as number) / request.n),
      runs: RUNS,
    }),
  );
}

const prompt = 'a lighthouse on a cliff at dawn, with gulls circling and waves breaking on the rocks below';
for (const [width, height] of [
  [1024, 1024],
  [256, 256],
  [1792, 1024],
] as const) {
  await bench(generationRequest({ prompt, width, height }), false);
}
await bench(generationRequest({ prompt }), true);
