// gpt-image-1 edits (docs/azure-api.md: request parameters, what the clients send): image / image[] uploads sniffed by
// their bytes, masks,
// and multipart scalars that arrive as strings.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { decode, halfMask, solidPng, startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, b64, editsUrl, file, type Part, postForm } from './helpers.ts';
import { gif, gradientPixels, gradientPng, jpeg, rgbPng, webp } from './images.ts';

let app: TestApp;
let small: Buffer;
before(async () => {
  app = await startTestApp();
  small = await solidPng(16, 16);
});
after(() => app.dispose());

const edit = (parts: Part[], deployment = 'gpt-image-1') =>
  postForm(app, editsUrl(deployment), [{ name: 'prompt', value: 'add a red hat' }, ...parts]);

async function editOk(parts: Part[]) {
  const res = await edit(parts);
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Record<string, any>;
}

describe('images', () => {
  test('a single `image` part is edited', async () => {
    assert.equal((await editOk([file('image', small)])).data.length, 1);
  });

  test('repeated `image[]` parts are accepted (two images)', async () => {
    const body = await editOk([file('image[]', small), file('image[]', await solidPng(16, 16, [200, 0, 0, 255]))]);
    assert.equal(body.data.length, 1);
    assert.ok(body.usage.input_tokens_details.image_tokens > 0);
  });

  test('16 `image[]` parts are accepted', async () => {
    const parts = Array.from({ length: 16 }, () => file('image[]', small));
    assert.equal((await editOk(parts)).data.length, 1);
  });

  test('17 `image[]` parts answer 400 naming image', async () => {
    const parts = Array.from({ length: 17 }, () => file('image[]', small));
    assertError(await edit(parts), 400, 'invalid_parameter', 'image');
  });

  test('17 images and a mask answer 400 naming image', async () => {
    const parts = [...Array.from({ length: 17 }, () => file('image[]', small)), file('mask', await halfMask(16, 16))];
    assertError(await edit(parts), 400, 'invalid_parameter', 'image');
  });

  test('a dall-e-2 deployment takes one image; two answer 400 naming image', async () => {
    assertError(
      await edit([file('image[]', small), file('image[]', small)], 'dall-e-2'),
      400,
      'invalid_parameter',
      'image',
    );
  });

  test('an edit without an image answers 400 missing_required_parameter naming image', async () => {
    assertError(await edit([]), 400, 'missing_required_parameter', 'image');
  });

  test('a JPEG labelled application/octet-stream is accepted (bytes are sniffed)', async () => {
    const body = await editOk([file('image', await jpeg(24, 16), 'application/octet-stream', 'unknown_file')]);
    assert.equal(body.size, '24x16');
  });

  test('a WebP labelled application/octet-stream is accepted', async () => {
    const body = await editOk([file('image', await webp(20, 20), 'application/octet-stream', 'unknown_file')]);
    assert.equal(body.size, '20x20');
  });

  test('a text file labelled image/png answers 400 invalid_image naming image', async () => {
    assertError(
      await edit([file('image', Buffer.from('hello, I am not a picture'), 'image/png')]),
      400,
      'invalid_image',
      'image',
    );
  });

  test('a GIF answers 400 invalid_image naming image', async () => {
    assertError(await edit([file('image', await gif(8, 8), 'image/gif', 'a.gif')]), 400, 'invalid_image', 'image');
  });

  test('a truncated PNG answers 400 invalid_image naming image', async () => {
    const png = await gradientPng(64, 64);
    assertError(await edit([file('image', png.subarray(0, png.length / 2))]), 400, 'invalid_image', 'image');
  });

  test('a bad second `image[]` is reported as image', async () => {
    assertError(
      await edit([file('image[]', small), file('image[]', Buffer.from('nope'))]),
      400,
      'invalid_image',
      'image',
    );
  });

  test('an image sent as base64 in a text field is accepted', async () => {
    assert.equal((await editOk([{ name: 'image', value: small.toString('base64') }])).data.length, 1);
  });

  test('an image sent as a URL in a text field answers 400 invalid_image naming image', async () => {
    assertError(await edit([{ name: 'image', value: 'https://example.com/cat.png' }]), 400, 'invalid_image', 'image');
  });
});

