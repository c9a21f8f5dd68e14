import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { resolveApiKeys, saveGeneratedKey } from '../../src/config/keys.ts';

test('defaults: 127.0.0.1:8080, ./data, the three usual deployments, 24-hour links', () => {
  const config = loadConfig({});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 8080);
  assert.equal(config.dataDir, join(process.cwd(), 'data'));
  assert.equal(config.publicUrl, null);
  assert.deepEqual(
    config.deployments.map((d) => [d.name, d.model]),
    [
      ['dall-e-2', 'dall-e-2'],
      ['dall-e-3', 'dall-e-3'],
      ['gpt-image-1', 'gpt-image-1'],
    ],
  );
  assert.equal(config.imageUrlTtlSeconds, 86400);
});

test('environment variables override the defaults', () => {
  const config = loadConfig({
    HOST: '0.0.0.0',
    PORT: '9000',
    EASEL_DATA_DIR: '/tmp/x',
    EASEL_PUBLIC_URL: 'https://images.example.com/',
    EASEL_API_KEYS: 'key-one-123, key-two-456',
    EASEL_QUEUE_CONCURRENCY: '4',
  });
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.port, 9000);
  assert.equal(config.dataDir, '/tmp/x');
  assert.equal(config.publicUrl, 'https://images.example.com');
  assert.deepEqual(config.apiKeys, ['key-one-123', 'key-two-456']);
  assert.equal(config.queue.concurrency, 4);
});

test('a config file names deployments; aliases of model names are accepted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
  try {
    const file = join(dir, 'easel.json');
    writeFileSync(
      file,
      JSON.stringify({
        deployments: [
          { name: 'my-dalle3', model: 'dalle3' },
          { name: 'img', model: 'gpt-image-1-mini' },
        ],
      }),
    );
    const config = loadConfig({ EASEL_CONFIG: file });
    assert.deepEqual(
      config.deployments.map((d) => [d.name, d.model]),
      [
        ['my-dalle3', 'dall-e-3'],
        ['img', 'gpt-image-1'],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('invalid settings stop start-up with a message naming the setting', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ EASEL_PUBLIC_URL: 'not a url' }, /EASEL_PUBLIC_URL/],
    [{ EASEL_API_KEYS: 'short' }, /EASEL_API_KEYS/],
    [{ EASEL_CONFIG: '/nonexistent/easel.json' }, /EASEL_CONFIG/],
    [{ EASEL_QUEUE_CONCURRENCY: '0' }, /EASEL_QUEUE_CONCURRENCY/],
  ];
  for (const [env, setting] of cases) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && setting.test(e.message),
    );
  }
});

