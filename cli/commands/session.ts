/**
 * A command's session: the manifest it loaded, its workspace, this run's settings (sandbox, flags,
 * stack identity) and how it talks to its surroundings; opening the stack for a command, and the
 * checks that refuse a run before anything is created. Shared by the commands in this folder.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { BaseError, reportedCode } from "../../core/errors.js";
import {
  checkManifest,
  loadManifest,
  ManifestNotFoundError,
  ManifestUnreadableError,
  type ResolvedRelease,
} from "../../provider/manifest/index.js";
import { type RunSettings, runSettingsEnv } from "../../provider/settings.js";
import { ManifestValidationError } from "../../schema/errors.js";
import type { CliOptions } from "../args.js";
import { describeRepair } from "../checkpoint.js";
import {
  EngineCommandError,
  type EngineStack,
  engineErrors,
  findPulumi,
  openStack,
  packageRoot,
  pulumiProjectName,
  type WorkspacePaths,
  workspacePaths,
} from "../engine/index.js";
import type { Report } from "../report.js";
import type { ReportedError } from "../reported.js";
import { loadSandbox } from "../sandbox.js";

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

export interface Session {
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
export const defaultApiBase = "https://api.run402.com";

/** The stack tag holding the stack instance's identity (see {@link stackIdentity}). */
const stackIdTag = "run402:stack-id";

/** Notes what the CLI repaired before it ran. */
export function recover(report: Report, line: string): void {
  report.recovered = [...(report.recovered ?? []), line];
}

/** Adds errors to the report, each once per place: the same message at two pointers is two problems. */
export function fail(report: Report, errors: ReportedError[]): void {
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

export async function load(options: CliOptions, report: Report, io: Io): Promise<Session | undefined> {
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
export async function startSandbox(session: Session): Promise<RunSettings> {
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
export function flagSettings(options: CliOptions): RunSettings {
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
export function noteRepair(session: Session, stack: EngineStack, report?: Report): void {
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
export async function prepare(session: Session, create: boolean): Promise<EngineStack | undefined> {
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
export function useSettings(session: Session, stack: EngineStack, extra: RunSettings = {}): void {
  stack.workspace.envVars[runSettingsEnv] = JSON.stringify({ ...session.settings, ...extra });
}

/**
 * This run's CrossGuard packs (`--policy-pack`, `--policy-pack-config`) as the engine takes them,
 * resolved from where the CLI ran; the engine starts each pack through the language host.
 */
export function policyOf(session: Session): { policyPacks?: string[]; policyPackConfigs?: string[] } {
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

export function missingStack(session: Session, report: Report): Report {
  fail(report, [
    {
      code: "CLI_STACK_NOT_FOUND",
      message: `Stack ${session.options.stack} of project ${session.projectName} does not exist${session.options.backend ? ` in ${session.options.backend}` : ""}: run apply first (or check --manifest, --stack, --backend${session.options.sandbox ? "" : " and --sandbox"}).`,
    },
  ]);
  return report;
}

/** The session's stack when it exists (`status` and `forecast` read it and never create it). */
export async function existingStack(session: Session): Promise<EngineStack | undefined> {
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
