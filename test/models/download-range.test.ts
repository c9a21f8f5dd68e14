// How a resumed download treats the server's answer to `Range: bytes=<have>-`.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { rangeDecision } from '../../src/models/download.ts';

test('a fresh download (nothing kept) appends the whole body of a 200', () => {
  assert.equal(rangeDecision(200, undefined, 0), 'append');
});

test('a 206 that starts where the partial file ends is appended', () => {
  assert.equal(rangeDecision(206, 1000, 1000), 'append');
});

test('a 200 to a resume is the whole file: the partial file starts over with this body', () => {
  assert.equal(rangeDecision(200, undefined, 1000), 'start-over');
});

test('a 206 of another range, or without a readable Content-Range, is dropped and the file asked for again from byte 0', () => {
  assert.equal(rangeDecision(206, 0, 1000), 'ask-again');
  assert.equal(rangeDecision(206, 2000, 1000), 'ask-again');
  assert.equal(rangeDecision(206, undefined, 1000), 'ask-again');
});
