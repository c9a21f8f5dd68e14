// The one mapping from whatever a job threw to the catalogue error its caller receives, and back.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { errors } from '../../src/contract/errors.ts';
import { EngineAbortedError, EngineError } from '../../src/engines/engine.ts';
import { JobCanceledError, JobTimeoutError, QueueClosedError, toJobFailure } from '../../src/jobs/job-failure.ts';

const JOB = '6f1c2b1e-0000-4000-8000-000000000001';

test('a catalogue error crosses as it is, and fromWire rebuilds the same answer', () => {
  const original = errors.invalidImage('mask', 'The mask has no transparent pixels.');
  const failure = toJobFailure(original, JOB);
  assert.deepEqual(failure, { status: 400, error: original.toWire().error });
  const rebuilt = errors.fromWire(failure.status, JSON.parse(JSON.stringify(failure.error)));
  assert.equal(rebuilt.status, 400);
  assert.deepEqual(rebuilt.toWire(), original.toWire());
});

test('inner_error survives the trip (a filtered image carries its annotations there)', () => {
  const original = errors.generatedImageFiltered('nsfw: sexual', { sexual: { filtered: true, severity: 'high' } });
  const failure = toJobFailure(original, JOB);
  assert.deepEqual(errors.fromWire(failure.status, failure.error).toWire(), original.toWire());
});

test("an engine's account of a model failure becomes generationFailed, with internals redacted", () => {
  const failure = toJobFailure(new EngineError('unet failed: cannot open /home/me/models/unet/model.onnx: EIO'), JOB);
  assert.equal(failure.status, 500);
  assert.equal(failure.error.code, 'InternalServerError');
  assert.match(failure.error.message, /unet failed/);
  assert.ok(failure.error.message.includes(JOB));
  for (const secret of ['/home', 'EIO']) assert.ok(!failure.error.message.includes(secret), secret);
});

test('timeout, shutdown and cancellation have their own codes', () => {
  assert.deepEqual(
    [toJobFailure(new JobTimeoutError(), JOB), toJobFailure(new QueueClosedError(), JOB)].map((f) => [
      f.status,
      f.error.code,
    ]),
    [
      [500, 'Timeout'],
      [503, 'ServiceUnavailable'],
    ],
  );
  assert.equal(toJobFailure(new JobCanceledError(), JOB).status, 499);
});

test('the operation database out of reach (a worker writing an image record) is databaseUnavailable, 503', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const shuttingDown = Object.assign(new Error('terminating connection due to administrator command'), {
    code: '57P01',
  });
  for (const cause of [refused, shuttingDown, new Error('Connection terminated unexpectedly')]) {
    const failure = toJobFailure(cause, JOB);
    assert.equal(failure.status, 503, cause.message);
    assert.equal(failure.error.code, 'ServiceUnavailable');
    assert.match(failure.error.message, /operation database/);
    assert.ok(failure.error.message.includes(JOB));
    assert.ok(!failure.error.message.includes('5432'));
  }
  // A statement the database refused is not an outage.
  const syntax = Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' });
  assert.equal(toJobFailure(syntax, JOB).status, 500);
});

test('anything else is an internal error naming the job, never its own text', () => {
  for (const thrown of [
    Object.assign(new Error("EACCES: permission denied, open '/srv/data/x.png'"), { code: 'EACCES' }),
    new EngineAbortedError(), // aborted without a reason the queue set: not the engine's account
    'a string',
    undefined,
  ]) {
    const failure = toJobFailure(thrown, JOB);
    assert.equal(failure.status, 500);
    assert.equal(failure.error.code, 'InternalServerError');
    assert.deepEqual(failure.error, errors.internal(JOB).toWire().error);
  }
});
