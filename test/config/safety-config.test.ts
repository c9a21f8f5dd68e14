// The safety settings: defaults, environment variables, per-category thresholds, blocklists,
// classifiers, deployment overrides, and a clear ConfigError for every malformed value.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { ConfigError, type ConfigOverrides, loadConfig } from '../../src/config/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'easel-safety-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Loads a config file with these contents (and these environment variables). */
function load(file: ConfigOverrides | Record<string, unknown>, env: Record<string, string> = {}) {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ EASEL_DATA_DIR: dir, EASEL_CONFIG: path, ...env });
}

function rejects(file: Record<string, unknown>, setting: RegExp, env: Record<string, string> = {}) {
  assert.throws(
    () => load(file, env),
    (e: Error) => e instanceof ConfigError && setting.test(e.message),
    JSON.stringify(file),
  );
}

describe('safety settings', () => {
  test('defaults: medium everywhere, profanity reported only, no lists or classifiers, nsfwjs blocking on failure', () => {
    const { safety } = loadConfig({ EASEL_DATA_DIR: dir });
    assert.deepEqual(safety, {
      threshold: 'medium',
      blockProfanity: false,
      blocklists: [],
      classifiers: [],
      imageClassifier: 'nsfwjs',
      imageClassifierFailure: 'block',
      classifyPlaceholderImages: false,
    });
  });

  test('environment variables', () => {
    const { safety } = loadConfig({
      EASEL_DATA_DIR: dir,
      EASEL_SAFETY_THRESHOLD: 'low',
      EASEL_BLOCK_PROFANITY: 'true',
      EASEL_BLOCKLIST: 'one, two words',
      EASEL_BLOCKLIST_FILE: join(dir, 'list.txt'),
      EASEL_IMAGE_CLASSIFIER: 'none',
      EASEL_IMAGE_CLASSIFIER_FAILURE: 'allow',
    });
    assert.equal(safety.threshold, 'low');
    assert.equal(safety.blockProfanity, true);
    assert.deepEqual(safety.blocklists, [
      { id: 'EASEL_BLOCKLIST', terms: ['one', 'two words'] },
      { id: 'EASEL_BLOCKLIST_FILE', file: join(dir, 'list.txt') },
    ]);
    assert.equal(safety.imageClassifier, 'none');
    assert.equal(safety.imageClassifierFailure, 'allow');
  });

  test('a per-category threshold object, classifiers with defaults filled in, and deployment overrides', () => {
    const config = load(
      {
        safety: {
          threshold: { sexual: 'low', hate: 'off' },
          blocklists: [
            { id: 'house', terms: ['x1'], patterns: ['\\d+'] },
            { id: 'file', file: 'relative.txt' },
          ],
          classifiers: [
            { id: 'toxic', kind: 'onnx', folder: 'toxic-bert', labels: { threat: 'violence' } },
            {
              id: 'cs',
              kind: 'azure-content-safety',
              url: 'https://x.cognitiveservices.azure.com',
              keyEnv: 'CS_KEY',
              timeoutMs: 800,
              onFailure: 'allow',
            },
          ],
        },
        deployments: [
          {
            name: 'art',
            model: 'dall-e-3',
            safety: { threshold: { violence: 'high' }, blockProfanity: true, blocklists: ['house'], classifiers: [] },
          },
        ],
      },
      { CS_KEY: 'secret-key' },
    );
    assert.deepEqual(config.safety.threshold, { sexual: 'low', hate: 'off' });
    assert.equal(config.safety.blocklists[1]!.file, join(process.cwd(), 'relative.txt'));
    const [onnx, cs] = config.safety.classifiers;
    assert.deepEqual(onnx, {
      id: 'toxic',
      kind: 'onnx',
      folder: join(dir, 'models', 'toxic-bert'),
      labels: { threat: 'violence' },
      timeoutMs: 5000,
      onFailure: 'block',
    });
    assert.equal(cs?.kind === 'azure-content-safety' && cs.key, 'secret-key');
    assert.equal(cs!.timeoutMs, 800);
    assert.equal(cs!.onFailure, 'allow');
    assert.deepEqual(config.deployments[0]!.safety, {
      threshold: { violence: 'high' },
      blockProfanity: true,
      blocklists: ['house'],
      classifiers: [],
    });
  });

  const malformed: [string, Record<string, unknown>, RegExp, Record<string, string>?][] = [
    ['threshold word', { safety: { threshold: 'severe' } }, /safety\.threshold .*must be one of low, medium, high/],
    [
      'threshold category',
      { safety: { threshold: { gore: 'low' } } },
      /safety\.threshold\.gore: unknown setting \(known: hate, sexual, violence, self_harm\)/,
    ],
    [
      'threshold level',
      { safety: { threshold: { hate: 'safe' } } },
      /safety\.threshold.*\.hate must be one of low, medium, high, off/,
    ],
    ['threshold list', { safety: { threshold: ['low'] } }, /safety\.threshold/],
    ['blockProfanity', { safety: { blockProfanity: 'yes' } }, /safety\.blockProfanity/],
    ['blocklists not a list', { safety: { blocklists: {} } }, /safety\.blocklists must be a list/],
    ['blocklist without id', { safety: { blocklists: [{ terms: ['a'] }] } }, /safety\.blocklists\[0\]\.id/],
    [
      'blocklist without entries',
      { safety: { blocklists: [{ id: 'a' }] } },
      /safety\.blocklists\[0\] needs "terms", "patterns" or "file"/,
    ],
    [
      'blocklist terms not strings',
      { safety: { blocklists: [{ id: 'a', terms: [1] }] } },
      /safety\.blocklists\[0\]\.terms must be a list of strings/,
    ],
    [
      'blocklist unknown key',
      { safety: { blocklists: [{ id: 'a', terms: ['x'], regex: 'y' }] } },
      /safety\.blocklists\[0\]\.regex: unknown setting/,
    ],
    [
      'blocklist repeated id',
      {
        safety: {
          blocklists: [
            { id: 'a', terms: ['x'] },
            { id: 'a', terms: ['y'] },
          ],
        },
      },
      /safety\.blocklists repeats the id "a"/,
    ],
    [
      'classifier kind',
      { safety: { classifiers: [{ id: 'a', kind: 'magic' }] } },
      /safety\.classifiers\[0\]\.kind must be one of onnx, azure-content-safety, openai-moderation/,
    ],
    [
      'classifier id',
      { safety: { classifiers: [{ id: 'a b', kind: 'onnx', folder: 'x' }] } },
      /safety\.classifiers\[0\]\.id/,
    ],
    [
      'classifier repeated id',
      {
        safety: {
          classifiers: [
            { id: 'a', kind: 'onnx', folder: 'x' },
            { id: 'a', kind: 'onnx', folder: 'y' },
          ],
        },
      },
      /safety\.classifiers repeats the id "a"/,
    ],
    [
      'onnx without folder',
      { safety: { classifiers: [{ id: 'a', kind: 'onnx' }] } },
      /safety\.classifiers\[0\]\.folder/,
    ],
    [
      'onnx label target',
      { safety: { classifiers: [{ id: 'a', kind: 'onnx', folder: 'x', labels: { toxic: 'rude' } }] } },
      /safety\.classifiers\[0\]\.labels\.toxic must be one of/,
    ],
    [
      'onnx maxTokens',
      { safety: { classifiers: [{ id: 'a', kind: 'onnx', folder: 'x', maxTokens: 1 }] } },
      /maxTokens/,
    ],
    [
      'onnx with a url',
      { safety: { classifiers: [{ id: 'a', kind: 'onnx', folder: 'x', url: 'http://x' }] } },
      /safety\.classifiers\[0\]\.url: unknown setting here \(it belongs with kind/,
    ],
    [
      'http url',
      { safety: { classifiers: [{ id: 'a', kind: 'openai-moderation', url: 'ftp://x' }] } },
      /safety\.classifiers\[0\]\.url must be an absolute http\(s\) URL/,
    ],
    [
      'http without url',
      { safety: { classifiers: [{ id: 'a', kind: 'openai-moderation' }] } },
      /safety\.classifiers\[0\]\.url/,
    ],
    [
      'keyEnv unset',
      { safety: { classifiers: [{ id: 'a', kind: 'openai-moderation', url: 'http://x', keyEnv: 'NOPE_NOT_SET' }] } },
      /keyEnv names an environment variable that is not set/,
    ],
    [
      'timeout',
      { safety: { classifiers: [{ id: 'a', kind: 'openai-moderation', url: 'http://x', timeoutMs: 0 }] } },
      /timeoutMs must be an integer/,
    ],
    [
      'onFailure',
      { safety: { classifiers: [{ id: 'a', kind: 'openai-moderation', url: 'http://x', onFailure: 'ignore' }] } },
      /onFailure must be one of block, allow/,
    ],
    [
      'cutPoints order',
      {
        safety: {
          classifiers: [
            { id: 'a', kind: 'openai-moderation', url: 'http://x', cutPoints: { low: 0.6, medium: 0.5, high: 0.9 } },
          ],
        },
      },
      /cutPoints must be/,
    ],
    [
      'imageClassifier',
      { safety: { imageClassifier: 'clip' } },
      /safety\.imageClassifier .*must be one of nsfwjs, none/,
    ],
    [
      'imageClassifierFailure',
      { safety: { imageClassifierFailure: 'retry' } },
      /safety\.imageClassifierFailure .*must be one of block, allow/,
    ],
    [
      'classifyPlaceholderImages',
      { safety: { classifyPlaceholderImages: 'yes' } },
      /safety\.classifyPlaceholderImages .*must be true or false/,
    ],
    [
      'deployment safety key',
      { deployments: [{ name: 'd', model: 'dall-e-3', safety: { strict: true } }] },
      /deployments\[0\]\.safety\.strict: unknown setting/,
    ],
    [
      'deployment threshold',
      { deployments: [{ name: 'd', model: 'dall-e-3', safety: { threshold: 'none' } }] },
      /deployments\[0\]\.safety\.threshold/,
    ],
    [
      'deployment unknown blocklist',
      { deployments: [{ name: 'd', model: 'dall-e-3', safety: { blocklists: ['nope'] } }] },
      /deployments\[0\]\.safety\.blocklists names "nope", which is not defined/,
    ],
    [
      'deployment unknown classifier',
      { deployments: [{ name: 'd', model: 'dall-e-3', safety: { classifiers: ['nope'] } }] },
      /deployments\[0\]\.safety\.classifiers names "nope"/,
    ],
  ];
  for (const [name, file, setting] of malformed) test(`malformed: ${name}`, () => rejects(file, setting));

  test('malformed environment values name the variable', () => {
    for (const [env, pattern] of [
      [{ EASEL_SAFETY_THRESHOLD: 'extreme' }, /EASEL_SAFETY_THRESHOLD/],
      [{ EASEL_BLOCK_PROFANITY: 'maybe' }, /EASEL_BLOCK_PROFANITY/],
      [{ EASEL_IMAGE_CLASSIFIER: 'clip' }, /EASEL_IMAGE_CLASSIFIER/],
      [{ EASEL_IMAGE_CLASSIFIER_FAILURE: 'retry' }, /EASEL_IMAGE_CLASSIFIER_FAILURE/],
      [{ EASEL_CLASSIFY_PLACEHOLDER_IMAGES: 'maybe' }, /EASEL_CLASSIFY_PLACEHOLDER_IMAGES/],
    ] as const) {
      assert.throws(
        () => loadConfig({ EASEL_DATA_DIR: dir, ...env }),
        (e: Error) => e instanceof ConfigError && pattern.test(e.message),
      );
    }
  });
});
