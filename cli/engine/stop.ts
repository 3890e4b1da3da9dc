/**
 * Stopping engines: the grace the engine gets, the signal that ends it now, the supervisors of this
 * process's operations, and the run owner every process of a run watches.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * How long the engine has, after a stop, to cancel its providers, save its state and exit before
 * its supervisor ends it (a second interrupt, then SIGKILL of everything it started 2 s later).
 */
export const stopGraceMs = Number(process.env.RUN402_STOP_GRACE_MS ?? 5000);

/** How long cli/supervise.ts gives the engine between its second interrupt and SIGKILL on a hard stop. */
export const hardStopGraceMs = 2000;

/** The signal that tells cli/supervise.ts to end its engine now. */
export const hardStopSignal = "SIGUSR2";

/** The supervisors of engine operations running in this process. */
export const supervisors = new Set<ChildProcess>();

/**
 * This process as `<pid>:<start time>` (clock ticks since boot, from /proc; empty elsewhere), the
 * value of RUN402_RUN_OWNER that the provider plugin (scripts/pulumi-resource-pulumi-nodejs.cjs)
 * and the language host watch: they exit once it is gone, a reused pid having another start time.
 */
export function runOwner(pid: number = process.pid): string {
  let start = "";
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    // No /proc: the pid alone.
  }
  return `${pid}:${start}`;
}

/** Ends every engine operation of this process now (a second SIGINT/SIGTERM): see cli/supervise.ts. */
export function stopEngines(): void {
  for (const child of supervisors) child.kill(hardStopSignal);
}
