/**
 * Section 6: a site of 10,000 files (about 100 MB of incompressible bytes, generated here) through
 * the CLI of each side, each against a sandbox of its own: `plan` (time, peak RSS of each process), the first `apply` (every file
 * uploaded once), then one file changed and `apply` again (exactly one upload). Before that, the
 * hashing alone against `openssl dgst -sha256` over the same files in the same run, both as whole
 * processes (`xargs … openssl dgst` and a Node process running each side's `hashBounded` from its
 * dist/ over the list), interleaved in a rotating order, several rounds; each round's ratio is
 * OpenSSL's time over the hashing's (openssl is single-threaded, and so is the hashing).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { cliArgs, cliEnv, type Side } from "./commands.js";
import { type Observed, observe } from "./proc.js";
import { type SandboxChild, spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

export const FILES = 10_000;

/** Peak RSS (MiB) and CPU (ms) of one kind of process in a run. */
export interface ProcessUse {
  rssMiB: number;
  cpuMs: number;
}

/** One CLI run of the site. */
export interface SiteRun {
  ok: boolean;
  wallMs: number;
  /** The error code(s) when it failed. */
  error?: string | undefined;
  uploads: number;
  /** Per process kind: the CLI, the engine, the provider. */
  use: Record<"cli" | "engine" | "provider", ProcessUse>;
}

/** One side's figures. */
export interface SiteSide {
  side: Side;
  plan: SiteRun;
  apply: SiteRun;
  /** After one file changed; undefined when the first apply failed. */
  redeploy?: SiteRun | undefined;
}

/** Wall and CPU (utime + stime) of one whole hashing process, over the rounds. */
export interface HashProcess {
  wall: Summary;
  cpu: Summary;
  /** Per round: OpenSSL's wall over this process's wall, same round (undefined for OpenSSL itself). */
  ratio?: Summary | undefined;
}

/** Result of section 6. */
export interface SiteResult {
  files: number;
  bytes: number;
  /** Rounds of the whole-process hashing comparison. */
  hashRounds: number;
  /** Rounds of the in-process `resolveManifest` timing. */
  hashRuns: number;
  /** `xargs -0 -a <list> openssl dgst -sha256 > /dev/null`. */
  openssl: HashProcess;
  /** A Node process running each side's `hashBounded` over every file of the list. */
  hash: Record<string, HashProcess>;
  /** The same files through the whole manifest resolution (walk, hash, spec, digest), per side, in this process. */
  resolve: Record<string, Summary>;
  sides: SiteSide[];
}

/**
 * The hashing process: node, this script, the side's hash.js URL and the NUL-separated list. Plain
 * Node (no tsx, no bench code): what it costs is Node's start, the module's import and the hashing.
 */
const HASH_SCRIPT =
  'import { readFileSync } from "node:fs";' +
  "const { hashBounded } = await import(process.argv[1]);" +
  'for (const path of readFileSync(process.argv[2], "utf8").split("\\0"))' +
  '  if (path && !hashBounded(path, 2 ** 30).ok) throw new Error("could not hash " + path);';

/** Writes the site: 100 folders of 100 files, 1–20 KiB of random bytes each. */
function generate(dir: string): { paths: string[]; bytes: number } {
  const paths: string[] = [];
  let bytes = 0;
  const kinds = ["html", "css", "js", "png"];
  for (let i = 0; i < FILES; i++) {
    const folder = join(dir, "site", `d${String(Math.floor(i / 100)).padStart(3, "0")}`);
    if (i % 100 === 0) mkdirSync(folder, { recursive: true });
    const size = 1024 + ((i * 7919) % 19456);
    const path = join(folder, `f${String(i).padStart(5, "0")}.${kinds[i % 4]}`);
    writeFileSync(path, randomBytes(size));
    paths.push(path);
    bytes += size;
  }
  writeFileSync(
    join(dir, "app.json"),
    JSON.stringify({ tier: "prototype", project: { name: "site-10k" }, site: { dir: "site" } }),
  );
  return { paths, bytes };
}

