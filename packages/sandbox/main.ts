#!/usr/bin/env node
/**
 * `run402-sandbox [--port N] [--state-dir DIR] [--wallets N]`: prints one JSON line on stdout when
 * ready, logs to stderr, serves until SIGINT/SIGTERM, then stops everything it started.
 */
import { parseArgs } from "node:util";
import { startSandbox } from "./index.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      "state-dir": { type: "string" },
      wallets: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stderr.write("usage: run402-sandbox [--port N] [--state-dir DIR] [--wallets N]\n");
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
  const started = Date.now();
  const sandbox = await startSandbox({
    ...(port === undefined ? {} : { port }),
    ...(values["state-dir"] ? { stateDir: values["state-dir"] } : {}),
    ...(walletCount ? { walletCount } : {}),
  });
  const { apiBase, x402, mpp, wallets, treasury } = sandbox;
  process.stdout.write(`${JSON.stringify({ apiBase, x402, mpp, wallets, treasury })}\n`);
  process.stderr.write(`[run402-sandbox] ready at ${apiBase} in ${Date.now() - started} ms\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[run402-sandbox] ${signal}: stopping\n`);
    sandbox.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`[run402-sandbox] stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `[run402-sandbox] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
