// End-to-end figures over real HTTP on loopback: latency of each route with the placeholder
// engine, the cost of encoding per format, and /healthz latency while generations run.
// Run: npx tsx bench/http.bench.ts  → one JSON line per case.
import { performance } from 'node:perf_hooks';

import { startTestApp, TEST_KEY } from '../test/helpers/app.ts';

const RUNS = 30;
const app = await startTestApp({ config: { queue: { concurrency: 2, maxWaiting: 64, jobTimeoutSeconds: 600 } } });
const base = await app.server.listen({ host: '127.0.0.1', port: 0 });
const headers = { 'api-key': TEST_KEY, 'content-type': 'application/json' };

function summary(times: number[]) {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
  return { p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), runs: times.length };
}

async function post(path: string, body: object) {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<{ data: { url?: string; b64_json?: string }[] }>;
}

async function route(name: string, path: string, body: object) {
  for (let i = 0; i < 3; i++) await post(path, { ...body, seed: i });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await post(path, { ...body, seed: 100 + i });
    times.push(performance.now() - started);
  }
  console.log(JSON.stringify({ bench: 'http', case: name, ...summary(times) }));
}

const v = (version: string) => `?api-version=${version}`;
await route('dall-e-3 1024x1024 url', `/openai/deployments/dall-e-3/images/generations${v('2024-02-01')}`, {
  prompt: 'a lighthouse at dawn',
});
await route('dall-e-3 1792x1024 b64_json', `/openai/deployments/dall-e-3/images/generations${v('2024-02-01')}`, {
  prompt: 'a lighthouse at dawn',
  size: '1792x1024',
  response_format: 'b64_json',
});
for (const format of ['png', 'jpeg', 'webp']) {
  await route(
    `gpt-image-1 1024x1024 ${format}`,
    `/openai/deployments/gpt-image-1/images/generations${v('2025-04-01-preview')}`,
    { prompt: 'a lighthouse at dawn', output_format: format },
  );
}

// /healthz while four generations at a time keep both workers busy.
let generating = true;
const load = Array.from({ length: 4 }, async () => {
  let i = 0;
  while (generating)
    await post(`/openai/deployments/gpt-image-1/images/generations${v('2025-04-01-preview')}`, {
      prompt: 'load',
      seed: i++,
    });
});
const health: number[] = [];
for (let i = 0; i < 200; i++) {
  const started = performance.now();
  await fetch(`${base}/healthz`).then((r) => r.arrayBuffer());
  health.push(performance.now() - started);
  await new Promise((r) => setTimeout(r, 5));
}
generating = false;
await Promise.all(load);
console.log(JSON.stringify({ bench: 'http', case: 'healthz during generation', ...summary(health) }));
await app.dispose();
