import assert from 'node:assert/strict';
import { test } from 'node:test';

import { imageIdOfKey, imageKey } from '../../src/storage/index.ts';

test('image keys name the id and extension, and the id reads back out of them', () => {
  assert.equal(imageKey('abc', 'jpeg'), 'images/abc.jpg');
  assert.equal(imageIdOfKey('images/abc.jpg'), 'abc');
  assert.equal(imageIdOfKey('images/abc.gif'), null);
  assert.equal(imageIdOfKey('images/x/abc.png'), null);
  assert.equal(imageIdOfKey('other/abc.png'), null);
});
