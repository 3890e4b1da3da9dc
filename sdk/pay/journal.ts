/**
 * The payment journal: an append-only JSON-lines file of purchase intents and pinned recipients,
 * scoped by API base, changed only by compare-and-set transitions under an inter-process lock
 * (proper-lockfile), each append fsynced before it returns.
 */
import { existsSync, mkdirSync } from "node:fs";
import { open as openFile, readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import { JournalError } from "../errors/payment.js";
import type { Settlement } from "../Receipt.js";
import type { Proof, RailName } from "./rail.js";

/**
 * Where an intent stands. Nothing is written while nothing can be paid: the first record of an
 * attempt is `pending` (or `failed` for a refusal, `settled` for a replay).
 * - `pending`: a signed credential may have left the process: maybe paid. Written, with what the
 *   credential commits to, before it is sent; never treated as unpaid until the chain says the
 *   credential was not used and can no longer be.
 * - `paid`: the chain shows the payment, but the server has not delivered the result.
 * - `settled`: delivered (paid, or replayed by the server).
 * - `failed`: definitively unpaid (refused, signing failed, or the credential can never be used).
 * - `begun`: written by older versions before the first request; nothing was signed.
 */
export type IntentState = "begun" | "pending" | "paid" | "settled" | "failed";

/** What a purchase looks like in the journal. */
export type IntentRecord = {
  /** The API base the intent belongs to: records (and idempotency keys) never cross APIs. */
  apiBase: string;
  intentId: string;
  idempotencyKey: string;
  method: string;
  url: string;
  /** The request body (paid routes only, which carry no secrets), so a later run can repeat the request. */
  body?: unknown;
  state: IntentState;
  rail?: RailName | undefined;
  amountAtomic?: string | undefined;
  recipient?: string | undefined;
  network?: string | undefined;
  asset?: string | undefined;
  /** What the signed credential commits to, to ask the chain about it (`pending` and later). */
  proof?: Proof | undefined;
  settlement?: Settlement | null | undefined;
  /** Until when a `pending` credential could still settle (a journal from an older version has no proof, only this). */
  validUntil?: string | undefined;
  /** `pid@host` of the process that moved the intent to `pending`. */
  owner?: string | undefined;
  error?: string | undefined;
  /** A new sale the server answered a repeated keyed request with, instead of a replay (counted, reported). */
  secondPurchase?: Settlement | undefined;
  updatedAt: string;
};

type Line =
  | ({ type: "intent" } & IntentRecord)
  | { type: "recipient"; apiBase: string; rail: RailName; recipient: string; at: string };

/** Options for {@link open}. */
export type OpenOptions = {
  path: string;
  /** A lock not refreshed for this long (its holder died or hung) is broken. @default 10000 */
  staleMs?: number | undefined;
  /** How long to wait for a live lock. @default 10000 */
  waitMs?: number | undefined;
};

/** The outcome of a {@link Journal.transition}. */
export type TransitionResult =
  | { ok: true; record: IntentRecord }
  | { ok: false; current: IntentRecord | undefined };

/** A journal of purchase intents and pinned recipients. */
export type Journal = {
  /** The file, or null for an in-memory journal. */
  readonly path: string | null;
  /** The latest record per API base and idempotency key (map key: {@link recordKey}). */
  intents(): Promise<Map<string, IntentRecord>>;
  /** The intent's latest record under `apiBase`. */
  get(apiBase: string, idempotencyKey: string): Promise<IntentRecord | undefined>;
  /** Intents that still need the chain or the server to finish (`pending`, `paid`). */
  unfinished(apiBase?: string): Promise<IntentRecord[]>;
  /**
   * Compare-and-set, atomically under the journal lock: merges `next` into the intent's record and
   * appends it, only when the current state is one of `from` (`undefined` = no record yet).
   */
  transition(
    next: Omit<IntentRecord, "updatedAt">,
    from: readonly (IntentState | undefined)[],
  ): Promise<TransitionResult>;
  /** The recipient pinned for this API base and rail. */
  pinned(apiBase: string, rail: RailName): Promise<string | null>;
  /** Pins a recipient unless one is already pinned; returns the pinned one. */
  pin(apiBase: string, rail: RailName, recipient: string): Promise<string>;
};

/** The map key of an intent in {@link Journal.intents}. */
export const recordKey = (apiBase: string, idempotencyKey: string) => `${apiBase} ${idempotencyKey}`;

/** This process, as recorded in `owner`. */
export const self = `${process.pid}@${hostname()}`;

/** Whether the owner of a record is another process that is still alive on this machine. */
export function ownerAlive(owner: string | undefined): boolean {
  if (!owner || owner === self) return false;
  const [pid, host] = owner.split("@");
  if (host !== hostname()) return true; // another machine: cannot tell, assume alive
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const unfinishedStates = new Set<IntentState>(["pending", "paid"]);

/** A record as written by this or an older version (state `signing`, no `apiBase`), normalized. */
function normalize(line: Record<string, unknown>): IntentRecord | null {
  if (typeof line["idempotencyKey"] !== "string" || typeof line["url"] !== "string") return null;
  const { type: _type, ...record } = line as unknown as IntentRecord & { type: string; state: string };
  let apiBase = record.apiBase;
  if (typeof apiBase !== "string") {
    try {
      apiBase = new URL(record.url).origin;
    } catch {
      return null;
    }
  }
  // Older journals wrote `signing` for "signed, outcome unknown": that is `pending` without a proof.
  const state = (record.state as string) === "signing" ? "pending" : record.state;
  return { ...record, apiBase, state };
}

function intentsOf(lines: Line[]): Map<string, IntentRecord> {
  const map = new Map<string, IntentRecord>();
  for (const line of lines) {
    if (line.type !== "intent") continue;
    const record = normalize(line as unknown as Record<string, unknown>);
    if (!record) continue;
    const key = recordKey(record.apiBase, record.idempotencyKey);
    // This version writes whole records; older versions wrote partial ones that merge.
    const whole = typeof (line as { apiBase?: unknown }).apiBase === "string";
    map.set(key, whole ? record : { ...map.get(key), ...record });
  }
  return map;
}

function pinnedOf(lines: Line[], apiBase: string, rail: RailName): string | null {
  for (const line of lines) {
    if (line.type === "recipient" && line.apiBase === apiBase && line.rail === rail) return line.recipient;
  }
  return null;
}

/** A journal kept in memory only (`journal: false`): the same transitions, no file. */
export function memory(): Journal {
  const lines: Line[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  const locked = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };
  return build(
    null,
    locked,
    async () => lines,
    async (line) => void lines.push(line),
  );
}

/** Opens (creating its folder if needed) the journal at `path`. */
export function open(options: OpenOptions): Journal {
  const { path, staleMs = 10_000, waitMs = 10_000 } = options;
  const lockPath = `${path}.lck`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot create its folder", cause });
  }
  // In-process callers queue here first, so the inter-process lock is taken by one of them at a time.
  let queue: Promise<unknown> = Promise.resolve();
  let cache: { size: number; mtimeMs: number; lines: Line[] } | null = null;

  async function read(): Promise<Line[]> {
    if (!existsSync(path)) return [];
    try {
      const s = await stat(path);
      if (cache && cache.size === s.size && cache.mtimeMs === s.mtimeMs) return cache.lines;
      const text = await readFile(path, "utf8");
      const lines: Line[] = [];
      for (const raw of text.split("\n")) {
        if (raw.trim() === "") continue;
        try {
          const parsed = JSON.parse(raw) as Line;
          if (
            parsed &&
            typeof parsed === "object" &&
            (parsed.type === "intent" || parsed.type === "recipient")
          )
            lines.push(parsed);
        } catch {
          // A torn line: a write cut short by a crash, or damage. Such a record never took effect
          // (nothing acts on a state before its line is fsynced), so it is skipped.
        }
      }
      cache = { size: s.size, mtimeMs: s.mtimeMs, lines };
      return lines;
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be read", cause });
    }
  }

  async function append(line: Line): Promise<void> {
    const fresh = !existsSync(path);
    // Called under the lock right after read(): the cache, if any, is the file as it is now.
    const known = cache;
    cache = null;
    let handle: Awaited<ReturnType<typeof openFile>>;
    try {
      handle = await openFile(path, "a", 0o600);
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be opened for append", cause });
    }
    try {
      // A torn last line from a crash must not swallow this one. writeFile loops until every byte is
      // written (a bare write may stop short and leave a torn record this process believes saved).
      await handle.writeFile(`\n${JSON.stringify(line)}\n`);
      await handle.sync();
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be written", cause });
    } finally {
      await handle.close();
    }
    if (known) {
      const s = await stat(path);
      known.lines.push(line);
      cache = { size: s.size, mtimeMs: s.mtimeMs, lines: known.lines };
    }
    if (fresh) {
      try {
        const dir = await openFile(dirname(path), "r");
        await dir.sync().finally(() => dir.close());
      } catch {
        // Some filesystems refuse fsync on directories; the file itself is synced.
      }
    }
  }

  async function withLock<T>(fn: () => Promise<T> | T): Promise<T> {
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(path, {
        realpath: false,
        lockfilePath: lockPath,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 4)),
        retries: { retries: Math.ceil(waitMs / 50), factor: 1, minTimeout: 50, maxTimeout: 50 },
        // A compromised lock (its refresh failed) must not crash the provider: the next take re-checks.
        onCompromised: () => undefined,
      });
    } catch (cause) {
      const locked = (cause as NodeJS.ErrnoException).code === "ELOCKED";
      throw new JournalError({
        path,
        code: locked ? "JOURNAL_LOCKED" : "JOURNAL_IO",
        reason: locked ? `locked by another process for over ${waitMs} ms` : "cannot create its lock",
        cause,
      });
    }
    try {
      return await fn();
    } finally {
      await release().catch(() => undefined);
    }
  }

  const locked = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const run = queue.then(() => withLock(fn));
    queue = run.catch(() => undefined);
    return run;
  };
  return build(path, locked, read, append);
}

