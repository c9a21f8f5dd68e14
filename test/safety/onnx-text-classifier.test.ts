import { strict as assert } from 'node:assert';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setImmediate } from 'node:timers/promises';

import {
  OnnxTextClassifier,
  type OnnxTextClassifierOptions,
} from '../../src/safety/classifiers/onnx-text-classifier.ts';
import { windowStarts } from '../../src/safety/classifiers/onnx-text-labels.ts';
import { type TextClassifierOptions, writeTextClassifier } from '../../tools/model-builder/text-classifier.ts';

let root: string;
let count = 0;
const opened: OnnxTextClassifier[] = [];
const noAbort = new AbortController().signal;
/** The logit whose sigmoid is p. */
const logit = (p: number) => Math.log(p / (1 - p));

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'easel-text-classifier-'));
});
after(async () => {
  await Promise.all(opened.map((c) => c.close()));
  await rm(root, { recursive: true, force: true });
});

async function modelFolder(options: TextClassifierOptions): Promise<string> {
  const folder = join(root, `model-${count++}`);
  await writeTextClassifier(folder, options);
  return folder;
}

function classifier(folder: string, options: Partial<OnnxTextClassifierOptions> = {}): OnnxTextClassifier {
  const c = new OnnxTextClassifier({ id: 'tox', folder, ...options });
  opened.push(c);
  return c;
}

/** About 200 ms per 512-token window on one core (16 MatMuls of [512 × 1024] × [1024 × 1024]); written once. */
let slowFolder: Promise<string> | undefined;
const slowModelFolder = () =>
  (slowFolder ??= modelFolder({
    labels: ['hate'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 } },
    maxLength: 512,
    burn: { width: 1024, layers: 16 },
  }));
/** One window's worth of tokens for the slow model. */
const slowPrompt = `${Array(400).fill('cat').join(' ')} grrr`;

async function classifierFor(model: TextClassifierOptions, options: Partial<OnnxTextClassifierOptions> = {}) {
  return classifier(await modelFolder(model), options);
}

