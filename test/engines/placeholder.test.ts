import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { loadConfig } from '../../src/config/index.ts';
import type { ImageRequest, RawImage } from '../../src/contract/request.ts';
import { createDeploymentEngines } from '../../src/engines/deployment-engines.ts';
import { EngineAbortedError, type EngineProgress } from '../../src/engines/engine.ts';
import { wrap } from '../../src/engines/placeholder/card.ts';
import { drawText, glyphRows, toFontText } from '../../src/engines/placeholder/font.ts';
import { PlaceholderEngine } from '../../src/engines/placeholder/index.ts';
import { editRequest, generationRequest, rgbaImage } from '../helpers/requests.ts';

const engine = new PlaceholderEngine();

function sha256(image: RawImage): string {
  return createHash('sha256').update(image.data).digest('hex');
}

function pixel(image: RawImage, x: number, y: number): number[] {
  const i = (y * image.width + x) * 4;
  return [...image.data.subarray(i, i + 4)];
}

function meanSaturation(image: RawImage): number {
  let sum = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    const [r, g, b] = [image.data[i] as number, image.data[i + 1] as number, image.data[i + 2] as number];
    const max = Math.max(r, g, b);
    sum += max === 0 ? 0 : (max - Math.min(r, g, b)) / max;
  }
  return sum / (image.width * image.height);
}

function litPixels(text: string): number {
  let count = 0;
  for (const ch of text) for (const row of glyphRows(ch)) for (let bit = row; bit > 0; bit >>= 1) count += bit & 1;
  return count;
}

function luma(image: RawImage, p: number): number {
  const i = p * 4;
  return (
    0.299 * (image.data[i] as number) + 0.587 * (image.data[i + 1] as number) + 0.114 * (image.data[i + 2] as number)
  );
}

function correlation(a: RawImage, b: RawImage): number {
  const n = a.width * a.height;
  let [sa, sb, saa, sbb, sab] = [0, 0, 0, 0, 0];
  for (let p = 0; p < n; p++) {
    const [x, y] = [luma(a, p), luma(b, p)];
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  const cov = sab / n - (sa / n) * (sb / n);
  return cov / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
}

/** Deterministic noise with alpha 200, so every edited pixel's alpha visibly changes. */
function noiseImage(width: number, height: number): RawImage {
  let state = 12345;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state >>> 24;
  };
  return rgbaImage(width, height, () => [next(), next(), next(), 200]);
}

const inside = (x: number, y: number): boolean => x >= 96 && x < 288 && y >= 64 && y < 224;

test('returns n RGBA images of exactly the requested size', async () => {
  const cases = [
    { width: 256, height: 256, n: 1 },
    { width: 512, height: 512, n: 3 },
    { width: 1024, height: 1024, n: 2 },
    { width: 1792, height: 1024, n: 1 },
    { width: 1024, height: 1792, n: 1 },
    { width: 1536, height: 1024, n: 2 },
  ];
  for (const { width, height, n } of cases) {
    const { images } = await engine.run(generationRequest({ width, height, n }));
    assert.equal(images.length, n);
    for (const image of images) {
      assert.deepEqual([image.width, image.height, image.channels], [width, height, 4]);
      assert.equal(image.data.length, width * height * 4);
    }
  }
});

test('the same request gives byte-identical images', async () => {
  const request = generationRequest({ width: 512, height: 512, n: 2 });
  const first = await engine.run(request);
  const second = await engine.run(generationRequest({ width: 512, height: 512, n: 2 }));
  assert.deepEqual(second.images.map(sha256), first.images.map(sha256));
});

test('the images of one request differ from each other', async () => {
  const { images } = await engine.run(generationRequest({ width: 256, height: 256, n: 4 }));
  assert.equal(new Set(images.map(sha256)).size, 4);
});

test('a different seed gives a different image', async () => {
  const [a] = (await engine.run(generationRequest({ width: 256, height: 256, seed: 1 }))).images;
  const [b] = (await engine.run(generationRequest({ width: 256, height: 256, seed: 2 }))).images;
  assert.notEqual(sha256(b as RawImage), sha256(a as RawImage));
});

