import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { spawnServer, stopServer } from '../e2e/helpers.ts';
import { decode, halfMask, solidPng, startTestApp, TEST_KEY, type TestApp } from '../helpers/app.ts';
import { runCli } from './run-cli.ts';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'easel-cli-images-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const dir = (name: string) => join(root, name);

describe('easel generate', () => {
  it('in process with the placeholder engine: writes <out>/<slug>-1.png of the requested size and prints its path and the revised prompt', async () => {
    const run = await runCli(['generate', 'A lighthouse at dawn!', '--size', '1792x1024', '--out', dir('out-a')], {
      EASEL_DATA_DIR: dir('data-a'),
    });
    assert.equal(run.code, 0, run.stderr);
    const path = join(dir('out-a'), 'a-lighthouse-at-dawn-1.png');
    assert.equal(run.stdout, `${path}\nrevised prompt: A lighthouse at dawn!\n`);
    const image = await decode(readFileSync(path));
    assert.deepEqual([image.format, image.width, image.height], ['png', 1792, 1024]);
    assert.match(
      run.stderr,
      /^Generating 1 image with dall-e-3 in process, data directory .*data-a …\ndone after \d+s\n$/,
    );
  });

  it('a size the deployment does not offer: the API error code and message on stderr, exit 1, no file', async () => {
    const run = await runCli(['generate', 'a cat', '--size', '640x480', '--quiet', '--out', dir('out-b')], {
      EASEL_DATA_DIR: dir('data-b'),
    });
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^easel: invalid_parameter: 'size' must be one of '1024x1024', '1792x1024', '1024x1792'\.\n$/,
    );
  });

  it('while a server owns the data directory, in process is refused with a hint to use --server (exit 1)', async () => {
    const app = await startTestApp();
    try {
      const run = await runCli(['generate', 'a cat', '--quiet'], { EASEL_DATA_DIR: app.dataDir, PORT: '9911' });
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /is in use by a running easel server; send the request to it with --server http:\/\/127\.0\.0\.1:9911/,
      );
    } finally {
      await app.dispose();
    }
  });

  it('refuses to replace an existing output file before generating anything (exit 1); --force replaces it', async () => {
    const env = { EASEL_DATA_DIR: dir('data-o') };
    const out = dir('same.png');
    const first = await runCli(['generate', 'a kite', '--seed', '1', '--out', out, '-q'], env);
    assert.equal(first.code, 0, first.stderr);
    const before = readFileSync(out);
    const again = await runCli(['generate', 'a kite', '--seed', '2', '--out', out], env);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.equal(
      again.stderr,
      `easel: ${out} already exists: pass --force to replace, or choose another --out\n`,
      'refused before the request: no "Generating" line',
    );
    assert.deepEqual(readFileSync(out), before);
    // In a directory, with several images: every clash is named, nothing is written.
    const inDir = await runCli(
      ['generate', 'a kite', '--deployment', 'gpt-image-1', '--n', '2', '--out', dir('kites'), '-q'],
      env,
    );
    assert.equal(inDir.code, 0, inDir.stderr);
    const clash = await runCli(
      ['generate', 'a kite', '--deployment', 'gpt-image-1', '--n', '2', '--out', dir('kites'), '-q'],
      env,
    );
    assert.equal(clash.code, 1);
    assert.ok(
      clash.stderr.includes(
        `${join(dir('kites'), 'a-kite-1.png')}, ${join(dir('kites'), 'a-kite-2.png')} already exist: pass --force`,
      ),
      clash.stderr,
    );
    const forced = await runCli(['generate', 'a kite', '--seed', '2', '--out', out, '-q', '--force'], env);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notDeepEqual(readFileSync(out), before);
  });

  it('edit refuses to replace an existing output file too', async () => {
    writeFileSync(dir('src.png'), await solidPng(64, 64));
    writeFileSync(dir('taken.png'), 'keep me');
    const run = await runCli(['edit', '-i', dir('src.png'), 'x', '--out', dir('taken.png'), '-q'], {
      EASEL_DATA_DIR: dir('data-o2'),
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /taken\.png already exists: pass --force/);
    assert.equal(readFileSync(dir('taken.png'), 'utf8'), 'keep me');
  });

  it('while `easel serve` runs on the data directory: sends the request to it with the saved key, without --server', async () => {
    const dataDir = dir('data-served');
    const server = await spawnServer({ EASEL_DATA_DIR: dataDir });
    try {
      const run = await runCli(['generate', 'a served cat', '--out', dir('served')], { EASEL_DATA_DIR: dataDir });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.split('\n')[0], join(dir('served'), 'a-served-cat-1.png'));
      assert.ok(
        run.stderr.startsWith(
          `Generating 1 image with dall-e-3 at ${server.base} (the server running on ${dataDir}) …\n`,
        ),
        run.stderr,
      );
    } finally {
      await stopServer(server, 'SIGTERM');
    }
    // Stopped: the recorded address goes with it, and the CLI runs in process again.
    assert.ok(!existsSync(join(dataDir, 'server.json')));
    const alone = await runCli(['generate', 'a lone cat', '--out', dir('served'), '-q'], { EASEL_DATA_DIR: dataDir });
    assert.equal(alone.code, 0, alone.stderr);
  });

  describe('against a running server', () => {
    let app: TestApp;
    let server: string;
    before(async () => {
      app = await startTestApp();
      server = await app.server.listen({ host: '127.0.0.1', port: 0 });
    });
    after(() => app.dispose());

    it('--server and --key: gpt-image-1 writes n JPEG files named after --out', async () => {
      const out = join(dir('out-c'), 'fox.jpg');
      const args = [
        'generate',
        'a fox',
        '--deployment',
        'gpt-image-1',
        '--n',
        '2',
        '--format',
        'jpeg',
        '--size',
        '1024x1536',
        '--seed',
        '7',
      ];
      const run = await runCli([...args, '--out', out, '--server', server, '--key', TEST_KEY], {
        EASEL_DATA_DIR: dir('unused'),
      });
      assert.equal(run.code, 0, run.stderr);
      const paths = [join(dir('out-c'), 'fox-1.jpg'), join(dir('out-c'), 'fox-2.jpg')];
      assert.equal(run.stdout, paths.map((p) => `${p}\n`).join(''));
      for (const path of paths) {
        const image = await decode(readFileSync(path));
        assert.deepEqual([image.format, image.width, image.height], ['jpeg', 1024, 1536]);
      }
      assert.match(run.stderr, new RegExp(`^Generating 2 images with gpt-image-1 at ${server} …\n`));
    });

    it('EASEL_URL and EASEL_API_KEY work as --server and --key; a wrong key exits 1 with the 401 message', async () => {
      const ok = await runCli(['generate', 'a hat', '-q', '--out', dir('out-d')], {
        EASEL_URL: server,
        EASEL_API_KEY: TEST_KEY,
      });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.split('\n')[0], join(dir('out-d'), 'a-hat-1.png'));
      const refused = await runCli(['generate', 'a hat', '-q', '--server', server, '--key', 'not-the-key']);
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /^easel: 401: Access denied .* \(the key was refused: pass --key or set EASEL_API_KEY\)\n$/,
      );
    });
  });
});