// Each classifier starts a thread (~0.2 s, most of it tsx's loader), so independent tests run side by side.
describe('scores', { concurrency: true }, () => {
  test('a multi-label model gives each label its sigmoid severity at the default cut points', async () => {
    const probabilities = { ba: 0.29, bb: 0.31, bc: 0.49, bd: 0.51, be: 0.79, bf: 0.81 };
    const weights = Object.fromEntries(Object.entries(probabilities).map(([word, p]) => [word, { hate: logit(p) }]));
    const c = await classifierFor({ labels: ['hate'], problemType: 'multi_label_classification', weights });
    const severities = [];
    for (const word of Object.keys(probabilities))
      severities.push((await c.classify(`a ${word}`, noAbort)).severities.hate);
    assert.deepEqual(severities, ['safe', 'low', 'low', 'medium', 'medium', 'high']);
  });

  test('cutPoints move the severity boundaries', async () => {
    const c = await classifierFor(
      {
        labels: ['hate'],
        problemType: 'multi_label_classification',
        weights: { ba: { hate: logit(0.15) }, bb: { hate: logit(0.25) }, bc: { hate: logit(0.35) } },
      },
      { cutPoints: { low: 0.1, medium: 0.2, high: 0.3 } },
    );
    assert.deepEqual(await c.classify('ba', noAbort), { severities: { hate: 'low' } });
    assert.deepEqual(await c.classify('bb', noAbort), { severities: { hate: 'medium' } });
    assert.deepEqual(await c.classify('bc', noAbort), { severities: { hate: 'high' } });
  });

  test('a single-label model takes the softmax over all labels, aliases KoalaAI label names and ignores OK', async () => {
    const c = await classifierFor({
      labels: ['OK', 'H', 'V'],
      weights: { grrr: { OK: 0, H: 2 }, hmm: { OK: 0, H: 0, V: 0 } },
    });
    // e² / (e² + e⁰ + e⁻¹⁰) = 0.88; a third each is low.
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high', violence: 'safe' } });
    assert.deepEqual(await c.classify('hmm', noAbort), { severities: { hate: 'low', violence: 'low' } });
  });

  test('toxic-bert labels map through the built-in aliases (obscene is profanity, toxic is ignored)', async () => {
    const labels = ['toxic', 'severe_toxic', 'obscene', 'threat', 'insult', 'identity_hate'];
    const c = await classifierFor({
      labels,
      problemType: 'multi_label_classification',
      weights: { grrr: { toxic: 4, obscene: 4, threat: 0, identity_hate: 4 } },
    });
    assert.deepEqual(await c.classify('grrr', noAbort), {
      severities: { violence: 'medium', hate: 'high' },
      profanity: true,
    });
    assert.deepEqual(await c.classify('a cat', noAbort), {
      severities: { violence: 'safe', hate: 'safe' },
      profanity: false,
    });
  });

  test('the labels option wins over aliases and names, and ignore drops a label', async () => {
    const c = await classifierFor(
      {
        labels: ['mean', 'threat', 'violence'],
        problemType: 'multi_label_classification',
        weights: { grrr: { mean: 4, threat: 4, violence: 4 } },
      },
      { labels: { mean: 'hate', threat: 'ignore', violence: 'sexual' } },
    );
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high', sexual: 'high' } });
  });

  test('an INJECTION label sets jailbreak at the medium cut point', async () => {
    const c = await classifierFor({
      labels: ['SAFE', 'INJECTION'],
      weights: { ignore: { SAFE: 0, INJECTION: 3 }, cat: { SAFE: 3, INJECTION: 0 } },
    });
    assert.deepEqual(await c.classify('ignore the photo', noAbort), { severities: {}, jailbreak: true });
    assert.deepEqual(await c.classify('a cat', noAbort), { severities: {}, jailbreak: false });
  });

  test('a category takes the highest severity of its labels', async () => {
    const c = await classifierFor({
      labels: ['H', 'H2', 'V', 'V2'],
      problemType: 'multi_label_classification',
      weights: { grrr: { H: logit(0.4), H2: logit(0.9), V: logit(0.6), V2: logit(0.1) } },
    });
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high', violence: 'medium' } });
  });

  test('the tokenizer adds its special tokens: a weight on [CLS] shows up even for an empty prompt', async () => {
    const c = await classifierFor({
      labels: ['hate'],
      problemType: 'multi_label_classification',
      weights: { '[CLS]': { hate: 4 } },
    });
    assert.deepEqual(await c.classify('', noAbort), { severities: { hate: 'high' } });
  });

  test('an empty or emoji-only prompt is scored safe', async () => {
    const c = await classifierFor({
      labels: ['hate'],
      problemType: 'multi_label_classification',
      weights: { grrr: { hate: 4 } },
    });
    assert.deepEqual(await c.classify('', noAbort), { severities: { hate: 'safe' } });
    assert.deepEqual(await c.classify('😀🔥👍', noAbort), { severities: { hate: 'safe' } });
  });

  test('non-finite logits reject so the failure policy applies', async () => {
    const c = await classifierFor({
      labels: ['hate'],
      problemType: 'multi_label_classification',
      weights: { grrr: { hate: Infinity } },
    });
    await assert.rejects(c.classify('grrr', noAbort), /tox.*logit Infinity.*"hate"/);
  });

  test('a model with token_type_ids is fed zeros for them', async () => {
    const c = await classifierFor({
      labels: ['hate'],
      problemType: 'multi_label_classification',
      weights: { grrr: { hate: 4 } },
      withTokenTypeIds: true,
    });
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high' } });
  });

  test('the onnx/model.onnx layout loads, and a missing tokenizer_config.json is allowed', async () => {
    const folder = await modelFolder({
      labels: ['hate'],
      problemType: 'multi_label_classification',
      weights: { grrr: { hate: 4 } },
      onnxSubfolder: true,
    });
    await unlink(join(folder, 'tokenizer_config.json'));
    assert.deepEqual(await classifier(folder).classify('grrr', noAbort), { severities: { hate: 'high' } });
  });
});

