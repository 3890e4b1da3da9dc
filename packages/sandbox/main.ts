#!/usr/bin/env node
/**
 * `run402-sandbox [--port N] [--state-dir DIR] [--wallets N] [--pulumi-config [--set] [--rail R] [--stack S]]`:
 * prints one JSON line on stdout when ready (with --pulumi-config, the `pulumi config set` lines that
 * point a stack at it instead), logs to stderr, serves until SIGINT/SIGTERM/SIGHUP or until the
 * process that started it is gone, then stops everything it started.
 */
import { spawn } from "node:child_process";
import module from "node:module";
import { parseArgs } from "node:util";

/** Milliseconds after the process's start at which this module ran (Node's own start-up). */
const startedAt = performance.now();

import type { Sandbox } from "./index.js";

// Node's on-disk compile cache (Node ≥ 22.1) for the sandbox's modules (viem, PGlite, mppx, x402,
// @run402/release…): later starts skip most of their parsing and compiling. Enabled before they load.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const usage =
  "usage: run402-sandbox [--port N] [--state-dir DIR] [--wallets N] [--pulumi-config [--set] [--rail x402|mpp] [--stack NAME]]\n";

/** The stack settings that point a Pulumi program at `sandbox`: [key, value, secret]. */
export function pulumiSettings(sandbox: Sandbox, rail: "x402" | "mpp"): [string, string, boolean][] {
  const wallet = sandbox.wallets[0];
  if (!wallet) throw new Error("The sandbox started without a funded wallet.");
  return [
    ["run402:apiBase", sandbox.apiBase, false],
    ["run402:baseRpcUrl", sandbox.x402.rpcUrl, false],
    ["run402:tempoRpcUrl", sandbox.mpp.rpcUrl, false],
    ["run402:rail", rail, false],
    ["run402:allowedRecipients", sandbox.treasury, false],
    // A sandbox test key (funded on the sandbox's chains only), stored encrypted as every key should be.
    ["run402:privateKey", wallet.privateKey, true],
  ];
}

function configSetArgs([key, value, secret]: [string, string, boolean], stack: string | undefined): string[] {
  return ["config", "set", ...(secret ? ["--secret"] : []), ...(stack ? ["--stack", stack] : []), key, value];
}

/** Runs `pulumi config set …` in the current folder; rejects with pulumi's own message. */
function pulumiConfigSet(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", [...args, "--non-interactive"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === "ENOENT"
            ? "--set runs `pulumi config set`, and no `pulumi` is on PATH: put the Pulumi CLI on PATH, or leave out --set and run the printed lines."
            : `pulumi config set: ${error.message}`,
        ),
      ),
    );
    child.once("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`pulumi config set ${args.at(-2)} failed (exit ${code}): ${stderr.trim()}`)),
    );
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      "state-dir": { type: "string" },
      wallets: { type: "string" },
      "pulumi-config": { type: "boolean" },
      set: { type: "boolean" },
      rail: { type: "string" },
      stack: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stderr.write(usage);
    return;
  }
  // Without --port, a --state-dir sandbox serves where it served last (see startSandbox).
  const port = values.port === undefined ? undefined : Number(values.port);
  const walletCount = values.wallets === undefined ? undefined : Number(values.wallets);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw new Error(`--port must be 0-65535, got ${values.port}.`);
  if (walletCount !== undefined && (!Number.isInteger(walletCount) || walletCount < 1)) {
    throw new Error(`--wallets must be a positive integer, got ${values.wallets}.`);
  }
  const rail = values.rail ?? "x402";
  if (rail !== "x402" && rail !== "mpp") throw new Error(`--rail must be x402 or mpp, got ${values.rail}.`);
  if (!values["pulumi-config"] && (values.set || values.rail || values.stack))
    throw new Error("--set, --rail and --stack go with --pulumi-config.");

  // Stops with its parent: a run402-sandbox whose starter (a terminal, `npx`, a script) is gone
  // would otherwise hold its ports and chains forever. Checked once a second, as the CLI's engine
  // supervisor does; the chains go with this process in any case (see chains/index.ts).
  const parent = process.ppid;
  let sandbox: Sandbox | undefined;
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[run402-sandbox] ${why}: stopping\n`);
    (sandbox?.stop() ?? Promise.resolve()).then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`[run402-sandbox] stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stop(signal));
  setInterval(() => {
    if (process.ppid !== parent) stop(`its parent (pid ${parent}) is gone`);
  }, 1000);

  const importing = performance.now();
  const { startSandbox } = await import("./index.js");
  const importMs = performance.now() - importing;
  const started = Date.now();
  sandbox = await startSandbox({
    ...(port === undefined ? {} : { port }),
    ...(values["state-dir"] ? { stateDir: values["state-dir"] } : {}),
    ...(walletCount ? { walletCount } : {}),
  });
  if (stopping) return;
  try {
    await announce(sandbox, values, rail);
  } catch (error) {
    await sandbox.stop();
    throw error;
  }
  const { chains, postgres, port: bound } = sandbox.phases;
  process.stderr.write(
    `[run402-sandbox] ready at ${sandbox.apiBase} in ${Date.now() - started} ms (chains ${chains} ms, port ${bound} ms, Postgres ${postgres ? `${postgres} ms` : "still loading"}; Node start-up ${Math.round(startedAt)} ms, imports ${Math.round(importMs)} ms; ${Math.round(performance.now())} ms since the process started)\n`,
  );
}

/** Prints the ready line, or the stack settings (and sets them with --set). */
async function announce(
  sandbox: Sandbox,
  values: { "pulumi-config"?: boolean; set?: boolean; stack?: string; "state-dir"?: string },
  rail: "x402" | "mpp",
): Promise<void> {
  const { apiBase, x402, mpp, wallets, treasury } = sandbox;
  if (!values["pulumi-config"]) {
    process.stdout.write(`${JSON.stringify({ apiBase, x402, mpp, wallets, treasury })}\n`);
  } else {
    const settings = pulumiSettings(sandbox, rail);
    if (values.set) {
      for (const setting of settings) await pulumiConfigSet(configSetArgs(setting, values.stack));
      process.stderr.write(
        `[run402-sandbox] set ${settings.map(([key]) => key).join(", ")} on ${values.stack ? `stack ${values.stack}` : "the current stack"}\n`,
      );
    }
    // The lines, quoted for a POSIX shell (values are URLs, addresses and a hex key: nothing to escape).
    for (const setting of settings)
      process.stdout.write(`pulumi ${configSetArgs(setting, values.stack).join(" ")}\n`);
    if (!values["state-dir"])
      process.stderr.write(
        "[run402-sandbox] without --state-dir, a restarted sandbox gets new ports: these settings hold while this one runs\n",
      );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[run402-sandbox] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
