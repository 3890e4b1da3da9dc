/**
 * Section 1: sandbox cold start. Each run is a fresh `run402-sandbox` process (both chains, PGlite, the
 * API), timed spawn → ready line, checked with one `GET /tiers/v1`, then stopped with SIGTERM.
 *
 * PGlite's template dump lives in `$TMPDIR`; every child gets a `TMPDIR` of the bench's own, so the
 * first run of each mode really starts with an empty cache (the first start on a machine) and the
 * rest reuse the dump that run wrote, whatever the machine's real `$TMPDIR` holds.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

/** One row of the start-up table. */
export interface StartupRow {
  mode: "in-memory" | "fresh --state-dir";
  cache: "cold" | "warm";
  ready: Summary;
  internal: Summary | null;
  /** spawn → ready minus startSandbox(): Node start-up and module loading. */
  boot: Summary | null;
  stop: Summary;
  leftovers: number;
  /** Size of the PGlite template the cold run wrote, bytes. */
  templateBytes?: number | undefined;
}

/** Result of section 1. */
export interface StartupResult {
  rows: StartupRow[];
  warmRuns: number;
  /** A TMPDIR that holds PGlite's template (for later sandboxes). */
  warmTmpDir: string;
}

function templateSize(dir: string): number | undefined {
  const file = readdirSync(dir).find((f) => /^run402-sandbox-pglite-.*\.tar$/.test(f));
  return file ? statSync(join(dir, file)).size : undefined;
}

async function once(repo: string, tmpDir: string, stateRoot: string | undefined) {
  const stateDir = stateRoot ? mkdtempSync(join(stateRoot, "state-")) : undefined;
  const sandbox = await spawnSandbox({ repo, tmpDir, stateDir });
  let failure: unknown;
  try {
    const response = await fetch(`${sandbox.info.apiBase}/tiers/v1`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET /tiers/v1 answered ${response.status}`);
  } catch (error) {
    failure = error;
  }
  const stopped = await sandbox.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  if (failure) throw failure;
  if (stopped.exitCode !== 0) throw new Error(`sandbox exited with ${stopped.exitCode}`);
  return { readyMs: sandbox.readyMs, ...stopped };
}

async function mode(
  repo: string,
  root: string,
  name: StartupRow["mode"],
  warmRuns: number,
  progress: (line: string) => void,
): Promise<{ rows: StartupRow[]; cacheDir: string }> {
  const cacheDir = mkdtempSync(join(root, "tmpdir-"));
  const stateRoot = name === "fresh --state-dir" ? mkdtempSync(join(root, "states-")) : undefined;
  if (templateSize(cacheDir) !== undefined) throw new Error("the cold-cache TMPDIR is not empty");
  const cold = await once(repo, cacheDir, stateRoot);
  const templateBytes = templateSize(cacheDir);
  if (templateBytes === undefined) throw new Error("the cold start left no PGlite template in TMPDIR");
  progress(`start-up ${name}, cold cache: ${Math.round(cold.readyMs)} ms`);
  const warm: Awaited<ReturnType<typeof once>>[] = [];
  for (let i = 0; i < warmRuns; i++) {
    const run = await once(repo, cacheDir, stateRoot);
    progress(`start-up ${name}, warm cache ${i + 1}/${warmRuns}: ${Math.round(run.readyMs)} ms`);
    warm.push(run);
  }
  const row = (runs: typeof warm, cache: StartupRow["cache"]): StartupRow => {
    const internal = runs.map((r) => r.internalStartMs).filter((v): v is number => v !== null);
    return {
      mode: name,
      cache,
      ready: summarize(runs.map((r) => r.readyMs)),
      internal: internal.length === runs.length ? summarize(internal) : null,
      boot:
        internal.length === runs.length
          ? summarize(runs.map((r) => r.readyMs - (r.internalStartMs ?? 0)))
          : null,
      stop: summarize(runs.map((r) => r.stopMs)),
      leftovers: runs.filter((r) => r.leftovers).length,
      ...(cache === "cold" ? { templateBytes } : {}),
    };
  };
  return { rows: [row([cold], "cold"), row(warm, "warm")], cacheDir };
}

/** Runs section 1 under `root` (a scratch folder the caller removes). */
export async function benchStartup(
  repo: string,
  root: string,
  warmRuns: number,
  progress: (line: string) => void,
): Promise<StartupResult> {
  mkdirSync(root, { recursive: true });
  const memory = await mode(repo, root, "in-memory", warmRuns, progress);
  const state = await mode(repo, root, "fresh --state-dir", warmRuns, progress);
  return { rows: [...memory.rows, ...state.rows], warmRuns, warmTmpDir: memory.cacheDir };
}