describe('long prompts are scored in windows', { concurrency: true }, () => {
  const model: TextClassifierOptions = {
    labels: ['hate', 'violence'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 }, '[SEP]': { violence: 4 } },
  };
  const words = (n: number) => Array(n).fill('cat').join(' ');

  test('windows of 62 text tokens overlap by 16, and the last one ends with the prompt', () => {
    assert.deepEqual(windowStarts(62, 62, 8), [0]);
    assert.deepEqual(windowStarts(193, 62, 8), [0, 46, 92, 131]);
    assert.deepEqual(windowStarts(10_000, 62, 3), [0, 46, 92]);
    // Windows shorter than 32 tokens overlap by half.
    assert.deepEqual(windowStarts(5, 2, 8), [0, 1, 2, 3]);
  });

  for (const fixedBatch of [false, true]) {
    test(`a harmful word after 3 × maxTokens benign words is found (${fixedBatch ? 'one run per window' : 'windows batched'})`, async () => {
      const c = await classifierFor({ ...model, maxLength: 64, fixedBatch });
      assert.deepEqual(await c.classify(`${words(192)} grrr`, noAbort), {
        severities: { hate: 'high', violence: 'high' },
      });
      assert.deepEqual(await c.classify(`grrr ${words(192)}`, noAbort), {
        severities: { hate: 'high', violence: 'high' },
      });
      assert.deepEqual(await c.classify(words(192), noAbort), { severities: { hate: 'safe', violence: 'high' } });
    });
  }

  test('a word beyond maxWindows windows is not scored; the default is 8 windows', async () => {
    // Two windows of 62 text tokens, 16 shared: tokens 0 … 107.
    const two = await classifierFor({ ...model, maxLength: 64 }, { maxWindows: 2 });
    assert.equal((await two.classify(`${words(107)} grrr`, noAbort)).severities.hate, 'high');
    assert.equal((await two.classify(`${words(108)} grrr`, noAbort)).severities.hate, 'safe');
    // Eight windows of 510 text tokens, 16 shared: tokens 0 … 3 967.
    const eight = await classifierFor({ ...model, maxLength: 512 });
    assert.equal((await eight.classify(`${words(3967)} grrr`, noAbort)).severities.hate, 'high');
    assert.equal((await eight.classify(`${words(3968)} grrr`, noAbort)).severities.hate, 'safe');
  });

  test('with maxWindows 1 a prompt is cut to model_max_length, keeping [SEP]', async () => {
    const c = await classifierFor({ ...model, maxLength: 512 }, { maxWindows: 1 });
    assert.deepEqual(await c.classify(`${words(10_000)} grrr`, noAbort), {
      severities: { hate: 'safe', violence: 'high' },
    });
    // [CLS] + 509 words + grrr + [SEP] = 512 tokens: still in.
    assert.deepEqual(await c.classify(`${words(509)} grrr`, noAbort), {
      severities: { hate: 'high', violence: 'high' },
    });
    assert.deepEqual(await c.classify(`${words(510)} grrr`, noAbort), {
      severities: { hate: 'safe', violence: 'high' },
    });
  });

  test('maxTokens overrides the tokenizer, and an implausible model_max_length falls back to 512', async () => {
    const short = await classifierFor({ ...model }, { maxTokens: 4, maxWindows: 1 });
    assert.deepEqual(await short.classify('a cat grrr', noAbort), { severities: { hate: 'safe', violence: 'high' } });
    assert.deepEqual(await short.classify('a grrr', noAbort), { severities: { hate: 'high', violence: 'high' } });
    const sentinel = await classifierFor({ ...model, maxLength: 1e30 }, { maxWindows: 1 });
    assert.deepEqual((await sentinel.classify(`${words(509)} grrr`, noAbort)).severities.hate, 'high');
    assert.deepEqual((await sentinel.classify(`${words(510)} grrr`, noAbort)).severities.hate, 'safe');
  });

  test('maxWindows must be a positive integer', () => {
    assert.throws(
      () => new OnnxTextClassifier({ id: 'tox', folder: root, maxWindows: 0 }),
      /"tox": maxWindows must be an integer ≥ 1, got 0/,
    );
  });
});

