/**
 * Section 5a: a stack of 1 Tier + 25 Projects, each with a Deployment (the quickstart app) and 2
 * Secrets (101 resources), as a Pulumi program run by `pulumi up` / `pulumi preview` in its own
 * folder, the way a user runs one; beside it a program of one resource (a Tier). Each side (after,
 * before) uses its own engine and provider; both stacks of a side run on fresh wallets against one
 * sandbox. Timed: the first `up`, then, interleaved, no-op `up`s and `preview`s of both stacks. Counted
 * at the sandbox: the requests of a no-op `up` (reads, writes, payments).
 */
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Side } from "./commands.js";
import { type Observed, observe } from "./proc.js";
import { type SandboxChild, type SandboxInfo, spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

export const PROJECTS = 25;
/** Tier + per project: Project, Deployment, 2 Secrets. */
export const RESOURCES = 1 + PROJECTS * 4;

/** Requests the sandbox served for one command. */
export interface RequestCount {
  reads: number;
  writes: number;
  paid: number;
  /** `METHOD /route` → count. */
  routes: Record<string, number>;
}

/** One side's figures. */
export interface ScaleSide {
  side: Side;
  firstUpMs: number;
  /** The first `up` failed with this error; firstUpMs is the `up` run after it. */
  firstUpFailure?: string;
  noopUp: Summary;
  preview: Summary;
  oneNoopUp: Summary;
  onePreview: Summary;
  noopRequests: RequestCount;
  oneNoopRequests: RequestCount;
  /** User + system CPU of each process of one (untimed, watched) no-op `up`, ms, by program. */
  noopCpu: { name: string; ms: number }[];
  oneNoopCpu: { name: string; ms: number }[];
}

/** CPU per program of a watched run (processes of one program summed). */
function cpuByProgram(run: Observed): { name: string; ms: number }[] {
  const list: { name: string; ms: number }[] = [];
  for (const p of run.processes) {
    if (p.cpuMs <= 0) continue;
    const same = list.find((q) => q.name === p.name);
    if (same) same.ms += p.cpuMs;
    else list.push({ name: p.name, ms: p.cpuMs });
  }
  return list;
}

/** Result of section 5a. */
export interface ScaleResult {
  runs: number;
  sides: ScaleSide[];
}

const bigProgram = `import { Deployment, Project, Secret, Tier } from "pulumi-run402";
const tier = new Tier("tier", { tier: "prototype" });
for (let i = 0; i < ${PROJECTS}; i++) {
  const project = new Project(\`p\${i}\`, { name: \`scale-\${i}\` }, { dependsOn: [tier] });
  new Deployment(\`p\${i}-site\`, { project, manifest: "app.json" });
  new Secret(\`p\${i}-a\`, { project, name: "API_KEY", value: \`key-\${i}\` });
  new Secret(\`p\${i}-b\`, { project, name: "DB_PASSWORD", value: \`password-\${i}\` });
}
`;
const oneProgram = `import { Tier } from "pulumi-run402";
new Tier("tier", { tier: "prototype" });
`;

interface Stack {
  dir: string;
  env: NodeJS.ProcessEnv;
  pulumi: string;
}

function program(
  side: Side,
  dir: string,
  source: string,
  benchRepo: string,
  info: SandboxInfo,
  wallet: SandboxInfo["wallets"][number],
): Stack {
  mkdirSync(join(dir, "state"), { recursive: true });
  writeFileSync(
    join(dir, "Pulumi.yaml"),
    `name: run402-scale\nruntime: nodejs\nmain: index.mjs\nbackend:\n  url: file://${join(dir, "state")}\n`,
  );
  writeFileSync(join(dir, "index.mjs"), source);
  symlinkSync(join(side.repo, "node_modules"), join(dir, "node_modules"));
  cpSync(join(benchRepo, "examples", "quickstart", "app.json"), join(dir, "app.json"));
  cpSync(join(benchRepo, "examples", "quickstart", "site"), join(dir, "site"), { recursive: true });
  const bin = join(side.repo, ".tools", "pulumi", "bin");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    PULUMI_HOME: join(dir, "home"),
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    RUN402_CONFIG_DIR: join(dir, "run402"),
    RUN402_PRIVATE_KEY: wallet.privateKey,
    RUN402_RUN_SETTINGS: JSON.stringify({
      apiBase: info.apiBase,
      rail: "x402",
      baseRpcUrl: info.x402.rpcUrl,
      tempoRpcUrl: info.mpp.rpcUrl,
      allowedRecipients: info.treasury,
      journalPath: join(dir, "journal.jsonl"),
    }),
  };
  delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
  return { dir, env, pulumi: join(bin, "pulumi") };
}

async function pulumi(stack: Stack, args: string[], what: string, watch = false): Promise<Observed> {
  const run = await observe(stack.pulumi, [...args, "--non-interactive"], {
    cwd: stack.dir,
    env: stack.env,
    timeoutMs: 600_000,
    watch,
  });
  if (run.code !== 0)
    throw new Error(`${what} exited ${run.code}: ${(run.stdout + run.stderr).slice(-3000)}`);
  return run;
}

