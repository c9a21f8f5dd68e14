import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { runCli } from './run-cli.ts';

describe('the easel command line', () => {
  it('easel --help lists the commands on stdout and exits 0; so do `easel help` and plain `easel`', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: easel \[options\] \[command\]/);
    for (const command of ['serve', 'pull', 'models', 'help'])
      assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'));
    assert.equal(help.stderr, '');
    assert.deepEqual(await runCli(['help']), help);
    assert.deepEqual(await runCli([]), help);
  });

  it('easel help pull and easel pull --help print the same help, with the options and the environment', async () => {
    const a = await runCli(['help', 'pull']);
    const b = await runCli(['pull', '--help']);
    assert.equal(a.code, 0);
    assert.deepEqual(a, b);
    for (const text of [
      'Usage: easel pull [options] [repo-or-alias]',
      '--revision <revision>',
      '--name <name>',
      '--force',
      '--quiet',
      '--list-aliases',
      'HF_ENDPOINT',
      'HF_TOKEN',
    ]) {
      assert.ok(a.stdout.includes(text), text);
    }
  });

  it('an unknown command: the message and the usage on stderr, exit 2', async () => {
    const run = await runCli(['bogus']);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^easel: unknown command 'bogus'\n/);
    assert.match(run.stderr, /Usage: easel \[options\] \[command\]/);
  });

  it('an unknown option: the message, the command usage, exit 2', async () => {
    const run = await runCli(['pull', '--bogus']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^easel: unknown option '--bogus'\nUsage: easel pull \[options\] \[repo-or-alias\]\n/);
  });

  it('usage errors exit 2: a missing argument, extra arguments, help for an unknown command', async () => {
    const missing = await runCli(['pull']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^easel: missing argument 'repo-or-alias'/);
    assert.equal((await runCli(['models', 'extra'])).code, 2);
    assert.equal((await runCli(['serve', 'extra'])).code, 2);
    assert.equal((await runCli(['help', 'bogus'])).code, 2);
  });

  it('invalid configuration exits 78 with a message naming the setting', async () => {
    const run = await runCli(['models'], { PORT: 'eighty' });
    assert.equal(run.code, 78);
    assert.match(run.stderr, /^easel: Invalid configuration: PORT must be an integer/);
  });

  it('easel --version prints the package version', async () => {
    const run = await runCli(['--version']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('easel pull --list-aliases prints every alias with its repository', async () => {
    const run = await runCli(['pull', '--list-aliases']);
    assert.equal(run.code, 0, run.stderr);
    for (const [alias, repo] of [
      ['sd-turbo', 'onnxruntime/sd-turbo'],
      ['sdxl-turbo', 'stabilityai/sdxl-turbo'],
      ['lcm-dreamshaper-v7', 'SimianLuo/LCM_Dreamshaper_v7'],
      ['sd-2.1-base', 'aislamov/stable-diffusion-2-1-base-onnx (revision cpu)'],
      ['sd-turbo-fp16', 'schmuell/sd-turbo-ort-web'],
    ]) {
      assert.ok(run.stdout.includes(`${alias}  →  ${repo}`), alias);
    }
  });
});
