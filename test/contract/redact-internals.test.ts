import assert from 'node:assert/strict';
import { test } from 'node:test';

import { redactInternals } from '../../src/contract/errors.ts';

test('redactInternals takes out absolute paths (keeping the file name), errno codes and fields, and stack lines', () => {
  const cases: Array<[string, string]> = [
    [
      "EACCES: permission denied, open '/var/lib/easel/blobs/images/abc.png'",
      "error: permission denied, open '…/abc.png'",
    ],
    [
      'Load model from /data/models/sd/unet/model.onnx failed: Reshape node',
      'Load model from …/model.onnx failed: Reshape node',
    ],
    ['ENOSPC: no space left on device, write', 'error: no space left on device, write'],
    ['C:\\Users\\me\\models\\unet\\model.onnx broken', '…/model.onnx broken'],
    ['failed\n    at foo (/app/src/x.ts:1:2)\n    at bar', 'failed'],
    ["file:///app/src/x.ts:10 broke, errno: -13, syscall: 'open'", '…/x.ts:10 broke'],
  ];
  for (const [input, expected] of cases) assert.equal(redactInternals(input), expected, input);
});

test('redactInternals leaves ordinary messages alone: media types, sizes, URLs, words', () => {
  for (const text of [
    'image/png 1024/512 at https://x.example/y/z',
    'the mask is 64x64; it must be 128x128',
    'ERROR: the model said no',
  ]) {
    assert.equal(redactInternals(text), text);
  }
});