function use(run: Observed, pattern: RegExp): ProcessUse {
  const matching = run.processes.filter((p) => pattern.test(p.name));
  return {
    rssMiB: Math.max(0, ...matching.map((p) => p.hwmKiB / 1024)),
    cpuMs: matching.reduce((n, p) => n + p.cpuMs, 0),
  };
}

async function uploadsOf(sandbox: SandboxChild, go: () => Promise<Observed>): Promise<[Observed, number]> {
  const base = sandbox.info.apiBase;
  await fetch(`${base}/_sandbox/requests`, { method: "DELETE" });
  const run = await go();
  const { requests } = (await (await fetch(`${base}/_sandbox/requests`)).json()) as {
    requests: { method: string; path: string }[];
  };
  return [run, requests.filter((r) => r.method === "PUT" && r.path.startsWith("/_uploads/")).length];
}

function siteRun(run: Observed, uploads: number): SiteRun {
  let error: string | undefined;
  if (run.code !== 0) {
    try {
      const doc = JSON.parse(run.stdout) as { errors?: { code?: string }[] };
      error = (doc.errors ?? []).map((e) => e.code).join(", ") || `exit ${run.code}`;
    } catch {
      error = `exit ${run.code}`;
    }
  }
  return {
    ok: run.code === 0,
    wallMs: run.wallMs,
    error,
    uploads,
    use: {
      cli: use(run, /main\.js$/),
      engine: use(run, /^pulumi$/),
      provider: use(run, /pulumi-resource-pulumi-nodejs|dynamic-provider/),
    },
  };
}

type Resolve = (p: { manifest: unknown; dir: string; projectId: string }) => Promise<unknown>;
type Load = (path: string) => Promise<{ manifest: unknown; dir: string }>;

