/**
 * Section 3: `bash scripts/engine.sh` with the engine already obtained (the path every `npm test`
 * after the first takes). The cold build (several minutes of Go compilation) is not re-run here.
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { type Summary, summarize } from "./stats.js";

/** Result of section 3. */
export interface EngineResult {
  warm: Summary;
  /** engine.sh's own account of what it did (its last stderr line but one, e.g. "cached build …"). */
  path: string;
}

function runOnce(repo: string): Promise<{ ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("bash", ["scripts/engine.sh"], {
      cwd: repo,
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
    });
    // A warm run takes about a second; a minute means it started a cold build: stop its whole group.
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, 60_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code === 0) resolve({ ms, stderr });
      else reject(new Error(`engine.sh failed (${signal ?? code}): ${stderr.slice(-1000)}`));
    });
  });
}

/** Times `runs` warm runs of engine.sh. */
export async function benchEngine(
  repo: string,
  runs: number,
  progress: (line: string) => void,
): Promise<EngineResult> {
  const times: number[] = [];
  let path = "";
  for (let i = 0; i < runs; i++) {
    const { ms, stderr } = await runOnce(repo);
    times.push(ms);
    const lines = stderr
      .split("\n")
      .map((l) => l.replace(/^engine: /, "").trim())
      .filter(Boolean);
    path = lines.find((l) => /^(cached build|using|pulumi .* ready)/.test(l)) ?? lines.at(-1) ?? "";
    if (/^building/m.test(lines.join("\n"))) {
      throw new Error("engine.sh built the engine from source: this is a cold run, not a warm one");
    }
    progress(`engine.sh warm ${i + 1}/${runs}: ${Math.round(ms)} ms`);
  }
  return { warm: summarize(times), path };
}
