/**
 * The sandbox's Postgres: one embedded PGlite, one schema per project. Migrations of a deploy run in a
 * single transaction with the project's schema first on the search_path, and are recorded in
 * `run402.migrations` inside that same transaction, so "applied" and "recorded" cannot disagree.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";

/** A migration to run: its id, the sha256 of its SQL, and the SQL. */
export interface RunnableMigration {
  id: string;
  checksum: string;
  sql: string;
}

/** A migration already applied to a project. */
export interface AppliedMigration {
  migration_id: string;
  checksum_hex: string;
  applied_at: string;
}

/** The operations the API needs from Postgres. */
export interface Database {
  /** Creates the project's schema. */
  createSchema(slot: string): Promise<void>;
  /** Drops the project's schema and its migration records. */
  dropSchema(slot: string, projectId: string): Promise<void>;
  /** Applied migrations of a project, oldest first. */
  migrations(projectId: string): Promise<AppliedMigration[]>;
  /** Runs `migrations` in one transaction in `slot`; throws (having rolled back) on the first failure. */
  migrate(slot: string, projectId: string, migrations: RunnableMigration[]): Promise<void>;
  /** Runs one query in a project's schema (tests use it to look at what a migration did). */
  query<T>(slot: string, sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

// initdb inside WASM takes ~3 s on a busy machine; loading a dump of a fresh cluster takes well under
// one. The dump is cached per PGlite version in the OS temp dir and built on first use.
const TEMPLATE = join(tmpdir(), "run402-sandbox-pglite-0.5.16.tar");

async function template(): Promise<Blob | undefined> {
  if (existsSync(TEMPLATE)) return new Blob([readFileSync(TEMPLATE)]);
  const fresh = await PGlite.create();
  const dump = await fresh.dumpDataDir("none");
  await fresh.close();
  const tmp = `${TEMPLATE}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  renameSync(tmp, TEMPLATE);
  // Load the dump just made: a second initdb would double the first start.
  return dump;
}

function ident(slot: string): string {
  if (!/^p\d{4,}$/.test(slot)) throw new Error(`Invalid schema slot ${slot}.`);
  return `"${slot}"`;
}

/** Opens PGlite (in memory, or persisted under `dataDir`). */
export async function openDatabase(options: { dataDir?: string } = {}): Promise<Database> {
  const { dataDir } = options;
  const fresh = !dataDir || !existsSync(join(dataDir, "PG_VERSION"));
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const loadDataDir = fresh ? await template().catch(() => undefined) : undefined;
  const db = await PGlite.create({
    ...(dataDir ? { dataDir } : {}),
    ...(loadDataDir ? { loadDataDir } : {}),
  });
  await db.exec(`CREATE SCHEMA IF NOT EXISTS run402;
    CREATE TABLE IF NOT EXISTS run402.migrations (
      project_id text NOT NULL, migration_id text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (project_id, migration_id));`);
  return {
    async createSchema(slot) {
      await db.exec(`CREATE SCHEMA IF NOT EXISTS ${ident(slot)}`);
    },
    async dropSchema(slot, projectId) {
      await db.transaction(async (tx) => {
        await tx.exec(`DROP SCHEMA IF EXISTS ${ident(slot)} CASCADE`);
        await tx.query("DELETE FROM run402.migrations WHERE project_id = $1", [projectId]);
      });
    },
    async migrations(projectId) {
      const result = await db.query<{ migration_id: string; checksum: string; applied_at: Date }>(
        "SELECT migration_id, checksum, applied_at FROM run402.migrations WHERE project_id = $1 ORDER BY applied_at, migration_id",
        [projectId],
      );
      return result.rows.map((r) => ({
        migration_id: r.migration_id,
        checksum_hex: r.checksum,
        applied_at: new Date(r.applied_at).toISOString(),
      }));
    },
    async migrate(slot, projectId, migrations) {
      await db.transaction(async (tx) => {
        for (const m of migrations) {
          // SET LOCAL again before each one: a migration may itself change search_path.
          await tx.exec(`SET LOCAL search_path TO ${ident(slot)}, public`);
          await tx.exec(m.sql);
          await tx.query(
            "INSERT INTO run402.migrations (project_id, migration_id, checksum) VALUES ($1, $2, $3)",
            [projectId, m.id, m.checksum],
          );
        }
      });
    },
    async query<T>(slot: string, sql: string, params: unknown[] = []) {
      return db.transaction(async (tx) => {
        await tx.exec(`SET LOCAL search_path TO ${ident(slot)}, public`);
        return (await tx.query<T>(sql, params)).rows;
      });
    },
    close: () => db.close(),
  };
}