/** Runs section 6 for each side against one sandbox child of `benchRepo`'s build. */
export async function benchSite(
  benchRepo: string,
  sides: Side[],
  tmpDir: string,
  scratch: string,
  hashRuns: number,
  progress: (line: string) => void,
): Promise<SiteResult> {
  const root = join(scratch, "site-10k");
  mkdirSync(root, { recursive: true });
  const { paths, bytes } = generate(root);
  progress(`site: ${FILES} files, ${(bytes / 2 ** 20).toFixed(1)} MiB generated`);
  const list = join(scratch, "site-10k.list");
  writeFileSync(list, `${paths.join("\0")}\0`);

  // Hashing as whole processes: openssl and each side's hashing, interleaved in a rotating order.
  const hashRounds = hashRuns > 1 ? 7 : 2;
  const contenders: { name: string; args: () => [string, string[]] }[] = [
    {
      name: "openssl",
      args: () => ["sh", ["-c", 'exec xargs -0 -a "$1" openssl dgst -sha256 > /dev/null', "sh", list]],
    },
    ...sides.map((side) => ({
      name: side.name,
      args: (): [string, string[]] => [
        process.execPath,
        [
          "--input-type=module",
          "-e",
          HASH_SCRIPT,
          pathToFileURL(join(side.repo, "dist", "provider", "manifest", "hash.js")).href,
          list,
        ],
      ],
    })),
  ];
  const wall = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const cpu = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  const ratios = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (let i = 0; i < hashRounds; i++) {
    const round = new Map<string, number>();
    for (let k = 0; k < contenders.length; k++) {
      const contender = contenders[(i + k) % contenders.length] as (typeof contenders)[number];
      const [command, args] = contender.args();
      const run = await observe(command, args);
      if (run.code !== 0) throw new Error(`${contender.name} hashing failed: ${run.stderr.slice(-500)}`);
      wall.get(contender.name)?.push(run.wallMs);
      cpu.get(contender.name)?.push(run.cpuMs);
      round.set(contender.name, run.wallMs);
    }
    for (const side of sides)
      ratios.get(side.name)?.push((round.get("openssl") ?? 0) / (round.get(side.name) ?? Number.NaN));
    progress(
      `site hashing ${i + 1}/${hashRounds}: ${contenders.map((c) => `${c.name} ${Math.round(round.get(c.name) ?? 0)} ms`).join(", ")}`,
    );
  }
  const processOf = (name: string): HashProcess => ({
    wall: summarize(wall.get(name) ?? []),
    cpu: summarize(cpu.get(name) ?? []),
    ratio: ratios.has(name) ? summarize(ratios.get(name) ?? []) : undefined,
  });

  // Each side's whole resolution (walk, hash, spec, digest), in this process.
  const resolvers = new Map<string, { load: Load; resolve: Resolve }>();
  for (const side of sides) {
    const module = (await import(
      pathToFileURL(join(side.repo, "dist", "provider", "manifest", "index.js")).href
    )) as { loadManifest: Load; resolveManifest: Resolve };
    resolvers.set(side.name, { load: module.loadManifest, resolve: module.resolveManifest });
  }
  const resolveTimes = new Map<string, number[]>(sides.map((s) => [s.name, []]));
  for (let i = 0; i < hashRuns; i++) {
    for (const side of sides) {
      const { load, resolve } = resolvers.get(side.name) as { load: Load; resolve: Resolve };
      const t1 = performance.now();
      const loaded = await load(join(root, "app.json"));
      await resolve({ manifest: loaded.manifest, dir: loaded.dir, projectId: "prj_bench" });
      resolveTimes.get(side.name)?.push(performance.now() - t1);
    }
    progress(
      `site resolve ${i + 1}/${hashRuns}: ${sides.map((s) => `${s.name} ${Math.round(resolveTimes.get(s.name)?.at(-1) ?? 0)} ms`).join(", ")}`,
    );
  }

  const results: SiteSide[] = [];
  for (const side of sides) {
    // A sandbox per side: content is stored by hash across projects, so a second side deploying the
    // same bytes to a shared sandbox would upload nothing.
    const sandbox = await spawnSandbox({ repo: benchRepo, tmpDir, wallets: 1 });
    try {
      // Each side's own folder (its .run402 workspace), the same bytes (hard links).
      const dir = join(scratch, `site-10k-${side.name}`);
      execFileSync("cp", ["-al", root, dir]);
      rmSync(join(dir, ".run402"), { recursive: true, force: true });
      const env = cliEnv(scratch, `site-${side.name}`, sandbox.info.wallets[0]?.privateKey ?? "");
      const run = (command: "plan" | "apply") =>
        observe(process.execPath, cliArgs(side, command, dir, sandbox.info), {
          env,
          watch: true,
          timeoutMs: 900_000,
        });
      const [plan, planUploads] = await uploadsOf(sandbox, () => run("plan"));
      progress(`site ${side.name}: plan ${Math.round(plan.wallMs)} ms (exit ${plan.code})`);
      const [apply, applyUploads] = await uploadsOf(sandbox, () => run("apply"));
      progress(
        `site ${side.name}: apply ${Math.round(apply.wallMs)} ms (exit ${apply.code}), ${applyUploads} uploads`,
      );
      let redeploy: SiteRun | undefined;
      if (apply.code === 0) {
        // A new inode: the file is a hard link shared with the other side's folder.
        const changed = join(dir, "site", "d042", readdirSync(join(dir, "site", "d042"))[0] as string);
        rmSync(changed);
        writeFileSync(changed, randomBytes(4096));
        const [again, againUploads] = await uploadsOf(sandbox, () => run("apply"));
        progress(
          `site ${side.name}: re-deploy ${Math.round(again.wallMs)} ms (exit ${again.code}), ${againUploads} uploads`,
        );
        redeploy = siteRun(again, againUploads);
      }
      results.push({ side, plan: siteRun(plan, planUploads), apply: siteRun(apply, applyUploads), redeploy });
    } finally {
      await sandbox.stop();
    }
  }
  return {
    files: FILES,
    bytes,
    hashRounds,
    hashRuns,
    openssl: processOf("openssl"),
    hash: Object.fromEntries(sides.map((side) => [side.name, processOf(side.name)])),
    resolve: Object.fromEntries([...resolveTimes].map(([name, times]) => [name, summarize(times)])),
    sides: results,
  };
}