test('a config file with an unknown model or a repeated name is refused, naming the entry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
  try {
    const file = join(dir, 'easel.json');
    writeFileSync(file, JSON.stringify({ deployments: [{ name: 'a', model: 'midjourney' }] }));
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]\.model/);
    writeFileSync(
      file,
      JSON.stringify({
        deployments: [
          { name: 'a', model: 'dall-e-3' },
          { name: 'a', model: 'dall-e-2' },
        ],
      }),
    );
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[1\]\.name/);
    writeFileSync(file, '{ not json');
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /EASEL_CONFIG/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('placeholder.stepMs: kept on a placeholder deployment, refused out of range or on a diffusion deployment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
  try {
    const file = join(dir, 'easel.json');
    const write = (deployment: object) => writeFileSync(file, JSON.stringify({ deployments: [deployment] }));
    write({ name: 'slow', model: 'dall-e-3', placeholder: { stepMs: 250 } });
    assert.deepEqual(loadConfig({ EASEL_CONFIG: file }).deployments, [
      { name: 'slow', model: 'dall-e-3', engine: 'placeholder', placeholder: { stepMs: 250 } },
    ]);
    write({ name: 'slow', model: 'dall-e-3', placeholder: { stepMs: 60_001 } });
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]\.placeholder\.stepMs/);
    write({ name: 'slow', model: 'dall-e-3', placeholder: { stepMs: -1 } });
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]\.placeholder\.stepMs/);
    write({ name: 'slow', model: 'dall-e-3', placeholder: { steps: 3 } });
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]\.placeholder\.steps/);
    write({ name: 'slow', model: 'dall-e-3', engine: 'diffusion', diffusion: { folder: 'm' }, placeholder: {} });
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('without EASEL_API_KEYS one key is generated, saved (private) only when the caller says so, and kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-keys-'));
  try {
    const unsaved = resolveApiKeys([], dir);
    assert.match(unsaved.generated!, /^[0-9a-f]{32}$/);
    assert.ok(!existsSync(join(dir, 'api-keys.json')), 'nothing is saved before saveGeneratedKey');
    assert.notEqual(resolveApiKeys([], dir).generated, unsaved.generated, 'an unsaved key is not reused');
    const first = resolveApiKeys([], dir);
    assert.deepEqual(first.keys, [first.generated]);
    saveGeneratedKey(dir, first.generated!);
    assert.equal(statSync(join(dir, 'api-keys.json')).mode & 0o777, 0o600);
    const second = resolveApiKeys([], dir);
    assert.equal(second.generated, null);
    assert.deepEqual(second.keys, first.keys);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'api-keys.json'), 'utf8')).keys, first.keys);
    assert.deepEqual(resolveApiKeys(['configured-key'], dir).keys, ['configured-key']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('diffusion deployments: folders resolve under models.dir, settings are checked, EASEL_MODEL binds the placeholder ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
  try {
    const file = join(dir, 'easel.json');
    const deployments = [
      {
        name: 'turbo',
        model: 'dall-e-3',
        engine: 'diffusion',
        diffusion: { folder: 'sd-turbo', steps: 4, guidanceScale: 0, scheduler: 'euler-ancestral' },
      },
      {
        name: 'abs',
        model: 'gpt-image-1',
        engine: 'diffusion',
        diffusion: { folder: '/opt/models/sd15', resolution: 512 },
      },
      { name: 'card', model: 'dall-e-2' },
    ];
    writeFileSync(file, JSON.stringify({ deployments }));
    const config = loadConfig({ EASEL_CONFIG: file, EASEL_DATA_DIR: dir });
    assert.equal(config.models.dir, join(dir, 'models'));
    assert.deepEqual(config.deployments[0], {
      name: 'turbo',
      model: 'dall-e-3',
      engine: 'diffusion',
      diffusion: { folder: join(dir, 'models', 'sd-turbo'), steps: 4, guidanceScale: 0, scheduler: 'euler-ancestral' },
    });
    assert.deepEqual(config.deployments[1], {
      name: 'abs',
      model: 'gpt-image-1',
      engine: 'diffusion',
      diffusion: { folder: '/opt/models/sd15', resolution: 512 },
    });
    assert.equal(config.deployments[2]!.engine, 'placeholder');

    const bound = loadConfig({
      EASEL_CONFIG: file,
      EASEL_DATA_DIR: dir,
      EASEL_MODEL: 'lcm',
      EASEL_MODELS_DIR: '/srv/models',
    });
    assert.deepEqual(
      bound.deployments.map((d) => (d.engine === 'diffusion' ? d.diffusion.folder : d.engine)),
      ['/srv/models/sd-turbo', '/opt/models/sd15', '/srv/models/lcm'],
    );
    assert.deepEqual(
      loadConfig({ EASEL_MODEL: '/m/x' }).deployments.map((d) => d.engine),
      ['diffusion', 'diffusion', 'diffusion'],
    );

    const bad: [unknown, RegExp][] = [
      [{ folder: '' }, /deployments\[0\]\.diffusion\.folder/],
      [{ folder: 'x', steps: 0 }, /diffusion\.steps/],
      [{ folder: 'x', scheduler: 'pndm' }, /diffusion\.scheduler/],
      [{ folder: 'x', guidanceScale: -1 }, /diffusion\.guidanceScale/],
      [{ folder: 'x', resolution: 500 }, /diffusion\.resolution/],
      [{ folder: 'x', strength: 1 }, /diffusion\.strength: unknown setting/],
      [undefined, /deployments\[0\]\.diffusion must be an object/],
    ];
    for (const [diffusion, message] of bad) {
      writeFileSync(
        file,
        JSON.stringify({ deployments: [{ name: 'a', model: 'dall-e-3', engine: 'diffusion', diffusion }] }),
      );
      assert.throws(() => loadConfig({ EASEL_CONFIG: file }), message);
    }
    writeFileSync(file, JSON.stringify({ deployments: [{ name: 'a', model: 'dall-e-3', engine: 'comfy' }] }));
    assert.throws(() => loadConfig({ EASEL_CONFIG: file }), /deployments\[0\]\.engine/);
    assert.throws(() => loadConfig({ EASEL_EXECUTION_PROVIDER: 'tpu' }), /EASEL_EXECUTION_PROVIDER/);
    assert.throws(() => loadConfig({ EASEL_ONNX_THREADS: 'many' }), /EASEL_ONNX_THREADS/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('onnx.fuseAttention is on by default; EASEL_ONNX_FUSE_ATTENTION turns it off; other values are refused', () => {
  assert.equal(loadConfig({}).onnx.fuseAttention, true);
  assert.equal(loadConfig({ EASEL_ONNX_FUSE_ATTENTION: 'false' }).onnx.fuseAttention, false);
  assert.throws(() => loadConfig({ EASEL_ONNX_FUSE_ATTENTION: 'sometimes' }), /EASEL_ONNX_FUSE_ATTENTION/);
});

test('diffusion.autoencoder is "full" or "tiny"; EASEL_AUTOENCODER sets it where a deployment does not', () => {
  const deployments = [
    {
      name: 'a',
      model: 'dall-e-3' as const,
      engine: 'diffusion' as const,
      diffusion: { folder: '/m/a', autoencoder: 'tiny' as const },
    },
    { name: 'b', model: 'dall-e-3' as const, engine: 'diffusion' as const, diffusion: { folder: '/m/b' } },
    { name: 'c', model: 'dall-e-2' as const, engine: 'placeholder' as const },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'easel-config-'));
  try {
    const file = join(dir, 'easel.json');
    writeFileSync(file, JSON.stringify({ deployments }));
    const autoencoders = (env: Record<string, string>) =>
      loadConfig({ EASEL_CONFIG: file, ...env }).deployments.map((d) =>
        d.engine === 'diffusion' ? (d.diffusion.autoencoder ?? 'default') : d.engine,
      );
    assert.deepEqual(autoencoders({}), ['tiny', 'default', 'placeholder']);
    assert.deepEqual(autoencoders({ EASEL_AUTOENCODER: 'full' }), ['tiny', 'full', 'placeholder']);
  } finally {
    rmSync(dir, { recursive: true });
  }
  const quick = loadConfig({ EASEL_MODEL: '/m/turbo', EASEL_AUTOENCODER: 'tiny' }).deployments;
  assert.ok(
    quick.every((d) => d.engine === 'diffusion' && d.diffusion.autoencoder === 'tiny'),
    'EASEL_MODEL deployments too',
  );
  assert.throws(
    () => loadConfig({ EASEL_AUTOENCODER: 'taesd' }),
    (e: unknown) => e instanceof ConfigError && /EASEL_AUTOENCODER must be one of full, tiny/.test(e.message),
  );
  for (const autoencoder of ['taesd', '', 1, null]) {
    const bad = [
      {
        name: 'a',
        model: 'dall-e-3' as const,
        engine: 'diffusion' as const,
        diffusion: { folder: '/m/a', autoencoder: autoencoder as never },
      },
    ];
    assert.throws(
      () => loadConfig({}, { deployments: bad }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /deployments\[0\]\.diffusion\.autoencoder must be one of full, tiny/.test(e.message),
    );
  }
});

test('safety.threshold defaults to medium; EASEL_SAFETY_THRESHOLD and per-deployment values are checked', () => {
  assert.equal(loadConfig({}).safety.threshold, 'medium');
  assert.equal(loadConfig({ EASEL_SAFETY_THRESHOLD: 'high' }).safety.threshold, 'high');
  assert.throws(
    () => loadConfig({ EASEL_SAFETY_THRESHOLD: 'severe' }),
    (e: unknown) => e instanceof ConfigError && /safety\.threshold/.test(e.message),
  );
  const deployments = [
    { name: 'd3', model: 'dall-e-3' as const, engine: 'placeholder' as const, safety: { threshold: 'none' as never } },
  ];
  assert.throws(
    () => loadConfig({}, { deployments }),
    (e: unknown) => e instanceof ConfigError && /deployments\[0\]\.safety\.threshold/.test(e.message),
  );
});

test('the decoded-pixel limits of edits: EASEL_MAX_EDIT_PIXELS, EASEL_MAX_PIXELS_IN_FLIGHT, and no in-flight budget below one edit', () => {
  const defaults = loadConfig({}).limits;
  assert.equal(defaults.maxEditPixels, 4 * 4096 * 4096);
  assert.equal(defaults.maxPixelsInFlight, 8 * 4096 * 4096);
  const set = loadConfig({ EASEL_MAX_EDIT_PIXELS: '1000000', EASEL_MAX_PIXELS_IN_FLIGHT: '3000000' }).limits;
  assert.deepEqual([set.maxEditPixels, set.maxPixelsInFlight], [1_000_000, 3_000_000]);
  assert.throws(
    () => loadConfig({ EASEL_MAX_EDIT_PIXELS: 'lots' }),
    (e: unknown) => e instanceof ConfigError && /EASEL_MAX_EDIT_PIXELS/.test(e.message),
  );
  assert.throws(
    () => loadConfig({ EASEL_MAX_EDIT_PIXELS: '2000', EASEL_MAX_PIXELS_IN_FLIGHT: '1000' }),
    (e: unknown) => e instanceof ConfigError && /maxPixelsInFlight/.test(e.message),
  );
});
