/**
 * The payment journal in PostgreSQL: one database shared by every runner, agent and host that pays
 * from the same wallets. The same state machine as the file journal (journal.ts), with the same
 * guarantees, by other means:
 * - every transition is one transaction that locks the intent's row (`SELECT … FOR UPDATE`, or, for
 *   an intent without a row yet, the primary key that lets only one insert commit) and compares
 *   its state and revision before it writes;
 * - the primary key (api base, idempotency key) holds one current record per intent, and the
 *   history's unique (api base, idempotency key, rev) lets only one writer follow a given record:
 *   two runners can never both hold `pending` for one intent;
 * - a claim with a wallet budget first takes the wallet's advisory lock (transaction-scoped), then
 *   sums the wallet's claims, so that no two claims on one wallet can jointly pass its budget; the
 *   rolling window is measured on the database's clock, one clock for the whole fleet;
 * - nothing is paid without a committed claim: a database that cannot be reached, or a commit whose
 *   outcome is unknown, fails the claim (`JOURNAL_UNAVAILABLE`), and the credential is never sent.
 *
 * Tables live in their own schema (default `run402`), created on first use by versioned migrations
 * run under an advisory lock (several runners first-using one database at once is safe).
 */
import type { Pool, PoolClient } from "pg";
import { JournalError } from "../errors/payment.js";
import {
  type Budget,
  type BudgetUse,
  type IntentRecord,
  type IntentRef,
  type IntentState,
  type Journal,
  overBudget,
  recordKey,
  type TransitionResult,
} from "./journal.js";
import type { RailName } from "./rail.js";

/** A row of the reads below (each selects one of these columns). */
type Row = { record: IntentRecord; recipient: string };

/** Options for {@link open}. */
export type OpenOptions = {
  /**
   * `postgres://user[:password]@host[:port]/database[?sslmode=…]`. Without a password in the URL,
   * libpq's `PGPASSWORD` (and the other `PG*` variables) apply.
   */
  url: string;
  /** The schema holding the journal's tables. @default "run402" */
  schema?: string | undefined;
  /** How long to wait for a connection, and for a lock held by another runner. @default 10000 */
  timeoutMs?: number | undefined;
  /** Connections this process keeps at most. @default 4 */
  poolSize?: number | undefined;
};

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "";
    // Query parameters may carry a password too (`?password=`): keep only their names.
    for (const key of [...parsed.searchParams.keys()])
      if (/pass|secret|key/i.test(key)) parsed.searchParams.set(key, "***");
    return parsed.toString();
  } catch {
    return "postgres://(unparsable URL)";
  }
}

/**
 * The URL node-postgres connects with: a Pulumi state backend's URL names its table in `table`
 * (`postgres://…?table=pulumi_state`), which is no connection parameter, so it is left out.
 */
export function connectionOf(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.searchParams.delete("table");
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Whether `value` names a PostgreSQL journal rather than a file. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value.trim());
}

/**
 * The journal's migrations, in order; version = index + 1. Applied ones are recorded in
 * `<schema>.journal_migrations`. Never edit a released one: add the next.
 */
const migrations: ((s: string) => string)[] = [
  (s) => `
    CREATE TABLE ${s}.intents (
      api_base text NOT NULL,
      idempotency_key text NOT NULL,
      rev bigint NOT NULL CHECK (rev > 0),
      state text NOT NULL CHECK (state IN ('begun', 'pending', 'paid', 'settled', 'failed')),
      wallet text,
      run_id text,
      amount_atomic numeric(78, 0),
      claimed_at timestamptz,
      record jsonb NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (api_base, idempotency_key)
    );
    CREATE INDEX intents_unfinished ON ${s}.intents (api_base) WHERE state IN ('pending', 'paid');
    CREATE INDEX intents_claims ON ${s}.intents (wallet, claimed_at) WHERE claimed_at IS NOT NULL;
    CREATE TABLE ${s}.intent_history (
      id bigserial PRIMARY KEY,
      api_base text NOT NULL,
      idempotency_key text NOT NULL,
      rev bigint NOT NULL,
      state text NOT NULL,
      record jsonb NOT NULL,
      written_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (api_base, idempotency_key, rev)
    );
    CREATE TABLE ${s}.recipients (
      api_base text NOT NULL,
      rail text NOT NULL,
      recipient text NOT NULL,
      pinned_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (api_base, rail)
    );`,
];

