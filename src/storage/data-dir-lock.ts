import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

const LOCK_FILE = 'server.lock';
/** Beside the lock: where the server that holds it listens, for the CLI. */
const SERVER_FILE = 'server.json';

/** Another process holds the data directory's lock. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    /** Where the holder said it listens, when it recorded that. */
    readonly url: string | null,
  ) {
    super(
      `The data directory ${dataDir} is in use by another easel server${url ? ` (it serves ${url})` : ''}. Stop it, or set EASEL_DATA_DIR.`,
    );
    this.name = 'DataDirInUseError';
  }
}

/**
 * One server per data directory: two would each "recover" the other's running operations and run
 * the same waiting ones twice. The lock is an exclusive SQLite transaction on a small file, so the
 * operating system releases it when the process dies, even by SIGKILL (a pid file would go stale).
 * The server also records its URL beside the lock; that record is believed only while the lock is
 * held, so a record left by a killed server is never followed.
 */
export class DataDirLock {
  private recorded = false;

  private constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
  ) {}

  /** Take the lock, or throw a DataDirInUseError that says which directory is in use. */
  static acquire(dataDir: string): DataDirLock {
    const db = new Database(join(dataDir, LOCK_FILE));
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      // A record left by a holder that was killed must not point the CLI at nothing.
      rmSync(join(dataDir, SERVER_FILE), { force: true });
      return new DataDirLock(db, dataDir);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY')
        throw new DataDirInUseError(dataDir, readServerUrl(dataDir));
      throw error;
    }
  }

  /**
   * Whether a server holds the directory, and the URL it recorded (null when it holds the lock
   * but has not recorded one yet, e.g. while it starts, or a process that is no server).
   */
  static holder(dataDir: string): { url: string | null } | null {
    let lock: DataDirLock;
    try {
      lock = DataDirLock.acquire(dataDir);
    } catch (error) {
      if (!(error instanceof DataDirInUseError)) throw error;
      return { url: error.url };
    }
    lock.release();
    return null;
  }

  /** Records where the holder listens (written whole through a rename, so a reader never sees half). */
  recordUrl(url: string): void {
    const path = join(this.dataDir, SERVER_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify({ url, pid: process.pid }) + '\n');
    renameSync(`${path}.tmp`, path);
    this.recorded = true;
  }

  release(): void {
    if (!this.db.open) return;
    if (this.recorded) rmSync(join(this.dataDir, SERVER_FILE), { force: true });
    this.db.close();
  }
}

function readServerUrl(dataDir: string): string | null {
  try {
    const { url } = JSON.parse(readFileSync(join(dataDir, SERVER_FILE), 'utf8')) as { url?: unknown };
    return typeof url === 'string' ? url : null;
  } catch {
    return null;
  }
}
