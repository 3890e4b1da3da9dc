/**
 * Section 4: what a command costs, against one running sandbox, side by side in one run:
 * - the imperative path: Run402's own `@run402/sdk` 3.3.3 (bench/imperative.mjs) buying the tier,
 *   provisioning the project and applying the quickstart app's release, as its own process;
 * - `run402-pulumi` as built from this checkout ("after") and from the baseline commit ("before", a
 *   separate worktree): the first `apply` of the quickstart app (tier + project + deployment), then
 *   `plan`, a second `apply` (nothing to do) and `status` of that converged stack.
 * Every run uses a fresh wallet and a fresh copy of the app; runs are interleaved (imperative, after,
 * before, in an order that rotates) so the machine's load falls on all of them alike.
 * Then, untimed: the programs each command executes (strace), and one `apply` of each side watched
 * through /proc and the sandbox's request log for a per-phase breakdown.
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Observed, observe } from "./proc.js";
import { type SandboxChild, type SandboxInfo, spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

/** One build of run402-pulumi under test. */
export interface Side {
  name: "after" | "before";
  /** Its checkout (dist/cli/main.js, .tools/pulumi). */
  repo: string;
  /** Commit, for the report. */
  commit: string;
}

export const COMMANDS = ["apply", "plan", "noop", "status"] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Wall and CPU time of one kind of run. */
export interface Timing {
  wall: Summary;
  cpu: Summary;
}

/** One phase of an `apply`. */
export interface Phase {
  name: string;
  ms: number;
  /** API requests that ended in it. */
  requests: number;
}

/** One side's figures. */
export interface SideResult {
  side: Side;
  timings: Record<CommandName, Timing>;
  /** Programs executed per command (strace), in order. */
  executed: Record<CommandName, string[]>;
  /** One watched `apply`. */
  phases: Phase[];
  phasesWallMs: number;
  /** Requests the sandbox served for a no-op `apply` / `plan` / `status`, by route. */
  requests: Record<"noop" | "plan" | "status", string[]>;
  /** One watched `plan` and no-op `apply` of the converged stack: where their fixed cost goes. */
  converged: Record<"plan" | "noop", ConvergedProfile>;
}

/** Where one command on a converged stack spends its time, and each process's CPU. */
export interface ConvergedProfile {
  phases: Phase[];
  wallMs: number;
  /** User + system CPU of each process of the run (CLI, supervisor, engine, provider), ms. */
  cpu: { name: string; ms: number }[];
}

/** Result of section 4. */
export interface CommandsResult {
  runs: number;
  imperative: Timing;
  imperativeExecuted: string[];
  sides: SideResult[];
}

interface Context {
  sandbox: SandboxChild;
  scratch: string;
  benchRepo: string;
  progress: (line: string) => void;
  wallet: number;
}

function nextWallet(ctx: Context): SandboxInfo["wallets"][number] {
  const wallet = ctx.sandbox.info.wallets[ctx.wallet++];
  if (!wallet) throw new Error("the sandbox has no wallet left for this run");
  return wallet;
}

interface LogEntry {
  method: string;
  path: string;
  status: number;
  at: string;
  paid: boolean;
}

async function control<T>(ctx: Context, path: string, method = "GET"): Promise<T> {
  const response = await fetch(`${ctx.sandbox.info.apiBase}/_sandbox/${path}`, { method });
  if (!response.ok) throw new Error(`/_sandbox/${path} answered ${response.status}`);
  return (await response.json()) as T;
}

async function paymentsBy(ctx: Context, address: string): Promise<number> {
  const { payments } = await control<{ payments: { payer: string }[] }>(ctx, "ledger");
  return payments.filter((p) => p.payer.toLowerCase() === address.toLowerCase()).length;
}

/** A fresh copy of the quickstart app (app.json and its site). */
export function appCopy(benchRepo: string, scratch: string): string {
  const dir = mkdtempSync(join(scratch, "app-"));
  cpSync(join(benchRepo, "examples", "quickstart", "app.json"), join(dir, "app.json"));
  cpSync(join(benchRepo, "examples", "quickstart", "site"), join(dir, "site"), { recursive: true });
  return dir;
}

