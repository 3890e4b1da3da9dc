/**
 * The payment journal: purchase intents and pinned recipients, scoped by API base, changed only by
 * compare-and-set transitions. Two implementations share one state machine (and one test suite,
 * journal.contract.ts): this file's, an append-only JSON-lines file under an inter-process lock
 * (proper-lockfile) for one host, each append fsynced before it returns; and journal-postgres.ts,
 * one shared PostgreSQL database for a fleet of runners. Both enforce the wallet budget
 * ({@link Budget}) at claim time, under the claim's lock.
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
  /** The paying wallet's address: what the wallet budget sums over. */
  wallet?: string | undefined;
  /** The run that claimed it (one CLI command, or one `reconcile` for its whole life): what the run budget sums over. */
  runId?: string | undefined;
  /** When the intent was claimed (moved to `pending`), on the journal's clock: what the rolling budget window measures. */
  claimedAt?: string | undefined;
  error?: string | undefined;
  /** A new sale the server answered a repeated keyed request with, instead of a replay (counted, reported). */
  secondPurchase?: Settlement | undefined;
  updatedAt: string;
};

/**
 * An intent line. `rev` numbers the intent's records (1, 2, …): a line applies only on top of the
 * record it was written against (`rev` one more than the current one), so a line written by a
 * process that lost the lock without knowing is ignored by every reader, never the last word.
 * `tok` identifies the line, so its writer can re-read and see whether it took effect (the fence).
 * Lines of older versions carry neither and apply as they come.
 */
type IntentLine = { type: "intent"; rev?: number | undefined; tok?: string | undefined } & IntentRecord;

type Line =
  | IntentLine
  | { type: "recipient"; apiBase: string; rail: RailName; recipient: string; at: string };

/** Options for {@link open}. */
export type OpenOptions = {
  path: string;
  /** A lock not refreshed for this long (its holder died or hung) is broken. @default 10000 */
  staleMs?: number | undefined;
  /** How long to wait for a live lock. @default 10000 */
  waitMs?: number | undefined;
  /** Called under the lock right before each write (tests stall a writer here). */
  beforeWrite?: (() => void | Promise<void>) | undefined;
};

/**
 * A wallet budget, enforced by the journal when an intent is claimed (moved to `pending`), under the
 * claim's lock, so that no two claims, from any process sharing the journal, can jointly pass it.
 * What counts: every claim of the wallet still `pending` (maybe paid), `paid` or `settled`, at the
 * amount its credential commits to; `failed` (definitively unpaid) does not.
 */
export type Budget = {
  /** The paying wallet. */
  wallet: string;
  /** At most `maxAtomic` over the claims of run `id` (one command, or one `reconcile` for its whole life). */
  run?: { id: string; maxAtomic: bigint } | undefined;
  /** At most `maxAtomic` over the wallet's claims of the last `seconds` (a rolling window). */
  window?: { seconds: number; maxAtomic: bigint } | undefined;
};

/** What a wallet has claimed so far, per {@link Budget} limit, atomic units. */
export type BudgetUse = { runAtomic: bigint; windowAtomic: bigint };

/** Why a claim was refused by the {@link Budget}. */
export type BudgetRefusal = {
  limit: "run" | "window";
  /** Already claimed under that limit. */
  usedAtomic: bigint;
  maxAtomic: bigint;
  /** This claim. */
  askedAtomic: bigint;
};

/** Options for {@link Journal.transition}. */
export type TransitionOptions = {
  /** Checked (under the claim's lock) when `next` moves the intent to `pending`. */
  budget?: Budget | undefined;
};

/** The outcome of a {@link Journal.transition}. */
export type TransitionResult =
  | { ok: true; record: IntentRecord }
  | { ok: false; current: IntentRecord | undefined; overBudget?: BudgetRefusal | undefined };

