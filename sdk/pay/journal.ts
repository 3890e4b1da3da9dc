import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { JournalError } from "../errors/payment.js";
import type { Settlement } from "../Receipt.js";
import type { RailName } from "./rail.js";

/** What a purchase looks like in the journal. */
export type IntentRecord = {
  intentId: string;
  idempotencyKey: string;
  method: string;
  url: string;
  /** The request body (paid routes only, which carry no secrets), so a later run can repeat the request. */
  body?: unknown;
  /** `begun`: recorded, nothing signed. `signing`: a credential is being or was signed and sent; the outcome is unknown until `settled` / `failed`. */
  state: "begun" | "signing" | "settled" | "failed";
  rail?: RailName | undefined;
  amountAtomic?: string | undefined;
  recipient?: string | undefined;
  network?: string | undefined;
  asset?: string | undefined;
  settlement?: Settlement | null | undefined;
  /** Until when a credential signed in state `signing` could still settle. */
  validUntil?: string | undefined;
  error?: string | undefined;
  updatedAt: string;
};

type Line =
  | ({ type: "intent" } & IntentRecord)
  | { type: "recipient"; apiBase: string; rail: RailName; recipient: string; at: string };

/** Options for {@link open}. */
export type OpenOptions = {
  path: string;
  /** A lock older than this, or held by a dead process, is broken. @default 30000 */
  staleMs?: number | undefined;
  /** How long to wait for a live lock. @default 10000 */
  waitMs?: number | undefined;
};

/** A durable, append-only JSON-lines journal of purchase intents and pinned recipients. */
export type Journal = {
  readonly path: string;
  /** The latest record per idempotency key. */
  intents(): Map<string, IntentRecord>;
  /** Intents whose outcome is unknown (`begun` or `signing`). */
  unfinished(): IntentRecord[];
  /** Appends a new state for an intent (fsynced before returning). */
  record(record: Omit<IntentRecord, "updatedAt">): void;
  /** The recipient pinned for this API base and rail. */
  pinned(apiBase: string, rail: RailName): string | null;
  /** Pins a recipient unless one is already pinned; returns the pinned one. */
  pin(apiBase: string, rail: RailName, recipient: string): string;
};

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => Atomics.wait(sleeper, 0, 0, ms);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Opens (creating if needed) the journal at `path`. */
export function open(options: OpenOptions): Journal {
  const { path, staleMs = 30_000, waitMs = 10_000 } = options;
  const lockPath = `${path}.lock`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot create its folder", cause });
  }

  function lock(): void {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        const fd = openSync(lockPath, "wx", 0o600);
        writeSync(fd, JSON.stringify({ pid: process.pid, at: Date.now() }));
        fsyncSync(fd);
        closeSync(fd);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new JournalError({
            path,
            code: "JOURNAL_IO",
            reason: "cannot create its lock file",
            cause: err,
          });
        }
      }
      let holder: { pid?: number; at?: number } = {};
      let raw = "";
      try {
        raw = readFileSync(lockPath, "utf8");
        holder = JSON.parse(raw) as typeof holder;
      } catch {
        // Half-written or just removed: treat as held, re-check after a short wait.
      }
      const stale =
        (typeof holder.pid === "number" && !alive(holder.pid)) ||
        (typeof holder.at === "number" && Date.now() - holder.at > staleMs);
      if (stale) {
        try {
          // Only break the lock we judged stale, not one another process just took.
          if (readFileSync(lockPath, "utf8") === raw) unlinkSync(lockPath);
        } catch {
          // Someone else broke it first.
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new JournalError({
          path,
          code: "JOURNAL_LOCKED",
          reason: `locked by process ${holder.pid ?? "unknown"} for over ${waitMs} ms`,
        });
      }
      sleep(20);
    }
  }

  function unlock(): void {
    try {
      unlinkSync(lockPath);
    } catch {
      // Already broken as stale by another process; nothing to release.
    }
  }

  function read(): Line[] {
    if (!existsSync(path)) return [];
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be read", cause });
    }
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    const out: Line[] = [];
    lines.forEach((line, i) => {
      try {
        out.push(JSON.parse(line) as Line);
      } catch (cause) {
        // A crash mid-append leaves a truncated record; later appends start on a fresh line, so a
        // torn record may sit anywhere. It never took effect: skip it. Anything else is corruption.
        if (!line.startsWith('{"type":')) {
          throw new JournalError({
            path,
            code: "JOURNAL_CORRUPT",
            reason: `line ${i + 1} is not JSON`,
            cause,
          });
        }
      }
    });
    return out;
  }

  function append(line: Line): void {
    const fresh = !existsSync(path);
    let fd: number;
    try {
      fd = openSync(path, "a", 0o600);
    } catch (cause) {
      throw new JournalError({ path, code: "JOURNAL_IO", reason: "cannot be opened for append", cause });
    }
    try {
      // A torn last line from a crash must not swallow this one.
      writeSync(fd, `\n${JSON.stringify(line)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (fresh) {
      try {
        const dirFd = openSync(dirname(path), "r");
        fsyncSync(dirFd);
        closeSync(dirFd);
      } catch {
        // Some filesystems refuse fsync on directories; the file itself is synced.
      }
    }
  }

  function locked<T>(fn: () => T): T {
    lock();
    try {
      return fn();
    } finally {
      unlock();
    }
  }

  function intentsOf(lines: Line[]): Map<string, IntentRecord> {
    const map = new Map<string, IntentRecord>();
    for (const line of lines) {
      if (line.type !== "intent") continue;
      const { type: _type, ...record } = line;
      map.set(record.idempotencyKey, { ...map.get(record.idempotencyKey), ...record });
    }
    return map;
  }

  function pinnedOf(lines: Line[], apiBase: string, rail: RailName): string | null {
    for (const line of lines) {
      if (line.type === "recipient" && line.apiBase === apiBase && line.rail === rail) return line.recipient;
    }
    return null;
  }

  return {
    path,
    intents: () => locked(() => intentsOf(read())),
    unfinished: () =>
      [...locked(() => intentsOf(read())).values()].filter(
        (r) => r.state === "begun" || r.state === "signing",
      ),
    record: (record) =>
      locked(() => append({ type: "intent", ...record, updatedAt: new Date().toISOString() })),
    pinned: (apiBase, rail) => locked(() => pinnedOf(read(), apiBase, rail)),
    pin: (apiBase, rail, recipient) =>
      locked(() => {
        const existing = pinnedOf(read(), apiBase, rail);
        if (existing) return existing;
        append({ type: "recipient", apiBase, rail, recipient, at: new Date().toISOString() });
        return recipient;
      }),
  };
}
