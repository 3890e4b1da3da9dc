/** The commands of run402-pulumi: each builds one {@link Report}; main.ts prints it and exits. */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { BaseError, reportedCode } from "../core/errors.js";
import {
  checkManifest,
  loadManifest,
  ManifestNotFoundError,
  ManifestUnreadableError,
  type ResolvedRelease,
} from "../provider/manifest/index.js";
import { type RunSettings, runSettingsEnv } from "../provider/settings.js";
import { ManifestValidationError } from "../schema/errors.js";
import { atomicToUsd, sumUsd, usdToAtomic } from "../sdk/money.js";
import type * as Journal from "../sdk/pay/journal.js";
import type { CliOptions } from "./args.js";
import { describeRepair } from "./checkpoint.js";
import {
  EngineCommandError,
  type EngineStack,
  type ExportedState,
  engineErrors,
  findPulumi,
  lockedFromEngine,
  type OperationResult,
  type Outputs,
  openStack,
  packageRoot,
  pulumiProjectName,
  stateOutputs,
  type WorkspacePaths,
  workspacePaths,
} from "./engine/index.js";
import type { ReportedError } from "./exit.js";
import { forecastRenewals, isTier, priceList } from "./forecast.js";
import { clearStale, describeLock, fileBackendDir, leftovers, lockedError, stackLocks } from "./locks.js";
import { buildPlan, type PlanDocument, PlanRecorder, planChanges, readPlan, writePlan } from "./plan.js";
import {
  emptyReport,
  type ForecastReport,
  type PendingReport,
  type Report,
  renderHuman,
  withTotals,
} from "./report.js";
import { loadSandbox } from "./sandbox.js";
import { publicOutputs, StepCollector } from "./steps.js";
import { shortType, urnName } from "./urn.js";

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
  /** The manifest as loaded (a saved plan records its digest). */
  manifest: unknown;
  manifestDir: string;
  projectName: string;
  paths: WorkspacePaths;
  root: string;
  stop: (() => Promise<void>) | undefined;
  /** This run's provider settings: handed to the provider for this run only, never stored. */
  settings: RunSettings;
  /** Where the user ran the CLI. */
  cwd: string;
  /** How this command talks to its surroundings. */
  io: Io;
  /** What was done to a damaged checkpoint when the stack was opened (the stack is refreshed next). */
  repaired?: string | undefined;
}

/** The Run402 API when neither this run nor the stack config names one (provider/config.ts's default). */
const defaultApiBase = "https://api.run402.com";

/** The stack tag holding the stack instance's identity (see {@link stackIdentity}). */
const stackIdTag = "run402:stack-id";