describe('load errors name the folder and the file', { concurrency: true }, () => {
  const model: TextClassifierOptions = {
    labels: ['hate', 'violence'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 } },
  };
  const cases: Array<[string, (folder: string) => Promise<unknown>, RegExp, Partial<OnnxTextClassifierOptions>?]> = [
    ['model.onnx missing', (f) => unlink(join(f, 'model.onnx')), /model\.onnx is missing/],
    ['model.onnx broken', (f) => writeFile(join(f, 'model.onnx'), 'not a model'), /model\.onnx could not be loaded/],
    ['tokenizer.json missing', (f) => unlink(join(f, 'tokenizer.json')), /tokenizer\.json is missing/],
    [
      'tokenizer.json not JSON',
      (f) => writeFile(join(f, 'tokenizer.json'), '{"model":'),
      /tokenizer\.json is not valid JSON/,
    ],
    [
      'tokenizer.json unusable',
      (f) => writeFile(join(f, 'tokenizer.json'), '{"model":{"type":"Nope"}}'),
      /tokenizer\.json could not be used/,
    ],
    ['config.json missing', (f) => unlink(join(f, 'config.json')), /config\.json is missing/],
    ['config.json not JSON', (f) => writeFile(join(f, 'config.json'), '{'), /config\.json is not valid JSON/],
    [
      'config.json without id2label',
      (f) => writeFile(join(f, 'config.json'), '{"model_type":"bert"}'),
      /config\.json has no id2label/,
    ],
    [
      'id2label with a gap',
      (f) => writeFile(join(f, 'config.json'), '{"id2label":{"0":"hate","2":"violence"}}'),
      /config\.json id2label must map 0 … 1/,
    ],
    [
      'more labels than logits',
      (f) => writeFile(join(f, 'config.json'), '{"id2label":{"0":"hate","1":"violence","2":"sexual"}}'),
      /model\.onnx output "logits" has 2 labels but config\.json's id2label has 3/,
    ],
    [
      'labels names a label the model lacks',
      async () => undefined,
      /labels names "threat", which config\.json's id2label does not have \(hate, violence\)/,
      { labels: { threat: 'violence' } },
    ],
    [
      'labels maps to an unknown meaning',
      async () => undefined,
      /labels maps "hate" to "rude"/,
      { labels: { hate: 'rude' as 'hate' } },
    ],
    [
      'no label means anything',
      (f) => writeFile(join(f, 'config.json'), '{"id2label":{"0":"toxic","1":"LABEL_1"}}'),
      /none of the model's labels \(toxic, LABEL_1\)/,
    ],
  ];
  for (const [name, breakIt, message, options] of cases) {
    test(name, async () => {
      const folder = await modelFolder(model);
      await breakIt(folder);
      const c = classifier(folder, options);
      const error = await c.load().then(
        () => assert.fail('load succeeded'),
        (e: Error) => e,
      );
      assert.match(error.message, message);
      assert.ok(error.message.includes(folder), error.message);
    });
  }

  test('a missing folder is named', async () => {
    const folder = join(root, 'nowhere');
    await assert.rejects(
      classifier(folder).load(),
      (e: Error) => e.message.includes(folder) && /does not exist/.test(e.message),
    );
  });

  test('a model needing an input the classifier cannot supply is refused', async () => {
    const c = await classifierFor({ ...model, extraInputs: ['position_ids'] });
    await assert.rejects(c.load(), /model\.onnx needs input "position_ids"/);
  });

  test('a failed load stays failed, even once the file appears', async () => {
    const folder = await modelFolder(model);
    await rm(join(folder, 'config.json'));
    const c = classifier(folder);
    const first = await c.classify('grrr', noAbort).catch((e: Error) => e);
    await writeTextClassifier(folder, model);
    const second = await c.classify('grrr', noAbort).catch((e: Error) => e);
    assert.ok(first instanceof Error && /config\.json is missing/.test(first.message));
    assert.equal(second, first);
  });

  test('a symbolic logits width is checked on the first output, and the classifier stays failed', async () => {
    const folder = await modelFolder({ ...model, symbolicLabels: true });
    await writeFile(join(folder, 'config.json'), '{"id2label":{"0":"hate","1":"violence","2":"sexual"}}');
    const c = classifier(folder);
    await c.load();
    const first = await c.classify('grrr', noAbort).catch((e: Error) => e);
    assert.match(String(first), /output "logits" has 2 labels but config\.json's id2label has 3/);
    assert.equal(await c.classify('grrr', noAbort).catch((e: Error) => e), first);
  });
});

