// The scale-out settings: every value is checked when set (naming the setting, never echoing a secret or
// a password), and each role's requirements are checked by scaleOutSettings, naming every missing setting.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { ConfigError, loadConfig, redactUrl } from '../../src/config/index.ts';
import { scaleOutSettings } from '../../src/config/scale-out.ts';

const dir = mkdtempSync(join(tmpdir(), 'easel-scale-out-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'a-signing-secret-of-32-characters';
const COMPLETE = {
  EASEL_REDIS_URL: 'redis://127.0.0.1:6379',
  EASEL_DATABASE_URL: 'postgres://easel:hunter2@db.internal:5432/easel',
  EASEL_S3_BUCKET: 'easel-images',
  EASEL_SIGNING_SECRET: SECRET,
  EASEL_API_KEYS: 'key-one-123',
};

function load(env: Record<string, string>) {
  return loadConfig({ EASEL_DATA_DIR: dir, ...env });
}

function fileWith(contents: unknown): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(contents));
  return path;
}

function refused(env: Record<string, string>, message: RegExp, secretText?: string): void {
  assert.throws(
    () => load(env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, message);
      if (secretText !== undefined) assert.doesNotMatch(e.message, new RegExp(secretText));
      return true;
    },
    JSON.stringify(env),
  );
}