/** Runs one command to its report (never throws). */
export async function runCommand(options: CliOptions, io: Io): Promise<Report> {
  const report = emptyReport(options.command, options.stack);
  let session: Session | undefined;
  try {
    session = await load(options, report, io);
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
      case "refresh":
        return await refresh(session, report);
      case "destroy":
        return await destroy(session, report);
      case "reconcile":
        return await reconcile(session, report);
      case "forecast":
        return await forecast(session, report);
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

/** Notes what the CLI repaired before it ran. */
function recover(report: Report, line: string): void {
  report.recovered = [...(report.recovered ?? []), line];
}

/** Adds errors to the report, each once per place: the same message at two pointers is two problems. */
function fail(report: Report, errors: ReportedError[]): void {
  report.ok = false;
  const key = (e: ReportedError) =>
    `${e.code}\u0000${e.pointer ?? ""}\u0000${e.file ?? ""}\u0000${e.message}`;
  const seen = new Set(report.errors.map(key));
  for (const e of errors) {
    if (seen.has(key(e))) continue;
    seen.add(key(e));
    report.errors.push(e);
  }
}

/** Any thrown error → reported errors with stable codes. */
export function toErrors(error: unknown): ReportedError[] {
  if (error instanceof ManifestValidationError) {
    return error.issues.map((issue) => ({
      code: "MANIFEST_INVALID",
      message: issue.hint ? `${issue.message} ${issue.hint}` : issue.message,
      pointer: issue.pointer,
      ...(error.file !== undefined ? { file: error.file } : {}),
    }));
  }
  if (error instanceof ManifestNotFoundError || error instanceof ManifestUnreadableError)
    return [{ code: error.code, message: error.shortMessage, file: error.path }];
  if (error instanceof EngineCommandError) return engineErrors(error.output);
  const code = reportedCode(error);
  if (code) {
    const message =
      error instanceof BaseError ? error.shortMessage : (error as { message?: unknown }).message;
    return [{ code, message: String(message) }];
  }
  return engineErrors(error instanceof Error ? error.message : String(error));
}

/** Whether an environment variable is set to a true value (`CI=true`, `CI=1`; not `false`, `0` or empty). */
function truthy(value: string | undefined): boolean {
  return value !== undefined && !/^(|0|false|no|off)$/i.test(value.trim());
}

/** Whether a URL names this machine (a local sandbox's API). */
function onLoopback(url: string): boolean {
  try {
    return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

/**
 * In CI (`CI` set, as GitHub Actions and most CI services set it) a file backend lives on a runner that is
 * thrown away: the next run finds no stack and creates (and pays for) everything again. Refused before
 * anything is created, unless the run says so (`--allow-file-backend`, e.g. a self-hosted runner's kept
 * disk) or targets a local sandbox (`--sandbox`, or `-c run402:apiBase=` on loopback). `validate` and
 * `status` neither change nor pay.
 */
export function runnerLocalBackend(
  options: CliOptions,
  env: NodeJS.ProcessEnv = process.env,
): ReportedError | undefined {
  if (
    options.command === "validate" ||
    options.command === "status" ||
    options.command === "forecast" ||
    options.command === "mcp"
  )
    return;
  if (!truthy(env.CI) || options.allowFileBackend || options.sandbox) return;
  if (onLoopback(options.config["run402:apiBase"] ?? "")) return;
  if (options.backend !== undefined && !options.backend.startsWith("file://")) return;
  return {
    code: "CLI_BACKEND_NOT_DURABLE",
    message: `CI is set and the stack would live in a file backend on this machine (${options.backend ?? "the default, <manifest dir>/.run402/state"}), which a CI runner throws away: the next run would find no stack and create and pay for everything again. Pass --backend with a durable backend (s3://…, azblob://…, gs://…, https://api.pulumi.com), or --allow-file-backend when this folder is kept between runs.`,
  };
}

/**
 * The journal twin of {@link runnerLocalBackend}: in CI, a payment journal on the runner's disk is
 * lost with the runner, and with it the record of a credential that may have left (a runner killed
 * mid-payment): the next run, elsewhere, could not know. Paying commands refuse it unless the run
 * names a shared journal (`run402:journal`, in the stack config or `-c`), uses a `postgres://`
 * backend (the journal then lives in the same database), or says so (`--allow-local-journal`).
 */
export function runnerLocalJournal(
  options: CliOptions,
  stackConfig: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv = process.env,
): ReportedError | undefined {
  if (!["apply", "renew", "reconcile"].includes(options.command)) return;
  if (!truthy(env.CI) || options.allowLocalJournal || options.sandbox) return;
  if (onLoopback(options.config["run402:apiBase"] ?? stackConfig["run402:apiBase"] ?? "")) return;
  if ((options.config["run402:journal"] ?? stackConfig["run402:journal"] ?? "").trim() !== "") return;
  if (/^postgres(ql)?:\/\//i.test(options.backend ?? "")) return;
  return {
    code: "CLI_JOURNAL_NOT_DURABLE",
    message:
      "CI is set and the payment journal would live on this machine, which a CI runner throws away: a runner killed while a payment was in flight would leave no record, and the next run could not tell whether it was paid. Name a shared journal (-c run402:journal=postgres://… or `pulumi config set --secret run402:journal postgres://…`), use a postgres:// --backend (the journal then lives in the same database), or pass --allow-local-journal when this machine's disk is kept between runs.",
  };
}

/** Commands that deploy the manifest: every local check runs first, files included (no network, no engine). */
const deploying = new Set(["validate", "plan", "apply", "reconcile"]);

/** Names what the site's folder walk left out, on stderr, so nothing is skipped in silence. */
function reportSkipped(skipped: ResolvedRelease["skipped"], io: Io): void {
  const show = (paths: string[]) =>
    paths.length > 12 ? `${paths.slice(0, 12).join(", ")} and ${paths.length - 12} more` : paths.join(", ");
  const never = skipped.filter((s) => s.why === "never").map((s) => s.path);
  const dot = skipped.filter((s) => s.why === "dotfile").map((s) => s.path);
  if (never.length > 0) io.progress(`site: never uploaded (secrets, tool state): ${show(never)}`);
  if (dot.length > 0)
    io.progress(`site: dot entries left out (list them in site.include_dotfiles to upload): ${show(dot)}`);
}

async function load(options: CliOptions, report: Report, io: Io): Promise<Session | undefined> {
  const loaded = await (deploying.has(options.command)
    ? checkManifest(options.manifest).then(({ loaded, release }) => {
        reportSkipped(release.skipped, io);
        return loaded;
      })
    : loadManifest(resolve(options.manifest))
  ).catch((error: unknown) => {
    fail(report, toErrors(error));
    return undefined;
  });
  if (!loaded) return undefined;
  const manifestFile = loaded.file;
  const name = (loaded.manifest as { project?: { name?: string } }).project?.name;
  return {
    options,
    manifestFile,
    manifest: loaded.manifest,
    manifestDir: dirname(manifestFile),
    projectName: pulumiProjectName(name, dirname(manifestFile)),
    paths: workspacePaths(dirname(manifestFile), options.sandbox),
    root: packageRoot(),
    stop: undefined,
    settings: {},
    cwd: process.cwd(),
    io,
  };
}

/** Starts the embedded sandbox (its own component, reached over HTTP) and returns its settings. */
async function startSandbox(session: Session): Promise<RunSettings> {
  session.io.progress(`starting the sandbox (chains, Postgres, API) in ${session.paths.sandboxDir}…`);
  const started = Date.now();
  const { version } = JSON.parse(readFileSync(join(session.root, "package.json"), "utf8")) as {
    version: string;
  };
  const module = await loadSandbox(session.manifestDir, version);
  // Uploads go through presigned URLs on the sandbox's own upload origin, as on Run402; that origin
  // is on loopback, so this run lists it in run402:uploadOrigins.
  const sandbox = await module.startSandbox({
    stateDir: session.paths.sandboxDir,
    log: (line) => session.io.progress(`  [sandbox] ${line}`),
    uploads: "presigned",
  });
  session.stop = () => sandbox.stop();
  const wallet = sandbox.wallets[0];
  if (!wallet) throw new Error("The sandbox started without a funded wallet.");
  session.io.progress(
    `sandbox ready at ${sandbox.apiBase} in ${((Date.now() - started) / 1000).toFixed(1)}s (wallet ${wallet.address})`,
  );
  return {
    apiBase: sandbox.apiBase,
    baseRpcUrl: sandbox.x402.rpcUrl,
    tempoRpcUrl: sandbox.mpp.rpcUrl,
    allowedRecipients: sandbox.treasury,
    privateKey: wallet.privateKey,
    journalPath: `${session.paths.workDir}/journal.json`,
    // A sandbox build older than its upload origin has none.
    ...(sandbox.uploadOrigin ? { uploadOrigins: sandbox.uploadOrigin } : {}),
  };
}

/** The settings this run's flags give (`-c`, `--rail`, `--max-spend`): for this run only. */
function flagSettings(options: CliOptions): RunSettings {
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.config)) settings[key.replace(/^run402:/, "")] = value;
  if (options.rail) settings.rail = options.rail;
  if (options.maxSpendUsd !== undefined) settings.maxSpendUsd = options.maxSpendUsd;
  // The MCP tools' maxSpendUsd: lowers the cap the provider ends up with, never raises it.
  if (options.spendCeilingUsd !== undefined) settings.spendCeilingUsd = options.spendCeilingUsd;
  return settings as RunSettings;
}

/**
 * The identity of this stack instance, kept as a stack tag in the backend (beside the state): two
 * stacks with the same project and stack names in different folders or backends are different
 * stacks, and the provider keys what a stack creates with it. Created with the stack.
 */
async function stackIdentity(stack: EngineStack, io: Io): Promise<string | undefined> {
  try {
    const tags = await stack.workspace.listTags(stack.name);
    const known = tags[stackIdTag];
    if (known) return known;
    const id = randomUUID();
    await stack.workspace.setTag(stack.name, stackIdTag, id);
    return id;
  } catch (error) {
    io.progress(
      `warning: this backend keeps no stack tags (${error instanceof Error ? error.message.split("\n")[0] : String(error)}); another stack with the same project and stack name could replay this one's project create`,
    );
    return undefined;
  }
}

/**
 * A damaged checkpoint found when the stack was opened: restored from Pulumi's copy (reported, and
 * the stack is refreshed before it changes), or, with no readable copy, a clear error.
 */
function noteRepair(session: Session, stack: EngineStack, report?: Report): void {
  const repair = stack.repaired;
  if (!repair) return;
  if (!repair.restoredFrom) {
    throw new BaseError(
      `The stack's checkpoint ${repair.file} ${repair.damage === "empty" ? "is empty" : "cannot be read"} and Pulumi kept no readable copy of it (${repair.file}.bak, .pulumi/backups). Nothing was changed or paid. Move it aside (mv ${repair.file} ${repair.file}.damaged) and run apply: the stack starts again from nothing, and each create it repeats is keyed with this stack's identity, so Run402 answers with what it made the first time instead of charging again.`,
      { code: "CLI_STATE_DAMAGED" },
    );
  }
  session.repaired = describeRepair(repair);
  session.io.progress(session.repaired);
  if (report) recover(report, session.repaired);
}

/** Opens the stack with this run's settings (sandbox, flags, stack identity); never writes config. */
async function prepare(session: Session, create: boolean): Promise<EngineStack | undefined> {
  const { options } = session;
  // Before anything is created or started: no engine, no sandbox, no state folder.
  const refused = runnerLocalBackend(options);
  if (refused) throw new BaseError(refused.message, { code: refused.code });
  const noPack = missingPolicyPack(session);
  if (noPack) throw new BaseError(noPack, { code: "CLI_POLICY_PACK_NOT_FOUND" });
  const engine = await findPulumi(session.root, session.paths.engineDir);
  const sandbox = options.sandbox ? await startSandbox(session) : {};
  const stack = await openStack({
    manifestFile: session.manifestFile,
    projectName: session.projectName,
    stackName: options.stack,
    paths: session.paths,
    backend: options.backend,
    engine,
    packageRoot: session.root,
    create,
  });
  if (!stack) return undefined;
  noteRepair(session, stack);
  const stackId = await stackIdentity(stack, session.io);
  if (["apply", "renew", "reconcile"].includes(options.command)) {
    const config = await stack.getAllConfig();
    const local = runnerLocalJournal(
      options,
      Object.fromEntries(Object.entries(config).map(([key, value]) => [key, value.value])),
    );
    if (local) throw new BaseError(local.message, { code: local.code });
  }
  // One run id per command: the journal sums this run's claims against run402:maxSpendUsd across its
  // provider processes (and a reconcile's rounds: one budget for its whole life).
  session.settings = {
    ...sandbox,
    ...flagSettings(options),
    ...(stackId ? { stackId } : {}),
    runId: randomUUID(),
  };
  return stack;
}

/** Hands the provider this run's settings (plus `extra`) for the next engine operation. */
function useSettings(session: Session, stack: EngineStack, extra: RunSettings = {}): void {
  stack.workspace.envVars[runSettingsEnv] = JSON.stringify({ ...session.settings, ...extra });
}

/**
 * This run's CrossGuard packs (`--policy-pack`, `--policy-pack-config`) as the engine takes them,
 * resolved from where the CLI ran; the engine starts each pack through the language host.
 */
function policyOf(session: Session): { policyPacks?: string[]; policyPackConfigs?: string[] } {
  const { policyPacks = [], policyPackConfigs = [] } = session.options;
  if (policyPacks.length === 0) return {};
  const at = (p: string) => resolve(session.cwd, p);
  return {
    policyPacks: policyPacks.map(at),
    ...(policyPackConfigs.length > 0 ? { policyPackConfigs: policyPackConfigs.map(at) } : {}),
  };
}

/** A named pack folder without PulumiPolicy.yaml, or a missing config file: refused before the engine starts. */
function missingPolicyPack(session: Session): string | undefined {
  const { policyPacks = [], policyPackConfigs = [] } = policyOf(session);
  const pack = policyPacks.find((dir) => !existsSync(join(dir, "PulumiPolicy.yaml")));
  if (pack) {
    return `--policy-pack ${pack} holds no PulumiPolicy.yaml: name a policy pack folder (e.g. node_modules/@pulumi-run402/policy).`;
  }
  const config = policyPackConfigs.find((file) => !existsSync(file));
  if (config) return `--policy-pack-config ${config} does not exist.`;
  return undefined;
}

function plainOutputs(outputs: Outputs): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [key, output] of Object.entries(outputs)) plain[key] = output.secret ? "[secret]" : output.value;
  return plain;
}

/** The backend URL the stack lives in. */
function backendOf(session: Session, stack: EngineStack): string {
  return stack.backend || session.options.backend || "";
}

/** The exact command that repairs this stack (refresh), as the user would type it. */
function refreshCommand(session: Session): string {
  const { options } = session;
  const manifest = relative(session.cwd, session.manifestFile) || session.manifestFile;
  return [
    "run402-pulumi refresh",
    `--manifest ${manifest}`,
    ...(options.stack !== "dev" ? [`--stack ${options.stack}`] : []),
    ...(options.backend ? [`--backend ${options.backend}`] : []),
    ...(options.sandbox ? ["--sandbox"] : []),
  ].join(" ");
}

/** Pending operations in the stack's state (left by a run that died or was stopped). */
async function pendingOperations(stack: EngineStack, state?: ExportedState): Promise<PendingReport[]> {
  const pending = (state ?? (await stack.exportStack())).deployment.pending_operations ?? [];
  return pending.map((p) => ({ resource: urnName(p.resource.urn), op: p.type }));
}

/**
 * Makes the stack ready for a run that changes it: a lock left by a run that is gone (same host,
 * dead pid) is cleared, a live one stops here; pending operations a dead run left are cleared by a
 * refresh (what they were doing is read back from Run402; creates are keyed, so a retried create
 * returns what the dead run made). Everything repaired is reported.
 */
async function ready(
  session: Session,
  stack: EngineStack,
  report: Report,
  clearPending = true,
): Promise<boolean> {
  for (const left of leftovers()) {
    session.io.progress(
      `warning: process ${left.pid} (${left.name}) of an earlier run is still running, although the run402-pulumi process that started it (pid ${left.owner}) is gone; if it does not end by itself, stop it: kill ${left.pid}`,
    );
  }
  const dir = fileBackendDir(backendOf(session, stack));
  if (dir) {
    const holders: string[] = [];
    for (const lock of stackLocks(dir, session.projectName, stack.name)) {
      if (clearStale(lock)) {
        const line = `cleared a stale lock of stack ${stack.name}: ${describeLock(lock)}; that run is gone`;
        session.io.progress(line);
        recover(report, line);
      } else holders.push(describeLock(lock));
    }
    if (holders.length > 0) {
      fail(report, [lockedError(stack.name, holders)]);
      return false;
    }
  }
  if (session.repaired) recover(report, session.repaired);
  if (!clearPending) return true;
  const pending = await pendingOperations(stack);
  if (pending.length === 0 && !session.repaired) return true;
  const list = pending.map((p) => `${p.op} ${p.resource}`).join(", ");
  const sub = emptyReport("refresh", report.stack);
  useSettings(session, stack);
  const cleared = await operate(
    session.io,
    sub,
    pending.length > 0
      ? `clearing pending operations of an interrupted run (${list}): refresh`
      : "refreshing the restored checkpoint from Run402: refresh",
    (c) =>
      stack
        .refresh({ onEvent: c.onEvent, signal: session.io.abort, clearPendingCreates: true })
        .then(() => undefined),
  );
  if (!cleared) {
    fail(report, sub.errors);
    return false;
  }
  if (pending.length > 0) {
    const line = `cleared ${pending.length} pending operation(s) left by an interrupted run (${list}) and refreshed the stack from Run402`;
    session.io.progress(line);
    recover(report, line);
  }
  return true;
}

/** Runs one engine operation, folding its steps, payments and errors into the report. */
async function operate(
  io: Io,
  report: Report,
  label: string,
  op: (collector: StepCollector) => Promise<OperationResult | undefined>,
): Promise<boolean> {
  if (io.abort.aborted) {
    fail(report, [{ code: "ENGINE_CANCELLED", message: `Stopped by a signal before ${label}.` }]);
    return false;
  }
  const collector = new StepCollector((line) => io.progress(line));
  io.progress(`${label}…`);
  try {
    const result = await op(collector);
    if (result?.outputs) report.outputs = plainOutputs(result.outputs);
    return true;
  } catch (error) {
    const text = `${collector.diagnostics()}\n${error instanceof Error ? error.message : String(error)}`;
    const coded = collector.errors();
    const locked = lockedFromEngine(report.stack, text);
    if (io.abort.aborted) {
      const unfinished = collector.unfinished();
      report.pending = [...(report.pending ?? []), ...unfinished];
      const finished = collector
        .resources()
        .filter((r) => !["same", "read", "refresh"].includes(r.op))
        .filter((r) => !unfinished.some((u) => u.resource === r.name))
        .map((r) => `${r.op} ${r.name}`);
      fail(report, [
        {
          code: "ENGINE_CANCELLED",
          message: `Stopped by a signal during ${label}. Finished: ${finished.join(", ") || "nothing"}. Unfinished: ${unfinished.map((u) => `${u.op} ${u.resource}`).join(", ") || "nothing"}.`,
        },
      ]);
    } else if (locked) fail(report, [locked]);
    else if (collector.violations().some((v) => v.level === "mandatory")) {
      // A policy pack stopped the run: one error per mandatory violation, naming its policy.
      fail(
        report,
        collector
          .violations()
          .filter((v) => v.level === "mandatory")
          .map((v) => ({
            code: "POLICY_PACK_VIOLATION",
            message: `${v.policy}${v.resource ? ` (${v.resource})` : ""}: ${v.message}`,
          })),
      );
    } else if (coded.length > 0) fail(report, coded);
    else fail(report, toErrors(error));
    return false;
  } finally {
    const violations = collector.violations();
    if (violations.length > 0) report.violations = [...(report.violations ?? []), ...violations];
    report.resources = collector.resources();
    report.actions = collector.actions();
    report.payments.push(...collector.payments());
  }
}

/** The journal's unfinished intents (pending, paid) for this run's API: what a stopped run leaves. */
async function unresolvedIntents(session: Session, stack: EngineStack): Promise<Journal.IntentRecord[]> {
  const config = await stack.getAllConfig();
  // Loaded here, on a stopped run only: the wallet module brings viem's signers (~0.3 s of start-up).
  const [{ configDir }, { open }] = await Promise.all([
    import("../sdk/wallet.js"),
    import("../sdk/pay/journal.js"),
  ]);
  const path =
    session.settings.journalPath ??
    config["run402:journalPath"]?.value ??
    join(configDir(), "payment-journal.jsonl");
  if (!existsSync(path)) return [];
  const apiBase = new URL(session.settings.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase);
  return open({ path }).unfinished(apiBase.origin + apiBase.pathname.replace(/\/$/, ""));
}

/** After a run a signal stopped: name what is pending in the state and the command that clears it. */
async function explainInterrupted(session: Session, stack: EngineStack, report: Report): Promise<void> {
  if (!report.errors.some((e) => e.code === "ENGINE_CANCELLED")) return;
  let pending: PendingReport[] = [];
  try {
    pending = await pendingOperations(stack);
  } catch {
    // The state cannot be read now; the message below still names the command.
  }
  report.pending = [...(report.pending ?? []), ...pending];
  const cancelled = report.errors.find((e) => e.code === "ENGINE_CANCELLED") as ReportedError;
  const unresolved = await unresolvedIntents(session, stack).catch(() => []);
  if (unresolved.length > 0) {
    cancelled.message += ` Unresolved payment(s): ${unresolved.map((r) => `${r.intentId} (${r.state === "paid" ? "paid, answer not yet delivered" : "may have been paid"}; idempotency key ${r.idempotencyKey})`).join(", ")}: they stay in the payment journal, and the next run resolves them with the server and on chain without paying again.`;
  }
  cancelled.message +=
    pending.length > 0
      ? ` The state holds ${pending.length} pending operation(s) (${pending.map((p) => `${p.op} ${p.resource}`).join(", ")}): run \`${refreshCommand(session)}\` to read them back from Run402 and clear them (the next apply also does).`
      : " Nothing is pending in the state; the next apply continues from here.";
}

async function plan(session: Session, report: Report): Promise<Report> {
  const stack = (await prepare(session, true)) as EngineStack;
  // With a policy pack, the JSON always says what it found (an empty list: none).
  if (session.options.policyPacks.length > 0) report.violations = [];
  const { save } = session.options;
  if (!save) {
    useSettings(session, stack);
    const previewed = await operate(session.io, report, "planning (pulumi preview; nothing is paid)", (c) =>
      stack
        .preview({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) })
        .then(() => undefined),
    );
    if (previewed) await planForecast(session, stack, report);
    return withTotals(report, true);
  }
  const doc = await previewPlan(session, stack, report, "planning (pulumi preview; nothing is paid)");
  withTotals(report, true);
  if (!doc) return report;
  await planForecast(session, stack, report);
  const file = resolve(session.cwd, save);
  writePlan(file, doc);
  report.savedPlan = { id: doc.id, fingerprint: doc.fingerprint, file, totalUsd: doc.totalUsd };
  session.io.progress(
    `saved plan ${doc.id} to ${file}: ${doc.steps.length} step(s), pays at most $${doc.totalUsd}`,
  );
  return report;
}