async function requests(sandbox: SandboxChild, go: () => Promise<unknown>): Promise<RequestCount> {
  const base = sandbox.info.apiBase;
  await fetch(`${base}/_sandbox/requests`, { method: "DELETE" });
  await go();
  const { requests: log } = (await (await fetch(`${base}/_sandbox/requests`)).json()) as {
    requests: { method: string; path: string; paid: boolean }[];
  };
  const routes: Record<string, number> = {};
  for (const r of log) {
    const key = `${r.method} ${r.path.split("?")[0]?.replace(/\/(prj|rel|op|cpl|pln)_[^/]+/g, "/:id")}`;
    routes[key] = (routes[key] ?? 0) + 1;
  }
  return {
    reads: log.filter((r) => r.method === "GET").length,
    writes: log.filter((r) => r.method !== "GET").length,
    paid: log.filter((r) => r.paid).length,
    routes,
  };
}

/** Runs section 5a for each side against one sandbox child of `benchRepo`'s build. */
export async function benchScale(
  benchRepo: string,
  sides: Side[],
  tmpDir: string,
  scratch: string,
  runs: number,
  progress: (line: string) => void,
): Promise<ScaleResult> {
  const sandbox = await spawnSandbox({ repo: benchRepo, tmpDir, wallets: 2 * sides.length });
  const { info } = sandbox;
  try {
    const prepared = [];
    for (const [index, side] of sides.entries()) {
      const wallet = (n: number) => info.wallets[2 * index + n] as SandboxInfo["wallets"][number];
      const big = program(side, join(scratch, `scale-${side.name}`), bigProgram, benchRepo, info, wallet(0));
      const one = program(side, join(scratch, `one-${side.name}`), oneProgram, benchRepo, info, wallet(1));
      for (const stack of [big, one])
        await pulumi(stack, ["stack", "init", "bench"], `${side.name} stack init`);
      // A build whose parallel project creates can fail (a baseline with the origin-binding race) gets one
      // more `up` (creates are keyed: it converges without paying twice); the report names the failure.
      let firstUp: Observed;
      let firstUpFailure: string | undefined;
      try {
        firstUp = await pulumi(
          big,
          ["up", "--yes", "--skip-preview"],
          `${side.name} first up (${RESOURCES})`,
        );
      } catch (error) {
        firstUpFailure =
          /error: ([^\n]*)/.exec(String(error))?.[1]?.slice(0, 160) ?? String(error).slice(0, 160);
        progress(`scale ${side.name}: first up failed (${firstUpFailure}); one more up`);
        firstUp = await pulumi(big, ["up", "--yes", "--skip-preview"], `${side.name} second first up`);
      }
      progress(`scale ${side.name}: first up of ${RESOURCES} resources ${Math.round(firstUp.wallMs)} ms`);
      await pulumi(one, ["up", "--yes", "--skip-preview"], `${side.name} first up (1)`);
      let watched: Observed | undefined;
      let oneWatched: Observed | undefined;
      const noopRequests = await requests(sandbox, async () => {
        watched = await pulumi(big, ["up", "--yes", "--skip-preview"], `${side.name} no-op up`, true);
      });
      const oneNoopRequests = await requests(sandbox, async () => {
        oneWatched = await pulumi(one, ["up", "--yes", "--skip-preview"], `${side.name} no-op up (1)`, true);
      });
      prepared.push({
        side,
        big,
        one,
        firstUpMs: firstUp.wallMs,
        firstUpFailure,
        noopRequests,
        oneNoopRequests,
        noopCpu: watched ? cpuByProgram(watched) : [],
        oneNoopCpu: oneWatched ? cpuByProgram(oneWatched) : [],
        times: {
          noop: [] as number[],
          preview: [] as number[],
          oneNoop: [] as number[],
          onePreview: [] as number[],
        },
      });
    }
    // Interleaved: each round runs every side's four commands, the side order alternating.
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? prepared : [...prepared].reverse();
      for (const { side, big, one, times } of order) {
        times.oneNoop.push((await pulumi(one, ["up", "--yes", "--skip-preview"], "no-op up (1)")).wallMs);
        times.noop.push((await pulumi(big, ["up", "--yes", "--skip-preview"], "no-op up")).wallMs);
        times.onePreview.push((await pulumi(one, ["preview"], "preview (1)")).wallMs);
        times.preview.push((await pulumi(big, ["preview"], "preview")).wallMs);
        progress(
          `scale ${side.name} ${i + 1}/${runs}: no-op up ${Math.round(times.noop.at(-1) ?? 0)} ms ` +
            `(1 resource: ${Math.round(times.oneNoop.at(-1) ?? 0)} ms), preview ${Math.round(times.preview.at(-1) ?? 0)} ms`,
        );
      }
    }
    const results: ScaleSide[] = prepared.map((p) => ({
      side: p.side,
      firstUpMs: p.firstUpMs,
      ...(p.firstUpFailure ? { firstUpFailure: p.firstUpFailure } : {}),
      noopUp: summarize(p.times.noop),
      preview: summarize(p.times.preview),
      oneNoopUp: summarize(p.times.oneNoop),
      onePreview: summarize(p.times.onePreview),
      noopRequests: p.noopRequests,
      oneNoopRequests: p.oneNoopRequests,
      noopCpu: p.noopCpu,
      oneNoopCpu: p.oneNoopCpu,
    }));
    return { runs, sides: results };
  } finally {
    await sandbox.stop();
  }
}
