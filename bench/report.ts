/** Markdown for sections 4–6 of BENCHMARKS.md and the targets they are measured against. */
import type { CommandName, CommandsResult, ConvergedProfile, SideResult, Timing } from "./commands.js";
import { countNames } from "./proc.js";
import { RESOURCES, type ScaleResult, type ScaleSide } from "./scale.js";
import type { HashProcess, SiteResult, SiteRun } from "./site.js";
import { ms, type Summary, seconds, table } from "./stats.js";

/** One target: what was measured and whether it holds. */
export interface Verdict {
  target: string;
  measured: string;
  met: boolean | undefined;
  /** Why it is missed (measured), or what it rests on. */
  note?: string;
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const range = (s: Summary) =>
  s.n === 1 ? seconds(s.median) : `${seconds(s.median)} (${seconds(s.min)}–${seconds(s.max)})`;
const yes = (met: boolean | undefined) => (met === undefined ? "n/a" : met ? "**met**" : "**missed**");

const COMMAND_LABEL: Record<CommandName, string> = {
  apply: "first `apply` (tier + project + deployment)",
  plan: "`plan` of the converged stack",
  noop: "`apply` again (nothing to do)",
  status: "`status`",
};

function sideNamed<T extends { side: { name: string } }>(list: T[], name: string): T | undefined {
  return list.find((s) => s.side.name === name);
}

/** Section 4 and its verdicts. */
export function commandsSection(
  result: CommandsResult,
  heading: string,
): { text: string; verdicts: Verdict[] } {
  const after = sideNamed(result.sides, "after") as SideResult;
  const before = sideNamed(result.sides, "before");
  const out = [heading, ""];
  out.push(
    `One sandbox process; every run on a fresh wallet and a fresh copy of examples/quickstart (a migration and a ` +
      `2-file site). **Imperative**: bench/imperative.mjs, Run402's own \`@run402/sdk\` 3.3.3 (tier set prototype ` +
      `paid over x402, provision, apply of the same migration and files), as its own \`node\` process. ` +
      `**run402-pulumi**: \`node dist/cli/main.js apply --manifest <app> --yes --json --rail x402 -c run402:apiBase=… ` +
      `-c run402:baseRpcUrl=… -c run402:tempoRpcUrl=… -c run402:allowedRecipients=… -c run402:journalPath=…\`, ` +
      `then \`plan\`, \`apply\` again and \`status\` of the same stack. ` +
      (before
        ? `**after** is this checkout (${after.side.commit}); **before** is ${before.side.commit}, built in its own ` +
          `worktree (${before.side.repo}) and run in this same bench run. `
        : "") +
      `${result.runs} runs, interleaved (the order rotates each round); whole-process wall time from spawn to exit, ` +
      "median (min–max); CPU is user + system of the process and every process it waited for (GNU time). Every " +
      "first apply paid exactly once (sandbox ledger); nothing else paid.",
    "",
  );
  const first = (t: Timing, base: Timing) => [
    range(t.wall),
    seconds(t.cpu.median),
    ratio(t.wall.median, base.wall.median),
  ];
  const rows = [["imperative `@run402/sdk` 3.3.3", ...first(result.imperative, result.imperative)]];
  rows.push(["run402-pulumi after", ...first(after.timings.apply, result.imperative)]);
  if (before) rows.push(["run402-pulumi before", ...first(before.timings.apply, result.imperative)]);
  out.push(
    "**Tier + provision + deploy of the quickstart app:**",
    "",
    table(["path", "wall median (min–max)", "CPU median", "÷ imperative"], rows),
    "",
  );
  const targets: Partial<Record<CommandName, number>> = { plan: 1500, noop: 1500, status: 300 };
  const cmdRows = (["apply", "plan", "noop", "status"] as CommandName[]).map((c) => {
    const a = after.timings[c];
    const b = before?.timings[c];
    return [
      COMMAND_LABEL[c],
      b ? range(b.wall) : "—",
      range(a.wall),
      b ? ratio(a.wall.median, b.wall.median) : "—",
      b ? `${seconds(b.cpu.median)} → ${seconds(a.cpu.median)}` : seconds(a.cpu.median),
      targets[c]
        ? `≤ ${seconds(targets[c])}: ${yes(a.wall.median <= (targets[c] ?? 0))}`
        : "≤ 1.3× imperative: " + yes(a.wall.median <= 1.3 * result.imperative.wall.median),
    ];
  });
  out.push(
    "**Each command, before and after:**",
    "",
    table(["command", "before", "after", "after ÷ before", "CPU before → after", "target"], cmdRows),
    "",
  );
  const processRows = (["apply", "plan", "noop", "status"] as CommandName[]).map((c) => [
    COMMAND_LABEL[c],
    before ? `${before.executed[c].length}: ${countNames(before.executed[c])}` : "—",
    `${after.executed[c].length}: ${countNames(after.executed[c])}`,
  ]);
  processRows.unshift([
    "imperative script",
    "—",
    `${result.imperativeExecuted.length}: ${countNames(result.imperativeExecuted)}`,
  ]);
  out.push(
    "**Programs each command executes** (one untimed run per command under `strace -f -e trace=execve`, every " +
      "successful execve counted: a script started through `#!/usr/bin/env node` counts twice, `env` then `node`):",
    "",
    table(["command", "before", "after"], processRows),
    "",
  );
  const reqRows = (["plan", "noop", "status"] as const).map((c) => [
    COMMAND_LABEL[c],
    before ? before.requests[c].join(", ") || "none" : "—",
    after.requests[c].join(", ") || "none",
  ]);
  out.push(
    "**API requests of each command on the converged stack** (sandbox request log):",
    "",
    table(["command", "before", "after"], reqRows),
    "",
  );
  out.push(
    "**Where one first `apply` spends its time** (one more run of each, watched: process starts from /proc, " +
      "10 ms resolution; API responses from the sandbox's request log):",
    "",
  );
  const phaseRows = after.phases.map((p, i) => {
    const b = before?.phases[i];
    return [p.name, b ? `${ms(b.ms)} ms (${b.requests})` : "—", `${ms(p.ms)} ms (${p.requests})`];
  });
  phaseRows.push([
    "**total**",
    before ? `${ms(before.phasesWallMs)} ms` : "—",
    `${ms(after.phasesWallMs)} ms`,
  ]);
  out.push(table(["phase (API responses in it)", "before", "after"], phaseRows), "");

  for (const c of ["plan", "noop"] as const) {
    const a = after.converged[c];
    const b = before?.converged[c];
    const rows = a.phases.map((p, i) => {
      const bp = b?.phases[i];
      return [p.name, bp ? `${ms(bp.ms)} ms (${bp.requests})` : "—", `${ms(p.ms)} ms (${p.requests})`];
    });
    rows.push(["**total**", b ? `${ms(b.wallMs)} ms` : "—", `${ms(a.wallMs)} ms`]);
    const cpu = (p: ConvergedProfile | undefined) =>
      p ? p.cpu.map((x) => `${x.name} ${ms(x.ms)} ms`).join(", ") || "—" : "—";
    rows.push(["CPU of each process (user + system, /proc)", cpu(b), cpu(a)]);
    out.push(
      `**Where one ${COMMAND_LABEL[c]} spends its time** (the watched run's, same sandbox and stack):`,
      "",
      table(["phase (API responses in it)", "before", "after"], rows),
      "",
    );
  }

  const useful = after.phases.slice(3, 6).reduce((n, p) => n + (Number.isFinite(p.ms) ? p.ms : 0), 0);
  const fixed = after.phasesWallMs - useful;
  out.push(
    `**What it means:** the first \`apply\` takes ${seconds(after.timings.apply.wall.median)} against ` +
      `${seconds(result.imperative.wall.median)} for the imperative script ` +
      `(${ratio(after.timings.apply.wall.median, result.imperative.wall.median)}` +
      (before ? `; before: ${ratio(before.timings.apply.wall.median, result.imperative.wall.median)}` : "") +
      `). In the watched run the useful work (tier, project, deployment: first API response to last) took ` +
      `${seconds(useful)} of ${seconds(after.phasesWallMs)}; the remaining ${seconds(fixed)} is fixed cost: ` +
      `${after.phases
        .filter((p, i) => (i < 3 || i === 6) && Number.isFinite(p.ms))
        .map((p) => `${p.name.split(":")[0]?.split(" (")[0]} ${seconds(p.ms)}`)
        .join(", ")}.`,
  );

  const verdicts: Verdict[] = [
    {
      target: "first `apply` ≤ 1.3× the imperative path",
      measured: `${seconds(after.timings.apply.wall.median)} vs ${seconds(result.imperative.wall.median)} (${ratio(after.timings.apply.wall.median, result.imperative.wall.median)})`,
      met: after.timings.apply.wall.median <= 1.3 * result.imperative.wall.median,
      note: `fixed cost of the engine path in the watched run: ${seconds(fixed)} (section 4, per-phase table)`,
    },
    ...(["plan", "noop", "status"] as const).map((c) => ({
      target: `${COMMAND_LABEL[c]} ≤ ${seconds(targets[c] ?? 0)}`,
      measured: seconds(after.timings[c].wall.median),
      met: after.timings[c].wall.median <= (targets[c] ?? 0),
    })),
  ];
  return { text: out.join("\n"), verdicts };
}

function requestsLine(r: ScaleSide["noopRequests"]): string {
  return `${r.reads} reads, ${r.writes} writes, ${r.paid} paid (${Object.entries(r.routes)
    .map(([k, v]) => `${k} ×${v}`)
    .join(", ")})`;
}

/** Wall time of a no-op `up` per resource beyond the first (medians). */
function perExtra(s: ScaleSide): number {
  return (s.noopUp.median - s.oneNoopUp.median) / (RESOURCES - 1);
}

function cpuLine(list: ScaleSide["noopCpu"]): string {
  return list.map((p) => `${p.name} ${ms(p.ms)} ms`).join(", ") || "—";
}

/** `program +N ms` for each program: what 100 more resources cost it in CPU. */
function cpuDelta(s: ScaleSide): string {
  return s.noopCpu
    .map((p) => {
      const one = s.oneNoopCpu.find((q) => q.name === p.name)?.ms ?? 0;
      return `${p.name} ${ms(one)} → ${ms(p.ms)} ms`;
    })
    .join(", ");
}

/** Section 5 and its verdicts. */
export function scaleSection(result: ScaleResult, heading: string): { text: string; verdicts: Verdict[] } {
  const after = sideNamed(result.sides, "after") as ScaleSide;
  const before = sideNamed(result.sides, "before");
  const out = [heading, ""];
  out.push(
    `A Pulumi program (\`index.mjs\`: 1 Tier, 25 Projects, each with a Deployment of the quickstart app and 2 ` +
      `Secrets: ${RESOURCES} resources) and a program of one resource (a Tier), each in its own folder run by ` +
      "the side's own `pulumi` (`up --yes --skip-preview`, `preview`; file backend, settings in " +
      "`RUN402_RUN_SETTINGS`), on fresh wallets against one sandbox. The first `up` once; then " +
      `${result.runs} rounds of no-op \`up\` and \`preview\` of both programs, interleaved across sides. ` +
      "Requests of one no-op `up` counted at the sandbox.",
    "",
  );
  const row = (label: string, pick: (s: ScaleSide) => string) => [
    label,
    before ? pick(before) : "—",
    pick(after),
  ];
  out.push(
    table(
      ["", "before", "after"],
      [
        row(`first \`up\` (${RESOURCES} resources)`, (s) =>
          s.firstUpFailure
            ? `failed (${s.firstUpFailure}); the next \`up\` converged it in ${seconds(s.firstUpMs)}`
            : seconds(s.firstUpMs),
        ),
        row(`no-op \`up\` (${RESOURCES})`, (s) => range(s.noopUp)),
        row("no-op `up` (1 resource)", (s) => range(s.oneNoopUp)),
        row(`no-op ${RESOURCES} ÷ no-op 1 (target ≤ 1.2×)`, (s) =>
          ratio(s.noopUp.median, s.oneNoopUp.median),
        ),
        row("per extra resource (target ≤ 5 ms)", (s) => `${perExtra(s).toFixed(1)} ms`),
        row(`CPU by program, one watched no-op \`up\` (${RESOURCES})`, (s) => cpuLine(s.noopCpu)),
        row("CPU by program, one watched no-op `up` (1)", (s) => cpuLine(s.oneNoopCpu)),
        row(`\`preview\` (${RESOURCES})`, (s) => range(s.preview)),
        row("`preview` (1 resource)", (s) => range(s.onePreview)),
        row(`requests of a no-op \`up\` (${RESOURCES})`, (s) => requestsLine(s.noopRequests)),
        row("requests of a no-op `up` (1)", (s) => requestsLine(s.oneNoopRequests)),
        row("reads per resource (target ≤ 1)", (s) => (s.noopRequests.reads / RESOURCES).toFixed(3)),
      ],
    ),
    "",
  );
  const r = after.noopUp.median / after.oneNoopUp.median;
  const extra = perExtra(after);
  const readsOk =
    after.noopRequests.reads <= RESOURCES && after.noopRequests.writes === 0 && after.noopRequests.paid === 0;
  out.push(
    `**What it means:** a no-op \`up\` of ${RESOURCES} resources takes ${seconds(after.noopUp.median)}, ` +
      `${r.toFixed(2)}× the one-resource program's ${seconds(after.oneNoopUp.median)}; it made ` +
      `${requestsLine(after.noopRequests)}: the Tier's check reads the lease status, the other ${RESOURCES - 1} ` +
      "resources are checked against their recorded state without a request.",
  );
  return {
    text: out.join("\n"),
    verdicts: [
      {
        target: `no-op \`up\` of ${RESOURCES} resources ≤ 1.2× a no-op \`up\` of one`,
        measured: `${seconds(after.noopUp.median)} vs ${seconds(after.oneNoopUp.median)} (${r.toFixed(2)}×)`,
        met: r <= 1.2,
        note:
          r <= 1.2
            ? undefined
            : `the engine registers, checks and diffs every resource in one provider process: ` +
              `${seconds(after.noopUp.median - after.oneNoopUp.median)} for ${RESOURCES - 1} more resources (no requests)`,
      },
      {
        target: `no-op \`up\`: ≤ 5 ms per resource beyond the first`,
        measured: `${extra.toFixed(1)} ms`,
        met: extra <= 5,
        note:
          extra <= 5
            ? undefined
            : `CPU of one watched no-op \`up\`, ${RESOURCES} resources vs 1, by program: ${cpuDelta(after)} (section 5)`,
      },
      {
        target: "≤ 1 read per resource on a no-op, 0 writes, 0 payments",
        measured: `${after.noopRequests.reads} reads / ${RESOURCES} resources, ${after.noopRequests.writes} writes, ${after.noopRequests.paid} paid`,
        met: readsOk,
      },
    ],
  };
}

function siteCell(run: SiteRun | undefined): string {
  if (!run) return "—";
  return run.ok ? seconds(run.wallMs) : `failed after ${seconds(run.wallMs)}: ${run.error}`;
}

/** Section 6 and its verdicts. */
export function siteSection(result: SiteResult, heading: string): { text: string; verdicts: Verdict[] } {
  const after = sideNamed(result.sides, "after");
  const before = sideNamed(result.sides, "before");
  const mib = result.bytes / 2 ** 20;
  const rate = (msValue: number) => `${(mib / (msValue / 1000)).toFixed(0)} MiB/s`;
  const out = [heading, ""];
  const pct = (value: number) => `${(value * 100).toFixed(0)} %`;
  const hashRow = (label: string, p: HashProcess | undefined) =>
    p
      ? [
          label,
          range(p.wall),
          rate(p.wall.median),
          range(p.cpu),
          p.ratio ? `${pct(p.ratio.median)} (${pct(p.ratio.min)}–${pct(p.ratio.max)})` : "—",
        ]
      : [label, "—", "—", "—", "—"];
  out.push(
    `${result.files.toLocaleString("en")} files in 100 folders, 1–20 KiB of random bytes each, ${mib.toFixed(1)} MiB ` +
      "in all, generated in a temp folder (page cache warm: the generator just wrote them). Hashing, " +
      `${result.hashRounds} rounds, whole processes interleaved in a rotating order: ` +
      "`xargs -0 -a <list> openssl dgst -sha256 > /dev/null` against a Node process running each side's " +
      "provider/manifest/hash.ts `hashBounded` (from its dist/) over the same list (Node's start and the " +
      "module's import included). The share is OpenSSL's wall time over the hashing's in the same round " +
      "(median of the rounds; ≥ 100 % is as fast as OpenSSL). CPU is utime + stime of the process and its children.",
    "",
    table(
      ["", "wall, median (min–max)", "throughput", "CPU", "share of OpenSSL's speed"],
      [
        hashRow("`openssl dgst -sha256`", result.openssl),
        hashRow("hashing (before)", result.hash["before"]),
        hashRow("hashing (after)", result.hash["after"]),
      ],
    ),
    "",
    `Each side's whole \`resolveManifest\` (walk, hash, spec, digest) from its own dist/, in the bench process, ${result.hashRuns} rounds:`,
    "",
    table(
      ["", "median (min–max)", "throughput"],
      Object.entries(result.resolve).map(([name, s]) => [
        `\`resolveManifest\` (${name})`,
        range(s),
        rate(s.median),
      ]),
    ),
    "",
  );
  const procs = (run: SiteRun | undefined) =>
    run
      ? `provider ${run.use.provider.rssMiB.toFixed(0)} MiB, engine ${run.use.engine.rssMiB.toFixed(0)} MiB, CLI ${run.use.cli.rssMiB.toFixed(0)} MiB`
      : "—";
  const cpu = (run: SiteRun | undefined) =>
    run
      ? `provider ${seconds(run.use.provider.cpuMs)}, engine ${seconds(run.use.engine.cpuMs)}, CLI ${seconds(run.use.cli.cpuMs)}`
      : "—";
  const row = (label: string, pick: (s: NonNullable<typeof after>) => string) => [
    label,
    before ? pick(before) : "—",
    after ? pick(after) : "—",
  ];
  out.push(
    "The CLI on this site (`plan`, `apply`, one file replaced, `apply`), once per side, each side against a " +
      "sandbox of its own (content is stored by hash: a shared one would spare the second side its uploads); " +
      "peak RSS is VmHWM and CPU " +
      "utime + stime of each process, read from /proc every 20 ms while it runs:",
    "",
    table(
      ["", "before", "after"],
      [
        row("`plan` wall", (s) => siteCell(s.plan)),
        row("`plan` peak RSS", (s) => procs(s.plan)),
        row("`plan` CPU", (s) => cpu(s.plan)),
        row("first `apply` wall", (s) => siteCell(s.apply)),
        row("first `apply` uploads", (s) => String(s.apply.uploads)),
        row("first `apply` peak RSS", (s) => procs(s.apply)),
        row("first `apply` CPU", (s) => cpu(s.apply)),
        row("re-deploy after one changed file", (s) => siteCell(s.redeploy)),
        row("re-deploy uploads (target: exactly 1)", (s) => (s.redeploy ? String(s.redeploy.uploads) : "—")),
        row("re-deploy peak RSS", (s) => procs(s.redeploy)),
      ],
    ),
    "",
  );
  const hashAfter = result.hash["after"];
  const share = hashAfter?.ratio?.median ?? Number.NaN;
  const peak = after
    ? Math.max(
        after.plan.use.provider.rssMiB,
        after.apply.use.provider.rssMiB,
        after.redeploy?.use.provider.rssMiB ?? 0,
      )
    : Number.NaN;
  const verdicts: Verdict[] = [
    {
      target: "content hashing of the 10,000-file site ≥ 80 % of OpenSSL's speed (whole processes, same run)",
      measured: hashAfter
        ? `${rate(hashAfter.wall.median)} vs ${rate(result.openssl.wall.median)} (${pct(share)}, median of ${result.hashRounds} paired rounds)`
        : "not run",
      met: share >= 0.8,
    },
    {
      target: "peak RSS ≤ 300 MB for the 10,000-file site (provider process)",
      measured: `${(peak * 1.048576).toFixed(0)} MB (${peak.toFixed(0)} MiB), over plan, apply and re-deploy`,
      met: peak * 1.048576 <= 300,
    },
    {
      target: "the 10,000-file site deploys; a re-deploy after one changed file uploads exactly 1 object",
      measured: after
        ? `deploy: ${after.apply.ok ? `ok, ${after.apply.uploads} uploads` : after.apply.error}; re-deploy: ${after.redeploy ? `${after.redeploy.uploads} upload(s)` : "not run"}`
        : "not run",
      met: after ? after.apply.ok && after.redeploy?.uploads === 1 : undefined,
    },
  ];
  return { text: out.join("\n"), verdicts };
}

/** The targets table. */
export function targetsSection(verdicts: Verdict[], heading: string): string {
  return [
    heading,
    "",
    table(
      ["target", "measured (after)", "", "note"],
      verdicts.map((v) => [v.target, v.measured, yes(v.met), v.note ?? ""]),
    ),
  ].join("\n");
}