test('a different prompt gives a different palette', async () => {
  const corner = async (prompt: string): Promise<number[]> => {
    const [image] = (await engine.run(generationRequest({ width: 256, height: 256, prompt }))).images;
    return pixel(image as RawImage, 0, 0);
  };
  const a = await corner('a red fox in the snow');
  const b = await corner('a submarine under arctic ice');
  const distance =
    Math.abs((a[0] as number) - (b[0] as number)) +
    Math.abs((a[1] as number) - (b[1] as number)) +
    Math.abs((a[2] as number) - (b[2] as number));
  assert.ok(distance > 60, `corner colours ${a} and ${b} are too close`);
});

test('vivid pictures are more saturated than natural ones, and style-less ones sit between', async () => {
  const saturation = async (style: 'vivid' | 'natural' | null): Promise<number> => {
    let sum = 0;
    for (const prompt of ['a red fox in the snow', 'a bowl of ramen', 'city skyline at night']) {
      const [image] = (await engine.run(generationRequest({ width: 256, height: 256, style, prompt }))).images;
      sum += meanSaturation(image as RawImage);
    }
    return sum / 3;
  };
  const [vivid, balanced, natural] = [await saturation('vivid'), await saturation(null), await saturation('natural')];
  assert.ok(vivid > natural + 0.3, `vivid ${vivid} vs natural ${natural}`);
  assert.ok(balanced > natural && balanced < vivid, `between: ${natural} < ${balanced} < ${vivid}`);
});

test('a transparent background is clear in every corner while the PLACEHOLDER label is opaque', async () => {
  for (const [width, height] of [
    [256, 256],
    [1024, 1024],
    [1792, 1024],
  ] as const) {
    const request = generationRequest({ width, height, style: null, transparentBackground: true });
    const [image] = (await engine.run(request)).images as [RawImage];
    for (const [x, y] of [
      [0, 0],
      [width - 1, 0],
      [0, height - 1],
      [width - 1, height - 1],
    ] as const) {
      assert.deepEqual(pixel(image, x, y), [0, 0, 0, 0], `corner ${x},${y} of ${width}x${height}`);
    }
    assert.equal(pixel(image, width / 2, height / 2)[3], 255, 'the text card in the middle is opaque');
  }
});

test('the label PLACEHOLDER is drawn in opaque white, at twice the text scale', async () => {
  for (const [width, height, scale] of [
    [256, 256, 2],
    [512, 512, 4],
    [1024, 1024, 6],
    [1792, 1024, 6],
  ] as const) {
    for (const transparentBackground of [false, true]) {
      const [image] = (await engine.run(generationRequest({ width, height, transparentBackground }))).images as [
        RawImage,
      ];
      let white = 0;
      for (let i = 0; i < image.data.length; i += 4) if (image.data.readUInt32BE(i) === 0xffffffff) white++;
      assert.equal(white, litPixels('PLACEHOLDER') * scale * scale, `${width}x${height}`);
    }
  }
});

test('an opaque background has alpha 255 in every pixel', async () => {
  for (const style of ['vivid', 'natural', null] as const) {
    const [image] = (await engine.run(generationRequest({ width: 512, height: 512, style, n: 1 }))).images as [
      RawImage,
    ];
    let transparent = 0;
    for (let i = 3; i < image.data.length; i += 4) if (image.data[i] !== 255) transparent++;
    assert.equal(transparent, 0, `style ${style}`);
  }
});

test('a masked edit keeps every pixel the mask protects byte for byte, and changes every pixel it exposes', async () => {
  const input = noiseImage(384, 320);
  const mask = rgbaImage(384, 320, (x, y) => [0, 0, 0, inside(x, y) ? 0 : 255]);
  const { images } = await engine.run(editRequest(input, mask, { n: 2 }));
  for (const output of images) {
    let [keptChanged, editedUnchanged] = [0, 0];
    for (let p = 0; p < 384 * 320; p++) {
      const same = output.data.readUInt32BE(p * 4) === input.data.readUInt32BE(p * 4);
      if (inside(p % 384, Math.floor(p / 384))) editedUnchanged += same ? 1 : 0;
      else keptChanged += same ? 0 : 1;
    }
    assert.equal(keptChanged, 0);
    assert.equal(editedUnchanged, 0);
  }
});