/** A journal of purchase intents and pinned recipients. */
export type Journal = {
  /** The file, or null for an in-memory or database journal. */
  readonly path: string | null;
  /** Where it lives, for messages (a database's URL without its password). */
  readonly location: string;
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
    options?: TransitionOptions,
  ): Promise<TransitionResult>;
  /**
   * What the budget's wallet has claimed so far (a read: the claim itself checks again under its
   * lock). `except` leaves out one intent's own record: a claim of that intent by another runner is
   * not spend this intent would add (its claim loses the compare-and-set and waits for that one).
   */
  budgetUse(budget: Budget, except?: IntentRef): Promise<BudgetUse>;
  /** The recipient pinned for this API base and rail. */
  pinned(apiBase: string, rail: RailName): Promise<string | null>;
  /** Pins a recipient unless one is already pinned; returns the pinned one. */
  pin(apiBase: string, rail: RailName, recipient: string): Promise<string>;
  /** Releases what it holds (a database's connections). */
  close(): Promise<void>;
};

/** One intent, as the journal keys it. */
export type IntentRef = { apiBase: string; idempotencyKey: string };

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

type Folded = { record: IntentRecord; rev: number; tok: string | undefined };

function fold(lines: Line[]): Map<string, Folded> {
  const map = new Map<string, Folded>();
  for (const line of lines) {
    if (line.type !== "intent") continue;
    const { rev, tok, ...rest } = line;
    const record = normalize(rest as unknown as Record<string, unknown>);
    if (!record) continue;
    const key = recordKey(record.apiBase, record.idempotencyKey);
    const current = map.get(key);
    const currentRev = current?.rev ?? 0;
    // A fenced line written against another record than the current one lost a race it could not
    // see (its writer's lock was broken): it never takes effect.
    if (typeof rev === "number" && rev !== currentRev + 1) continue;
    // This version writes whole records; older versions wrote partial ones that merge.
    const whole = typeof (line as { apiBase?: unknown }).apiBase === "string";
    map.set(key, {
      record: whole ? record : { ...current?.record, ...record },
      rev: currentRev + 1,
      tok: typeof tok === "string" ? tok : undefined,
    });
  }
  return map;
}

function intentsOf(lines: Line[]): Map<string, IntentRecord> {
  return new Map([...fold(lines)].map(([key, folded]) => [key, folded.record]));
}

const countedStates = new Set<IntentState>(["pending", "paid", "settled"]);

/** What `budget`'s wallet has claimed in `records`, per limit, at time `nowMs`. */
export function budgetUseOf(records: Iterable<IntentRecord>, budget: Budget, nowMs: number): BudgetUse {
  const wallet = budget.wallet.toLowerCase();
  let runAtomic = 0n;
  let windowAtomic = 0n;
  for (const r of records) {
    if (!countedStates.has(r.state) || !r.claimedAt || r.wallet?.toLowerCase() !== wallet) continue;
    const amount = BigInt(r.amountAtomic ?? "0");
    if (budget.run && r.runId === budget.run.id) runAtomic += amount;
    if (budget.window && Date.parse(r.claimedAt) > nowMs - budget.window.seconds * 1000)
      windowAtomic += amount;
  }
  return { runAtomic, windowAtomic };
}

/** The refusal of a claim of `askedAtomic` on top of `use`, or null when the budget allows it. */
export function overBudget(budget: Budget, use: BudgetUse, askedAtomic: bigint): BudgetRefusal | null {
  if (budget.run && use.runAtomic + askedAtomic > budget.run.maxAtomic)
    return { limit: "run", usedAtomic: use.runAtomic, maxAtomic: budget.run.maxAtomic, askedAtomic };
  if (budget.window && use.windowAtomic + askedAtomic > budget.window.maxAtomic)
    return { limit: "window", usedAtomic: use.windowAtomic, maxAtomic: budget.window.maxAtomic, askedAtomic };
  return null;
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
  const locked = <T>(fn: (guard: Guard) => Promise<T> | T): Promise<T> => {
    const run = queue.then(() => fn(noGuard));
    queue = run.catch(() => undefined);
    return run;
  };
  return build(
    null,
    "memory",
    locked,
    async () => ({ lines, size: 0 }),
    async (line) => {
      lines.push(line);
      return { lines, fenced: true };
    },
  );
}

/**
 * The file after an append: `fenced`, whether the line took effect; `raced`, whether another
 * process wrote between this one's read and its write (its lock, or ours, was broken).
 */
type Appended = { lines: Line[]; fenced: boolean; raced?: boolean };

/** Checks, inside a locked section, that the lock is still this process's. */
type Guard = () => void;
const noGuard: Guard = () => undefined;

