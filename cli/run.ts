/** The commands of run402-pulumi: each builds one {@link Report}; main.ts prints it and exits. */
import { dirname, resolve } from "node:path";
import type { PulumiCommand, Stack } from "@pulumi/pulumi/automation/index.js";
import { loadManifest } from "../provider/manifest/index.js";
import { ManifestValidationError } from "../schema/errors.js";
import { BaseError } from "../sdk/errors/base.js";
import type { CliOptions } from "./args.js";
import {
  findPulumi,
  openStack,
  packageRoot,
  pulumiProjectName,
  setConfig,
  type WorkspacePaths,
  workspacePaths,
} from "./engine.js";
import { engineErrors, type ReportedError } from "./exit.js";
import { emptyReport, type Report, renderHuman, sumUsd, withTotals } from "./report.js";
import { publicOutputs, StepCollector, shortType, urnName } from "./steps.js";

/** How a command talks to its surroundings. */
export interface Io {
  /** One progress line on stderr. */
  progress(line: string): void;
  /** Whether a person can answer a question (stdin is a TTY). */
  interactive: boolean;
  /** Asks a yes/no question on stderr; true for yes. */
  confirm(question: string): Promise<boolean>;
  /** Aborted on the first SIGINT/SIGTERM (reconcile: on the second). */
  abort: AbortSignal;
  /** Resolves on the first SIGINT/SIGTERM. */
  stopping: Promise<void>;
}

interface Session {
  options: CliOptions;
  manifestFile: string;
  manifestDir: string;
  projectName: string;
  paths: WorkspacePaths;
  root: string;
  stop: (() => Promise<void>) | undefined;
}

interface SandboxHandle {
  apiBase: string;
  x402: { rpcUrl: string };
  mpp: { rpcUrl: string };
  wallets: { address: string; privateKey: string }[];
  treasury: string;
  stop(): Promise<void>;
}

/** Runs one command to its report (never throws). */
export async function runCommand(options: CliOptions, io: Io): Promise<Report> {
  const report = emptyReport(options.command, options.stack);
  let session: Session | undefined;
  ioRef = io;
  try {
    session = await load(options, report);
    if (!session) return report;
    switch (options.command) {
      case "validate":
        return report;
      case "status":
        return await status(session, report);
      case "plan":
        return await plan(session, report);
      case "apply":
        return await apply(session, report);
      case "renew":
        return await renew(session, report);
      case "destroy":
        return await destroy(session, report);
      case "reconcile":
        return await reconcile(session, report);
      default:
        return report;
    }
  } catch (error) {
    fail(report, toErrors(error));
    return report;
  } finally {
    if (session?.stop) {
      io.progress(
        "stopping the sandbox… (its state stays in .run402/sandbox; its URLs answer only while one runs)",
      );
      await session.stop().catch((error: unknown) => io.progress(`sandbox stop failed: ${String(error)}`));
    }
  }
}

function fail(report: Report, errors: ReportedError[]): void {
  report.ok = false;
  for (const e of errors) {
    if (!report.errors.some((x) => x.code === e.code && x.message === e.message)) report.errors.push(e);
  }
}

/** Any thrown error → reported errors with stable codes. */
export function toErrors(error: unknown): ReportedError[] {
  if (error instanceof ManifestValidationError) {
    return error.issues.map((issue) => ({
      code: "MANIFEST_INVALID",
      message: issue.hint ? `${issue.message} ${issue.hint}` : issue.message,
      pointer: issue.pointer,
    }));
  }
  if (error instanceof BaseError) return [{ code: error.code, message: error.shortMessage }];
  const coded = error as { code?: unknown; message?: unknown } | null;
  if (coded && typeof coded.code === "string" && /^[A-Z][A-Z0-9_]+$/.test(coded.code)) {
    return [{ code: coded.code, message: String(coded.message) }];
  }
  return engineErrors(error instanceof Error ? error.message : String(error));
}

async function load(options: CliOptions, report: Report): Promise<Session | undefined> {
  const loaded = await loadManifest(resolve(options.manifest)).catch((error: unknown) => {
    fail(report, toErrors(error));
    return undefined;
  });
  if (!loaded) return undefined;
  const manifestFile = loaded.file;
  const name = (loaded.manifest as { project?: { name?: string } }).project?.name;
  return {
    options,
    manifestFile,
    manifestDir: dirname(manifestFile),
    projectName: pulumiProjectName(name, dirname(manifestFile)),
    paths: workspacePaths(dirname(manifestFile), options.sandbox),
    root: packageRoot(),
    stop: undefined,
  };
}

