// Which operation-store failures the HTTP layer answers as the catalogue's databaseUnavailable (503).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isDatabaseUnavailable } from '../../src/jobs/database-errors.ts';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

test('a database that cannot be reached or used now counts as unavailable', () => {
  for (const error of [
    withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    withCode('terminating connection due to administrator command', '57P01'),
    withCode('the database system is starting up', '57P03'),
    withCode('sorry, too many clients already', '53300'),
    withCode('connection failure', '08006'),
    new Error('query failed', { cause: withCode('connect ETIMEDOUT', 'ETIMEDOUT') }),
  ])
    assert.equal(isDatabaseUnavailable(error), true, error.message);
});

test('bugs, bad data and the HTTP clients own resets do not', () => {
  for (const error of [
    withCode('duplicate key value violates unique constraint', '23505'),
    withCode('relation "operations" does not exist', '42P01'),
    withCode('read ECONNRESET', 'ECONNRESET'),
    withCode('SQLITE_FULL: database or disk is full', 'SQLITE_FULL'),
    new Error('something else'),
    'a string',
    null,
  ])
    assert.equal(isDatabaseUnavailable(error), false, String(error));
});