/** Environment of a CLI run: no passphrase (the CLI makes its own), the wallet key, a private PULUMI_HOME. */
export function cliEnv(scratch: string, side: string, privateKey: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.PULUMI_CONFIG_PASSPHRASE;
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  return {
    ...env,
    PULUMI_HOME: join(scratch, `pulumi-home-${side}`),
    RUN402_CONFIG_DIR: join(scratch, `config-${side}`),
    RUN402_PRIVATE_KEY: privateKey,
  };
}

/** `run402-pulumi <command>` flags pointing at the sandbox. */
export function cliArgs(
  side: Side,
  command: "apply" | "plan" | "status",
  manifestDir: string,
  info: SandboxInfo,
): string[] {
  const args = [join(side.repo, "dist", "cli", "main.js"), command, "--manifest", manifestDir, "--json"];
  if (command === "status") return args;
  args.push(
    "--rail",
    "x402",
    "-c",
    `run402:apiBase=${info.apiBase}`,
    "-c",
    `run402:baseRpcUrl=${info.x402.rpcUrl}`,
    "-c",
    `run402:tempoRpcUrl=${info.mpp.rpcUrl}`,
    "-c",
    `run402:allowedRecipients=${info.treasury}`,
    "-c",
    `run402:journalPath=${join(manifestDir, "journal.jsonl")}`,
  );
  if (command === "apply") args.push("--yes");
  return args;
}

function check(run: Observed, what: string): Observed {
  if (run.code !== 0) {
    throw new Error(`${what} exited ${run.code}: ${run.stderr.slice(-1500)}\n${run.stdout.slice(-1500)}`);
  }
  return run;
}

/** One imperative run on a fresh wallet; checks it paid once. */
async function imperative(ctx: Context, trace = false): Promise<Observed> {
  const wallet = nextWallet(ctx);
  const configDir = mkdtempSync(join(ctx.scratch, "sdk-config-"));
  writeFileSync(
    join(configDir, "allowance.json"),
    JSON.stringify({ address: wallet.address, privateKey: wallet.privateKey, rail: "x402" }),
    { mode: 0o600 },
  );
  const app = appCopy(ctx.benchRepo, ctx.scratch);
  const run = check(
    await observe(process.execPath, [join(ctx.benchRepo, "bench", "imperative.mjs"), app], {
      cwd: ctx.benchRepo,
      env: { ...process.env, RUN402_CONFIG_DIR: configDir, RUN402_API_BASE: ctx.sandbox.info.apiBase },
      trace,
      timeoutMs: 120_000,
    }),
    "the imperative script",
  );
  const paid = await paymentsBy(ctx, wallet.address);
  if (paid !== 1) throw new Error(`the imperative run paid ${paid} times, expected once`);
  return run;
}

/** The four commands of one side on a fresh wallet and app; checks the payments. */
async function sideRun(
  ctx: Context,
  side: Side,
  options: { trace?: boolean; watchApply?: boolean; requests?: boolean } = {},
): Promise<{
  runs: Record<CommandName, Observed>;
  requests?: SideResult["requests"];
  log?: LogEntry[];
  converged?: SideResult["converged"];
}> {
  const wallet = nextWallet(ctx);
  const app = appCopy(ctx.benchRepo, ctx.scratch);
  const env = cliEnv(ctx.scratch, side.name, wallet.privateKey);
  const { info } = ctx.sandbox;
  const run = async (command: "apply" | "plan" | "status", what: string, watch = false) =>
    check(
      await observe(process.execPath, cliArgs(side, command, app, info), {
        env,
        trace: options.trace ?? false,
        watch,
        timeoutMs: 300_000,
      }),
      `${side.name} ${what}`,
    );
  if (options.watchApply) await control(ctx, "requests", "DELETE");
  const apply = await run("apply", "apply", options.watchApply ?? false);
  const log = options.watchApply
    ? (await control<{ requests: LogEntry[] }>(ctx, "requests")).requests
    : undefined;
  if ((await paymentsBy(ctx, wallet.address)) !== 1)
    throw new Error(`${side.name}: apply did not pay exactly once`);
  const routes = async (go: () => Promise<Observed>) => {
    if (!options.requests) return { run: await go(), routes: [] as string[], log: [] as LogEntry[] };
    await control(ctx, "requests", "DELETE");
    const result = await go();
    const { requests } = await control<{ requests: LogEntry[] }>(ctx, "requests");
    return {
      run: result,
      routes: requests.map((r) => `${r.method} ${r.path.split("?")[0]}${r.paid ? " (paid)" : ""}`),
      log: requests,
    };
  };
  // The watched run also watches plan and the no-op apply (their phase profile).
  const watchAll = options.watchApply ?? false;
  const plan = await routes(() => run("plan", "plan", watchAll));
  const noop = await routes(() => run("apply", "second apply", watchAll));
  const status = await routes(() => run("status", "status"));
  if ((await paymentsBy(ctx, wallet.address)) !== 1) throw new Error(`${side.name}: a no-op command paid`);
  return {
    runs: { apply, plan: plan.run, noop: noop.run, status: status.run },
    ...(options.requests
      ? { requests: { plan: plan.routes, noop: noop.routes, status: status.routes } }
      : {}),
    ...(watchAll
      ? {
          converged: {
            plan: convergedProfile(plan.run, plan.log, "preview"),
            noop: convergedProfile(noop.run, noop.log, "up"),
          },
        }
      : {}),
    ...(log ? { log } : {}),
  };
}

