// The scale-out commands' start-up on the command line: `easel serve --role`, `easel worker`. What
// they need and what they say when it is missing or unreachable (exit 78 and 69); running them
// against real services is the end-to-end tests' part.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { runCli } from './run-cli.ts';

/** Addresses where nothing listens (port 1 and 2 on the loopback): each check fails at once. */
const UNREACHABLE = {
  EASEL_REDIS_URL: 'redis://127.0.0.1:1',
  EASEL_DATABASE_URL: 'postgres://easel:hunter2@127.0.0.1:2/easel',
  EASEL_S3_ENDPOINT: 'http://127.0.0.1:3',
  EASEL_S3_BUCKET: 'easel-images',
};
const API = { EASEL_SIGNING_SECRET: 'a'.repeat(40), EASEL_API_KEYS: 'key-0123456789abcdef' };

describe('easel serve --role', () => {
  it('a role that does not exist is a usage error naming the choices (exit 2)', async () => {
    const run = await runCli(['serve', '--role', 'worker']);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^easel: option '--role <role>' argument 'worker' is invalid\. Allowed choices are all, api\./,
    );
    assert.match(run.stderr, /Usage: easel serve \[options\]/);
  });

  it('--help shows the option, its choices and the scale-out variables', async () => {
    const run = await runCli(['serve', '--help']);
    assert.equal(run.code, 0);
    for (const text of [
      '--role <role>',
      '"all", "api"',
      'default: "all"',
      'EASEL_REDIS_URL',
      'EASEL_SIGNING_SECRET',
      '69',
    ])
      assert.ok(run.stdout.includes(text), text);
  });

  it('--role api without its settings: exit 78, one message naming every missing setting and variable', async () => {
    const run = await runCli(['serve', '--role', 'api']);
    assert.equal(run.code, 78);
    for (const variable of [
      'EASEL_REDIS_URL',
      'EASEL_DATABASE_URL',
      'EASEL_S3_BUCKET',
      'EASEL_SIGNING_SECRET',
      'EASEL_API_KEYS',
    ])
      assert.ok(run.stderr.includes(variable), variable);
    assert.equal(run.stderr.split('\n').filter(Boolean).length, 1);
  });

  it('--role api with services that do not answer: exit 69, one line per service, no password', async () => {
    const run = await runCli(['serve', '--role', 'api'], { ...UNREACHABLE, ...API });
    assert.equal(run.code, 69, run.stderr);
    assert.match(run.stderr, /^easel: EASEL_REDIS_URL: cannot reach redis:\/\/127\.0\.0\.1:1: connection refused/m);
    assert.match(run.stderr, /^EASEL_DATABASE_URL: cannot reach postgres:\/\/easel:\*\*\*@127\.0\.0\.1:2\/easel/m);
    assert.match(run.stderr, /^EASEL_S3_ENDPOINT: cannot reach http:\/\/127\.0\.0\.1:3/m);
    assert.doesNotMatch(run.stderr, /hunter2/);
  });

  it('without --role, a bad setting of the embedded server still exits 78 before any service is asked', async () => {
    // A bad setting of the embedded server still stops it with 78 before any service is asked.
    const run = await runCli(['serve'], { PORT: 'not-a-port' });
    assert.equal(run.code, 78);
    assert.match(run.stderr, /PORT/);
  });
});

describe('easel worker', () => {
  it('--help names the settings it reads and its port', async () => {
    const run = await runCli(['worker', '--help']);
    assert.equal(run.code, 0);
    for (const text of [
      'Usage: easel worker [options]',
      '--deployments <names>',
      'EASEL_REDIS_URL',
      'EASEL_DATABASE_URL',
      'EASEL_S3_BUCKET',
      'EASEL_S3_ENDPOINT',
      'EASEL_S3_REGION',
      'EASEL_S3_FORCE_PATH_STYLE',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'PORT (default 8081)',
    ])
      assert.ok(run.stdout.includes(text), text);
  });

  it('is listed in easel --help', async () => {
    assert.match((await runCli(['--help'])).stdout, /^ {2}worker\b/m);
  });

  it('without its settings: exit 78 naming Redis, PostgreSQL and the bucket (not the API-only ones)', async () => {
    const run = await runCli(['worker']);
    assert.equal(run.code, 78);
    for (const variable of ['EASEL_REDIS_URL', 'EASEL_DATABASE_URL', 'EASEL_S3_BUCKET'])
      assert.ok(run.stderr.includes(variable), variable);
    assert.doesNotMatch(run.stderr, /EASEL_SIGNING_SECRET|EASEL_API_KEYS/);
  });

  it('with services that do not answer: exit 69 naming each', async () => {
    const run = await runCli(['worker'], UNREACHABLE);
    assert.equal(run.code, 69, run.stderr);
    for (const variable of ['EASEL_REDIS_URL', 'EASEL_DATABASE_URL', 'EASEL_S3_ENDPOINT'])
      assert.match(run.stderr, new RegExp(`^(easel: )?${variable}: cannot reach`, 'm'));
  });

  it('--deployments naming one that is not configured: a usage error listing the configured ones (exit 2)', async () => {
    const run = await runCli(['worker', '--deployments', 'dall-e-3,nope'], UNREACHABLE);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--deployments: no such deployment: nope \(configured: dall-e-2, dall-e-3, gpt-image-1\)/);
    assert.match(run.stderr, /Usage: easel worker \[options\]/);
  });
});