// One command per process: the Io of the running command.
let ioRef: Io | undefined;

function io(): Io {
  if (!ioRef) throw new Error("run402-pulumi: Io not set");
  return ioRef;
}

async function engine(session: Session): Promise<PulumiCommand> {
  return findPulumi(session.root);
}

/** Starts the embedded sandbox (its own component, reached over HTTP) and returns its config. */
async function startSandbox(session: Session): Promise<Record<string, { value: string; secret?: boolean }>> {
  io().progress(`starting the sandbox (chains, Postgres, API) in ${session.paths.sandboxDir}…`);
  const started = Date.now();
  const module = (await import("../sandbox/index.js")) as {
    startSandbox(options: { stateDir: string; log?: (line: string) => void }): Promise<SandboxHandle>;
  };
  const sandbox = await module.startSandbox({
    stateDir: session.paths.sandboxDir,
    log: (line) => io().progress(`  [sandbox] ${line}`),
  });
  session.stop = () => sandbox.stop();
  const wallet = sandbox.wallets[0];
  if (!wallet) throw new Error("The sandbox started without a funded wallet.");
  io().progress(
    `sandbox ready at ${sandbox.apiBase} in ${((Date.now() - started) / 1000).toFixed(1)}s (wallet ${wallet.address})`,
  );
  return {
    "run402:apiBase": { value: sandbox.apiBase },
    "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
    "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
    "run402:allowedRecipients": { value: sandbox.treasury },
    "run402:privateKey": { value: wallet.privateKey, secret: true },
    "run402:journalPath": { value: `${session.paths.workDir}/journal.json` },
  };
}

/** Opens the stack with this run's config (sandbox, --rail, --max-spend, --config). */
async function prepare(session: Session, withSandbox: boolean): Promise<Stack> {
  const { options } = session;
  const pulumiCommand = await engine(session);
  const config: Record<string, { value: string; secret?: boolean }> = {};
  if (withSandbox && options.sandbox) Object.assign(config, await startSandbox(session));
  for (const [key, value] of Object.entries(options.config)) config[key] = { value };
  if (options.rail) config["run402:rail"] = { value: options.rail };
  if (options.maxSpendUsd !== undefined) config["run402:maxSpendUsd"] = { value: options.maxSpendUsd };
  const stack = await openStack({
    manifestFile: session.manifestFile,
    projectName: session.projectName,
    stackName: options.stack,
    paths: session.paths,
    backend: options.backend,
    pulumiCommand,
    packageRoot: session.root,
    create: true,
  });
  if (!stack) throw new Error(`The stack ${options.stack} could not be created.`);
  await setConfig(stack, config);
  return stack;
}

type Outputs = Record<string, { value: unknown; secret: boolean }>;

function plainOutputs(outputs: Outputs): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [key, output] of Object.entries(outputs)) plain[key] = output.secret ? "[secret]" : output.value;
  return plain;
}

/** Runs one engine operation, folding its steps, payments and errors into the report. */
async function operate(
  report: Report,
  label: string,
  op: (collector: StepCollector) => Promise<{ outputs?: Outputs } | undefined>,
): Promise<boolean> {
  const collector = new StepCollector((line) => io().progress(line));
  io().progress(`${label}…`);
  try {
    const result = await op(collector);
    if (result?.outputs) report.outputs = plainOutputs(result.outputs);
    return true;
  } catch (error) {
    const coded = collector.errors();
    if (coded.length > 0) fail(report, coded);
    else if (io().abort.aborted)
      fail(report, [{ code: "ENGINE_CANCELLED", message: "Cancelled by a signal." }]);
    else fail(report, toErrors(error));
    return false;
  } finally {
    report.resources = collector.resources();
    report.actions = collector.actions();
    report.payments.push(...collector.payments());
  }
}

async function plan(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, true);
  await operate(report, "planning (pulumi preview; nothing is paid)", (c) =>
    stack.preview({ onEvent: c.onEvent, signal: io().abort }).then(() => undefined),
  );
  return withTotals(report, true);
}

