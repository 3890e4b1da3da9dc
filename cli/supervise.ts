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
 */
import { spawn, spawnSync } from "node:child_process";
import { delimiter, dirname } from "node:path";

/** Seconds the engine gets to stop on its own once the CLI is gone. */
const graceMs = Number(process.env.RUN402_SUPERVISE_GRACE_MS ?? 5000);

const [pulumi, ...args] = process.argv.slice(2);
if (!pulumi) {
  process.stderr.write("usage: supervise <pulumi> <args…>\n");
  process.exit(2);
}

const parent = process.ppid;
const child = spawn(pulumi, args, {
  // Its own process group: a terminal's Ctrl-C reaches the engine once, through us.
  detached: true,
  stdio: ["ignore", "inherit", "inherit"],
  // The engine finds its bundled plugins next to itself.
  env: { ...process.env, PATH: `${dirname(pulumi)}${delimiter}${process.env.PATH ?? ""}` },
});

/** Every descendant of `root` (pid and parent pid from `ps`), children before grandchildren. */
function descendants(root: number): number[] {
  const listed = spawnSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" });
  if (listed.status !== 0) return [];
  const children = new Map<number, number[]>();
  for (const line of listed.stdout.split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (!pid || ppid === undefined || Number.isNaN(ppid)) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const pid of children.get(queue.shift() as number) ?? []) {
      found.push(pid);
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

let lastInterrupt = 0;
function interrupt(): void {
  const now = Date.now();
  if (now - lastInterrupt < 1000) return;
  lastInterrupt = now;
  if (child.pid) kill(child.pid, "SIGINT");
}
process.on("SIGINT", interrupt);
process.on("SIGTERM", interrupt);

let orphaned = false;
function parentGone(): void {
  if (orphaned || child.exitCode !== null || child.signalCode !== null) return;
  orphaned = true;
  const pid = child.pid;
  if (!pid) return;
  // Known now, while they are still our descendants (once `pulumi` dies they are re-parented).
  let tree = descendants(pid);
  kill(pid, "SIGINT");
  const timer = setTimeout(() => {
    tree = [...new Set([...tree, ...descendants(pid)])];
    kill(pid, "SIGKILL");
    for (const p of tree) kill(p, "SIGKILL");
  }, graceMs);
  child.once("exit", () => {
    clearTimeout(timer);
    for (const p of tree) kill(p, "SIGKILL");
    process.exit(1);
  });
}
process.stdin.on("end", parentGone);
process.stdin.on("error", parentGone);
process.stdin.resume();
const watch = setInterval(() => {
  if (process.ppid !== parent) parentGone();
}, 500);
watch.unref();

child.on("error", (error) => {
  process.stderr.write(`run402-pulumi: could not start ${pulumi}: ${error.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  if (orphaned) return;
  process.exit(code ?? (signal === "SIGINT" ? 130 : 1));
});