/** Where one watched `apply`'s time went, from /proc (process starts) and the sandbox's request log. */
export function phasesOf(run: Observed, log: LogEntry[]): Phase[] {
  const engine = run.processes.find((p) => p.name === "pulumi" && p.argv.includes("up"));
  const provider = run.processes.find((p) => /pulumi-resource-pulumi-nodejs|dynamic-provider/.test(p.name));
  const at = (entry: LogEntry) => Date.parse(entry.at) - run.startedEpochMs;
  const ends = log.map(at);
  const paidTier = log.findIndex((e) => e.paid && /^\/tiers\/v1\//.test(e.path));
  const project = log.findIndex((e) => e.method === "POST" && e.path.split("?")[0] === "/projects/v1");
  const marks: [string, number | undefined][] = [
    ["CLI start-up: Node, imports, manifest, workspace (until the engine's `up` starts)", engine?.startMs],
    [
      "engine start → the dynamic-provider process starts (program run, resources registered)",
      provider?.startMs,
    ],
    ["provider start-up → its first API response (modules, configure, first check)", ends[0]],
    [
      "tier: status, quote, 402, payment, settlement (→ paid response)",
      paidTier >= 0 ? ends[paidTier] : undefined,
    ],
    ["project: create (→ response)", project >= 0 ? ends[project] : undefined],
    ["deployment: plan, content plan, uploads, commit, operation polls, release read", ends.at(-1)],
    ["engine finish, state write, CLI report (→ exit)", run.wallMs],
  ];
  return phasesBetween(marks, ends);
}

/** Consecutive phases ending at each mark (from 0), with the API responses that fell in each. */
function phasesBetween(marks: [string, number | undefined][], ends: number[]): Phase[] {
  const phases: Phase[] = [];
  let previous = 0;
  for (const [name, end] of marks) {
    if (end === undefined) {
      phases.push({ name: `${name} (not observed)`, ms: Number.NaN, requests: 0 });
      continue;
    }
    phases.push({ name, ms: end - previous, requests: ends.filter((e) => e > previous && e <= end).length });
    previous = end;
  }
  return phases;
}

/**
 * Where one command on a converged stack (`plan`: the engine's `preview`; the no-op `apply`: `up`)
 * spends its time: process starts and last sightings from /proc (10 ms resolution; a process's end is
 * the last poll that saw it, 20 ms apart), API responses from the sandbox's request log.
 */
export function convergedProfile(run: Observed, log: LogEntry[], op: "preview" | "up"): ConvergedProfile {
  const engine = run.processes.find((p) => p.name === "pulumi" && p.argv.includes(op));
  const provider = run.processes.find((p) => /pulumi-resource-pulumi-nodejs|dynamic-provider/.test(p.name));
  const ends = log.map((entry) => Date.parse(entry.at) - run.startedEpochMs);
  const engineEnd = engine?.lastSeenMs;
  const during = engineEnd === undefined ? [] : ends.filter((e) => e <= engineEnd);
  const marks: [string, number | undefined][] = [
    ["CLI start-up: Node, imports, manifest check, workspace (→ the engine starts)", engine?.startMs],
    [
      "engine start-up, program run in the CLI, registrations (→ the provider process starts)",
      provider?.startMs,
    ],
    ["provider start-up: modules, configure, first check (→ its first API response)", during[0]],
    ["checks and diffs of every resource, engine finish (→ the engine exits)", engineEnd],
    ["CLI finish: state read, forecast, report (→ exit)", run.wallMs],
  ];
  const phases = phasesBetween(marks, ends);
  const cpu = run.processes
    .filter((p) => p.cpuMs > 0)
    .map((p) => ({ name: p.name, ms: p.cpuMs }))
    .reduce<{ name: string; ms: number }[]>((list, p) => {
      const same = list.find((q) => q.name === p.name);
      if (same) same.ms += p.ms;
      else list.push({ ...p });
      return list;
    }, []);
  return { phases, wallMs: run.wallMs, cpu };
}

/** Runs section 4 against one sandbox child of `benchRepo`'s build. */
export async function benchCommands(
  benchRepo: string,
  sides: Side[],
  tmpDir: string,
  scratch: string,
  runs: number,
  progress: (line: string) => void,
): Promise<CommandsResult> {
  mkdirSync(scratch, { recursive: true });
  // Wallets: one per timed run (imperative and each side), one per traced run, one per watched apply.
  const wallets = runs * (1 + sides.length) + (1 + sides.length) + sides.length;
  const sandbox = await spawnSandbox({ repo: benchRepo, tmpDir, wallets });
  const ctx: Context = { sandbox, scratch, benchRepo, progress, wallet: 0 };
  try {
    const imperativeRuns: Observed[] = [];
    const sideRuns = new Map<string, Record<CommandName, Observed>[]>(sides.map((s) => [s.name, []]));
    for (let i = 0; i < runs; i++) {
      const order: (Side | "imperative")[] = ["imperative", ...sides];
      for (let r = 0; r < i % order.length; r++) order.push(order.shift() as Side | "imperative");
      for (const who of order) {
        if (who === "imperative") {
          const run = await imperative(ctx);
          imperativeRuns.push(run);
          progress(`commands ${i + 1}/${runs}: imperative ${Math.round(run.wallMs)} ms`);
        } else {
          const { runs: r } = await sideRun(ctx, who);
          sideRuns.get(who.name)?.push(r);
          progress(
            `commands ${i + 1}/${runs}: ${who.name} apply ${Math.round(r.apply.wallMs)} ms, plan ` +
              `${Math.round(r.plan.wallMs)} ms, no-op apply ${Math.round(r.noop.wallMs)} ms, status ${Math.round(r.status.wallMs)} ms`,
          );
        }
      }
    }
    const timing = (list: Observed[]): Timing => ({
      wall: summarize(list.map((o) => o.wallMs)),
      cpu: summarize(list.map((o) => o.cpuMs)),
    });

    progress("commands: counting processes (strace)");
    const imperativeExecuted = (await imperative(ctx, true)).executed;
    const results: SideResult[] = [];
    for (const side of sides) {
      const traced = await sideRun(ctx, side, { trace: true });
      const watched = await sideRun(ctx, side, { watchApply: true, requests: true });
      const list = sideRuns.get(side.name) ?? [];
      results.push({
        side,
        timings: Object.fromEntries(COMMANDS.map((c) => [c, timing(list.map((r) => r[c]))])) as Record<
          CommandName,
          Timing
        >,
        executed: Object.fromEntries(COMMANDS.map((c) => [c, traced.runs[c].executed])) as Record<
          CommandName,
          string[]
        >,
        phases: phasesOf(watched.runs.apply, watched.log ?? []),
        phasesWallMs: watched.runs.apply.wallMs,
        requests: watched.requests ?? { noop: [], plan: [], status: [] },
        converged: watched.converged ?? {
          plan: { phases: [], wallMs: Number.NaN, cpu: [] },
          noop: { phases: [], wallMs: Number.NaN, cpu: [] },
        },
      });
    }
    return { runs, imperative: timing(imperativeRuns), imperativeExecuted, sides: results };
  } finally {
    await sandbox.stop();
  }
}
