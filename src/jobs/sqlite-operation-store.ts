/**
 * OperationStore on SQLite (better-sqlite3): the embedded default, one file in the data directory.
 * better-sqlite3 is synchronous; the methods are async only to honour the port, which a Redis
 * adapter implements with real I/O.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import type {
  ExpiryCursor,
  ExpiryPage,
  ImageRecord,
  OperationRecord,
  OperationStatus,
  OperationStore,
  SweepLease,
} from './operation-store.ts';

export const DATABASE_FILE_NAME = 'easel.db';

/**
 * Schema migrations, in order; `PRAGMA user_version` holds how many have run. Append, never edit:
 * a database created by an older easel is brought forward step by step.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE operations (
     id TEXT PRIMARY KEY,
     status TEXT NOT NULL,
     deployment TEXT NOT NULL,
     request_json TEXT NOT NULL,
     created INTEGER NOT NULL,
     expires INTEGER NOT NULL,
     updated INTEGER NOT NULL,
     result_json TEXT,
     error_json TEXT
   );
   CREATE INDEX operations_status ON operations (status, created);
   CREATE INDEX operations_expires ON operations (expires);
   CREATE TABLE images (
     id TEXT PRIMARY KEY,
     key TEXT NOT NULL,
     content_type TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     deployment TEXT NOT NULL,
     operation_id TEXT,
     created INTEGER NOT NULL,
     expires INTEGER NOT NULL
   );
   CREATE INDEX images_operation ON images (operation_id);
   CREATE INDEX images_expires ON images (expires);`,
  // Expiry pages walk (expires, id) from a cursor (keyset pagination).
  `CREATE INDEX operations_expires_id ON operations (expires, id);
   DROP INDEX operations_expires;
   CREATE INDEX images_expires_id ON images (expires, id);
   DROP INDEX images_expires;`,
];

interface OperationRow {
  id: string;
  status: OperationStatus;
  deployment: string;
  request_json: string;
  created: number;
  expires: number;
  updated: number;
  result_json: string | null;
  error_json: string | null;
}

interface ImageRow {
  id: string;
  key: string;
  content_type: string;
  width: number;
  height: number;
  deployment: string;
  operation_id: string | null;
  created: number;
  expires: number;
}

export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`The database schema (version ${version}) is newer than this easel understands.`);
  }
  const run = db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  });
  // IMMEDIATE takes the write lock before reading, so two processes cannot migrate at once.
  run.immediate();
}

/** Prepared once per store; a list of statuses travels as JSON and is expanded by json_each. */
function prepareStatements(db: Database.Database) {
  return {
    insertOperation: db.prepare(
      `INSERT INTO operations (id, status, deployment, request_json, created, expires, updated, result_json, error_json)
       VALUES (@id, @status, @deployment, @request_json, @created, @expires, @updated, @result_json, @error_json)`,
    ),
    getOperation: db.prepare('SELECT * FROM operations WHERE id = ?'),
    // One statement is one atomic move: it checks the status and writes in the same step.
    transition: db.prepare(
      `UPDATE operations SET
         status = @status,
         updated = CASE WHEN @set_updated THEN @updated ELSE updated END,
         result_json = CASE WHEN @set_result THEN @result_json ELSE result_json END,
         error_json = CASE WHEN @set_error THEN @error_json ELSE error_json END
       WHERE id = @id AND status IN (SELECT value FROM json_each(@from_json))
       RETURNING *`,
    ),
    listOperations: db.prepare(
      `SELECT * FROM operations WHERE status IN (SELECT value FROM json_each(?)) ORDER BY created, rowid`,
    ),
    deleteOperation: db.prepare('DELETE FROM operations WHERE id = ?'),
    putImage: db.prepare(
      `INSERT OR REPLACE INTO images (id, key, content_type, width, height, deployment, operation_id, created, expires)
       VALUES (@id, @key, @content_type, @width, @height, @deployment, @operation_id, @created, @expires)`,
    ),
    getImage: db.prepare('SELECT * FROM images WHERE id = ?'),
    listImagesOfOperation: db.prepare('SELECT * FROM images WHERE operation_id = ? ORDER BY created, rowid'),
    deleteImage: db.prepare('DELETE FROM images WHERE id = ?'),
    expiredOperationIds: db.prepare('SELECT id FROM operations WHERE expires <= ? ORDER BY expires').pluck(),
    expiredImages: db.prepare('SELECT * FROM images WHERE expires <= ? ORDER BY expires'),
    // A row-value comparison on the (expires, id) index, as in the PostgreSQL store; one row more
    // than the page says whether another page follows.
    expiredOperationsPage: db.prepare(
      `SELECT id, expires FROM operations
       WHERE expires <= @now AND (@after_expires IS NULL OR (expires, id) > (@after_expires, @after_id))
       ORDER BY expires, id LIMIT @limit`,
    ),
    expiredImagesPage: db.prepare(
      `SELECT * FROM images
       WHERE expires <= @now AND (@after_expires IS NULL OR (expires, id) > (@after_expires, @after_id))
       ORDER BY expires, id LIMIT @limit`,
    ),
  };
}

export class SqliteOperationStore implements OperationStore {
  readonly #db: Database.Database;
  readonly #sql: ReturnType<typeof prepareStatements>;
  /** One process per data directory, so the sweeper lease is a flag in memory. */
  #sweepLeased = false;