/** Error codes of a server or connection that is gone (class 08, 57P0x), or a socket that failed. */
function unavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== "string") {
    const message = error instanceof Error ? error.message : String(error);
    return /terminated|Connection|timeout|ended/i.test(message);
  }
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"].includes(
      code,
    )
  );
}

/** Opens the journal in the database at `url`; connects, and migrates the schema, on first use. */
export function open(options: OpenOptions): Journal {
  const { url, schema = "run402", timeoutMs = 10_000, poolSize = 4 } = options;
  const location = redact(url);
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new JournalError({
      path: location,
      code: "JOURNAL_IO",
      reason: `the schema name "${schema}" is not a plain lower-case SQL identifier`,
    });
  }
  const s = `"${schema}"`;
  let pool: Pool | null = null;
  let ready: Promise<Pool> | null = null;

  const fail = (reason: string, cause: unknown): JournalError =>
    cause instanceof JournalError
      ? cause
      : unavailable(cause)
        ? new JournalError({
            path: location,
            code: "JOURNAL_UNAVAILABLE",
            reason: `${reason}: the database cannot be reached or went away (${(cause as Error)?.message ?? String(cause)})`,
            metaMessages: [
              "Nothing is paid without a claim in the journal: the payment was not sent.",
              "Run again once the database is back; unfinished intents are resolved then.",
            ],
            cause,
          })
        : new JournalError({
            path: location,
            code: "JOURNAL_IO",
            reason: `${reason} (${(cause as Error)?.message ?? String(cause)})`,
            cause,
          });

  async function migrate(client: PoolClient): Promise<void> {
    await client.query("BEGIN");
    try {
      // Serializes first use across runners: one creates, the others wait and find it made.
      await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
        `run402.journal.migrate:${schema}`,
      ]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${s}.journal_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ v: number | null }>(
        `SELECT max(version) AS v FROM ${s}.journal_migrations`,
      );
      const applied = rows[0]?.v ?? 0;
      if (applied > migrations.length) {
        throw new JournalError({
          path: location,
          code: "JOURNAL_SCHEMA",
          reason: `its schema "${schema}" is at version ${applied}, newer than this version knows (${migrations.length}); upgrade pulumi-run402 on this runner`,
        });
      }
      for (let version = applied + 1; version <= migrations.length; version++) {
        await client.query(migrations[version - 1]!(s));
        await client.query(`INSERT INTO ${s}.journal_migrations (version) VALUES ($1)`, [version]);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  }

  function connect(): Promise<Pool> {
    ready ??= (async () => {
      const { default: pg } = await import("pg");
      // numeric (OID 1700) as a string: amounts are big integers.
      const created = new pg.Pool({
        connectionString: connectionOf(url),
        max: poolSize,
        connectionTimeoutMillis: timeoutMs,
        idleTimeoutMillis: 10_000,
        allowExitOnIdle: true,
        // A server that stops answering mid-transaction (a partition) fails the call, not hangs it.
        keepAlive: true,
        query_timeout: Math.max(30_000, timeoutMs * 3),
        application_name: "run402-journal",
      });
      // An idle connection that breaks (the server restarted) must not crash the process: the next
      // query reconnects, or fails with a clear error.
      created.on("error", () => undefined);
      const client = await created.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
      pool = created;
      return created;
    })().catch((error: unknown) => {
      ready = null;
      throw fail("cannot be opened", error);
    });
    return ready;
  }

  /** Runs `fn` in one transaction; a connection or commit failure becomes JOURNAL_UNAVAILABLE. */
  async function tx<T>(what: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const p = await connect();
    let client: PoolClient;
    try {
      client = await p.connect();
    } catch (error) {
      throw fail(what, error);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      broken = unavailable(error);
      if (!broken) await client.query("ROLLBACK").catch(() => undefined);
      if ((error as { code?: string }).code === "55P03")
        throw new JournalError({
          path: location,
          code: "JOURNAL_LOCKED",
          reason: `locked by another runner for over ${timeoutMs} ms`,
          cause: error,
        });
      if ((error as { code?: string }).code === "23505") throw error; // retried by the caller
      throw fail(what, error);
    } finally {
      client.release(broken);
    }
  }

  async function read<T>(what: string, sql: string, params: unknown[], map: (rows: Row[]) => T): Promise<T> {
    const p = await connect();
    try {
      const { rows } = await p.query<Row>(sql, params);
      return map(rows);
    } catch (error) {
      throw fail(what, error);
    }
  }

  const toRecord = (row: { record: IntentRecord }): IntentRecord => row.record;

  async function budgetSums(
    client: Pool | PoolClient,
    budget: Budget,
    except?: IntentRef,
  ): Promise<BudgetUse> {
    const { rows } = await client.query<{ run: string; win: string }>(
      `SELECT
         coalesce(sum(amount_atomic) FILTER (WHERE $2::text IS NOT NULL AND run_id = $2), 0)::text AS run,
         coalesce(sum(amount_atomic) FILTER (WHERE $3::float8 IS NOT NULL AND claimed_at > now() - make_interval(secs => $3::float8)), 0)::text AS win
       FROM ${s}.intents
       WHERE wallet = $1 AND state IN ('pending', 'paid', 'settled') AND claimed_at IS NOT NULL
         AND NOT ($4::text IS NOT NULL AND api_base = $4 AND idempotency_key = $5)`,
      [
        budget.wallet.toLowerCase(),
        budget.run?.id ?? null,
        budget.window?.seconds ?? null,
        except?.apiBase ?? null,
        except?.idempotencyKey ?? null,
      ],
    );
    return { runAtomic: BigInt(rows[0]?.run ?? "0"), windowAtomic: BigInt(rows[0]?.win ?? "0") };
  }

  async function transitionOnce(
    next: Omit<IntentRecord, "updatedAt">,
    from: readonly (IntentState | undefined)[],
    budget: Budget | undefined,
  ): Promise<TransitionResult> {
    return tx("a transition could not be recorded", async (client) => {
      const claiming = next.state === "pending";
      if (claiming && budget) {
        // One claim at a time per wallet, fleet-wide, from the sum to the commit.
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
          `run402.wallet:${budget.wallet.toLowerCase()}`,
        ]);
      }
      const { rows } = await client.query<{ rev: string; record: IntentRecord; now: Date }>(
        `SELECT rev, record, now() AS now FROM ${s}.intents WHERE api_base = $1 AND idempotency_key = $2 FOR UPDATE`,
        [next.apiBase, next.idempotencyKey],
      );
      const row = rows[0];
      const current = row ? toRecord(row) : undefined;
      if (!from.includes(current?.state)) return { ok: false, current };
      const now = row?.now ?? (await client.query<{ now: Date }>("SELECT now() AS now")).rows[0]!.now;
      if (claiming && budget) {
        const refusal = overBudget(
          budget,
          await budgetSums(client, budget),
          BigInt(next.amountAtomic ?? "0"),
        );
        if (refusal) return { ok: false, current, overBudget: refusal };
      }
      const record: IntentRecord = JSON.parse(
        JSON.stringify({
          ...current,
          ...next,
          ...(claiming ? { claimedAt: now.toISOString() } : {}),
          updatedAt: now.toISOString(),
        }),
      );
      const rev = row ? BigInt(row.rev) + 1n : 1n;
      const values = [
        record.apiBase,
        record.idempotencyKey,
        rev.toString(),
        record.state,
        record.wallet?.toLowerCase() ?? null,
        record.runId ?? null,
        record.amountAtomic ?? null,
        record.claimedAt ?? null,
        record,
        record.updatedAt,
      ];
      if (row) {
        const updated = await client.query(
          `UPDATE ${s}.intents SET rev = $3, state = $4, wallet = $5, run_id = $6, amount_atomic = $7,
             claimed_at = $8, record = $9, updated_at = $10
           WHERE api_base = $1 AND idempotency_key = $2 AND rev = $11`,
          [...values, row.rev],
        );
        if (updated.rowCount !== 1) throw new Error("the intent's row changed under its lock");
      } else {
        // Two first writers: the primary key lets one commit; the other gets 23505 and retries.
        await client.query(
          `INSERT INTO ${s}.intents (api_base, idempotency_key, rev, state, wallet, run_id, amount_atomic,
             claimed_at, record, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          values,
        );
      }
      await client.query(
        `INSERT INTO ${s}.intent_history (api_base, idempotency_key, rev, state, record) VALUES ($1, $2, $3, $4, $5)`,
        [record.apiBase, record.idempotencyKey, rev.toString(), record.state, record],
      );
      return { ok: true, record };
    });
  }

  return {
    path: null,
    location,
    intents: () =>
      read(
        "cannot be read",
        `SELECT record FROM ${s}.intents`,
        [],
        (rows) =>
          new Map(
            rows.map((r) => {
              const record = toRecord(r);
              return [recordKey(record.apiBase, record.idempotencyKey), record] as const;
            }),
          ),
      ),
    get: (apiBase, key) =>
      read(
        "cannot be read",
        `SELECT record FROM ${s}.intents WHERE api_base = $1 AND idempotency_key = $2`,
        [apiBase, key],
        (rows) => (rows[0] ? toRecord(rows[0]) : undefined),
      ),
    unfinished: (apiBase) =>
      read(
        "cannot be read",
        `SELECT record FROM ${s}.intents WHERE state IN ('pending', 'paid') AND ($1::text IS NULL OR api_base = $1) ORDER BY updated_at`,
        [apiBase ?? null],
        (rows) => rows.map(toRecord),
      ),
    async transition(next, from, options = {}) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await transitionOnce(next, from, options.budget);
        } catch (error) {
          // Another runner inserted the intent's first record meanwhile: compare against it.
          if ((error as { code?: string }).code === "23505" && attempt < 3) continue;
          throw fail("a transition could not be recorded", error);
        }
      }
    },
    budgetUse: async (budget, except) => {
      const p = await connect();
      try {
        return await budgetSums(p, budget, except);
      } catch (error) {
        throw fail("cannot be read", error);
      }
    },
    pinned: (apiBase, rail: RailName) =>
      read(
        "cannot be read",
        `SELECT recipient FROM ${s}.recipients WHERE api_base = $1 AND rail = $2`,
        [apiBase, rail],
        (rows) => rows[0]?.recipient ?? null,
      ),
    pin: (apiBase, rail, recipient) =>
      tx("a recipient could not be pinned", async (client) => {
        await client.query(
          `INSERT INTO ${s}.recipients (api_base, rail, recipient) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
          [apiBase, rail, recipient],
        );
        const { rows } = await client.query<{ recipient: string }>(
          `SELECT recipient FROM ${s}.recipients WHERE api_base = $1 AND rail = $2`,
          [apiBase, rail],
        );
        return rows[0]?.recipient ?? recipient;
      }),
    async close() {
      const p = pool ?? (ready ? await ready.catch(() => null) : null);
      pool = null;
      ready = null;
      await p?.end().catch(() => undefined);
    },
  };
}
