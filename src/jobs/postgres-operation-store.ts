/**
 * OperationStore on PostgreSQL (node-postgres), for several easel nodes sharing one database.
 * Every state move is one conditional UPDATE; expiry is read in keyset pages; one sweeper at a time
 * holds a session-level advisory lock (docs/scale-out.md).
 */
import { createHash } from 'node:crypto';

import pg from 'pg';

import type {
  ExpiryCursor,
  ExpiryPage,
  ExpiryPages,
  ImageRecord,
  OperationRecord,
  OperationStatus,
  OperationStore,
  SweepLease,
  SweepLock,
} from './operation-store.ts';

export interface PostgresOperationStoreOptions {
  /** postgres://user@host:port/database */
  connectionString: string;
  /** Schema holding easel's tables, created if missing; default: the first of the search_path. */
  schema?: string;
  /** Connections in the pool; default 10 (node-postgres's default). */
  maxConnections?: number;
  /** Errors of idle pooled connections (a restarted server); they must not crash the process. */
  onIdleError?: (error: Error) => void;
}

/** Schema migrations, in order; the row count of easel_migrations says how many have run. Append, never edit. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE operations (
     id TEXT PRIMARY KEY,
     seq BIGINT GENERATED ALWAYS AS IDENTITY,
     status TEXT NOT NULL,
     deployment TEXT NOT NULL,
     request JSON NOT NULL,
     created BIGINT NOT NULL,
     expires BIGINT NOT NULL,
     updated BIGINT NOT NULL,
     result JSON,
     error JSON
   );
   CREATE INDEX operations_status ON operations (status, created, seq);
   CREATE INDEX operations_expires ON operations (expires, id);
   CREATE TABLE images (
     id TEXT PRIMARY KEY,
     seq BIGINT GENERATED ALWAYS AS IDENTITY,
     key TEXT NOT NULL,
     content_type TEXT NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     deployment TEXT NOT NULL,
     operation_id TEXT,
     created BIGINT NOT NULL,
     expires BIGINT NOT NULL
   );
   CREATE INDEX images_operation ON images (operation_id, created, seq);
   CREATE INDEX images_expires ON images (expires, id);`,
];

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Page size of listExpired, which walks the pages for callers of the plain port. */
const LIST_EXPIRED_PAGE = 500;

interface OperationRow {
  id: string;
  status: OperationStatus;
  deployment: string;
  request: OperationRecord['request'];
  created: number;
  expires: number;
  updated: number;
  result: OperationRecord['result'];
  error: OperationRecord['error'];
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

const OPERATION_COLUMNS = 'id, status, deployment, request, created, expires, updated, result, error';
const IMAGE_COLUMNS = 'id, key, content_type, width, height, deployment, operation_id, created, expires';

/**
 * BIGINT (unix seconds) comes back as a JS number: node-postgres returns int8 as a string by
 * default, since it can exceed 2^53; seconds never do.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === pg.types.builtins.INT8) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

/** A 64-bit advisory-lock key from a name, so each purpose and schema has its own lock. */
function lockKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

export class PostgresOperationStore implements OperationStore, ExpiryPages, SweepLock {
  readonly #pool: pg.Pool;
  readonly #sweepKey: string;
  /** Connections holding a sweeper lease; close() drops them, which frees the lock. */
  readonly #leased = new Set<pg.PoolClient>();

