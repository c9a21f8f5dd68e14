// The catalogue's 503 for a deployment that no live worker serves: Azure's envelope, the code the other
// 503s use (clients and SDKs retry it), and a message that names the deployment and what to do.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError, errors } from '../../src/contract/errors.ts';

test('no live worker: 503 ServiceUnavailable in the envelope, naming the deployment and saying to start a worker', () => {
  const error = errors.noLiveWorker('dall-e-3');
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 503);
  assert.equal(error.code, errors.shuttingDown('r').code);
  const wire = error.toWire();
  assert.deepEqual(Object.keys(wire), ['error']);
  assert.deepEqual(Object.keys(wire.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(wire.error.code, 'ServiceUnavailable');
  assert.equal(wire.error.param, null);
  assert.equal(wire.error.type, null);
  assert.match(wire.error.message, /'dall-e-3'/);
  assert.match(wire.error.message, /Start a worker \(easel worker\)/);
  assert.match(error.reason ?? '', /workers\.deadAfterSeconds/);
  assert.deepEqual(error.headers, { 'retry-after': '5' });
});

test('no live worker while some are still loading the deployment: the message says so instead', () => {
  const one = errors.noLiveWorker('images', 1).toWire().error;
  assert.equal(one.code, 'ServiceUnavailable');
  assert.match(one.message, /'images': 1 worker is still loading it; retry shortly\./);
  assert.match(errors.noLiveWorker('images', 3).toWire().error.message, /3 workers are still loading it/);
  assert.doesNotMatch(one.message, /Start a worker/);
});