describe('masks', () => {
  test('a mask of another size answers 400 invalid_image naming mask', async () => {
    assertError(await edit([file('image', small), file('mask', await halfMask(32, 16))]), 400, 'invalid_image', 'mask');
  });

  test('a mask without alpha (RGB PNG) answers 400 invalid_image naming mask', async () => {
    assertError(await edit([file('image', small), file('mask', await rgbPng(16, 16))]), 400, 'invalid_image', 'mask');
  });

  test('a JPEG mask answers 400 invalid_image naming mask', async () => {
    assertError(
      await edit([file('image', small), file('mask', await jpeg(16, 16), 'image/jpeg')]),
      400,
      'invalid_image',
      'mask',
    );
  });

  test('a fully opaque mask (nothing to edit) answers 400 invalid_image naming mask; a fully transparent one edits everything', async () => {
    const opaque = await solidPng(16, 16, [0, 0, 0, 255]);
    assertError(await edit([file('image', small), file('mask', opaque)]), 400, 'invalid_image', 'mask');
    const clear = await solidPng(16, 16, [0, 0, 0, 0]);
    await editOk([file('image', small), file('mask', clear)]);
  });

  test('two masks answer 400 naming mask', async () => {
    const mask = await halfMask(16, 16);
    assertError(
      await edit([file('image', small), file('mask', mask), file('mask', mask)]),
      400,
      'invalid_parameter',
      'mask',
    );
  });

  test('a masked edit keeps every opaque-mask pixel exactly and changes the transparent region', async () => {
    const [width, height] = [64, 48];
    const body = await editOk([
      file('image', await gradientPng(width, height)),
      file('mask', await halfMask(width, height)),
    ]);
    const out = await decode(b64(body.data[0]!));
    assert.deepEqual([out.width, out.height], [width, height]);
    const input = gradientPixels(width, height);
    let changed = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        const same = input.subarray(i, i + 4).equals(out.data.subarray(i, i + 4));
        if (x >= width / 2) assert.ok(same, `pixel ${x},${y} under the opaque mask changed`);
        else if (!same) changed++;
      }
    }
    assert.ok(changed > (width * height) / 4, `only ${changed} pixels changed in the transparent half`);
  });

  test('with several images the mask applies to the first', async () => {
    const [width, height] = [32, 32];
    const body = await editOk([
      file('image[]', await gradientPng(width, height)),
      file('image[]', await solidPng(width, height, [0, 0, 0, 255])),
      file('mask', await halfMask(width, height)),
    ]);
    const out = await decode(b64(body.data[0]!));
    const input = gradientPixels(width, height);
    for (let y = 0; y < height; y++) {
      const i = (y * width + width - 1) * 4;
      assert.ok(input.subarray(i, i + 4).equals(out.data.subarray(i, i + 4)), `pixel ${width - 1},${y} changed`);
    }
  });
});

describe('multipart scalars', () => {
  test('n="2" answers two images', async () => {
    assert.equal((await editOk([{ name: 'n', value: '2' }, file('image', small)])).data.length, 2);
  });

  test('stream="false" answers plain JSON', async () => {
    const res = await edit([{ name: 'stream', value: 'false' }, file('image', small)]);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  });

  test('n="abc" answers 400 naming n', async () => {
    assertError(await edit([{ name: 'n', value: 'abc' }, file('image', small)]), 400, 'invalid_parameter', 'n');
  });

  test('size="1024x1024" resizes a small input to exactly 1024x1024', async () => {
    const body = await editOk([{ name: 'size', value: '1024x1024' }, file('image', small)]);
    const out = await decode(b64(body.data[0]!));
    assert.deepEqual([out.width, out.height, body.size], [1024, 1024, '1024x1024']);
  });

  test('size="auto" keeps the input size', async () => {
    const body = await editOk([{ name: 'size', value: 'auto' }, file('image', await solidPng(30, 20))]);
    assert.equal(body.size, '30x20');
  });

  test('output_format="jpeg" with output_compression="50" answers a JPEG', async () => {
    const body = await editOk([
      { name: 'output_format', value: 'jpeg' },
      { name: 'output_compression', value: '50' },
      file('image', small),
    ]);
    assert.equal((await decode(b64(body.data[0]!))).format, 'jpeg');
    assert.equal(body.output_format, 'jpeg');
  });

  test('quality="standard" and input_fidelity="high" are accepted; quality reads high', async () => {
    const body = await editOk([
      { name: 'quality', value: 'standard' },
      { name: 'input_fidelity', value: 'high' },
      file('image', small),
    ]);
    assert.equal(body.quality, 'high');
  });

  test('an unknown form field answers 400 unknown_parameter naming it', async () => {
    assertError(
      await edit([{ name: 'guidance', value: '0.5' }, file('image', small)]),
      400,
      'unknown_parameter',
      'guidance',
    );
  });

  test('response_format on a gpt-image-1 edit answers 400 unsupported_parameter', async () => {
    assertError(
      await edit([{ name: 'response_format', value: 'url' }, file('image', small)]),
      400,
      'unsupported_parameter',
      'response_format',
    );
  });
});