  /** The store in `<dataDir>/easel.db`, creating the directory if needed. */
  static inDataDir(dataDir: string): SqliteOperationStore {
    mkdirSync(dataDir, { recursive: true });
    return new SqliteOperationStore(join(dataDir, DATABASE_FILE_NAME));
  }

  /** `path` is a file, or ':memory:' for a store that lives as long as the object. */
  constructor(path: string) {
    const db = new Database(path);
    this.#db = db;
    try {
      // WAL lets the file route read while a worker writes; NORMAL sync is safe under WAL.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // Another easel process (a CLI command, a worker) may hold the write lock for a moment.
      db.pragma('busy_timeout = 5000');
      migrate(db);
      this.#sql = prepareStatements(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  async createOperation(record: OperationRecord): Promise<void> {
    this.#sql.insertOperation.run({
      id: record.id,
      status: record.status,
      deployment: record.deployment,
      request_json: JSON.stringify(record.request),
      created: record.created,
      expires: record.expires,
      updated: record.updated,
      result_json: toJson(record.result),
      error_json: toJson(record.error),
    });
  }

  async getOperation(id: string): Promise<OperationRecord | null> {
    const row = this.#sql.getOperation.get(id) as OperationRow | undefined;
    return row ? operationOf(row) : null;
  }

  async transition(
    id: string,
    from: readonly OperationStatus[],
    patch: Partial<Pick<OperationRecord, 'status' | 'updated' | 'result' | 'error'>> & { status: OperationStatus },
  ): Promise<OperationRecord | null> {
    const row = this.#sql.transition.get({
      id,
      from_json: JSON.stringify(from),
      status: patch.status,
      set_updated: patch.updated !== undefined ? 1 : 0,
      updated: patch.updated ?? null,
      set_result: patch.result !== undefined ? 1 : 0,
      result_json: toJson(patch.result ?? null),
      set_error: patch.error !== undefined ? 1 : 0,
      error_json: toJson(patch.error ?? null),
    }) as OperationRow | undefined;
    return row ? operationOf(row) : null;
  }

  async listOperations(statuses: readonly OperationStatus[]): Promise<OperationRecord[]> {
    const rows = this.#sql.listOperations.all(JSON.stringify(statuses)) as OperationRow[];
    return rows.map(operationOf);
  }

  async deleteOperation(id: string): Promise<void> {
    this.#sql.deleteOperation.run(id);
  }

  async putImage(record: ImageRecord): Promise<void> {
    this.#sql.putImage.run({
      id: record.id,
      key: record.key,
      content_type: record.contentType,
      width: record.width,
      height: record.height,
      deployment: record.deployment,
      operation_id: record.operationId,
      created: record.created,
      expires: record.expires,
    });
  }

  async getImage(id: string): Promise<ImageRecord | null> {
    const row = this.#sql.getImage.get(id) as ImageRow | undefined;
    return row ? imageOf(row) : null;
  }

  async listImagesOfOperation(operationId: string): Promise<ImageRecord[]> {
    return (this.#sql.listImagesOfOperation.all(operationId) as ImageRow[]).map(imageOf);
  }

  async deleteImage(id: string): Promise<void> {
    this.#sql.deleteImage.run(id);
  }

  async listExpired(now: number): Promise<{ operationIds: string[]; images: ImageRecord[] }> {
    // Both reads in one transaction, so they see the same snapshot.
    return this.#db.transaction(() => ({
      operationIds: this.#sql.expiredOperationIds.all(now) as string[],
      images: (this.#sql.expiredImages.all(now) as ImageRow[]).map(imageOf),
    }))();
  }

  async expiredOperationsPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<string>> {
    const rows = this.#sql.expiredOperationsPage.all(pageParams(now, after, limit)) as {
      id: string;
      expires: number;
    }[];
    return page(rows, limit, (row) => row.id);
  }

  async expiredImagesPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<ImageRecord>> {
    const rows = this.#sql.expiredImagesPage.all(pageParams(now, after, limit)) as ImageRow[];
    return page(rows, limit, imageOf);
  }

  async tryAcquireSweepLock(): Promise<SweepLease | null> {
    if (this.#sweepLeased) return null;
    this.#sweepLeased = true;
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        this.#sweepLeased = false;
      },
    };
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

function pageParams(now: number, after: ExpiryCursor | null, limit: number) {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError('The page limit must be a positive integer.');
  return { now, after_expires: after?.expires ?? null, after_id: after?.id ?? null, limit: limit + 1 };
}

/** Rows fetched with limit + 1: the extra row only says whether another page follows. */
function page<Row extends { id: string; expires: number }, T>(
  rows: Row[],
  limit: number,
  map: (row: Row) => T,
): ExpiryPage<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(map),
    next: rows.length > limit && last ? { expires: last.expires, id: last.id } : null,
  };
}

function toJson(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function operationOf(row: OperationRow): OperationRecord {
  return {
    id: row.id,
    status: row.status,
    deployment: row.deployment,
    request: JSON.parse(row.request_json) as OperationRecord['request'],
    created: row.created,
    expires: row.expires,
    updated: row.updated,
    result: row.result_json === null ? null : (JSON.parse(row.result_json) as OperationRecord['result']),
    error: row.error_json === null ? null : (JSON.parse(row.error_json) as OperationRecord['error']),
  };
}

function imageOf(row: ImageRow): ImageRecord {
  return {
    id: row.id,
    key: row.key,
    contentType: row.content_type,
    width: row.width,
    height: row.height,
    deployment: row.deployment,
    operationId: row.operation_id,
    created: row.created,
    expires: row.expires,
  };
}
