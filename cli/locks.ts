/**
 * Stack locks. The engine locks a stack for the length of an update, refresh or destroy; in a file
 * backend the lock is a JSON file `<backend>/.pulumi/locks/<org>/<project>/<stack>/<id>.json`
 * naming the `pulumi` process that holds it (pid, user, host, time). A run killed mid-way leaves
 * its lock behind; this module tells a stale lock (same host, holder dead) from a live one, which
 * is never touched.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import type { ReportedError } from "./reported.js";

/** One lock file. */
export interface StackLock {
  file: string;
  pid: number;
  username: string;
  hostname: string;
  timestamp: string;
}

/** The folder of a `file://` backend URL, or undefined for any other backend. */
export function fileBackendDir(backend: string): string | undefined {
  if (!backend.startsWith("file://")) return undefined;
  const path = decodeURIComponent(backend.slice("file://".length).replace(/\?.*$/, ""));
  return path.startsWith("~") ? join(homedir(), path.slice(1)) : path;
}

/** The lock files of a stack in a file backend (either layout: per project, or legacy per stack). */
export function stackLocks(backendDir: string, project: string, stack: string): StackLock[] {
  const root = join(backendDir, ".pulumi", "locks");
  if (!existsSync(root)) return [];
  const locks: StackLock[] = [];
  const folders = [join(root, "organization", project, stack), join(root, stack)];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    // Organizations other than the default one (Pulumi names DIY stacks org/project/stack).
    if (entry.isDirectory() && entry.name !== "organization")
      folders.push(join(root, entry.name, project, stack));
  }
  for (const folder of new Set(folders)) {
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      if (!name.endsWith(".json")) continue;
      const file = join(folder, name);
      try {
        const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<StackLock>;
        locks.push({
          file,
          pid: Number(parsed.pid),
          username: String(parsed.username ?? "?"),
          hostname: String(parsed.hostname ?? "?"),
          timestamp: String(parsed.timestamp ?? "?"),
        });
      } catch {
        // Being written right now, or not a lock: leave it to the engine.
      }
    }
  }
  return locks;
}

/** True when the process `pid` on this host is alive and may be the engine. */
export function holderAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  // A pid reused by an unrelated process: where /proc names it, it is not the engine. An engine that
  // has exited and waits to be reaped (a zombie, state Z) holds nothing either.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    const name = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    return name === "" || /pulumi/.test(name);
  } catch {
    return true;
  }
}

/** Stale: taken on this host by a process that is gone. A lock from another host is never stale here. */
export function isStale(lock: StackLock, host: string = hostname()): boolean {
  return lock.hostname === host && !holderAlive(lock.pid);
}

/** `pid 123 (root@vm) since 2026-…`. */
export function describeLock(lock: Pick<StackLock, "pid" | "username" | "hostname" | "timestamp">): string {
  return `pid ${lock.pid} (${lock.username}@${lock.hostname}) since ${lock.timestamp}`;
}

/** Removes a stale lock; returns false when it was not stale (or already gone). */
export function clearStale(lock: StackLock): boolean {
  if (!isStale(lock)) return false;
  rmSync(lock.file, { force: true });
  return true;
}

/** The error for a stack another run holds. */
export function lockedError(stack: string, holders: string[]): ReportedError {
  return {
    code: "CONFLICT_STACK_LOCKED",
    message: `Another run holds stack ${stack}: ${holders.join("; ")}. Nothing was changed; run again when it has finished.`,
  };
}

/** A process of an earlier run that outlived it. */
export interface Leftover {
  pid: number;
  /** Its command name. */
  name: string;
  /** The run402-pulumi process that started its run (gone). */
  owner: number;
}

/** Whether `pid` runs and started at `start` (clock ticks since boot; "" = any). */
function sameProcess(pid: number, start: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    return start === "" || fields[19] === start;
  } catch {
    return false;
  }
}

/**
 * Live processes of earlier runs whose CLI is gone: they carry RUN402_RUN_OWNER (set by the CLI,
 * inherited by the engine and its plugins) naming a process that no longer runs. Linux only (/proc);
 * elsewhere none are found. Plugins end themselves within a second of their run's end, so one found
 * here is stuck or from an older version.
 */
export function leftovers(self: number = process.pid): Leftover[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: Leftover[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === self) continue;
    let owner: RegExpExecArray | null;
    try {
      owner = /(?:^|\0)RUN402_RUN_OWNER=(\d+):(\d*)(?:\0|$)/.exec(
        readFileSync(`/proc/${entry}/environ`, "utf8"),
      );
    } catch {
      continue; // gone, or another user's
    }
    if (!owner || Number(owner[1]) === self || sameProcess(Number(owner[1]), owner[2] as string)) continue;
    if (!sameProcess(Number(entry), "")) continue;
    let name = "?";
    try {
      name = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
    } catch {}
    found.push({ pid: Number(entry), name, owner: Number(owner[1]) });
  }
  return found;
}