test('a partly transparent mask blends input and render by its alpha, alpha channel included', async () => {
  const input = noiseImage(384, 320);
  const everywhere = rgbaImage(384, 320, () => [0, 0, 0, 0]);
  const half = rgbaImage(384, 320, (x, y) => [0, 0, 0, inside(x, y) ? 128 : 0]);
  const [render] = (await engine.run(editRequest(input, everywhere))).images as [RawImage];
  const [blended] = (await engine.run(editRequest(input, half))).images as [RawImage];
  let wrong = 0;
  for (let i = 0; i < blended.data.length; i++) {
    const p = i >> 2;
    const a = inside(p % 384, Math.floor(p / 384)) ? 128 : 0;
    const expected = Math.round(((input.data[i] as number) * a + (render.data[i] as number) * (255 - a)) / 255);
    if (blended.data[i] !== expected) wrong++;
  }
  assert.equal(wrong, 0);
});

test('an unmasked edit changes the picture but keeps the input recognisable', async () => {
  const input = rgbaImage(512, 512, (x, y) =>
    ((x >> 6) + (y >> 6)) % 2 === 0 ? [20, 20, 20, 255] : [235, 235, 235, 255],
  );
  const [output] = (await engine.run(editRequest(input, null, { prompt: 'make it look like winter' }))).images as [
    RawImage,
  ];
  let changed = 0;
  for (let p = 0; p < 512 * 512; p++) if (output.data.readUInt32BE(p * 4) !== input.data.readUInt32BE(p * 4)) changed++;
  assert.ok(changed > 0.95 * 512 * 512, `only ${changed} pixels changed`);
  const r = correlation(output, input);
  assert.ok(r > 0.5, `correlation with the input is ${r}`);
});

test('reference images after the first tint the palette toward their colour', async () => {
  const input = noiseImage(256, 256);
  const everywhere = rgbaImage(256, 256, () => [0, 0, 0, 0]);
  const red = rgbaImage(256, 256, () => [255, 0, 0, 255]);
  const [plain] = (await engine.run(editRequest(input, everywhere))).images as [RawImage];
  const [tinted] = (await engine.run(editRequest(input, everywhere, { images: [input, red] }))).images as [RawImage];
  const [p, t] = [pixel(plain, 0, 0), pixel(tinted, 0, 0)];
  assert.ok((t[0] as number) - (t[1] as number) > (p[0] as number) - (p[1] as number) + 30, `corner ${p} → ${t}`);
});

test('a streamed request with partial images gets n previews of the output size at the due steps, ending with the final images', async () => {
  const reports: EngineProgress[] = [];
  const request = generationRequest({ width: 512, height: 256, n: 2, stream: true, partialImages: 3 });
  const { images } = await engine.run(request, { onProgress: (progress) => reports.push(progress) });
  assert.deepEqual(
    reports.map((r) => [r.step, r.totalSteps]),
    [
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ],
  );
  for (const report of reports) {
    assert.equal(report.previews?.length, 2);
    for (const preview of report.previews ?? []) {
      assert.deepEqual(
        [preview.width, preview.height, preview.channels, preview.data.length],
        [512, 256, 4, 512 * 256 * 4],
      );
    }
  }
  const previewHashes = reports.map((r) => (r.previews ?? []).map(sha256));
  assert.deepEqual(previewHashes[3], images.map(sha256));
  assert.equal(new Set(previewHashes.map((h) => h[0])).size, 4, 'each step shows a different preview');
});

test('previews are made only at the steps whose partial image is due, and not at all without partial images', async () => {
  const withPreviews = async (overrides: Partial<ImageRequest>) => {
    const steps: (number | null)[] = [];
    await engine.run(generationRequest({ width: 64, height: 64, ...overrides }), {
      onProgress: ({ step, previews }) => steps.push(previews ? step : null),
    });
    return steps;
  };
  // One partial image of four steps falls on step 2 (partialImageSteps(4, 1)); the last step is the picture.
  assert.deepEqual(await withPreviews({ stream: true, partialImages: 1 }), [null, 2, null, 4]);
  assert.deepEqual(await withPreviews({ stream: true, partialImages: 0 }), [null, null, null, null]);
  assert.deepEqual(await withPreviews({ stream: false, partialImages: 0 }), [null, null, null, null]);
});

test('an aborted signal stops the run with EngineAbortedError', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(engine.run(generationRequest(), { signal: controller.signal }), EngineAbortedError);
});

test('aborting during the run stops it before the next step', async () => {
  const controller = new AbortController();
  const steps: number[] = [];
  const run = engine.run(generationRequest({ width: 256, height: 256 }), {
    signal: controller.signal,
    onProgress: ({ step }) => {
      steps.push(step);
      if (step === 2) controller.abort();
    },
  });
  await assert.rejects(run, EngineAbortedError);
  assert.deepEqual(steps, [1, 2]);
});

