/**
 * Runs one long `pulumi` command (up, preview, refresh, destroy) for run402-pulumi and makes sure
 * that nothing it starts outlives the CLI: `node supervise.js <pulumi> <args…>`.
 *
 * The engine starts its plugins (the language host, `pulumi-resource-pulumi-nodejs` and its node
 * child) in process groups of their own, so when the CLI dies without a chance to clean up
 * (SIGKILL, a crashed runner) they would keep running, and `pulumi` would keep the stack locked.
 * This process sits between the CLI and `pulumi`: it forwards one SIGINT per interrupt (a second
 * one within a second would make the engine stop without saving), and when its parent dies (its
 * stdin, a pipe from the CLI, closes; or it is re-parented) it asks `pulumi` to stop, waits a few
 * seconds for it to save its state and release the lock, then kills `pulumi` and every process it
 * started. A lock left behind that way is stale (same host, dead pid): the next run clears it.
 * SIGUSR2 from the CLI is a hard stop (its stop bound passed, or a second signal): the engine gets
 * its second interrupt, and 2 seconds later it and everything it started are killed.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, dirname } from "node:path";

/** Seconds the engine gets to stop on its own once the CLI is gone. */
const graceMs = Number(process.env.RUN402_SUPERVISE_GRACE_MS ?? 5000);

const [pulumi, ...args] = process.argv.slice(2);
if (!pulumi) {
  process.stderr.write("usage: supervise <pulumi> <args…>\n");
  process.exit(2);
}

const parent = process.ppid;
/** Set once the CLI is gone. */
let orphaned = false;
const child = spawn(pulumi, args, {
  // Its own process group: a terminal's Ctrl-C reaches the engine once, through us.
  detached: true,
  // Relayed, not inherited: when the CLI is gone the engine must not die of a broken pipe halfway
  // through writing its state; it is asked to stop instead.
  stdio: ["ignore", "pipe", "pipe"],
  // The engine finds its bundled plugins next to itself.
  env: { ...process.env, PATH: `${dirname(pulumi)}${delimiter}${process.env.PATH ?? ""}` },
});
for (const [from, to] of [
  [child.stdout, process.stdout],
  [child.stderr, process.stderr],
] as const) {
  to.on("error", () => {}); // the reader is gone: keep draining the engine's output
  from?.on("data", (chunk: Buffer) => {
    if (!orphaned && to.writable) to.write(chunk);
  });
}

interface Proc {
  pid: number;
  /** Start time (clock ticks since boot, Linux), so a reused pid is never killed; "" elsewhere. */
  start: string;
}

function startTime(pid: number): string {
  try {
    // Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

/** The children of `pid` from /proc (every thread's `children` list); undefined where /proc has none. */
function procChildren(pid: number): number[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return existsSync("/proc/self/task") ? [] : undefined;
  }
  const found: number[] = [];
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(" ")) {
        if (child.trim() !== "") found.push(Number(child));
      }
    } catch (error) {
      // A kernel without the children file: use ps.
      if (
        (error as NodeJS.ErrnoException).code === "ENOENT" &&
        task === tasks[0] &&
        existsSync(`/proc/${pid}`)
      )
        return undefined;
    }
  }
  return found;
}

/** The children of every process, from `ps` (where /proc cannot tell). */
function psChildren(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  const listed = spawnSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" });
  if (listed.status !== 0) return children;
  for (const line of listed.stdout.split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid || ppid === undefined || Number.isNaN(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  return children;
}

/**
 * Every descendant of `root`. On Linux, read from /proc (a few small files a second; starting `ps`
 * every second cost the supervisor more CPU than the rest of its work); elsewhere from `ps`.
 */
function descendants(root: number): Proc[] {
  let table: Map<number, number[]> | undefined;
  const childrenOf = (pid: number): number[] => {
    if (!table) {
      const fromProc = procChildren(pid);
      if (fromProc) return fromProc;
      table = psChildren();
    }
    return table.get(pid) ?? [];
  };
  const found: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const pid of childrenOf(queue.shift() as number)) {
      found.push({ pid, start: startTime(pid) });
      queue.push(pid);
    }
  }
  return found;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

/** What the engine started, as last seen (plugins are re-parented once the engine dies). */
const known = new Map<number, Proc>();
function look(): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  for (const proc of descendants(child.pid)) known.set(proc.pid, proc);
}

/** Kills whatever the engine started that still runs. */
function sweep(): void {
  for (const proc of known.values()) {
    if (proc.start === "" || startTime(proc.pid) === proc.start) kill(proc.pid, "SIGKILL");
  }
}

const watch = setInterval(() => {
  look();
  if (process.ppid !== parent) parentGone();
}, 1000);

let lastInterrupt = 0;
function interrupt(): void {
  const now = Date.now();
  if (now - lastInterrupt < 1000) return;
  lastInterrupt = now;
  if (child.pid) kill(child.pid, "SIGINT");
}
process.on("SIGINT", interrupt);
process.on("SIGTERM", interrupt);

/** Milliseconds the engine gets between its second interrupt and SIGKILL on a hard stop (cli/engine/stop.ts's hardStopGraceMs). */
const hardGraceMs = 2000;
let stopping = false;
/**
 * A hard stop (SIGUSR2 from the CLI: its stop bound passed, or a second signal): the engine gets its
 * second interrupt (it stops at once), then everything it started is killed.
 */
function hardStop(): void {
  if (stopping) return;
  stopping = true;
  look();
  if (child.pid) kill(child.pid, "SIGINT");
  setTimeout(() => {
    look();
    if (child.pid) kill(child.pid, "SIGKILL");
    sweep();
    process.exit(130);
  }, hardGraceMs).unref();
}
process.on("SIGUSR2", hardStop);

function parentGone(): void {
  if (orphaned) return;
  orphaned = true;
  look();
  if (child.exitCode !== null || child.signalCode !== null) {
    sweep();
    process.exit(1);
  }
  if (child.pid) kill(child.pid, "SIGINT");
  setTimeout(() => {
    look();
    if (child.pid) kill(child.pid, "SIGKILL");
    sweep();
    process.exit(1);
  }, graceMs).unref();
}
process.stdin.on("end", parentGone);
process.stdin.on("error", parentGone);
process.stdin.resume();

child.on("error", (error) => {
  process.stderr.write(`run402-pulumi: could not start ${pulumi}: ${error.message}\n`);
  process.exit(127);
});
// "close": after the engine exited and its output was relayed in full.
child.on("close", (code, signal) => {
  clearInterval(watch);
  // Nothing the engine started may outlive it (it stops its plugins itself when it can).
  sweep();
  process.exit(orphaned ? 1 : (code ?? (signal === "SIGINT" ? 130 : 1)));
});
