// Real servers for adapter tests, started by the project's own scripts/services/*.sh (never mocks).
// When a server's Debian package is missing: under CI (CI set) the tests fail naming the package;
// elsewhere they are skipped with a message saying how to install it.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const SCRIPTS = resolve(import.meta.dirname, '../../scripts/services');
/** The scripts' exit status for "binary not installed". */
const MISSING_PACKAGE = 3;

export type ServiceName = 'postgres' | 'redis' | 's3';

export interface RunningService {
  /** The URL the script printed (DATABASE_URL, REDIS_URL or the S3 endpoint). */
  url: string;
  /** Variables the script wrote to its env file. */
  env: Record<string, string>;
  /** The script's --dir: the server's state, pid files and logs. */
  dir: string;
  stop(): void;
  /** Stops the server (its data is lost, as the scripts keep none) but keeps its port for `resume`. */
  halt(): void;
  /** Starts the halted server again on the same port and directory; throws when it fails to start. */
  resume(): void;
}

export type ServiceStart = { ok: true; service: RunningService } | { ok: false; missing: string };

/** Starts one throwaway server in its own temporary directory; throws when it fails to start. */
export function startService(name: ServiceName): ServiceStart {
  const base = mkdtempSync(join(tmpdir(), `easel-${name}-`));
  // PostgreSQL runs as the 'postgres' user when the tests run as root: it must enter the directory.
  chmodSync(base, 0o711);
  const dir = join(base, name);
  const script = join(SCRIPTS, `${name}.sh`);
  const result = spawnSync('bash', [script, 'start', '--dir', dir], { encoding: 'utf8' });
  if (result.status === MISSING_PACKAGE) {
    rmSync(base, { recursive: true, force: true });
    return { ok: false, missing: result.stderr.trim() };
  }
  if (result.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    throw new Error(`scripts/services/${name}.sh start failed (status ${result.status}):\n${result.stderr}`);
  }
  const env = Object.fromEntries(
    readFileSync(join(dir, 'env'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const url = result.stdout.trim().split('\n').at(-1)!;
  return {
    ok: true,
    service: {
      url,
      env,
      dir,
      stop() {
        spawnSync('bash', [script, 'stop', '--dir', dir]);
        rmSync(base, { recursive: true, force: true });
      },
      halt() {
        spawnSync('bash', [script, 'stop', '--dir', dir]);
      },
      resume() {
        const port = new URL(url).port;
        const again = spawnSync('bash', [script, 'start', '--dir', dir, '--port', port], { encoding: 'utf8' });
        if (again.status !== 0) throw new Error(`scripts/services/${name}.sh start again failed:\n${again.stderr}`);
      },
    },
  };
}

/**
 * Registers, in place of a suite whose server is not installed, one test that fails under CI and is
 * skipped elsewhere; the message names the Debian package either way.
 */
export function reportMissingService(suite: string, missing: string): void {
  if (process.env.CI) {
    test(`${suite}: server installed (required under CI)`, () => {
      throw new Error(`${missing}\nUnder CI this suite must run; .ci/run installs the package.`);
    });
    return;
  }
  const message = `${missing} — skipping ${suite}`;
  process.stderr.write(`\n*** ${message}\n\n`);
  test(`${suite}`, { skip: message }, () => undefined);
}

/** What S3BlobStore needs to reach the radosgw that scripts/services/s3.sh started. */
export function s3Connection(service: RunningService): {
  endpoint: string;
  region: string;
  forcePathStyle: true;
  credentials: { accessKeyId: string; secretAccessKey: string };
} {
  return {
    endpoint: service.url,
    region: service.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: service.env.AWS_ACCESS_KEY_ID!, secretAccessKey: service.env.AWS_SECRET_ACCESS_KEY! },
  };
}
