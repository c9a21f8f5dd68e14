// What operators tune: per-category thresholds (and "off"), profanity blocking, blocklists with
// terms, RE2 patterns and files followed while running, and classifiers combined with the term
// lists by the higher severity, with their timeout and failure policy.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import {
  BlocklistError,
  Blocklists,
  type ClassifierBinding,
  type ClassifierScores,
  type DeploymentSafety,
  Lexicon,
  type PromptClassifier,
  SafetyPolicy,
  SafetyPromptFilter,
  type ThresholdSetting,
} from '../../src/safety/index.ts';

const lexicon = Lexicon.load();
const auto = { deployment: 'dall-e-3', moderation: 'auto' as const };
const low = { deployment: 'gpt-image-1', moderation: 'low' as const };

function filter(
  options: {
    threshold?: ThresholdSetting;
    blockProfanity?: boolean;
    deployments?: Record<string, DeploymentSafety>;
    classifiers?: ClassifierBinding[];
    blocklists?: Blocklists;
  } = {},
) {
  const policy = new SafetyPolicy(
    { threshold: options.threshold ?? 'medium', blockProfanity: options.blockProfanity ?? false },
    new Map(Object.entries(options.deployments ?? {})),
  );
  return new SafetyPromptFilter({
    policy,
    lexicon,
    ...(options.classifiers ? { classifiers: options.classifiers } : {}),
    ...(options.blocklists ? { blocklists: options.blocklists } : {}),
  });
}

describe('per-category thresholds', () => {
  const f = filter({ threshold: { sexual: 'low', violence: 'high', hate: 'off' } });

  test('each category blocks at its own level; categories left out take medium', async () => {
    assert.equal((await f.check('a woman in a bikini', auto)).blocked, true, 'sexual low blocks at low');
    const stabbing = await f.check('a stabbing in an alley', auto);
    assert.equal(stabbing.blocked, false, 'violence medium passes at high');
    assert.deepEqual(stabbing.results.violence, { filtered: false, severity: 'medium' });
    assert.equal((await f.check('a beheading', auto)).blocked, true, 'violence high still blocks');
    assert.equal((await f.check('a suicide note', auto)).blocked, true, 'self_harm takes the default medium');
  });

  test('"off" scores and annotates but never blocks', async () => {
    const { blocked, results } = await f.check('immigrants are vermin', auto);
    assert.equal(blocked, false);
    assert.deepEqual(results.hate, { filtered: false, severity: 'medium' });
  });

  test('moderation low raises every level to high but leaves "off" off', async () => {
    assert.equal((await f.check('a woman in a bikini', low)).blocked, false);
    assert.equal((await f.check('a beheading', low)).blocked, true);
    assert.deepEqual(new SafetyPolicy({ threshold: { hate: 'off', sexual: 'low' } }).thresholds(low), {
      hate: 'off',
      sexual: 'high',
      violence: 'high',
      self_harm: 'high',
    });
  });

  test("a deployment's object overrides only the categories it names", () => {
    const policy = new SafetyPolicy(
      { threshold: { sexual: 'low' } },
      new Map([['art', { threshold: { violence: 'high' } }]]),
    );
    assert.deepEqual(policy.thresholds({ deployment: 'art', moderation: 'auto' }), {
      hate: 'medium',
      sexual: 'low',
      violence: 'high',
      self_harm: 'medium',
    });
    assert.deepEqual(policy.thresholds(auto), {
      hate: 'medium',
      sexual: 'low',
      violence: 'medium',
      self_harm: 'medium',
    });
  });
});

describe('profanity', () => {
  test('reported by default, blocked where the policy says so (service-wide or per deployment)', async () => {
    const rude = 'a fucking cat';
    assert.deepEqual((await filter().check(rude, auto)).results.profanity, { filtered: false, detected: true });
    const strict = await filter({ blockProfanity: true }).check(rude, auto);
    assert.equal(strict.blocked, true);
    assert.deepEqual(strict.results.profanity, { filtered: true, detected: true });
    const perDeployment = filter({ deployments: { kids: { blockProfanity: true } } });
    assert.equal((await perDeployment.check(rude, { deployment: 'kids', moderation: 'auto' })).blocked, true);
    assert.equal((await perDeployment.check(rude, auto)).blocked, false);
    assert.equal((await filter({ blockProfanity: true }).check('a cat on a sofa', auto)).blocked, false);
  });
});