test('stepMs: a slow placeholder reports its steps in order and draws the same pictures', async () => {
  const slow = new PlaceholderEngine({ stepMs: 5 });
  const request = generationRequest({ width: 64, height: 64 });
  const steps: number[] = [];
  const { images } = await slow.run(request, { onProgress: ({ step }) => steps.push(step) });
  assert.deepEqual(steps, [1, 2, 3, 4]);
  assert.deepEqual(images.map(sha256), (await engine.run(request)).images.map(sha256));
});

test('stepMs: an abort during a step wait ends the run with EngineAbortedError before the step reports', async () => {
  // A wait of a minute per step: the run can only end this way through the abort.
  const slow = new PlaceholderEngine({ stepMs: 60_000 });
  const controller = new AbortController();
  const steps: number[] = [];
  const run = slow.run(generationRequest({ width: 64, height: 64 }), {
    signal: controller.signal,
    onProgress: ({ step }) => steps.push(step),
  });
  setImmediate(() => controller.abort());
  await assert.rejects(run, EngineAbortedError);
  assert.deepEqual(steps, []);
});

test('a deployment with placeholder.stepMs gets a slow placeholder; the others keep the instant one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-step-ms-'));
  try {
    const file = join(dir, 'easel.json');
    writeFileSync(
      file,
      JSON.stringify({
        deployments: [
          { name: 'fast', model: 'dall-e-3' },
          { name: 'slow', model: 'dall-e-3', placeholder: { stepMs: 60_000 } },
        ],
      }),
    );
    const engines = createDeploymentEngines(loadConfig({ EASEL_CONFIG: file, EASEL_DATA_DIR: dir }), {
      info: () => undefined,
      error: () => undefined,
    });
    const request = generationRequest({ width: 64, height: 64 });
    const fast: number[] = [];
    await engines.get('fast').engine.run(request, { onProgress: ({ step }) => fast.push(step) });
    assert.deepEqual(fast, [1, 2, 3, 4]);
    // A minute per step: only the abort can end this run.
    const controller = new AbortController();
    const slow = engines.get('slow').engine.run(request, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await assert.rejects(slow, EngineAbortedError);
    await engines.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a very long non-ASCII prompt still renders at the smallest size', async () => {
  const prompt = 'Ein gemütliches Café in Zürich, 東京の夜景 '.repeat(100);
  const { images } = await engine.run(generationRequest({ width: 256, height: 256, prompt, style: null }));
  assert.equal(images[0]?.data.length, 256 * 256 * 4);
});

test('the font draws every printable ASCII character as its own glyph', () => {
  const seen = new Set<string>();
  for (let code = 32; code <= 126; code++) {
    const ch = String.fromCharCode(code);
    const rows = glyphRows(ch);
    assert.equal(rows.length, 8);
    seen.add(rows.join(','));
    const target = { width: 5 * 3, height: 8 * 3, data: new Uint8Array(5 * 3 * 8 * 3 * 4) };
    drawText(target, ch, 0, 0, 3, [255, 255, 255, 255]);
    let lit = 0;
    for (let i = 3; i < target.data.length; i += 4) lit += target.data[i] === 255 ? 1 : 0;
    assert.equal(lit, litPixels(ch) * 9, `glyph ${JSON.stringify(ch)}`);
    assert.equal(lit === 0, ch === ' ', `only the space is blank, not ${JSON.stringify(ch)}`);
  }
  assert.equal(seen.size, 95);
});

test('text outside the font is drawn readably: accents dropped, quotes straightened, the rest as "?"', () => {
  assert.equal(toFontText('Café “crème” — 日本'), 'Cafe "creme" - ??');
  assert.equal(toFontText('tab\tand\nnewline'), 'tab and newline');
});

test('long prompts are word-wrapped and cut with an ellipsis', () => {
  assert.deepEqual(wrap('one two three four five', 9, 5), ['one two', 'three', 'four five']);
  assert.deepEqual(wrap('one two three four five', 9, 2), ['one two', 'three…']);
  assert.deepEqual(wrap('abcdefghijkl', 5, 3), ['abcde', 'fghij', 'kl']);
  assert.deepEqual(wrap('abcdefghijkl', 5, 2), ['abcde', 'fghi…']);
});
