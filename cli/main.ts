#!/usr/bin/env node
/**
 * run402-pulumi: applies app.json manifests through the Pulumi Automation API (an inline program
 * calling `manifestStack`), for agents and pipelines. stdout carries only the result (one JSON
 * document with --json); everything else goes to stderr. See docs/cli.md.
 */
import "./compile-cache.js";
import { createInterface } from "node:readline/promises";
import { parseCli } from "./args.js";
import {
  EngineMissingError,
  findPulumi,
  hardStopGraceMs,
  packageRoot,
  runOwner,
  stopEngines,
  stopGraceMs,
} from "./engine/index.js";
import { ExitCode, exitCodeOf } from "./exit.js";
import { bounded, emptyReport, ordered, renderHuman } from "./report.js";
import { runCommand } from "./run.js";

/** How long reconcile's current round may still run after the first signal before it is cancelled. */
const finishRoundMs = 3000;

// Whatever a library prints must not corrupt the result: stdout is reserved for the final write.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

function finish(text: string, code: number): void {
  writeStdout(text, () => process.exit(code));
}

async function main(): Promise<void> {
  // Every process this run starts (the engine, its plugins) ends itself once this one is gone.
  process.env.RUN402_RUN_OWNER = runOwner();
  const parsed = parseCli(process.argv.slice(2));
  if (parsed.kind === "help") {
    finish(parsed.text, ExitCode.ok);
    return;
  }
  if (parsed.kind === "error") {
    // One line and the way to the full text: the usage would bury the message.
    process.stderr.write(
      `run402-pulumi: ${parsed.message} (\`run402-pulumi --help\` lists the commands and flags)\n`,
    );
    const report = emptyReport(process.argv.slice(2).find((a) => !a.startsWith("-")) ?? "", "");
    report.ok = false;
    report.errors.push({ code: "CLI_USAGE", message: parsed.message });
    if (parsed.json) finish(`${JSON.stringify(report, null, 2)}\n`, ExitCode.invalid);
    else process.exit(ExitCode.invalid);
    return;
  }
  const { options } = parsed;
  if (options.command === "engine") {
    // The engine script shipped in the package, with its output as it writes it.
    const { spawnSync } = await import("node:child_process");
    const { join } = await import("node:path");
    const script = join(packageRoot(), "scripts", "engine.sh");
    const done = spawnSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"] });
    if (done.error)
      process.stderr.write(`run402-pulumi engine: could not run bash ${script}: ${done.error.message}\n`);
    process.exit(done.status ?? ExitCode.engine);
  }
  if (options.command === "mcp") {
    // stdout is the MCP protocol channel: only the transport writes there, through writeStdout.
    const { serveMcp, startRefusal } = await import("./mcp.js");
    const refusal = startRefusal({ allowApply: options.allowApply, operator: options });
    if (refusal) {
      process.stderr.write(`run402-pulumi mcp: [MCP_RECIPIENTS_REQUIRED] ${refusal}\n`);
      process.exit(ExitCode.invalid);
    }
    // Every tool but validate needs the engine: say so now, with the command that installs it,
    // rather than after an agent's first call.
    try {
      await findPulumi(packageRoot());
    } catch (error) {
      if (!(error instanceof EngineMissingError)) throw error;
      process.stderr.write(`run402-pulumi mcp: [ENGINE_NOT_FOUND] ${error.message}\n`);
      process.exit(ExitCode.engine);
    }
    let stop: () => void = () => {};
    const stopping = new Promise<void>((resolve) => {
      stop = resolve;
    });
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    await serveMcp({
      allowApply: options.allowApply,
      allowDestroy: options.allowDestroy,
      operator: options,
      writeStdout: (chunk, done) => writeStdout(chunk, done),
      log: (line) => process.stderr.write(`${line}\n`),
      stopping,
    });
    process.exit(ExitCode.ok);
  }
  const controller = new AbortController();
  let signals = 0;
  let markStopping: () => void = () => {};
  const stopping = new Promise<void>((resolve) => {
    markStopping = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals >= 2) {
      // A second signal exits at once: the engine is ended too (nothing outlives the CLI).
      process.stderr.write(
        `run402-pulumi: ${signal} received again: exiting now. A payment this run may have made stays pending in the payment journal; the next run resolves it on chain without paying again.\n`,
      );
      stopEngines();
      process.exit(ExitCode.interrupted);
    }
    process.stderr.write(
      `run402-pulumi: ${signal} received: stopping (in-flight work is abandoned within ${Math.ceil(((options.command === "reconcile" ? finishRoundMs : 0) + stopGraceMs + hardStopGraceMs) / 1000)} s; a second signal exits at once)\n`,
    );
    markStopping();
    // reconcile starts no new round and lets the current one finish if it can within a short
    // bound; every other command abandons its in-flight work now.
    if (options.command === "reconcile") setTimeout(() => controller.abort(), finishRoundMs).unref();
    else controller.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const report = await runCommand(options, {
    progress: (line) => process.stderr.write(`${line}\n`),
    interactive: Boolean(process.stdin.isTTY),
    async confirm(question) {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(question)).trim());
      } finally {
        rl.close();
      }
    },
    abort: controller.signal,
    stopping,
  });
  // A reconcile loop stopped by a signal between rounds ends cleanly, unless a round failed.
  const code = exitCodeOf(report.errors);
  finish(
    options.json
      ? `${JSON.stringify(ordered(bounded(report, options.files)), null, 2)}\n`
      : renderHuman(report),
    code,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `run402-pulumi: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  const report = emptyReport(process.argv[2] ?? "", "");
  report.ok = false;
  report.errors.push({
    code: "ENGINE_ERROR",
    message: error instanceof Error ? error.message : String(error),
  });
  finish(process.argv.includes("--json") ? `${JSON.stringify(report, null, 2)}\n` : "", ExitCode.engine);
});