function build(
  path: string | null,
  locked: <T>(fn: () => Promise<T> | T) => Promise<T>,
  read: () => Promise<Line[]>,
  append: (line: Line) => Promise<void>,
): Journal {
  return {
    path,
    intents: () => locked(async () => intentsOf(await read())),
    get: (apiBase, key) => locked(async () => intentsOf(await read()).get(recordKey(apiBase, key))),
    unfinished: (apiBase) =>
      locked(async () =>
        [...intentsOf(await read()).values()].filter(
          (r) => unfinishedStates.has(r.state) && (apiBase === undefined || r.apiBase === apiBase),
        ),
      ),
    transition: (next, from) =>
      locked(async (): Promise<TransitionResult> => {
        const current = intentsOf(await read()).get(recordKey(next.apiBase, next.idempotencyKey));
        if (!from.includes(current?.state)) return { ok: false, current };
        const record: IntentRecord = { ...current, ...next, updatedAt: new Date().toISOString() };
        await append({ type: "intent", ...record });
        return { ok: true, record };
      }),
    pinned: (apiBase, rail) => locked(async () => pinnedOf(await read(), apiBase, rail)),
    pin: (apiBase, rail, recipient) =>
      locked(async () => {
        const existing = pinnedOf(await read(), apiBase, rail);
        if (existing) return existing;
        await append({ type: "recipient", apiBase, rail, recipient, at: new Date().toISOString() });
        return recipient;
      }),
  };
}