describe('abort, concurrency and close', () => {
  const model: TextClassifierOptions = {
    labels: ['hate'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 } },
  };

  test('an already-aborted signal rejects at once with its reason', async () => {
    const c = await classifierFor(model);
    const reason = new Error('timed out');
    await assert.rejects(c.classify('grrr', AbortSignal.abort(reason)), (e) => e === reason);
  });

  test('an abort while loading, or once the run is queued, rejects at once with its reason; the next call still works', async () => {
    const c = await classifierFor(model);
    const whileLoading = new AbortController();
    const loadingCall = c.classify('grrr', whileLoading.signal);
    whileLoading.abort(new Error('timed out while loading'));
    await assert.rejects(loadingCall, /timed out while loading/);
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high' } });

    // A slow model, so the run is surely still going when the signal aborts.
    const slow = classifier(await slowModelFolder(), { threads: 1 });
    await slow.load();
    const whileRunning = new AbortController();
    const runningCall = slow.classify(slowPrompt, whileRunning.signal);
    await setImmediate(); // the prompt is with the classifier's thread
    // The abort rejects at once, on this thread, before the event loop's next turn: it does not
    // wait for the model's run to end.
    const order: string[] = [];
    const settled = runningCall.then(
      () => order.push('answered'),
      () => order.push('rejected'),
    );
    whileRunning.abort(new Error('timed out while running'));
    await setImmediate();
    order.push('next turn');
    await settled;
    assert.deepEqual(order, ['rejected', 'next turn']);
    await assert.rejects(runningCall, /timed out while running/);
    assert.deepEqual(await slow.classify('grrr', noAbort), { severities: { hate: 'high' } });
  });

  test('8 concurrent calls each get their own text scored', async () => {
    // Word k gives hate level k % 4 and violence level ⌊k / 4⌋.
    const levels = [0.1, 0.4, 0.6, 0.9];
    const severityNames = ['safe', 'low', 'medium', 'high'];
    const weights = Object.fromEntries(
      Array.from({ length: 8 }, (_, k) => [
        `w${k}`,
        { hate: logit(levels[k % 4]!), violence: logit(levels[Math.floor(k / 4)]!) },
      ]),
    );
    const c = await classifierFor({ labels: ['hate', 'violence'], problemType: 'multi_label_classification', weights });
    const results = await Promise.all(Array.from({ length: 8 }, (_, k) => c.classify(`a photo of w${k}`, noAbort)));
    assert.deepEqual(
      results,
      Array.from({ length: 8 }, (_, k) => ({
        severities: { hate: severityNames[k % 4], violence: severityNames[Math.floor(k / 4)] },
      })),
    );
  });

  test('close() lets a run already started finish, refuses calls that had not started one, then rejects every call', async () => {
    const c = await classifierFor(model);
    await c.load();
    const notStarted = assert.rejects(c.classify('grrr', noAbort), /"tox" is closed/);
    await c.close();
    await notStarted;
    await assert.rejects(c.classify('grrr', noAbort), /"tox" is closed/);

    const d = await classifierFor(model);
    await d.load();
    const started = d.classify('grrr', noAbort);
    await setImmediate(); // classify has sent the prompt to the classifier's thread
    await d.close();
    assert.deepEqual(await started, { severities: { hate: 'high' } });
  });
});

describe('the model runs in a worker thread', () => {
  const model: TextClassifierOptions = {
    labels: ['hate'],
    problemType: 'multi_label_classification',
    weights: { grrr: { hate: 4 } },
  };
  const longPrompt = `${Array(900).fill('cat').join(' ')} grrr`; // two windows

  test('the event loop keeps running while a slow model scores a prompt', async () => {
    const c = classifier(await slowModelFolder(), { threads: 1 });
    await c.load();
    // Were the model run on this thread, no other callback could run before its answer: five turns
    // of the event loop, each queued by the one before, all run while the slow model scores.
    const order: string[] = [];
    const answered = c.classify(longPrompt, noAbort).then((result) => {
      order.push('answered');
      return result;
    });
    for (let turn = 1; turn <= 5; turn++) {
      await setImmediate();
      order.push(`turn ${turn}`);
    }
    assert.deepEqual(await answered, { severities: { hate: 'high' } });
    assert.deepEqual(order, ['turn 1', 'turn 2', 'turn 3', 'turn 4', 'turn 5', 'answered']);
  });

  test('a thread that dies fails the prompt it held with a clear error, and the next prompt starts a new one', async () => {
    /** Its threads exit (code 1) on the prompt "exit now", as a native crash in onnxruntime would. */
    class CrashingClassifier extends OnnxTextClassifier {
      protected override readonly workerEntry = new URL('./fixtures/crashing-text-worker.ts', import.meta.url);
    }
    const c = new CrashingClassifier({ id: 'tox', folder: await modelFolder(model) });
    opened.push(c);
    await c.load();
    await assert.rejects(
      c.classify('exit now', noAbort),
      /text classifier "tox": its thread exited \(code 1\) before answering/,
    );
    assert.deepEqual(await c.classify('grrr', noAbort), { severities: { hate: 'high' } });
  });

  test('close() during a slow run waits for its answer, then every call is refused', async () => {
    const c = classifier(await slowModelFolder(), { threads: 1 });
    await c.load();
    const events: string[] = [];
    const running = c.classify(slowPrompt, noAbort).then((scores) => {
      events.push('answered');
      return scores;
    });
    await setImmediate(); // the prompt is with the classifier's thread
    await c.close().then(() => events.push('closed'));
    assert.deepEqual(await running, { severities: { hate: 'high' } });
    assert.deepEqual(events, ['answered', 'closed']);
    await assert.rejects(c.classify('grrr', noAbort), /text classifier "tox" is closed/);
    await assert.rejects(c.load(), /"tox" is closed/);
  });
});
