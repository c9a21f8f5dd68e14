// The start-up connectivity check of a scale-out node, against real Redis and PostgreSQL
// (scripts/services), a local HTTP server standing for the S3 endpoint, closed ports and a server that
// accepts connections but never answers.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { checkServices, s3Endpoint, ServicesUnreachableError } from '../../src/config/check-services.ts';
import type { SharedServiceSettings } from '../../src/config/scale-out.ts';
import { reportMissingService, type RunningService, startService } from '../helpers/services.ts';

function settings(redis: string, database: string, endpoint: string): SharedServiceSettings {
  return {
    redis: { url: redis },
    database: { url: database, schema: null },
    s3: { endpoint, bucket: 'easel', region: 'us-east-1', forcePathStyle: true, presignedUrls: false },
    queue: { lockSeconds: 10, stalledCheckSeconds: 5, attempts: 2 },
    workers: { heartbeatSeconds: 5, deadAfterSeconds: 15 },
  };
}

/** A port nothing listens on: one the kernel gave and that was closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Accepts connections and never answers. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('checkServices', () => {
  test('the S3 endpoint defaults to AWS S3 of the region', () => {
    const s3 = settings('', '', '').s3;
    assert.equal(s3Endpoint({ ...s3, endpoint: null, region: 'eu-west-3' }), 'https://s3.eu-west-3.amazonaws.com');
    assert.equal(s3Endpoint({ ...s3, endpoint: 'http://127.0.0.1:9000' }), 'http://127.0.0.1:9000');
  });

  test('closed ports: each service is named with its variable, its URL (no password) and the cause', async () => {
    const [r, p, s] = [await closedPort(), await closedPort(), await closedPort()];
    const checked = checkServices(
      settings(
        `redis://:hunter2@127.0.0.1:${r}`,
        `postgres://easel:hunter2@127.0.0.1:${p}/easel`,
        `http://127.0.0.1:${s}`,
      ),
      { timeoutMs: 5000 },
    );
    await assert.rejects(checked, (error: unknown) => {
      assert.ok(error instanceof ServicesUnreachableError);
      assert.deepEqual(error.message.split('\n'), [
        `EASEL_REDIS_URL: cannot reach redis://:***@127.0.0.1:${r}: connection refused (the file's redis.url)`,
        `EASEL_DATABASE_URL: cannot reach postgres://easel:***@127.0.0.1:${p}/easel: connection refused (the file's database.url)`,
        `EASEL_S3_ENDPOINT: cannot reach http://127.0.0.1:${s}: connection refused (the file's s3.endpoint)`,
      ]);
      assert.deepEqual(
        error.problems.map((problem) => [problem.setting, problem.variable]),
        [
          ['redis.url', 'EASEL_REDIS_URL'],
          ['database.url', 'EASEL_DATABASE_URL'],
          ['s3.endpoint', 'EASEL_S3_ENDPOINT'],
        ],
      );
      return true;
    });
  });

  test('a server that accepts but never answers fails within the timeout', async () => {
    const silent = await silentServer();
    try {
      const url = `127.0.0.1:${silent.port}`;
      await assert.rejects(
        checkServices(settings(`redis://${url}`, `postgres://${url}/easel`, `http://${url}`), { timeoutMs: 300 }),
        (error: unknown) => {
          assert.ok(error instanceof ServicesUnreachableError);
          assert.equal(error.problems.length, 3);
          for (const problem of error.problems) assert.match(problem.message, /: no answer within 0\.3 s$/);
          return true;
        },
      );
    } finally {
      await silent.close();
    }
  });
});

const redis = startService('redis');
const postgres = startService('postgres');
if (!redis.ok) reportMissingService('checkServices on Redis', redis.missing);
if (!postgres.ok) reportMissingService('checkServices on PostgreSQL', postgres.missing);
if (redis.ok && postgres.ok) {
  const services: RunningService[] = [redis.service, postgres.service];
  const [redisUrl, databaseUrl] = [redis.service.url, postgres.service.url];
  // Any HTTP answer shows the endpoint is reachable: an S3 server without credentials answers 403.
  const s3 = createHttpServer((_request, response) => response.writeHead(403).end());
  let endpoint = '';

  before(async () => {
    await new Promise<void>((resolve) => s3.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(s3.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => s3.close(() => resolve()));
    for (const service of services) service.stop();
  });

  describe('checkServices (real Redis and PostgreSQL)', () => {
    test('all three reachable: it resolves', async () => {
      await checkServices(settings(redisUrl, databaseUrl, endpoint));
    });

    test('one unreachable service is the only one named', async () => {
      const port = await closedPort();
      await assert.rejects(
        checkServices(settings(redisUrl, databaseUrl, `http://127.0.0.1:${port}`)),
        (error: unknown) => {
          assert.ok(error instanceof ServicesUnreachableError);
          assert.equal(
            error.message,
            `EASEL_S3_ENDPOINT: cannot reach http://127.0.0.1:${port}: connection refused (the file's s3.endpoint)`,
          );
          return true;
        },
      );
    });

    test('PostgreSQL answering with an error (no such database) is reported with its message', async () => {
      const missing = new URL(databaseUrl);
      missing.pathname = '/no_such_database';
      await assert.rejects(checkServices(settings(redisUrl, missing.href, endpoint)), (error: unknown) => {
        assert.ok(error instanceof ServicesUnreachableError);
        assert.match(error.message, /^EASEL_DATABASE_URL: cannot reach .*: database "no_such_database" does not exist/);
        return true;
      });
    });

    test('Redis answering with an error (a user it does not know) is reported with its message', async () => {
      const withPassword = new URL(redisUrl);
      withPassword.username = 'nobody';
      withPassword.password = 'hunter2';
      await assert.rejects(checkServices(settings(withPassword.href, databaseUrl, endpoint)), (error: unknown) => {
        assert.ok(error instanceof ServicesUnreachableError);
        assert.match(
          error.message,
          /^EASEL_REDIS_URL: cannot reach redis:\/\/nobody:\*\*\*@127\.0\.0\.1:\d+\/?: WRONGPASS/,
        );
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      });
    });
  });
}
