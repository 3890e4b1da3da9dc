/**
 * Running a command the way the bench measures it: wall time from spawn to exit, CPU time of the
 * command and every descendant it waited for (GNU time), and on request the process tree as /proc
 * shows it while it runs (when each process started, its peak RSS) or every program it executed
 * (strace, for the process count; never in a timed run: tracing slows it down).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";

/** One process seen in /proc while a command ran. */
export interface SeenProcess {
  pid: number;
  /** What it runs: the program's name, or for node the script's. */
  name: string;
  /** Its first arguments. */
  argv: string[];
  /** Its start, ms after the command's own start (10 ms resolution: clock ticks). */
  startMs: number;
  /** Last time it was seen, ms after the command's start. */
  lastSeenMs: number;
  /** Peak resident set (VmHWM), KiB, as last read. */
  hwmKiB: number;
  /** User + system CPU, ms, as last read. */
  cpuMs: number;
}

/** What one run of a command showed. */
export interface Observed {
  code: number;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** User + system CPU of the command and the descendants it waited for, ms (GNU time). */
  cpuMs: number;
  /** `performance.now()` at spawn. */
  startedAt: number;
  /** `Date.now()` at spawn. */
  startedEpochMs: number;
  /** With `watch`: every descendant seen. */
  processes: SeenProcess[];
  /** With `trace`: every program executed, in order (see {@link programName}). */
  executed: string[];
  /** stderr lines with their arrival, ms after spawn. */
  lines: { ms: number; text: string }[];
}

/** Options of {@link observe}. */
export interface ObserveOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Poll /proc every few ms for the process tree (start times, peak RSS). */
  watch?: boolean;
  /** Run under `strace -f -e trace=execve` and list the programs executed. */
  trace?: boolean;
  timeoutMs?: number;
}

const TICKS_PER_SECOND = 100;

