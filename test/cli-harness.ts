/**
 * The built run402-pulumi CLI (dist/cli/main.js) as a child process, for the e2e tests
 * (imported as `~test/cli-harness.js`): one way to run it to completion, one to start it and watch
 * its stderr, both with a private PULUMI_HOME and run402 config folder under the test's temp folder
 * and without the caller's passphrase or wallet key (the CLI makes its own passphrase; a test passes
 * the key it means); the `-c` settings that point it at a test sandbox; and a copy of the quickstart
 * app for it to apply.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import type { Report } from "../cli/report.js";
import { repoRoot } from "./engine.js";
import type { TestSandbox } from "./sandbox.js";

/** The built CLI. */
export const main = join(repoRoot, "dist", "cli", "main.js");

/** Fails (in a `beforeAll`) when the CLI is not built. */
export function assertBuilt(): void {
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm test does).`);
}

/** A finished CLI run. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** How a CLI child starts, beyond its environment. */
export interface ChildOptions {
  /** Its working folder (default: this process's). */
  cwd?: string;
  /** Variables of this process's environment it does not inherit (e.g. CI, PULUMI_BACKEND_URL). */
  unset?: string[];
  /** `startCli` only: in a process group of its own, as a shell would start it. */
  detached?: boolean;
  /** `runCli` only: killed (SIGTERM) after this many milliseconds. */
  timeout?: number;
  /** Node's own flags before the CLI's (e.g. `--max-old-space-size=384`). */
  nodeArgs?: string[];
}

/**
 * The environment of a CLI child: this process's, without a passphrase, wallet key, run owner or
 * the `unset` variables, with PULUMI_HOME and RUN402_CONFIG_DIR under `tmp`, then `env`.
 */
export function childEnv(
  tmp: string,
  env: Record<string, string> = {},
  unset: string[] = [],
): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const key of [
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "RUN402_PRIVATE_KEY",
    "RUN402_RUN_OWNER",
    ...unset,
  ])
    delete base[key];
  return { ...base, PULUMI_HOME: join(tmp, "pulumi-home"), RUN402_CONFIG_DIR: join(tmp, "config"), ...env };
}

/** The variables of `env` that are set (as the MCP SDK's StdioClientTransport takes an environment). */
export function definedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** Runs the CLI to its end; never throws on exit codes. */
export function runCli(
  tmp: string,
  args: string[],
  env: Record<string, string> = {},
  options: ChildOptions = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(options.nodeArgs ?? []), main, ...args],
      {
        env: childEnv(tmp, env, options.unset),
        maxBuffer: 256 * 1024 * 1024,
        ...(options.cwd ? { cwd: options.cwd } : {}),
        ...(options.timeout ? { timeout: options.timeout } : {}),
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * A running CLI; `seen(re)` resolves once stderr matches (rejects if it exits first), `done` when it
 * exits; `stderrText()` is what it has written to stderr so far.
 */
export interface Spawned {
  child: ChildProcess;
  seen(pattern: RegExp): Promise<void>;
  done: Promise<Run>;
  stderrText(): string;
}

/** Starts the CLI; an exit by signal reports code 128. */
export function startCli(
  tmp: string,
  args: string[],
  env: Record<string, string> = {},
  options: ChildOptions = {},
): Spawned {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), main, ...args], {
    env: childEnv(tmp, env, options.unset),
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.detached ? { detached: true } : {}),
  });
  let stdout = "";
  let stderr = "";
  const waiting: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of [...waiting]) {
      if (w.pattern.test(stderr)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  const done = new Promise<Run>((resolve) =>
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })),
  );
  return {
    child,
    done,
    stderrText: () => stderr,
    seen: (pattern) =>
      pattern.test(stderr)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiting.push({ pattern, resolve });
            void done.then(() => reject(new Error(`exited before ${pattern}:\n${stderr}`)));
          }),
  };
}

/** The run's JSON report (`--json`), or an error that shows what it printed instead. */
export function report(run: Run): Report {
  try {
    return JSON.parse(run.stdout) as Report;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${run.stdout}\n--- stderr:\n${run.stderr}`);
  }
}

/** Failure context: stderr and stdout. */
export function why(run: Run): string {
  return `${run.stderr}\n--- stdout:\n${run.stdout}`;
}

/** `-c run402:<key>=<value>` for each setting: settings for this run only, nothing stored. */
export function settingFlags(settings: Record<string, string>): string[] {
  return Object.entries(settings).flatMap(([key, value]) => ["-c", `run402:${key}=${value}`]);
}

/** The settings that point the CLI at `sandbox`: its API, both chains' RPCs and its treasury. */
export function sandboxSettings(sandbox: TestSandbox): Record<string, string> {
  return {
    apiBase: sandbox.apiBase,
    baseRpcUrl: sandbox.x402.rpcUrl,
    tempoRpcUrl: sandbox.mpp.rpcUrl,
    allowedRecipients: sandbox.treasury,
  };
}

/**
 * A copy of examples/quickstart (its app.json and site) in `dir`, without its Pulumi project file,
 * state or node_modules; `program: false` leaves out its TypeScript program (index.ts) too, for a
 * test that puts its own program beside app.json. Returns `dir`.
 */
export function copyQuickstart(dir: string, options: { program?: boolean } = {}): string {
  const skipped =
    options.program === false ? /node_modules|\.run402|Pulumi\.|index\.ts/ : /node_modules|\.run402|Pulumi\./;
  cpSync(join(repoRoot, "examples", "quickstart"), dir, {
    recursive: true,
    filter: (src) => !skipped.test(src),
  });
  return dir;
}

/** A fresh copy of the quickstart app in a new folder under `parent`; returns its app.json. */
export function appCopy(parent: string): string {
  return join(copyQuickstart(mkdtempSync(join(parent, "app-"))), "app.json");
}