describe('blocklists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-blocklists-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('terms are read through evasions and match whole words and phrases only', () => {
    const lists = new Blocklists([{ id: 'brand', terms: ['acme', 'project falcon'] }]);
    for (const prompt of [
      'an ACME anvil',
      'an 4cm3 anvil',
      'an a.c.m.e anvil',
      'a poster for Project  Falcon!',
      'the рrоjеct falcon logo',
    ]) {
      assert.deepEqual(lists.match(prompt), [{ id: 'brand', filtered: true }], prompt);
    }
    for (const prompt of ['an acmeish anvil', 'a falcon project', 'a project about falcons and acmes?']) {
      assert.deepEqual(lists.match(prompt), [], prompt);
    }
  });

  test('patterns are RE2 expressions, case-insensitive, matched on the prompt as written and as read', () => {
    const lists = new Blocklists([{ id: 'codes', patterns: ['\\bsku-\\d{4}\\b', 'b[a4]d\\s*word'] }]);
    assert.deepEqual(lists.match('a box labelled SKU-1234'), [{ id: 'codes', filtered: true }]);
    assert.deepEqual(lists.match('a BAD WORD'), [{ id: 'codes', filtered: true }]);
    assert.deepEqual(lists.match('a b.a.d word'), [{ id: 'codes', filtered: true }], 'as read: "b.a.d" → "bad"');
    assert.deepEqual(lists.match('a box labelled SKU-12345'), []);
  });

  test('a pattern that backtracks catastrophically in JavaScript stays linear in RE2', () => {
    const lists = new Blocklists([{ id: 'evil', patterns: ['(a+)+b', '(x|x)*y'] }]);
    // With a backtracking engine either pattern on this input would not finish in a lifetime.
    assert.deepEqual(lists.match(`${'a'.repeat(50_000)}c`), []);
    assert.deepEqual(lists.match('x'.repeat(50_000)), []);
  });

  test('a deployment sees only the lists it names', () => {
    const lists = new Blocklists([
      { id: 'one', terms: ['alpha'] },
      { id: 'two', terms: ['beta'] },
    ]);
    assert.deepEqual(lists.match('alpha beta'), [
      { id: 'one', filtered: true },
      { id: 'two', filtered: true },
    ]);
    assert.deepEqual(lists.match('alpha beta', ['two']), [{ id: 'two', filtered: true }]);
    assert.deepEqual(lists.match('alpha beta', []), []);
  });

  test('bad entries are refused with the list, file and line named', () => {
    assert.throws(
      () => new Blocklists([{ id: 'x', patterns: ['(unclosed'] }]),
      (e: Error) => e instanceof BlocklistError && /"x".*\(unclosed/.test(e.message),
    );
    assert.throws(() => new Blocklists([{ id: 'x', terms: ['!!!'] }]), /no letters or digits/);
    const file = join(dir, 'bad.txt');
    writeFileSync(file, '# comment\nfine\n\n/[z-a]/\n');
    assert.throws(
      () => new Blocklists([{ id: 'f', file }]),
      (e: Error) => e.message.includes(`${file} line 4`) && e.message.includes('[z-a]'),
    );
    assert.throws(
      () => new Blocklists([{ id: 'f', file: join(dir, 'missing.txt') }]),
      /cannot read .*missing\.txt \(ENOENT\)/,
    );
  });

  test('a file is followed while running: edits apply, a broken edit keeps the last good entries', async () => {
    const file = join(dir, 'live.txt');
    writeFileSync(file, '# house list\ncrimson\n/\\bteal\\b/\n');
    const warnings: string[] = [];
    const lists = new Blocklists([{ id: 'live', file }], { info: () => {}, warn: (_o, m) => warnings.push(m) });
    lists.watch();
    try {
      assert.equal(lists.match('a crimson door').length, 1);
      assert.equal(lists.match('a teal door').length, 1);
      assert.equal(lists.match('a violet door').length, 0);

      writeFileSync(file, 'violet\n');
      await until(() => lists.match('a violet door').length === 1);
      assert.equal(lists.match('a crimson door').length, 0, 'removed entries stop matching');

      writeFileSync(file, 'violet\n/(unclosed/\n');
      await until(() => warnings.length > 0);
      assert.equal(lists.match('a violet door').length, 1, 'the last good entries stay in force');
    } finally {
      await lists.close();
    }
  });
});