function stat(pid: number): { ppid: number; start: number; cpuMs: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { ppid: Number(fields[1]), start: Number(fields[19]), cpuMs: (ticks * 1000) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

function hwm(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** A program's short name from its argv: the executable, or for node (and sh -c) what it runs. */
export function programName(argv: string[]): string {
  const exe = basename(argv[0] ?? "?");
  const script = argv.slice(1).find((a) => !a.startsWith("-"));
  const short = (path: string) =>
    basename(path) === "index.js" ? `${basename(join(path, ".."))}/index.js` : basename(path);
  if (exe === "node" || exe.startsWith("node")) {
    if (argv.includes("-e")) return "node -e";
    return script ? `node ${short(script)}` : "node";
  }
  if ((exe === "sh" || exe === "bash" || exe === "dash") && script && !argv.includes("-c"))
    return `${exe} ${short(script)}`;
  return exe;
}

/**
 * Descendants of `root` now. `known` caches each pid's parent and start across calls, so a poll reads
 * /proc's listing plus the stat of processes it has not met yet (a scan of every process each time
 * costs enough CPU to slow what is measured on a small machine).
 */
function descendants(root: number, known: Map<number, { ppid: number; start: number }>): number[] {
  const present = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    present.add(pid);
    if (!known.has(pid)) {
      const s = stat(pid);
      if (s) known.set(pid, { ppid: s.ppid, start: s.start });
    }
  }
  for (const pid of known.keys()) if (!present.has(pid)) known.delete(pid);
  const out: number[] = [];
  for (const pid of known.keys()) {
    let p: number | undefined = pid;
    for (let hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
      if (p === root) {
        out.push(pid);
        break;
      }
      p = known.get(p)?.ppid;
    }
  }
  return out;
}

/** Parses `strace -f -e trace=execve` output: the argv of every successful execve, in order. */
export function executedPrograms(trace: string): string[] {
  const pending = new Map<string, string[]>();
  const out: string[] = [];
  for (const line of trace.split("\n")) {
    const m = /^(\d+)\s+execve\("[^"]*", \[(.*?)\](?:, .*?)?(?:\) = (-?\d+)| <unfinished \.\.\.>)/.exec(line);
    if (m) {
      const argv = [...(m[2] ?? "").matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1] as string);
      if (m[3] === undefined) pending.set(m[1] as string, argv);
      else if (m[3] === "0") out.push(programName(argv));
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. execve resumed>.*= (-?\d+)/.exec(line);
    if (resumed) {
      const argv = pending.get(resumed[1] as string);
      pending.delete(resumed[1] as string);
      if (argv && resumed[2] === "0") out.push(programName(argv));
    }
  }
  return out;
}

/** Runs a command to its end and reports what {@link Observed} lists. Never throws on exit codes. */
export async function observe(
  command: string,
  args: string[],
  options: ObserveOptions = {},
): Promise<Observed> {
  const scratch = mkdtempSync(join(tmpdir(), "run402-observe-"));
  const timeFile = join(scratch, "time");
  const traceFile = join(scratch, "trace");
  const inner = options.trace
    ? [
        "strace",
        "-f",
        "-qq",
        "-s",
        "256",
        "-e",
        "trace=execve",
        "-e",
        "signal=none",
        "-o",
        traceFile,
        command,
        ...args,
      ]
    : [command, ...args];
  const startedEpochMs = Date.now();
  const startedAt = performance.now();
  const child = spawn("/usr/bin/time", ["-f", "%U %S", "-o", timeFile, ...inner], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let partial = "";
  const lines: Observed["lines"] = [];
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    const ms = performance.now() - startedAt;
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    for (const text of parts) lines.push({ ms, text });
  });
  const seen = new Map<number, SeenProcess>();
  const known = new Map<number, { ppid: number; start: number }>();
  let rootStart: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const poll = () => {
    const root = child.pid;
    if (root === undefined) return;
    rootStart ??= stat(root)?.start;
    if (rootStart === undefined) return;
    const now = performance.now() - startedAt;
    for (const pid of descendants(root, known)) {
      const start = known.get(pid)?.start ?? rootStart;
      const argv = cmdline(pid);
      const entry = seen.get(pid) ?? {
        pid,
        name: "?",
        argv: [],
        startMs: ((start - rootStart) * 1000) / TICKS_PER_SECOND,
        lastSeenMs: now,
        hwmKiB: 0,
        cpuMs: 0,
      };
      // The name may change when the process executes a program after it was first seen.
      if (argv.length) {
        entry.name = programName(argv);
        entry.argv = argv.slice(0, 8);
      }
      entry.lastSeenMs = now;
      entry.hwmKiB = Math.max(entry.hwmKiB, hwm(pid));
      entry.cpuMs = Math.max(entry.cpuMs, stat(pid)?.cpuMs ?? 0);
      seen.set(pid, entry);
    }
  };
  if (options.watch) timer = setInterval(poll, 20);
  const killer = options.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), options.timeoutMs) : undefined;
  const code = await new Promise<number>((resolve) =>
    child.once("close", (c, signal) => resolve(c ?? (signal ? 128 : 1))),
  );
  const wallMs = performance.now() - startedAt;
  if (timer) clearInterval(timer);
  if (killer) clearTimeout(killer);
  if (partial) lines.push({ ms: wallMs, text: partial });
  let cpuMs = Number.NaN;
  try {
    const [user, system] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
    cpuMs = ((user ?? 0) + (system ?? 0)) * 1000;
  } catch {
    // time did not write its line (killed).
  }
  const executed =
    options.trace && existsSync(traceFile) ? executedPrograms(readFileSync(traceFile, "utf8")) : [];
  rmSync(scratch, { recursive: true, force: true });
  return {
    code,
    stdout,
    stderr,
    wallMs,
    cpuMs,
    startedAt,
    startedEpochMs,
    processes: [...seen.values()].sort((a, b) => a.startMs - b.startMs),
    executed,
    lines,
  };
}

/** `["node main.js", "pulumi", "pulumi"]` → `"node main.js ×1, pulumi ×2"` (first-seen order). */
export function countNames(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => `${n} ×${c}`).join(", ");
}
