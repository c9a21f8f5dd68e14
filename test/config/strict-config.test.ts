// The configuration is strict: every key of the file and every environment variable is checked
// against the schema (src/config/schema.ts); a misspelt key, a wrong type, a value out of range or
// a bad enumeration value stops start-up with a message naming the setting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { levenshtein } from '../../src/config/validate.ts';
import { runCli } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'easel-strict-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fileWith(contents: unknown): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

function refused(env: Record<string, string>, message: RegExp): void {
  assert.throws(
    () => loadConfig({ EASEL_DATA_DIR: dir, ...env }),
    (e: unknown) => e instanceof ConfigError && message.test(e.message),
    JSON.stringify(env),
  );
}

describe('strict configuration', () => {
  const typos: [unknown, RegExp][] = [
    [{ queu: { concurrency: 2 } }, /queu: unknown setting; did you mean queue\?/],
    [{ limits: { maxImageByte: 5 } }, /limits\.maxImageByte: unknown setting; did you mean limits\.maxImageBytes\?/],
    [{ safety: { treshold: 'low' } }, /safety\.treshold: unknown setting; did you mean safety\.threshold\?/],
    [{ sweepIntervalSecond: 60 }, /sweepIntervalSecond: unknown setting; did you mean sweepIntervalSeconds\?/],
    [{ queue: { concurency: 2 } }, /queue\.concurency: unknown setting; did you mean queue\.concurrency\?/],
    [{ onnx: { thread: 2 } }, /onnx\.thread: unknown setting; did you mean onnx\.threads\?/],
    [
      { deployments: [{ name: 'a', model: 'dall-e-3', engine: 'diffusion', diffusion: { folder: 'x', step: 4 } }] },
      /deployments\[0\]\.diffusion\.step: unknown setting; did you mean deployments\[0\]\.diffusion\.steps\?/,
    ],
    [
      { safety: { blocklists: [{ id: 'a', term: ['x'] }] } },
      /safety\.blocklists\[0\]\.term: unknown setting; did you mean safety\.blocklists\[0\]\.terms\?/,
    ],
    [{ colour: 'red' }, /colour: unknown setting \(known: host, port/],
    [
      { deployments: [{ name: 'a', model: 'dall-e-3', diffusion: { folder: 'x' } }] },
      /deployments\[0\]\.diffusion: unknown setting here \(it belongs with engine "diffusion"\)/,
    ],
  ];
  for (const [contents, message] of typos) {
    test(`an unknown key is refused with its path and the nearest known key: ${JSON.stringify(contents)}`, () => {
      const path = fileWith(contents);
      refused({ EASEL_CONFIG: path }, message);
      refused({ EASEL_CONFIG: path }, new RegExp(`\\(in ${path.replace(/[.]/g, '\\.')}\\)`));
    });
  }

  test('wrong types and out-of-range numbers in the file name the setting and what it must be', () => {
    const cases: [unknown, RegExp][] = [
      [{ port: '8080' }, /port must be an integer from 0 to 65535, got "8080"/],
      [{ queue: { concurrency: 0 } }, /queue\.concurrency must be an integer from 1 to 1024, got 0/],
      [{ limits: { maxImageBytes: -1 } }, /limits\.maxImageBytes must be an integer from 1 upwards, got -1/],
      [{ limits: { maxImageBytes: 1.5 } }, /limits\.maxImageBytes must be an integer/],
      [{ logPrompts: 'yes' }, /logPrompts must be true or false, got "yes"/],
      [{ limits: 5 }, /limits must be an object, got 5/],
      [{ deployments: [] }, /deployments must be a list/],
      [{ deployments: [{ model: 'dall-e-3' }] }, /deployments\[0\]\.name .*; it is missing/],
      [
        { logLevel: 'verbose' },
        /logLevel must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"/,
      ],
      [{ onnx: { executionProvider: 'tpu' } }, /onnx\.executionProvider must be one of cpu, cuda, got "tpu"/],
      [
        { safety: { imageClassifierFailure: 'retry' } },
        /safety\.imageClassifierFailure must be one of block, allow, got "retry"/,
      ],
      [{ apiKeys: ['short'] }, /apiKeys must be a list of keys of at least 8 characters \(in /],
    ];
    for (const [contents, message] of cases) refused({ EASEL_CONFIG: fileWith(contents) }, message);
  });

  test("environment variables are converted to the setting's type and checked, naming the variable and the allowed values", () => {
    refused(
      { EASEL_LOG_LEVEL: 'verbose' },
      /EASEL_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose" \(the file's logLevel\)/,
    );
    refused(
      { EASEL_EXECUTION_PROVIDER: 'tpu' },
      /EASEL_EXECUTION_PROVIDER must be one of cpu, cuda, got "tpu" \(the file's onnx\.executionProvider\)/,
    );
    refused(
      { EASEL_QUEUE_MAX_WAITING: '-1' },
      /EASEL_QUEUE_MAX_WAITING must be an integer from 0 to 1000000, got "-1" \(the file's queue\.maxWaiting\)/,
    );
    refused(
      { EASEL_ONNX_THREADS: '2000' },
      /EASEL_ONNX_THREADS must be an integer from 0 to 1024, got 2000 \(the file's onnx\.threads\)/,
    );
    refused(
      { EASEL_LOG_PROMPTS: 'sometimes' },
      /EASEL_LOG_PROMPTS must be true or false, got "sometimes" \(the file's logPrompts\)/,
    );
    refused(
      { EASEL_API_KEYS: 'long-enough-key,short' },
      /EASEL_API_KEYS must be a list of keys of at least 8 characters \(the file's apiKeys\)$/,
    );
    refused({ EASEL_LOG_FORMAT: 'xml' }, /EASEL_LOG_FORMAT must be "json" or "pretty", got "xml"/);
    refused(
      { EASEL_SAFETY_THRESHOLD: 'severe' },
      /EASEL_SAFETY_THRESHOLD must be one of low, medium, high, got "severe" \(the file's safety\.threshold\)/,
    );
    refused({ EASEL_AUTOENCODER: 'taesd' }, /EASEL_AUTOENCODER must be one of full, tiny, got "taesd"/);
    const config = loadConfig({
      EASEL_DATA_DIR: dir,
      EASEL_LOG_LEVEL: ' Debug ',
      EASEL_QUEUE_MAX_WAITING: '0',
      EASEL_LOG_PROMPTS: 'TRUE',
    });
    assert.deepEqual([config.logLevel, config.queue.maxWaiting, config.logPrompts], ['debug', 0, true]);
  });

  test("settings a caller passes are checked like the file's", () => {
    assert.throws(
      () => loadConfig({ EASEL_DATA_DIR: dir }, { queue: { concurency: 3 } } as never),
      /queue\.concurency: unknown setting; did you mean queue\.concurrency\?/,
    );
  });

  test('a valid file of every group still loads as before', () => {
    const config = loadConfig({
      EASEL_DATA_DIR: dir,
      EASEL_CONFIG: fileWith({
        host: '0.0.0.0',
        port: 0,
        publicUrl: null,
        logLevel: 'warn',
        logPrompts: true,
        imageUrlTtlSeconds: 60,
        sweepIntervalSeconds: 30,
        limits: { maxImageBytes: 1000, requestTimeoutSeconds: 30 },
        queue: { concurrency: 1, maxWaiting: 0 },
        onnx: { executionProvider: 'cpu', threads: 2 },
        models: { dir: 'm' },
        deployments: [{ name: 'a', model: 'dalle3', engine: 'placeholder' }],
        safety: { threshold: { hate: 'off' }, blocklists: [{ id: 'x', terms: ['y'] }], imageClassifier: 'none' },
      }),
    });
    assert.deepEqual(
      [
        config.host,
        config.port,
        config.logLevel,
        config.limits.maxImageBytes,
        config.limits.maxMaskBytes,
        config.queue.maxWaiting,
        config.deployments[0]!.model,
      ],
      ['0.0.0.0', 0, 'warn', 1000, 4 * 1024 * 1024, 0, 'dall-e-3'],
    );
  });

  test('edit distance', () => {
    assert.deepEqual(
      [
        levenshtein('queu', 'queue'),
        levenshtein('', 'abc'),
        levenshtein('kitten', 'sitting'),
        levenshtein('same', 'same'),
      ],
      [1, 3, 3, 0],
    );
  });

  test('start-up: `easel serve` with a misspelt key or a bad log level exits 78 with the message', async () => {
    const typo = await runCli(['serve'], {
      EASEL_DATA_DIR: dir,
      PORT: '0',
      EASEL_CONFIG: fileWith({ queu: { concurrency: 2 } }),
    });
    assert.equal(typo.code, 78, typo.stderr);
    assert.match(typo.stderr, /^easel: Invalid configuration: queu: unknown setting; did you mean queue\?/m);
    const level = await runCli(['serve'], { EASEL_DATA_DIR: dir, PORT: '0', EASEL_LOG_LEVEL: 'verbose' });
    assert.equal(level.code, 78, level.stderr);
    assert.match(
      level.stderr,
      /EASEL_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose" \(the file's logLevel\)/,
    );
    assert.doesNotMatch(level.stdout, /listening/);
  });
});