describe('classifiers beside the term lists', () => {
  const scoring = (id: string, scores: ClassifierScores): PromptClassifier => ({ id, classify: async () => scores });
  const bind = (
    classifier: PromptClassifier,
    onFailure: 'block' | 'allow' = 'block',
    timeoutMs = 1000,
  ): ClassifierBinding => ({ classifier, onFailure, timeoutMs });

  test('each category takes the higher severity of the term lists and every classifier', async () => {
    const f = filter({
      classifiers: [
        bind(scoring('a', { severities: { hate: 'high', violence: 'low' } })),
        bind(scoring('b', { severities: { sexual: 'low' } })),
      ],
    });
    const { blocked, results } = await f.check('a stabbing in an alley', auto);
    assert.equal(blocked, true);
    assert.deepEqual(results.hate, { filtered: true, severity: 'high' }, 'from classifier a');
    assert.deepEqual(
      results.violence,
      { filtered: true, severity: 'medium' },
      'the term lists said medium, higher than a',
    );
    assert.deepEqual(results.sexual, { filtered: false, severity: 'low' }, 'from classifier b');
    assert.equal(results.error, undefined);
  });

  test('a classifier can report jailbreak and profanity', async () => {
    const f = filter({ classifiers: [bind(scoring('guard', { severities: {}, jailbreak: true, profanity: true }))] });
    const { blocked, results } = await f.check('a cat', auto);
    assert.equal(blocked, true);
    assert.deepEqual(results.jailbreak, { filtered: true, detected: true });
    assert.deepEqual(results.profanity, { filtered: false, detected: true });
  });

  test('a deployment runs only the classifiers it names', async () => {
    const seen: string[] = [];
    const spy = (id: string): PromptClassifier => ({ id, classify: async () => (seen.push(id), { severities: {} }) });
    const f = filter({
      classifiers: [bind(spy('a')), bind(spy('b'))],
      deployments: { only_b: { classifiers: ['b'] }, none: { classifiers: [] } },
    });
    await f.check('a cat', auto);
    await f.check('a cat', { deployment: 'only_b', moderation: 'auto' });
    await f.check('a cat', { deployment: 'none', moderation: 'auto' });
    assert.deepEqual(seen, ['a', 'b', 'b']);
  });

  test('a failing classifier under "block" refuses the prompt and says so in error', async () => {
    const broken: PromptClassifier = { id: 'remote', classify: async () => Promise.reject(new Error('HTTP 503')) };
    const { blocked, results } = await filter({ classifiers: [bind(broken, 'block')] }).check('a cat', auto);
    assert.equal(blocked, true);
    assert.equal(results.error?.code, 'content_filter_error');
    assert.match(results.error!.message, /refused.*classifier "remote" failed: HTTP 503/);
    assert.deepEqual(results.hate, { filtered: false, severity: 'safe' }, 'the term lists still scored');
  });

  test('a failing classifier under "allow" lets the term lists decide and says so in error', async () => {
    const broken: PromptClassifier = { id: 'remote', classify: async () => Promise.reject(new Error('HTTP 503')) };
    const f = filter({ classifiers: [bind(broken, 'allow')] });
    const benign = await f.check('a cat', auto);
    assert.equal(benign.blocked, false);
    assert.match(benign.results.error!.message, /not fully filtered.*"remote" failed: HTTP 503/);
    assert.equal((await f.check('a beheading', auto)).blocked, true, 'the term lists still block');
  });

  test('a classifier that never answers (and ignores the signal) times out at its limit', async () => {
    const hung: PromptClassifier = { id: 'slow', classify: () => new Promise(() => {}) };
    const { blocked, results } = await filter({ classifiers: [bind(hung, 'block', 50)] }).check('a cat', auto);
    assert.equal(blocked, true);
    assert.match(results.error!.message, /"slow" failed: timed out after 50 ms/);
  });

  test('the signal a classifier gets aborts at its timeout', async () => {
    let aborted = false;
    const watching: PromptClassifier = {
      id: 'watch',
      classify: (_text, signal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(signal.reason)))),
    };
    await filter({ classifiers: [bind(watching, 'allow', 30)] }).check('a cat', auto);
    assert.equal(aborted, true);
  });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