  /** Connects, creates the schema if needed and brings it to this easel's version. */
  static async open(options: PostgresOperationStoreOptions): Promise<PostgresOperationStore> {
    const schema = options.schema;
    if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
      throw new Error(`PostgreSQL schema name ${JSON.stringify(schema)} must match ${SCHEMA_NAME}.`);
    }
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      types,
      // Every connection resolves the tables in easel's schema first.
      ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
    });
    pool.on('error', options.onIdleError ?? (() => undefined));
    try {
      const resolved = await migrate(pool, schema);
      return new PostgresOperationStore(pool, lockKey(`easel sweeper ${resolved}`));
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  private constructor(pool: pg.Pool, sweepKey: string) {
    this.#pool = pool;
    this.#sweepKey = sweepKey;
  }

  async createOperation(record: OperationRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO operations (${OPERATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        record.id,
        record.status,
        record.deployment,
        JSON.stringify(record.request),
        record.created,
        record.expires,
        record.updated,
        toJson(record.result),
        toJson(record.error),
      ],
    );
  }

  async getOperation(id: string): Promise<OperationRecord | null> {
    const { rows } = await this.#pool.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE id = $1`, [
      id,
    ]);
    return rows[0] ? operationOf(rows[0]) : null;
  }

  async transition(
    id: string,
    from: readonly OperationStatus[],
    patch: Partial<Pick<OperationRecord, 'status' | 'updated' | 'result' | 'error'>> & { status: OperationStatus },
  ): Promise<OperationRecord | null> {
    // One statement is the compare-and-set: under READ COMMITTED a concurrent UPDATE of the same
    // row waits, then re-checks the WHERE clause against the row the winner wrote, so it matches
    // nothing and returns no row.
    const { rows } = await this.#pool.query<OperationRow>(
      `UPDATE operations SET
         status = $3,
         updated = CASE WHEN $4 THEN $5::bigint ELSE updated END,
         result = CASE WHEN $6 THEN $7::json ELSE result END,
         error = CASE WHEN $8 THEN $9::json ELSE error END
       WHERE id = $1 AND status = ANY($2::text[])
       RETURNING ${OPERATION_COLUMNS}`,
      [
        id,
        [...from],
        patch.status,
        patch.updated !== undefined,
        patch.updated ?? null,
        patch.result !== undefined,
        toJson(patch.result ?? null),
        patch.error !== undefined,
        toJson(patch.error ?? null),
      ],
    );
    return rows[0] ? operationOf(rows[0]) : null;
  }

  async listOperations(statuses: readonly OperationStatus[]): Promise<OperationRecord[]> {
    const { rows } = await this.#pool.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM operations WHERE status = ANY($1::text[]) ORDER BY created, seq`,
      [[...statuses]],
    );
    return rows.map(operationOf);
  }

  async deleteOperation(id: string): Promise<void> {
    await this.#pool.query('DELETE FROM operations WHERE id = $1', [id]);
  }

  async putImage(record: ImageRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO images (${IMAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key, content_type = EXCLUDED.content_type,
         width = EXCLUDED.width, height = EXCLUDED.height, deployment = EXCLUDED.deployment,
         operation_id = EXCLUDED.operation_id, created = EXCLUDED.created, expires = EXCLUDED.expires`,
      [
        record.id,
        record.key,
        record.contentType,
        record.width,
        record.height,
        record.deployment,
        record.operationId,
        record.created,
        record.expires,
      ],
    );
  }

  async getImage(id: string): Promise<ImageRecord | null> {
    const { rows } = await this.#pool.query<ImageRow>(`SELECT ${IMAGE_COLUMNS} FROM images WHERE id = $1`, [id]);
    return rows[0] ? imageOf(rows[0]) : null;
  }

  async listImagesOfOperation(operationId: string): Promise<ImageRecord[]> {
    const { rows } = await this.#pool.query<ImageRow>(
      `SELECT ${IMAGE_COLUMNS} FROM images WHERE operation_id = $1 ORDER BY created, seq`,
      [operationId],
    );
    return rows.map(imageOf);
  }

  async deleteImage(id: string): Promise<void> {
    await this.#pool.query('DELETE FROM images WHERE id = $1', [id]);
  }

  async expiredOperationsPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<string>> {
    const rows = await this.#expiredPage<{ id: string; expires: number }>(
      'operations',
      'id, expires',
      now,
      after,
      limit,
    );
    return page(rows, limit, (row) => row.id);
  }

  async expiredImagesPage(now: number, after: ExpiryCursor | null, limit: number): Promise<ExpiryPage<ImageRecord>> {
    const rows = await this.#expiredPage<ImageRow>('images', IMAGE_COLUMNS, now, after, limit);
    return page(rows, limit, imageOf);
  }

  /** Keyset pagination: the row-value comparison walks the (expires, id) index from the cursor on. */
  async #expiredPage<Row extends pg.QueryResultRow>(
    table: 'operations' | 'images',
    columns: string,
    now: number,
    after: ExpiryCursor | null,
    limit: number,
    client: pg.Pool | pg.PoolClient = this.#pool,
  ): Promise<Row[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('The page limit must be a positive integer.');
    const { rows } = await client.query<Row>(
      `SELECT ${columns} FROM ${table}
       WHERE expires <= $1 AND ($2::bigint IS NULL OR (expires, id) > ($2::bigint, $3::text))
       ORDER BY expires, id LIMIT $4`,
      [now, after?.expires ?? null, after?.id ?? null, limit + 1],
    );
    return rows;
  }

  /** Every expired record, read page by page in one snapshot (REPEATABLE READ) so both lists agree. */
  async listExpired(now: number): Promise<{ operationIds: string[]; images: ImageRecord[] }> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const operationIds: string[] = [];
      for await (const row of this.#walk<{ id: string; expires: number }>(client, 'operations', 'id, expires', now)) {
        operationIds.push(row.id);
      }
      const images: ImageRecord[] = [];
      for await (const row of this.#walk<ImageRow>(client, 'images', IMAGE_COLUMNS, now)) images.push(imageOf(row));
      await client.query('COMMIT');
      return { operationIds, images };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async *#walk<Row extends { id: string; expires: number }>(
    client: pg.PoolClient,
    table: 'operations' | 'images',
    columns: string,
    now: number,
  ): AsyncGenerator<Row> {
    let after: ExpiryCursor | null = null;
    for (;;) {
      const rows: Row[] = await this.#expiredPage<Row>(table, columns, now, after, LIST_EXPIRED_PAGE, client);
      const { items, next } = page(rows, LIST_EXPIRED_PAGE, (row) => row);
      yield* items;
      if (!next) return;
      after = next;
    }
  }

  /**
   * A session-level advisory lock on one pooled connection, held until release: if the node dies,
   * its connection closes and PostgreSQL frees the lock, so no lease outlives its holder.
   */
  async tryAcquireSweepLock(): Promise<SweepLease | null> {
    const client = await this.#pool.connect();
    let held: boolean;
    try {
      const { rows } = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS held', [
        this.#sweepKey,
      ]);
      held = rows[0]?.held === true;
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
    if (!held) {
      client.release();
      return null;
    }
    this.#leased.add(client);
    return {
      release: async () => {
        if (!this.#leased.delete(client)) return;
        try {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [this.#sweepKey]);
          client.release();
        } catch (error) {
          // A connection that cannot unlock is destroyed, which frees the lock with the session.
          client.release(error as Error);
        }
      },
    };
  }

  async close(): Promise<void> {
    // pool.end() waits for checked-out connections; a lease's connection is dropped instead.
    for (const client of this.#leased) client.release(new Error('store closed'));
    this.#leased.clear();
    if (!this.#pool.ended) await this.#pool.end();
  }
}

/**
 * Creates the schema if asked and runs the pending migrations in one transaction, serialized
 * across nodes by an advisory lock; resolves to the schema holding the tables.
 */
async function migrate(pool: pg.Pool, schema: string | undefined): Promise<string> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Held until COMMIT: a second node starting at the same moment waits here, then finds the
    // schema and the migrations done (CREATE ... IF NOT EXISTS alone still races).
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey(`easel migrations ${schema ?? ''}`)]);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const resolved = (await client.query<{ schema: string | null }>('SELECT current_schema() AS schema')).rows[0]
      ?.schema;
    if (!resolved) throw new Error('The PostgreSQL search_path names no existing schema for easel’s tables.');
    await client.query(
      `CREATE TABLE IF NOT EXISTS easel_migrations (
         version INTEGER PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM easel_migrations',
    );
    const version = rows[0]?.version ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(`The database schema (version ${version}) is newer than this easel understands.`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v]!);
      await client.query('INSERT INTO easel_migrations (version) VALUES ($1)', [v + 1]);
    }
    await client.query('COMMIT');
    return resolved;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
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
    request: row.request,
    created: row.created,
    expires: row.expires,
    updated: row.updated,
    result: row.result,
    error: row.error,
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