/** `plan`: the renewals the existing state will pay within --days, beside what converging pays now. */
async function planForecast(session: Session, stack: EngineStack, report: Report): Promise<void> {
  try {
    report.forecast = await stackForecast(session, stack, await stack.exportStack(), session.options.days);
  } catch (error) {
    // The plan stands without it; say why it is missing.
    session.io.progress(`forecast unavailable: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Previews the stack and returns the plan document it makes (undefined when the preview failed). */
async function previewPlan(
  session: Session,
  stack: EngineStack,
  report: Report,
  label: string,
): Promise<PlanDocument | undefined> {
  const recorder = new PlanRecorder();
  useSettings(session, stack);
  const previewed = await operate(session.io, report, label, (c) =>
    stack
      .preview({
        onEvent: (event) => {
          c.onEvent(event);
          recorder.onEvent(event);
        },
        signal: session.io.abort,
        ...policyOf(session),
      })
      .then(() => undefined),
  );
  if (!previewed) return undefined;
  const config = await stack.getAllConfig();
  return buildPlan(
    {
      project: session.projectName,
      stack: stack.name,
      stackId: session.settings.stackId,
      apiBase: session.settings.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase,
      manifestFile: relative(session.cwd, session.manifestFile) || session.manifestFile,
      manifest: session.manifest,
    },
    recorder.result(),
  );
}

/**
 * `apply --plan <file>`: a fresh preview must make the saved plan again (same fingerprint), else
 * nothing is changed or paid (CONFLICT_PLAN_STALE, with what changed). The update then runs with
 * the provider's per-run cap at the plan's total and only the plan's paid actions allowed.
 */
async function applyPlan(session: Session, report: Report, planFile: string): Promise<Report> {
  const file = resolve(session.cwd, planFile);
  const saved = readPlan(file);
  report.savedPlan = { id: saved.id, fingerprint: saved.fingerprint, file, totalUsd: saved.totalUsd };
  if (saved.stack.project !== session.projectName || saved.stack.name !== session.options.stack) {
    fail(report, [
      {
        code: "CLI_PLAN_INVALID",
        message: `The plan ${saved.id} was made for stack ${saved.stack.name} of project ${saved.stack.project}; this run is for stack ${session.options.stack} of project ${session.projectName}. Pass the --manifest and --stack the plan was made with.`,
      },
    ]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  const checked = emptyReport("plan", report.stack);
  const fresh = await previewPlan(
    session,
    stack,
    checked,
    `checking the saved plan ${saved.id} against the stack (pulumi preview; nothing is paid)`,
  );
  if (!fresh) {
    Object.assign(report, { resources: checked.resources, actions: checked.actions });
    fail(report, checked.errors);
    return withTotals(report, true);
  }
  if (fresh.fingerprint !== saved.fingerprint) {
    const changed = planChanges(saved, fresh);
    report.savedPlan.changed = changed;
    fail(report, [
      {
        code: "CONFLICT_PLAN_STALE",
        message: `The saved plan ${saved.id} no longer matches the stack: ${changed.join("; ")}. Nothing was changed or paid. Make a new plan (plan --save), review it, and apply that one.`,
      },
    ]);
    return withTotals(report, true);
  }
  session.io.progress(
    `the stack still makes plan ${saved.id}: applying it, paying at most $${saved.totalUsd}`,
  );
  // The provider holds this run to the plan: its spend cap is the plan's total (never above the cap
  // the run had), and it may pay only the actions the plan pays (within those the run allowed).
  const config = await stack.getAllConfig();
  const cap = minAtomic(usdToAtomic(saved.totalUsd), usdToAtomic(await currentCapUsd(session, stack)));
  const allowed = (session.settings.allowedActions ?? config["run402:allowedActions"]?.value ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const planned = [...new Set(saved.payments.map((p) => p.action))].filter(
    (a) => allowed.length === 0 || allowed.includes(a),
  );
  const run: RunSettings = { maxSpendUsd: planned.length > 0 ? atomicToUsd(cap) : "0" };
  if (planned.length > 0) run.allowedActions = planned.join(",");
  useSettings(session, stack, run);
  await operate(session.io, report, `applying the saved plan ${saved.id} (pulumi up)`, (c) =>
    stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}

/** The smaller of two atomic amounts. */
const minAtomic = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** The spend cap this run has before any confirmation: --max-spend, else the stack's, else 25. */
async function currentCapUsd(session: Session, stack: EngineStack): Promise<string> {
  const cap =
    session.settings.maxSpendUsd ?? ((await stack.getAllConfig())["run402:maxSpendUsd"]?.value || "25");
  const ceiling = session.settings.spendCeilingUsd;
  return ceiling === undefined ? cap : atomicToUsd(minAtomic(usdToAtomic(cap), usdToAtomic(ceiling)));
}

async function apply(session: Session, report: Report): Promise<Report> {
  // A saved plan is the reviewed confirmation: it needs no --yes.
  if (session.options.plan) return applyPlan(session, report, session.options.plan);
  if (!session.options.yes && !session.io.interactive) {
    fail(report, [
      {
        code: "CLI_CONFIRMATION_REQUIRED",
        message: "apply changes and may pay: pass --yes to run it without a terminal.",
      },
    ]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  const run: RunSettings = {};
  if (!session.options.yes) {
    const planned = emptyReport("plan", report.stack);
    useSettings(session, stack);
    const previewed = await operate(session.io, planned, "planning (nothing is paid)", (c) =>
      stack
        .preview({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) })
        .then(() => undefined),
    );
    withTotals(planned, true);
    process.stderr.write(renderHuman(planned));
    if (!previewed) return Object.assign(report, { ok: false, errors: planned.errors });
    const total = planned.totalPlannedUsd ?? "0.00";
    const question =
      usdToAtomic(total) > 0n
        ? `Apply these changes, paying up to $${total}? [y/N] `
        : "Apply these changes? Nothing will be paid. [y/N] ";
    if (!(await session.io.confirm(question))) {
      fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed or paid." }]);
      return report;
    }
    // What was confirmed is what this run may pay: its spend cap (never above the cap it had).
    run.maxSpendUsd = atomicToUsd(
      minAtomic(usdToAtomic(total), usdToAtomic(await currentCapUsd(session, stack))),
    );
  }
  useSettings(session, stack, run);
  await operate(session.io, report, "applying (pulumi up)", (c) =>
    stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}

async function renew(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, false);
  if (!stack) return missingStack(session, report);
  const state = await stack.exportStack();
  const tier = (state.deployment.resources ?? []).find((r) => shortType(r.type) === "run402:Tier");
  if (!tier) {
    session.io.progress("the stack holds no Tier: nothing to renew");
    return withTotals(report, false);
  }
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  // This run may pay for renewals only: any other action the tier needs is reported and refused.
  useSettings(session, stack, { allowedActions: "renew" });
  await operate(
    session.io,
    report,
    "renewing due leases (pulumi up --target tier; pays renewals only)",
    (c) =>
      stack.up({ onEvent: c.onEvent, target: [tier.urn], signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}

async function refresh(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, false);
  if (!stack) return missingStack(session, report);
  if (!(await ready(session, stack, report, false))) return withTotals(report, false);
  const pending = await pendingOperations(stack);
  useSettings(session, stack);
  const refreshed = await operate(session.io, report, "refreshing from Run402 (pulumi refresh)", (c) =>
    stack
      .refresh({ onEvent: c.onEvent, signal: session.io.abort, clearPendingCreates: true })
      .then(() => undefined),
  );
  if (refreshed && pending.length > 0) {
    recover(
      report,
      `cleared ${pending.length} pending operation(s) (${pending.map((p) => `${p.op} ${p.resource}`).join(", ")}); their resources were read back from Run402`,
    );
  }
  if (refreshed) report.outputs = plainOutputs(await stack.outputs());
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}

async function destroy(session: Session, report: Report): Promise<Report> {
  if (!session.options.yes && !session.io.interactive) {
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
    !(await session.io.confirm(`Destroy every resource of stack ${session.options.stack}? [y/N] `))
  ) {
    fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed." }]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, false);
  useSettings(session, stack);
  await operate(session.io, report, "destroying (pulumi destroy)", (c) =>
    stack.destroy({ onEvent: c.onEvent, signal: session.io.abort }).then(() => undefined),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}

function missingStack(session: Session, report: Report): Report {
  fail(report, [
    {
      code: "CLI_STACK_NOT_FOUND",
      message: `Stack ${session.options.stack} of project ${session.projectName} does not exist${session.options.backend ? ` in ${session.options.backend}` : ""}: run apply first (or check --manifest, --stack, --backend${session.options.sandbox ? "" : " and --sandbox"}).`,
    },
  ]);
  return report;
}

/** The session's stack when it exists (`status` and `forecast` read it and never create it). */
async function existingStack(session: Session): Promise<EngineStack | undefined> {
  return openStack({
    manifestFile: session.manifestFile,
    projectName: session.projectName,
    stackName: session.options.stack,
    paths: session.paths,
    backend: session.options.backend,
    engine: await findPulumi(session.root, session.paths.engineDir),
    packageRoot: session.root,
    create: false,
  });
}

async function status(session: Session, report: Report): Promise<Report> {
  const stack = await existingStack(session);
  if (!stack) return missingStack(session, report);
  noteRepair(session, stack, report);
  // One read of the state (a file in a file backend): outputs, resources and pending operations.
  const state = await stack.exportStack();
  report.outputs = plainOutputs(stateOutputs(state));
  report.resources = (state.deployment.resources ?? [])
    .filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"))
    .map((r) => ({
      type: shortType(r.type),
      name: urnName(r.urn),
      op: "same",
      outputs: publicOutputs(r.type, r.outputs),
    }));
  report.pending = await pendingOperations(stack, state);
  return report;
}

/**
 * The renewals the stack's state will pay within `days` (cli/forecast.ts): priced from the API's
 * current price list, on the server's clock, on the rail this run names (--rail, -c), else the
 * stack's run402:rail, else the rail the Tier last paid on, else x402. Reads only.
 */
async function stackForecast(
  session: Session,
  stack: EngineStack,
  state: ExportedState,
  days: number,
): Promise<ForecastReport> {
  const config = await stack.getAllConfig();
  const run = { ...flagSettings(session.options), ...session.settings };
  const apiBase = (run.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase).replace(/\/+$/, "");
  const rail = run.rail ?? config["run402:rail"]?.value;
  const resources = state.deployment.resources ?? [];
  // No Tier, no lease to renew: the price list is not asked for.
  const { terms, now } = resources.some((r) => isTier(r.type))
    ? await priceList(apiBase)
    : { terms: {}, now: Date.now() };
  return forecastRenewals(resources, terms, now, days, (outputs) => {
    const last = (outputs.lastSettlement as { rail?: unknown } | null | undefined)?.rail;
    return rail ?? (last === "x402" || last === "mpp" ? last : "x402");
  });
}

/** `forecast`: what the stack's leases will cost within --days; no engine operation, no payment, no write. */
async function forecast(session: Session, report: Report): Promise<Report> {
  const stack = await existingStack(session);
  if (!stack) return missingStack(session, report);
  // The price list comes from the API: with --sandbox, the sandbox's (a missing stack starts none).
  if (session.options.sandbox) session.settings = await startSandbox(session);
  const state = await stack.exportStack();
  report.forecast = await stackForecast(session, stack, state, session.options.days);
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
  const stack = (await prepare(session, true)) as EngineStack;
  let stopped = false;
  void session.io.stopping.then(() => {
    stopped = true;
    session.io.progress(
      "stopping: no new round; the current one is cancelled unless it ends within 3 s (a second signal exits at once)",
    );
  });
  if (!(await ready(session, stack, report))) return withTotals(report, false);
  useSettings(session, stack);
  let rounds = 0;
  let failedRounds = 0;
  const errors: ReportedError[] = [];
  const payments = report.payments;
  while (!stopped) {
    rounds += 1;
    const round = emptyReport("reconcile", report.stack);
    round.payments = payments;
    session.io.progress(`round ${rounds} at ${new Date().toISOString()}`);
    const refreshed = await operate(session.io, round, "refreshing (pulumi refresh)", (c) =>
      stack.refresh({ onEvent: c.onEvent, signal: session.io.abort }).then(() => undefined),
    );
    const resources = round.resources;
    const converged =
      refreshed &&
      !stopped &&
      (await operate(session.io, round, "converging (pulumi up)", (c) =>
        stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
      ));
    if (!round.ok) {
      failedRounds += 1;
      for (const e of round.errors) errors.push({ ...e, message: `round ${rounds}: ${e.message}` });
    }
    Object.assign(report, {
      resources: round.resources.length > 0 ? round.resources : resources,
      actions: round.actions,
      outputs: round.outputs ?? report.outputs,
    });
    session.io.progress(
      converged
        ? `round ${rounds} done: ${round.actions.length} change(s), paid $${sumUsd(round.payments.map((p) => p.amountUsd))} so far`
        : `round ${rounds} failed: ${round.errors.map((e) => `[${e.code}] ${e.message}`).join("; ")}`,
    );
    if (!stopped) await sleep(session.options.everyMs, session.io.stopping);
  }
  report.rounds = rounds;
  report.failedRounds = failedRounds;
  // A failed round is not hidden by a later one: the run reports every failure and exits non-zero.
  if (errors.length > 0) fail(report, errors);
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}
