import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { buildClipVocab, loadClipTokenizer } from '../../../src/engines/diffusion/tokenizer/index.ts';

// Layout ids (buildClipVocab): 'h e</w>' is merge 0 → id 512, BOS 513, EOS 514, '!' 0.
const MERGES = ['h e</w>'];
const [HE, BOS, EOS] = [512, 513, 514];
const added = (content: string) => ({
  content,
  lstrip: false,
  normalized: true,
  rstrip: false,
  single_word: false,
  special: true,
});
// As published for runwayml/stable-diffusion-v1-5 (legacy files: AddedToken objects, pad as a string).
const SD1_CONFIG = {
  bos_token: added('<|startoftext|>'),
  eos_token: added('<|endoftext|>'),
  unk_token: added('<|endoftext|>'),
  pad_token: '<|endoftext|>',
  model_max_length: 77,
  do_lower_case: true,
  tokenizer_class: 'CLIPTokenizer',
};
// As in stabilityai/sd-turbo and SDXL tokenizer_2: pad '!', here as an object in one file and a string in the other.
const SD2_MAP = {
  bos_token: added('<|startoftext|>'),
  eos_token: added('<|endoftext|>'),
  unk_token: added('<|endoftext|>'),
  pad_token: '!',
};

const root = await mkdtemp(join(tmpdir(), 'easel-tokenizer-'));
after(() => rm(root, { recursive: true, force: true }));
let folders = 0;

type Files = Record<string, string | object | undefined>;
/** Writes a model folder with `sub/` holding the given files (undefined = left out) and returns `sub/`'s path. */
async function folder(files: Files, sub = 'tokenizer'): Promise<string> {
  const dir = join(root, `model-${folders++}`, sub);
  await mkdir(dir, { recursive: true });
  const all: Files = {
    'vocab.json': buildClipVocab(MERGES),
    'merges.txt': ['#version: 0.2', ...MERGES, ''].join('\n'),
    'tokenizer_config.json': SD1_CONFIG,
    'special_tokens_map.json': { ...SD1_CONFIG, model_max_length: undefined },
    ...files,
  };
  for (const [name, content] of Object.entries(all)) {
    if (content !== undefined)
      await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

async function rejectsNaming(files: Files, file: string, sub = 'tokenizer'): Promise<void> {
  await assert.rejects(loadClipTokenizer(await folder(files, sub)), (error: Error & { file?: string }) => {
    assert.equal(error.name, 'TokenizerLoadError');
    assert.equal(error.file, file);
    assert.ok(error.message.startsWith(`${file} `), error.message);
    return true;
  });
}

test('an SD 1.x tokenizer folder loads and pads with <|endoftext|>', async () => {
  const tokenizer = await loadClipTokenizer(await folder({}));
  assert.deepEqual(
    [tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId, tokenizer.maxLength],
    [BOS, EOS, EOS, 77],
  );
  assert.deepEqual(tokenizer.encode('He!').inputIds.slice(0, 6), [BOS, HE, 256, EOS, EOS, EOS]);
});

test('an SD 2.x / SDXL tokenizer_2 folder pads with ! (id 0), given as a string or as {content}', async () => {
  const asString = await loadClipTokenizer(
    await folder({ 'special_tokens_map.json': SD2_MAP, 'tokenizer_config.json': undefined }, 'tokenizer_2'),
  );
  const asObject = await loadClipTokenizer(
    await folder({
      'special_tokens_map.json': { ...SD2_MAP, pad_token: added('!') },
      'tokenizer_config.json': { ...SD1_CONFIG, pad_token: added('!') },
    }),
  );
  assert.deepEqual([asString.padTokenId, asObject.padTokenId], [0, 0]);
  assert.deepEqual(asObject.encode('he').inputIds.slice(0, 5), [BOS, HE, EOS, 0, 0]);
});

test('without added_tokens_decoder, special_tokens_map.json overrides tokenizer_config.json', async () => {
  const tokenizer = await loadClipTokenizer(await folder({ 'special_tokens_map.json': SD2_MAP }));
  assert.equal(tokenizer.padTokenId, 0);
});

test('with added_tokens_decoder, tokenizer_config.json wins and its ids come before vocab.json', async () => {
  const vocab = buildClipVocab(MERGES);
  delete vocab['<|startoftext|>'];
  const config = {
    ...SD1_CONFIG,
    pad_token: '!',
    added_tokens_decoder: { '0': added('!'), '49406': added('<|startoftext|>'), '514': added('<|endoftext|>') },
  };
  const tokenizer = await loadClipTokenizer(await folder({ 'vocab.json': vocab, 'tokenizer_config.json': config }));
  assert.deepEqual([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId], [49406, EOS, 0]);
});

test("model_max_length sets the encoding length; transformers' unset value means 77", async () => {
  const short = await loadClipTokenizer(
    await folder({ 'tokenizer_config.json': { ...SD1_CONFIG, model_max_length: 8 } }),
  );
  assert.deepEqual(short.encode('he he he he he he he').inputIds, [BOS, HE, HE, HE, HE, HE, HE, EOS]);
  const unset = await loadClipTokenizer(
    await folder({ 'tokenizer_config.json': { ...SD1_CONFIG, model_max_length: 1e30 } }),
  );
  assert.equal(unset.encode('he').inputIds.length, 77);
});

test('a missing vocab.json or merges.txt is an error naming it', async () => {
  await rejectsNaming({ 'vocab.json': undefined }, 'tokenizer/vocab.json');
  await rejectsNaming({ 'merges.txt': undefined }, 'tokenizer/merges.txt');
  await rejectsNaming({ 'merges.txt': undefined }, 'tokenizer_2/merges.txt', 'tokenizer_2');
});

test('missing both tokenizer_config.json and special_tokens_map.json is an error naming them', async () => {
  await rejectsNaming(
    { 'tokenizer_config.json': undefined, 'special_tokens_map.json': undefined },
    'tokenizer/tokenizer_config.json',
  );
});

test('a malformed file is an error naming it', async () => {
  await rejectsNaming({ 'vocab.json': '{"a": 1,' }, 'tokenizer/vocab.json');
  await rejectsNaming({ 'vocab.json': '["a"]' }, 'tokenizer/vocab.json');
  await rejectsNaming({ 'vocab.json': { a: 'one' } }, 'tokenizer/vocab.json');
  await rejectsNaming({ 'merges.txt': '' }, 'tokenizer/merges.txt');
  await rejectsNaming({ 'merges.txt': '#version: 0.2\nh e</w>\nl o w\n' }, 'tokenizer/merges.txt');
  await rejectsNaming({ 'tokenizer_config.json': 'not json' }, 'tokenizer/tokenizer_config.json');
  await rejectsNaming(
    { 'tokenizer_config.json': { ...SD1_CONFIG, model_max_length: 'long' } },
    'tokenizer/tokenizer_config.json',
  );
  await rejectsNaming(
    { 'tokenizer_config.json': { ...SD1_CONFIG, added_tokens_decoder: { x: added('!') } } },
    'tokenizer/tokenizer_config.json',
  );
  await rejectsNaming({ 'special_tokens_map.json': { pad_token: 0 } }, 'tokenizer/special_tokens_map.json');
});

test('a special token with no id is an error naming vocab.json', async () => {
  await rejectsNaming({ 'special_tokens_map.json': { ...SD2_MAP, pad_token: '<pad>' } }, 'tokenizer/vocab.json');
});