/** Opens (creating its folder if needed) the journal at `path`. */
export function open(options: OpenOptions): Journal {
  const { path, staleMs = 10_000, waitMs = 10_000, beforeWrite } = options;
  const lockPath = `${path}.lck`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot create its folder", cause });
  }
  // In-process callers queue here first, so the inter-process lock is taken by one of them at a time.
  let queue: Promise<unknown> = Promise.resolve();
  let cache: { size: number; mtimeMs: number; lines: Line[] } | null = null;

  async function read(): Promise<{ lines: Line[]; size: number }> {
    if (!existsSync(path)) return { lines: [], size: 0 };
    try {
      const s = await stat(path);
      if (cache && cache.size === s.size && cache.mtimeMs === s.mtimeMs)
        return { lines: cache.lines, size: cache.size };
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
      const size = Buffer.byteLength(text);
      cache = { size, mtimeMs: s.mtimeMs, lines };
      return { lines, size };
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be read", cause });
    }
  }

  /**
   * Appends `line` to the file as read (`known`, `knownSize` bytes) and returns the lines as they are
   * after it. When the file grew by more than this line, another process wrote meanwhile (its lock
   * was broken under it, or ours under us): the file is read again, and `fenced` tells whether this
   * line still took effect (fold()).
   */
  async function append(line: Line, known: Line[], knownSize: number): Promise<Appended> {
    await beforeWrite?.();
    const fresh = !existsSync(path);
    cache = null;
    let handle: Awaited<ReturnType<typeof openFile>>;
    try {
      handle = await openFile(path, "a", 0o600);
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be opened for append", cause });
    }
    // A torn last line from a crash must not swallow this one. writeFile loops until every byte is
    // written (a bare write may stop short and leave a torn record this process believes saved).
    const text = `\n${JSON.stringify(line)}\n`;
    try {
      await handle.writeFile(text);
      await handle.sync();
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be written", cause });
    } finally {
      await handle.close();
    }
    if (fresh) {
      try {
        const dir = await openFile(dirname(path), "r");
        await dir.sync().finally(() => dir.close());
      } catch {
        // Some filesystems refuse fsync on directories; the file itself is synced.
      }
    }
    const s = await stat(path);
    if (s.size === knownSize + Buffer.byteLength(text)) {
      // Nobody else wrote since our read: the file is what we read plus our line.
      const lines = [...known, line];
      cache = { size: s.size, mtimeMs: s.mtimeMs, lines };
      return { lines, fenced: true, raced: false };
    }
    const { lines } = await read();
    const tok = line.type === "intent" ? line.tok : undefined;
    if (line.type !== "intent" || tok === undefined) return { lines, fenced: true, raced: true };
    const folded = fold(lines).get(recordKey(line.apiBase, line.idempotencyKey));
    return { lines, fenced: folded?.tok === tok, raced: true };
  }

  async function withLock<T>(fn: (guard: Guard) => Promise<T> | T): Promise<T> {
    let release: () => Promise<void>;
    // proper-lockfile calls this when it could not refresh the lock in time (a stall, a clock jump,
    // the lock folder removed): another process may hold it now. Whatever runs under it must not
    // write as if it still held it; the next take re-checks.
    let lost: Error | null = null;
    try {
      release = await lockfile.lock(path, {
        realpath: false,
        lockfilePath: lockPath,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 4)),
        retries: { retries: Math.ceil(waitMs / 50), factor: 1, minTimeout: 50, maxTimeout: 50 },
        onCompromised: (err) => {
          lost = err;
        },
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
    const guard: Guard = () => {
      if (lost)
        throw new JournalError({
          path,
          code: "JOURNAL_LOCK_LOST",
          reason:
            "its lock was lost while this process held it (a stall or clock jump longer than the lock's staleness), so another process may have written meanwhile; the write was refused",
          cause: lost,
        });
    };
    try {
      return await fn(guard);
    } finally {
      await release().catch(() => undefined);
    }
  }

  const locked = <T>(fn: (guard: Guard) => Promise<T> | T): Promise<T> => {
    const run = queue.then(() => withLock(fn));
    queue = run.catch(() => undefined);
    return run;
  };
  return build(path, path, locked, read, append);
}

