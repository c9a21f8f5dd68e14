import Database from 'better-sqlite3';
import { join } from 'node:path';

/**
 * One server per data directory: two would each "recover" the other's running operations and run
 * the same waiting ones twice. The lock is an exclusive SQLite transaction on a small file, so the
 * operating system releases it when the process dies, even by SIGKILL (a pid file would go stale).
 */
export class DataDirLock {
  private constructor(private readonly db: Database.Database) {}

  /** Take the lock, or throw an Error that says which directory is in use. */
  static acquire(dataDir: string): DataDirLock {
    const db = new Database(join(dataDir, 'server.lock'));
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      return new DataDirLock(db);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY') {
        throw new Error(`The data directory ${dataDir} is in use by another easel server. Stop it, or set EASEL_DATA_DIR.`);
      }
      throw error;
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
