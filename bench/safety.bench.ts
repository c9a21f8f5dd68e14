// The safety filters' costs: loading the term lists, scoring prompts (eval prompts, and the
// longest a client may send), a large operator blocklist, and the image classifier per image with
// the event loop's delay while it works.
// Run: npx tsx bench/safety.bench.ts  → one JSON line per case.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

import sharp from 'sharp';

import { Blocklists, Lexicon, SafetyPolicy, SafetyPromptFilter, WorkerNsfwClassifier } from '../src/safety/index.ts';
import { loadEvalSet } from '../tools/eval-safety.ts';

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
function summary(times: number[], unit: 'ms' | 'us' = 'ms') {
  const sorted = [...times].sort((a, b) => a - b);
  const scale = unit === 'us' ? 1000 : 1;
  const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * scale);
  return { [`p50_${unit}`]: at(0.5), [`p99_${unit}`]: at(0.99), runs: times.length };
}
function timeEach(items: string[], run: (item: string) => unknown): number[] {
  return items.map((item) => {
    const started = performance.now();
    run(item);
    return performance.now() - started;
  });
}

// Term lists: load, then score.
let started = performance.now();
const lexicon = Lexicon.load();
console.log(JSON.stringify({ bench: 'safety', case: 'term lists load', ms: round(performance.now() - started) }));

const prompts = loadEvalSet().map((p) => p.prompt);
for (const p of prompts) lexicon.score(p); // warm-up
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'term lists, eval prompts',
    ...summary(
      timeEach(prompts, (p) => lexicon.score(p)),
      'us',
    ),
  }),
);
const long4k = prompts.join(' ').slice(0, 4000);
const long32k = prompts.join(' ').repeat(2).slice(0, 32_000);
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'term lists, 4000-character prompt (dall-e-3 limit)',
    ...summary(timeEach(Array(20).fill(long4k), (p) => lexicon.score(p))),
  }),
);
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'term lists, 32000-character prompt (gpt-image-1 limit)',
    ...summary(timeEach(Array(10).fill(long32k), (p) => lexicon.score(p))),
  }),
);

// A large operator blocklist: 10 000 terms, with 10 and with 100 RE2 patterns (re2js runs in pure
// JavaScript: linear, but each pattern costs a pass over the prompt as written and as read).
const terms = Array.from({ length: 10_000 }, (_, i) => `brandword${i.toString(36)}`);
let lists = new Blocklists([]);
for (const count of [10, 100]) {
  const patterns = Array.from({ length: count }, (_, i) => `\\bsku-${i}-\\d{4}\\b`);
  started = performance.now();
  lists = new Blocklists([{ id: 'big', terms, patterns }]);
  console.log(
    JSON.stringify({
      bench: 'safety',
      case: `blocklist compile, 10000 terms + ${count} RE2 patterns`,
      ms: round(performance.now() - started),
    }),
  );
  console.log(
    JSON.stringify({
      bench: 'safety',
      case: `blocklist match, 10000 terms + ${count} RE2 patterns, 4000-character prompt`,
      ...summary(timeEach(Array(20).fill(long4k), (p) => lists.match(p))),
    }),
  );
}

// The whole prompt filter as a request sees it (term lists + blocklist, no classifiers).
const filter = new SafetyPromptFilter({
  policy: new SafetyPolicy({ threshold: 'medium' }),
  lexicon,
  blocklists: lists,
});
const context = { deployment: 'dall-e-3', moderation: 'auto' as const };
const filterTimes: number[] = [];
for (const p of prompts) {
  const t = performance.now();
  await filter.check(p, context);
  filterTimes.push(performance.now() - t);
}
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'prompt filter with the 100-pattern blocklist, eval prompts',
    ...summary(filterTimes, 'us'),
  }),
);

// The image classifier: first image (model load) and then per 1024x1024 image, with the event
// loop's delay on the main thread while it works in its worker.
const classifier = new WorkerNsfwClassifier();
const images = await Promise.all(
  [0, 1, 2, 3].map(async (i) => {
    const { data, info } = await sharp({
      create: {
        width: 1024,
        height: 1024,
        channels: 4,
        background: { r: 40 + 50 * i, g: 120, b: 200 - 40 * i, alpha: 1 },
      },
    })
      .composite([
        {
          input: Buffer.from(
            `<svg width="1024" height="1024"><circle cx="${300 + 100 * i}" cy="500" r="260" fill="#e0a080"/></svg>`,
          ),
        },
      ])
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: 4 as const, data };
  }),
);
started = performance.now();
await classifier.classify(images[0]!);
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'image classifier, first image (loads the model)',
    ms: round(performance.now() - started),
  }),
);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const imageTimes: number[] = [];
for (let i = 0; i < 40; i++) {
  const t = performance.now();
  await classifier.classify(images[i % images.length]!);
  imageTimes.push(performance.now() - t);
}
delay.disable();
console.log(JSON.stringify({ bench: 'safety', case: 'image classifier, 1024x1024 image', ...summary(imageTimes) }));
console.log(
  JSON.stringify({
    bench: 'safety',
    case: 'event loop delay while classifying images',
    p50_ms: round(delay.percentile(50) / 1e6),
    p99_ms: round(delay.percentile(99) / 1e6),
    max_ms: round(delay.max / 1e6),
  }),
);
await classifier.close();