let tokens = 0;
/** A line's identity: unique per process and line. */
const token = () =>
  `${self}/${Date.now().toString(36)}/${(tokens++).toString(36)}/${Math.random().toString(36).slice(2, 8)}`;

function build(
  path: string | null,
  location: string,
  locked: <T>(fn: (guard: Guard) => Promise<T> | T) => Promise<T>,
  read: () => Promise<{ lines: Line[]; size: number }>,
  append: (line: Line, known: Line[], knownSize: number) => Promise<Appended>,
): Journal {
  return {
    path,
    location,
    intents: () => locked(async () => intentsOf((await read()).lines)),
    get: (apiBase, key) => locked(async () => intentsOf((await read()).lines).get(recordKey(apiBase, key))),
    unfinished: (apiBase) =>
      locked(async () =>
        [...intentsOf((await read()).lines).values()].filter(
          (r) => unfinishedStates.has(r.state) && (apiBase === undefined || r.apiBase === apiBase),
        ),
      ),
    transition: (next, from, options = {}) =>
      locked(async (guard): Promise<TransitionResult> => {
        const { lines, size } = await read();
        const folded = fold(lines);
        const key = recordKey(next.apiBase, next.idempotencyKey);
        const currentFold = folded.get(key);
        const current = currentFold?.record;
        if (!from.includes(current?.state)) return { ok: false, current };
        const now = new Date();
        const claiming = next.state === "pending";
        if (claiming && options.budget) {
          const records = [...folded.values()].map((f) => f.record);
          const refusal = overBudget(
            options.budget,
            budgetUseOf(records, options.budget, now.getTime()),
            BigInt(next.amountAtomic ?? "0"),
          );
          if (refusal) return { ok: false, current, overBudget: refusal };
        }
        const record: IntentRecord = {
          ...current,
          ...next,
          ...(claiming ? { claimedAt: now.toISOString() } : {}),
          updatedAt: now.toISOString(),
        };
        guard();
        const tok = token();
        const written = await append(
          { type: "intent", rev: (currentFold?.rev ?? 0) + 1, tok, ...record },
          lines,
          size,
        );
        guard();
        if (!written.fenced) return { ok: false, current: intentsOf(written.lines).get(key) };
        if (claiming && options.budget && written.raced) {
          // Another process claimed meanwhile, unseen by the sum above: judge the budget again with
          // its claims, and withdraw ours (never sent: the caller holds the credential) if over.
          const others = [...fold(written.lines).values()]
            .map((f) => f.record)
            .filter((r) => recordKey(r.apiBase, r.idempotencyKey) !== key);
          const refusal = overBudget(
            options.budget,
            budgetUseOf(others, options.budget, now.getTime()),
            BigInt(next.amountAtomic ?? "0"),
          );
          if (refusal) {
            const withdrawn: IntentRecord = {
              ...record,
              state: "failed",
              error: "POLICY_BUDGET_RACED",
              updatedAt: new Date().toISOString(),
            };
            const now2 = await read();
            const rev = (fold(now2.lines).get(key)?.rev ?? 0) + 1;
            // If even this line loses a race, the claim stays pending and is resolved as unused later.
            await append({ type: "intent", rev, tok: token(), ...withdrawn }, now2.lines, now2.size);
            return { ok: false, current: withdrawn, overBudget: refusal };
          }
        }
        return { ok: true, record };
      }),
    budgetUse: (budget, except) =>
      locked(async () => {
        const intents = intentsOf((await read()).lines);
        if (except) intents.delete(recordKey(except.apiBase, except.idempotencyKey));
        return budgetUseOf(intents.values(), budget, Date.now());
      }),
    pinned: (apiBase, rail) => locked(async () => pinnedOf((await read()).lines, apiBase, rail)),
    pin: (apiBase, rail, recipient) =>
      locked(async (guard) => {
        const { lines, size } = await read();
        const existing = pinnedOf(lines, apiBase, rail);
        if (existing) return existing;
        guard();
        const written = await append(
          { type: "recipient", apiBase, rail, recipient, at: new Date().toISOString() },
          lines,
          size,
        );
        guard();
        // The first pin in the file wins, whoever wrote it.
        return pinnedOf(written.lines, apiBase, rail) ?? recipient;
      }),
    close: async () => undefined,
  };
}