describe('easel edit', () => {
  it('with a mask: writes an image the size of the input, unchanged where the mask is opaque', async () => {
    writeFileSync(dir('in.png'), await solidPng(64, 64, [40, 120, 200, 255]));
    writeFileSync(dir('mask.png'), await halfMask(64, 64));
    const out = dir('edited.png');
    const run = await runCli(
      ['edit', '--image', dir('in.png'), '--mask', dir('mask.png'), 'add a beach ball', '--out', out, '-q'],
      { EASEL_DATA_DIR: dir('data-e') },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${out}\n`);
    const image = await decode(readFileSync(out));
    assert.deepEqual([image.format, image.width, image.height], ['png', 64, 64]);
    const right = (10 * 64 + 60) * 4;
    assert.deepEqual([...image.data.subarray(right, right + 4)], [40, 120, 200, 255]);
  });

  it('a mask without transparent pixels: the API error, exit 1', async () => {
    writeFileSync(dir('opaque.png'), await solidPng(64, 64));
    const run = await runCli(['edit', '-i', dir('in.png'), '-m', dir('opaque.png'), 'x', '-q', '--out', dir('out-f')], {
      EASEL_DATA_DIR: dir('data-f'),
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^easel: invalid_image: The mask has no transparent pixels/);
  });
});

describe('easel keys', () => {
  it('shows the generated key masked; rotate adds a second key that the next start accepts, beside the first', async () => {
    const dataDir = dir('data-k');
    const first = await startTestApp({ dataDir, env: { EASEL_API_KEYS: '' } });
    const oldKey = first.apiKeys.generated!;
    first.listening('http://127.0.0.1:9'); // what serve does once it listens: the key is saved
    await first.close();

    const shown = await runCli(['keys'], { EASEL_DATA_DIR: dataDir });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      shown.stdout,
      `API keys generated in ${join(dataDir, 'api-keys.json')}:\n  1  ${oldKey.slice(0, 4)}…${oldKey.slice(-4)}\n`,
    );
    assert.deepEqual(await runCli(['keys', 'show'], { EASEL_DATA_DIR: dataDir }), shown);

    const rotated = await runCli(['keys', 'rotate'], { EASEL_DATA_DIR: dataDir });
    assert.equal(rotated.code, 0, rotated.stderr);
    const stored = (JSON.parse(readFileSync(join(dataDir, 'api-keys.json'), 'utf8')) as { keys: string[] }).keys;
    assert.equal(stored.length, 2);
    assert.equal(stored[0], oldKey);
    const newKey = stored[1]!;
    assert.match(newKey, /^[0-9a-f]{32}$/);
    assert.ok(rotated.stdout.includes(`\n    ${newKey}\n`));
    assert.match(rotated.stdout, /restart it to accept the new key/);

    const revealed = await runCli(['keys', '--reveal'], { EASEL_DATA_DIR: dataDir });
    assert.match(revealed.stdout, new RegExp(`  1  ${oldKey}  \\(older.*\n  2  ${newKey}  \\(newest\\)\n`));

    const next = await startTestApp({ dataDir, env: { EASEL_API_KEYS: '' } });
    try {
      for (const key of [oldKey, newKey]) {
        const response = await next.server.inject({
          method: 'POST',
          url: '/openai/deployments/dall-e-3/images/generations?api-version=2024-02-01',
          headers: { 'api-key': key },
          payload: { prompt: 'a key test', response_format: 'b64_json' },
        });
        assert.equal(response.statusCode, 200, response.body);
      }
    } finally {
      await next.dispose();
    }
  });

  it('a second rotation retires the older key', async () => {
    const dataDir = dir('data-k2');
    const runs = [
      await runCli(['keys', 'rotate'], { EASEL_DATA_DIR: dataDir }),
      await runCli(['keys', 'rotate'], { EASEL_DATA_DIR: dataDir }),
    ];
    const after1 = runs[0]!.stdout.match(/\n {4}([0-9a-f]{32})\n/)![1];
    const stored = (JSON.parse(readFileSync(join(dataDir, 'api-keys.json'), 'utf8')) as { keys: string[] }).keys;
    assert.equal(stored.length, 2);
    assert.equal(stored[0], after1);
  });

  it('with EASEL_API_KEYS: show names the variable; rotate explains to change it and exits 1', async () => {
    const env = { EASEL_API_KEYS: 'first-key-123456,second-key-abcdef', EASEL_DATA_DIR: dir('data-k3') };
    const shown = await runCli(['keys'], env);
    assert.equal(shown.stdout, 'API keys from EASEL_API_KEYS:\n  1  firs…3456\n  2  seco…cdef\n');
    const rotate = await runCli(['keys', 'rotate'], env);
    assert.equal(rotate.code, 1);
    assert.equal(rotate.stdout, '');
    assert.match(rotate.stderr, /^easel: the keys come from EASEL_API_KEYS, so rotate them there/);
  });
});

describe('usage', () => {
  it('usage errors exit 2: no prompt, a bad --n, an unknown --format, edit without --image, an unknown keys command', async () => {
    const env = { EASEL_DATA_DIR: dir('data-u') };
    for (const args of [
      ['generate'],
      ['generate', 'x', '--n', 'zero'],
      ['generate', 'x', '--format', 'gif'],
      ['edit', 'x'],
      ['keys', 'bogus'],
      ['generate', 'x', '--server', 'ftp://x', '--key', 'k'],
    ]) {
      const run = await runCli(args, env);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '', args.join(' '));
    }
  });

  it('generate, edit and keys have --help with their options', async () => {
    for (const [command, texts] of [
      [
        'generate',
        [
          'Usage: easel generate [options] <prompt>',
          '--deployment <name>',
          '--size <WxH>',
          '--style <style>',
          '--server <url>',
          '--key <key>',
          'EASEL_URL',
          '--force',
        ],
      ],
      ['edit', ['Usage: easel edit [options] <prompt>', '--image <file>', '--mask <file>', '--strength <number>']],
      ['keys', ['Usage: easel keys [options] [command]', 'show', 'rotate']],
    ] as const) {
      const run = await runCli([command, '--help']);
      assert.equal(run.code, 0);
      for (const text of texts) assert.ok(run.stdout.includes(text), `${command}: ${text}`);
    }
  });
});