describe('scale-out settings', () => {
  test('defaults: no service set, the queue and worker timings as documented', () => {
    const config = load({});
    assert.deepEqual(config.redis, {});
    assert.deepEqual(config.database, {});
    assert.deepEqual(config.s3, { region: 'us-east-1', forcePathStyle: false, presignedUrls: false });
    assert.equal(config.signingSecret, undefined);
    assert.deepEqual([config.queue.lockSeconds, config.queue.stalledCheckSeconds, config.queue.attempts], [10, 5, 2]);
    assert.deepEqual(config.workers, { heartbeatSeconds: 5, deadAfterSeconds: 15 });
  });

  test('every variable sets its file key', () => {
    const config = load({
      EASEL_REDIS_URL: 'rediss://:pw@cache.internal:6380/2',
      EASEL_DATABASE_URL: 'postgresql://db.internal/easel',
      EASEL_DATABASE_SCHEMA: 'easel_prod',
      EASEL_S3_ENDPOINT: 'http://127.0.0.1:9000',
      EASEL_S3_BUCKET: 'images.example',
      EASEL_S3_REGION: 'eu-west-3',
      EASEL_S3_FORCE_PATH_STYLE: 'true',
      EASEL_S3_PRESIGNED_URLS: '1',
      EASEL_SIGNING_SECRET: SECRET,
      EASEL_QUEUE_LOCK_SECONDS: '30',
      EASEL_QUEUE_STALLED_CHECK_SECONDS: '15',
      EASEL_QUEUE_ATTEMPTS: '3',
      EASEL_WORKER_HEARTBEAT_SECONDS: '2',
      EASEL_WORKER_DEAD_AFTER_SECONDS: '4',
    });
    assert.deepEqual(config.redis, { url: 'rediss://:pw@cache.internal:6380/2' });
    assert.deepEqual(config.database, { url: 'postgresql://db.internal/easel', schema: 'easel_prod' });
    assert.deepEqual(config.s3, {
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'images.example',
      region: 'eu-west-3',
      forcePathStyle: true,
      presignedUrls: true,
    });
    assert.equal(config.signingSecret, SECRET);
    assert.deepEqual(
      [config.queue.lockSeconds, config.queue.stalledCheckSeconds, config.queue.attempts, config.queue.concurrency],
      [30, 15, 3, 2],
    );
    assert.deepEqual(config.workers, { heartbeatSeconds: 2, deadAfterSeconds: 4 });
  });

  test('the file sets them too, and a variable wins over the file', () => {
    const config = load({
      EASEL_CONFIG: fileWith({
        redis: { url: 'redis://file-host:6379' },
        database: { url: 'postgres://file-host/easel' },
        s3: { bucket: 'file-bucket', forcePathStyle: true },
        signingSecret: SECRET,
        queue: { attempts: 1 },
        workers: { deadAfterSeconds: 60 },
      }),
      EASEL_REDIS_URL: 'redis://env-host:6379',
    });
    assert.equal(config.redis.url, 'redis://env-host:6379');
    assert.equal(config.database.url, 'postgres://file-host/easel');
    assert.deepEqual(config.s3, {
      bucket: 'file-bucket',
      region: 'us-east-1',
      forcePathStyle: true,
      presignedUrls: false,
    });
    assert.deepEqual([config.queue.attempts, config.queue.lockSeconds], [1, 10]);
    assert.deepEqual(config.workers, { heartbeatSeconds: 5, deadAfterSeconds: 60 });
  });

  test('a URL of the wrong scheme names the setting and the schemes, without repeating the URL', () => {
    refused(
      { EASEL_REDIS_URL: 'http://user:hunter2@cache:6379' },
      /EASEL_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL \(the file's redis\.url\)$/,
      'hunter2',
    );
    refused(
      { EASEL_DATABASE_URL: 'mysql://root:hunter2@db/easel' },
      /EASEL_DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL \(the file's database\.url\)$/,
      'hunter2',
    );
    refused(
      { EASEL_S3_ENDPOINT: 's3://bucket' },
      /EASEL_S3_ENDPOINT must be a http:\/\/ or https:\/\/ URL \(the file's s3\.endpoint\)$/,
    );
    refused({ EASEL_CONFIG: fileWith({ redis: { url: 'localhost:6379' } }) }, /redis\.url must be a redis:\/\//);
    refused({ EASEL_CONFIG: fileWith({ database: { url: 5432 } }) }, /database\.url must be a postgres:\/\//);
  });

  test('a URL of the right scheme that does not parse, or names no host, is refused without its password', () => {
    refused(
      { EASEL_REDIS_URL: 'redis://:hunter2@cache:99999' },
      /redis\.url \(EASEL_REDIS_URL\) is not a valid URL: redis:\/\/\*\*\*@cache:99999/,
      'hunter2',
    );
    refused({ EASEL_REDIS_URL: 'redis://' }, /redis\.url \(EASEL_REDIS_URL\) names no host: redis:\/\//);
    refused({ EASEL_S3_ENDPOINT: 'https://' }, /s3\.endpoint \(EASEL_S3_ENDPOINT\) is not a valid URL/);
    refused(
      { EASEL_DATABASE_URL: 'postgres://u:hunter2@[::1/easel' },
      /database\.url \(EASEL_DATABASE_URL\) is not a valid URL: postgres:\/\/\*\*\*@\[::1\/easel/,
      'hunter2',
    );
    // PostgreSQL may name a socket directory instead of a host.
    assert.equal(
      load({ EASEL_DATABASE_URL: 'postgres:///easel?host=/run/postgresql' }).database.url,
      'postgres:///easel?host=/run/postgresql',
    );
  });

  test('a bad bucket, region or schema names the setting and the rule', () => {
    for (const bucket of ['ab', 'Easel-Images', '-easel', 'easel_images', 'x'.repeat(64)]) {
      refused({ EASEL_S3_BUCKET: bucket }, /EASEL_S3_BUCKET must be a bucket name: 3–63 lower-case letters/);
    }
    refused({ EASEL_S3_REGION: 'eu west' }, /EASEL_S3_REGION must be a region name such as us-east-1, got "eu west"/);
    refused({ EASEL_DATABASE_SCHEMA: 'Easel' }, /EASEL_DATABASE_SCHEMA must be 1–63 lower-case letters, digits or "_"/);
    refused({ EASEL_DATABASE_SCHEMA: '1easel' }, /EASEL_DATABASE_SCHEMA must be 1–63 lower-case letters/);
    refused(
      { EASEL_CONFIG: fileWith({ s3: { bucket: 'easel', acessKeyId: 'AKIA' } }) },
      /s3\.acessKeyId: unknown setting \(known: endpoint, bucket, region, forcePathStyle, presignedUrls\)/,
    );
    refused({ EASEL_CONFIG: fileWith({ s3: { presignedUrls: 'yes' } }) }, /s3\.presignedUrls must be true or false/);
    refused({ EASEL_S3_FORCE_PATH_STYLE: 'maybe' }, /EASEL_S3_FORCE_PATH_STYLE must be true or false, got "maybe"/);
  });

  test('a short signing secret is refused naming the setting and the length, never showing the secret', () => {
    refused(
      { EASEL_SIGNING_SECRET: 'too-short-secret' },
      /EASEL_SIGNING_SECRET must be at least 32 characters \(for example: openssl rand -hex 32\) \(the file's signingSecret\)$/,
      'too-short-secret',
    );
    refused(
      { EASEL_CONFIG: fileWith({ signingSecret: 'too-short-secret' }) },
      /signingSecret must be at least 32 characters/,
      'too-short-secret',
    );
    assert.equal(load({ EASEL_SIGNING_SECRET: 'x'.repeat(32) }).signingSecret, 'x'.repeat(32));
  });

  test('queue and worker timings out of range, and a dead-after shorter than two heartbeats, are refused', () => {
    refused({ EASEL_QUEUE_LOCK_SECONDS: '0' }, /EASEL_QUEUE_LOCK_SECONDS must be an integer from 1 to 3600/);
    refused({ EASEL_QUEUE_STALLED_CHECK_SECONDS: 'often' }, /EASEL_QUEUE_STALLED_CHECK_SECONDS must be an integer/);
    refused({ EASEL_QUEUE_ATTEMPTS: '0' }, /EASEL_QUEUE_ATTEMPTS must be an integer from 1 to 100, got "0"|got 0/);
    refused({ EASEL_WORKER_HEARTBEAT_SECONDS: '0' }, /EASEL_WORKER_HEARTBEAT_SECONDS must be an integer from 1/);
    refused(
      { EASEL_CONFIG: fileWith({ workers: { deadAfterSeconds: 1 } }) },
      /workers\.deadAfterSeconds must be an integer from 2 to 7200, got 1/,
    );
    refused(
      { EASEL_WORKER_HEARTBEAT_SECONDS: '10' },
      /workers\.deadAfterSeconds \(EASEL_WORKER_DEAD_AFTER_SECONDS\) must be at least twice workers\.heartbeatSeconds \(10\)/,
    );
    refused(
      { EASEL_CONFIG: fileWith({ workers: { heartbeatSecond: 5 } }) },
      /did you mean workers\.heartbeatSeconds\?/,
    );
  });

  test('redactUrl hides a password and leaves other URLs as they are', () => {
    assert.equal(redactUrl('redis://:pw@host:6379/0'), 'redis://:***@host:6379/0');
    assert.equal(redactUrl('postgres://u:pw@h/db'), 'postgres://u:***@h/db');
    assert.equal(redactUrl('postgres://u@h/db'), 'postgres://u@h/db');
    assert.equal(redactUrl('redis://u:pw@h:99999'), 'redis://***@h:99999');
  });
});

describe('scaleOutSettings: what each role needs', () => {
  test('an API node with everything set gets its typed settings', () => {
    const settings = scaleOutSettings(load({ ...COMPLETE, EASEL_S3_ENDPOINT: 'http://127.0.0.1:9000' }), 'api');
    assert.deepEqual(settings, {
      role: 'api',
      redis: { url: 'redis://127.0.0.1:6379' },
      database: { url: 'postgres://easel:hunter2@db.internal:5432/easel', schema: null },
      s3: {
        endpoint: 'http://127.0.0.1:9000',
        bucket: 'easel-images',
        region: 'us-east-1',
        forcePathStyle: false,
        presignedUrls: false,
      },
      queue: { lockSeconds: 10, stalledCheckSeconds: 5, attempts: 2 },
      workers: { heartbeatSeconds: 5, deadAfterSeconds: 15 },
      signingSecret: SECRET,
      apiKeys: ['key-one-123'],
    });
  });

  test('a worker needs neither the signing secret nor API keys; the S3 endpoint is optional (AWS)', () => {
    const settings = scaleOutSettings(
      load({
        EASEL_REDIS_URL: COMPLETE.EASEL_REDIS_URL,
        EASEL_DATABASE_URL: COMPLETE.EASEL_DATABASE_URL,
        EASEL_DATABASE_SCHEMA: 'easel',
        EASEL_S3_BUCKET: 'easel-images',
      }),
      'worker',
    );
    assert.equal(settings.role, 'worker');
    assert.equal(settings.signingSecret, null);
    assert.equal(settings.s3.endpoint, null);
    assert.equal(settings.database.schema, 'easel');
  });

  test('nothing set: every missing setting is named with its variable, in one message', () => {
    const api = () => scaleOutSettings(load({}), 'api');
    assert.throws(api, ConfigError);
    assert.throws(
      api,
      /Invalid configuration: the api role needs settings that are not set: redis\.url \(EASEL_REDIS_URL\), database\.url \(EASEL_DATABASE_URL\), s3\.bucket \(EASEL_S3_BUCKET\), signingSecret \(EASEL_SIGNING_SECRET; the same on every API node\), apiKeys \(EASEL_API_KEYS; shared by every API node; a key generated in one data directory would work on that node only\)$/,
    );
    assert.throws(
      () => scaleOutSettings(load({}), 'worker'),
      /Invalid configuration: the worker role needs settings that are not set: redis\.url \(EASEL_REDIS_URL\), database\.url \(EASEL_DATABASE_URL\), s3\.bucket \(EASEL_S3_BUCKET\)$/,
    );
  });

  const each: [keyof typeof COMPLETE, RegExp][] = [
    ['EASEL_REDIS_URL', /not set: redis\.url \(EASEL_REDIS_URL\)$/],
    ['EASEL_DATABASE_URL', /not set: database\.url \(EASEL_DATABASE_URL\)$/],
    ['EASEL_S3_BUCKET', /not set: s3\.bucket \(EASEL_S3_BUCKET\)$/],
    ['EASEL_SIGNING_SECRET', /not set: signingSecret \(EASEL_SIGNING_SECRET; the same on every API node\)$/],
    ['EASEL_API_KEYS', /not set: apiKeys \(EASEL_API_KEYS; shared by every API node;/],
  ];
  for (const [variable, message] of each) {
    test(`an API node without ${variable} is refused naming it alone`, () => {
      const env: Record<string, string> = { ...COMPLETE };
      delete env[variable];
      assert.throws(() => scaleOutSettings(load(env), 'api'), message);
    });
  }

  test('API keys kept in the data directory do not count for an API node', () => {
    const env: Record<string, string> = { ...COMPLETE };
    delete env.EASEL_API_KEYS;
    writeFileSync(join(dir, 'api-keys.json'), JSON.stringify({ keys: ['stored-key-123'] }));
    assert.throws(() => scaleOutSettings(load(env), 'api'), /apiKeys \(EASEL_API_KEYS;/);
    const fromFile = scaleOutSettings(load({ ...env, EASEL_CONFIG: fileWith({ apiKeys: ['file-key-123'] }) }), 'api');
    assert.deepEqual(fromFile.apiKeys, ['file-key-123']);
  });
});
