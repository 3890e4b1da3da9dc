/**
 * Runs the built `run402-sandbox` bin (packages/sandbox/dist/main.js) as a child process in its own process
 * group, and times it: spawn → the ready JSON line on stdout, and SIGTERM → exit. Every child is
 * registered so that {@link killAll} can take down whatever is still running (its anvil chains
 * included) when the bench fails or is interrupted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

/** The JSON line the bin prints when ready. */
export interface SandboxInfo {
  apiBase: string;
  x402: { rpcUrl: string; chainId: number; asset: string };
  mpp: { rpcUrl: string; chainId: number; currency: string };
  wallets: { address: `0x${string}`; privateKey: `0x${string}` }[];
  treasury: `0x${string}`;
}

/** What stopping a sandbox child observed. */
export interface StopResult {
  /** SIGTERM → the process exited. */
  stopMs: number;
  exitCode: number | null;
  /** `startSandbox()` call → resolved, as the bin logs it on stderr ("ready at … in N ms"). */
  internalStartMs: number | null;
  /** Processes of the child's group (anvil) still alive after it exited; they were killed. */
  leftovers: boolean;
}

/** A running sandbox child. */
export interface SandboxChild {
  info: SandboxInfo;
  /** spawn → ready line received. */
  readyMs: number;
  stop(): Promise<StopResult>;
}

const live = new Set<ChildProcess>();

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** SIGKILLs the process group of every sandbox child still registered (only ones this bench spawned). */
export function killAll(): void {
  for (const child of live) killGroup(child);
  live.clear();
}

/** Starts `node packages/sandbox/dist/main.js`, with `TMPDIR` set to `tmpDir` (where PGlite caches its template). */
export async function spawnSandbox(options: {
  repo: string;
  tmpDir: string;
  stateDir?: string | undefined;
  wallets?: number | undefined;
  readyTimeoutMs?: number | undefined;
}): Promise<SandboxChild> {
  const { repo, tmpDir, stateDir, wallets, readyTimeoutMs = 60_000 } = options;
  const args = [join(repo, "packages", "sandbox", "dist", "main.js"), "--port", "0"];
  if (stateDir) args.push("--state-dir", stateDir);
  if (wallets !== undefined) args.push("--wallets", String(wallets));
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: repo,
    env: { ...process.env, TMPDIR: tmpDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  live.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  let readyMs: number;
  let info: SandboxInfo;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`sandbox not ready after ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
      const lines = createInterface({ input: child.stdout! });
      lines.once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`sandbox exited (${code}) before ready: ${stderr.slice(-2000)}`));
      });
    });
    readyMs = performance.now() - started;
    info = JSON.parse(line) as SandboxInfo;
    if (!new URL(info.apiBase).hostname.startsWith("127.0.0.1")) {
      throw new Error(`sandbox is not on 127.0.0.1: ${info.apiBase}`);
    }
  } catch (error) {
    killGroup(child);
    live.delete(child);
    throw error;
  }

  let stopping: Promise<StopResult> | undefined;
  return {
    info,
    readyMs,
    stop() {
      stopping ??= (async () => {
        const t0 = performance.now();
        child.kill("SIGTERM");
        const timeout = new Promise<"timeout">((resolve) =>
          setTimeout(() => resolve("timeout"), 20_000).unref(),
        );
        const code = await Promise.race([exited, timeout]);
        const stopMs = performance.now() - t0;
        let leftovers = false;
        if (code === "timeout" || (child.pid !== undefined && groupAlive(child.pid))) {
          leftovers = true;
          killGroup(child);
        }
        live.delete(child);
        const match = /ready at \S+ in (\d+) ms/.exec(stderr);
        if (code === "timeout") throw new Error(`sandbox did not exit within 20 s of SIGTERM (killed)`);
        return { stopMs, exitCode: code, internalStartMs: match ? Number(match[1]) : null, leftovers };
      })();
      return stopping;
    },
  };
}