async function apply(session: Session, report: Report): Promise<Report> {
  if (!session.options.yes && !io().interactive) {
    fail(report, [
      {
        code: "CLI_CONFIRMATION_REQUIRED",
        message: "apply changes and may pay: pass --yes to run it without a terminal.",
      },
    ]);
    return report;
  }
  const stack = await prepare(session, true);
  if (!session.options.yes) {
    const planned = emptyReport("plan", report.stack);
    const previewed = await operate(planned, "planning (nothing is paid)", (c) =>
      stack.preview({ onEvent: c.onEvent, signal: io().abort }).then(() => undefined),
    );
    withTotals(planned, true);
    process.stderr.write(renderHuman(planned));
    if (!previewed) return Object.assign(report, { ok: false, errors: planned.errors });
    if (!(await io().confirm(`Apply these changes, paying up to $${planned.totalPlannedUsd}? [y/N] `))) {
      fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed or paid." }]);
      return report;
    }
  }
  await operate(report, "applying (pulumi up)", (c) => stack.up({ onEvent: c.onEvent, signal: io().abort }));
  return withTotals(report, true);
}

async function renew(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, true);
  const state = await stack.exportStack();
  const resources = (state.deployment as { resources?: { urn: string; type: string }[] }).resources ?? [];
  const tier = resources.find((r) => shortType(r.type) === "run402:Tier");
  if (!tier) {
    io().progress("the stack holds no Tier: nothing to renew");
    return withTotals(report, false);
  }
  await operate(report, "renewing due leases (pulumi up --target tier)", (c) =>
    stack.up({ onEvent: c.onEvent, target: [tier.urn], signal: io().abort }),
  );
  return withTotals(report, true);
}

async function destroy(session: Session, report: Report): Promise<Report> {
  if (!session.options.yes && !io().interactive) {
    fail(report, [
      {
        code: "CLI_CONFIRMATION_REQUIRED",
        message: "destroy deletes resources: pass --yes to run it without a terminal.",
      },
    ]);
    return report;
  }
  if (
    !session.options.yes &&
    !(await io().confirm(`Destroy every resource of stack ${session.options.stack}? [y/N] `))
  ) {
    fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed." }]);
    return report;
  }
  const stack = await prepare(session, true);
  await operate(report, "destroying (pulumi destroy)", (c) =>
    stack.destroy({ onEvent: c.onEvent, signal: io().abort }).then(() => undefined),
  );
  return withTotals(report, false);
}

async function status(session: Session, report: Report): Promise<Report> {
  const pulumiCommand = await engine(session);
  const stack = await openStack({
    manifestFile: session.manifestFile,
    projectName: session.projectName,
    stackName: session.options.stack,
    paths: session.paths,
    backend: session.options.backend,
    pulumiCommand,
    packageRoot: session.root,
    create: false,
  });
  if (!stack) {
    io().progress(`stack ${session.options.stack} does not exist yet: run apply`);
    report.outputs = {};
    return report;
  }
  report.outputs = plainOutputs(await stack.outputs());
  const state = await stack.exportStack();
  const resources =
    (state.deployment as { resources?: { urn: string; type: string; outputs?: Record<string, unknown> }[] })
      .resources ?? [];
  report.resources = resources
    .filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"))
    .map((r) => ({
      type: shortType(r.type),
      name: urnName(r.urn),
      op: "same",
      outputs: publicOutputs(r.type, r.outputs),
    }));
  return report;
}

function sleep(ms: number, stopping: Promise<void>): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    void stopping.then(() => {
      clearTimeout(timer);
      done();
    });
  });
}

async function reconcile(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, true);
  let stopped = false;
  void io().stopping.then(() => {
    stopped = true;
    io().progress("stopping: finishing the current round (signal again to cancel it)");
  });
  let rounds = 0;
  const payments = report.payments;
  while (!stopped) {
    rounds += 1;
    const round = emptyReport("reconcile", report.stack);
    round.payments = payments;
    io().progress(`round ${rounds} at ${new Date().toISOString()}`);
    const refreshed = await operate(round, "refreshing (pulumi refresh)", (c) =>
      stack.refresh({ onEvent: c.onEvent, signal: io().abort }).then(() => undefined),
    );
    const resources = round.resources;
    const converged =
      refreshed &&
      !stopped &&
      (await operate(round, "converging (pulumi up)", (c) =>
        stack.up({ onEvent: c.onEvent, signal: io().abort }),
      ));
    Object.assign(report, {
      ok: round.ok,
      errors: round.errors,
      resources: round.resources.length > 0 ? round.resources : resources,
      actions: round.actions,
      outputs: round.outputs ?? report.outputs,
    });
    io().progress(
      converged
        ? `round ${rounds} done: ${round.actions.length} change(s), paid $${sumUsd(round.payments.map((p) => p.amountUsd))} so far`
        : `round ${rounds} failed: ${round.errors.map((e) => `[${e.code}] ${e.message}`).join("; ")}`,
    );
    if (!stopped) await sleep(session.options.everyMs, io().stopping);
  }
  report.rounds = rounds;
  return withTotals(report, false);
}
