/**
 * The Pulumi side of run402-pulumi: finds the engine, keeps the workspace (Pulumi.yaml, stack
 * config, passphrase, file backend) under `<manifest dir>/.run402/`, and runs the stack whose
 * inline program is `manifestStack({ manifest })`.
 *
 * One engine process per command where the engine allows it. This module writes the workspace's
 * Pulumi.yaml itself; in a `file://` backend (the default) it also creates the stack, keeps the
 * stack's identity tag and reads the state (status, outputs, pending operations) from the backend's
 * files, whose formats are Pulumi's documented checkpoint (`version: 3`) and its tags file. An
 * operation (preview, up, refresh, destroy) is one `pulumi` process: the inline program's language
 * runtime is served from this process, and steps, outputs and the summary come from the engine's
 * event log, not from `stack output` or `stack history`. Other backends (s3, Pulumi Cloud, …) fall
 * back to the engine's own commands for what this module cannot read or write itself.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import type { EngineEvent } from "@pulumi/pulumi/automation/events.js";
import { parse as parseYaml } from "yaml";
import { BaseError } from "../core/errors.js";
import { type CheckpointRepair, repairCheckpoint } from "./checkpoint.js";
import { fileBackendDir } from "./locks.js";

/** The Pulumi engine could not be found or started. */
export class EngineMissingError extends BaseError {
  override readonly name = "EngineMissingError";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: "ENGINE_NOT_FOUND", cause: options.cause });
  }
}

/** The folder of this package (holding package.json): where `pulumi-run402` resolves by name. */
export function packageRoot(from: string = import.meta.dirname): string {
  let dir = from;
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const name = (JSON.parse(readFileSync(file, "utf8")) as { name?: string }).name;
      if (name === "pulumi-run402") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) return resolve(from, "..", "..");
    dir = parent;
  }
}

/**
 * The engine folder of the user's cache that scripts/engine.sh assembles when run from an installed
 * package (`RUN402_ENGINE_BIN`, default `~/.cache/pulumi-run402/bin`): outside node_modules, so it
 * survives `npm ci` and npx's cache.
 */
export function userEngineBin(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.RUN402_ENGINE_BIN ||
    join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "pulumi-run402", "bin")
  );
}

/**
 * The command that installs the engine for this installation of the package: `run402-pulumi engine`
 * through npx (pinned to this version when the package runs from npx's cache, whose paths change),
 * or the script itself in this repository.
 */
export function engineCommand(root: string): string {
  const sep = root.includes("\\") ? "\\" : "/";
  if (!root.includes(`${sep}node_modules${sep}`)) return `bash ${join(root, "scripts", "engine.sh")}`;
  if (root.includes(`${sep}_npx${sep}`)) {
    let version = "";
    try {
      version =
        (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string }).version ?? "";
    } catch {
      // No version: the newest.
    }
    return `npx -y -p pulumi-run402${version ? `@${version}` : ""} run402-pulumi engine`;
  }
  return "npx run402-pulumi engine";
}

/** What to install when the engine is missing: the same advice as the README's. */
export function engineAdvice(root: string): string {
  return (
    "Install the Pulumi CLI 3.x with its language hosts (https://www.pulumi.com/docs/install/), or run " +
    `\`${engineCommand(root)}\` once (the engine script shipped with pulumi-run402: it uses a pulumi 3.x on ` +
    "PATH, else builds one, cached, and prints where it put it)."
  );
}

/** The environment variable naming the `pulumi` executable to run instead of the bundled one. */
export const engineEnv = "RUN402_PULUMI";

/**
 * The `pulumi` executable: the one {@link engineEnv} names, else `<package root>/.tools/pulumi/bin/pulumi`
 * when present, else the one in {@link userEngineBin}, else from PATH.
 */
export function pulumiExecutable(
  root: string,
  path: string = process.env.PATH ?? "",
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const named = env[engineEnv];
  if (named) return existsSync(named) ? resolve(named) : undefined;
  const bundled = join(root, ".tools", "pulumi", "bin", "pulumi");
  if (existsSync(bundled)) return bundled;
  const user = join(userEngineBin(env), "pulumi");
  if (existsSync(user)) return user;
  for (const dir of path.split(delimiter)) {
    if (dir && existsSync(join(dir, "pulumi"))) return join(dir, "pulumi");
  }
  return undefined;
}

/** The engine this CLI drives. */
export interface Engine {
  /** Absolute path of the `pulumi` executable. */
  command: string;
  /** Its version without the `v` (e.g. `3.259.0`), when known. */
  version: string | undefined;
}

/** The version scripts/engine.sh wrote next to an engine it installed (`.tools/pulumi/version`, `<user bin>/version`). */
function bundledVersion(file: string): string | undefined {
  try {
    const text = readFileSync(file, "utf8").trim();
    return /^v?3\.\d+\.\d+/.test(text) ? text.replace(/^v/, "") : undefined;
  } catch {
    return undefined;
  }
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((done, fail) =>
    execFile(command, args, { env: env ?? process.env, maxBuffer: 1 << 20 }, (error, stdout) =>
      error ? fail(error) : done(stdout),
    ),
  );
}

/**
 * Finds the engine. The bundled one (scripts/engine.sh) is known without running it; a `pulumi` from
 * PATH is asked its version once, and the answer is kept in `cacheDir` (keyed by the executable's
 * path, size and modification time) so later runs do not ask again.
 */
export async function findPulumi(root: string, cacheDir?: string): Promise<Engine> {
  const pulumi = pulumiExecutable(root);
  const missing = (cause?: unknown) =>
    new EngineMissingError(
      `The Pulumi CLI was not found (looked in ${join(root, ".tools", "pulumi", "bin")}, ${userEngineBin()} and on PATH). ${engineAdvice(root)}`,
      { cause },
    );
  if (!pulumi) {
    const named = process.env[engineEnv];
    if (named) throw new EngineMissingError(`${engineEnv} names ${named}, which does not exist.`);
    throw missing();
  }
  const command = resolve(pulumi);
  const languageHost = "pulumi-language-nodejs";
  if (
    !existsSync(join(dirname(command), languageHost)) &&
    !(process.env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, languageHost)))
  ) {
    throw new EngineMissingError(
      `${command} has no Node.js language host (${languageHost} is neither beside it nor on PATH). ${engineAdvice(root)}`,
    );
  }
  const versionFile =
    command === join(root, ".tools", "pulumi", "bin", "pulumi")
      ? join(root, ".tools", "pulumi", "version")
      : command === join(userEngineBin(), "pulumi")
        ? join(userEngineBin(), "version")
        : undefined;
  const known = versionFile && bundledVersion(versionFile);
  if (known) return { command, version: known };
  let key: string;
  try {
    const real = realpathSync(command);
    const info = statSync(real);
    key = `${real}|${info.size}|${Math.floor(info.mtimeMs)}`;
  } catch (error) {
    throw missing(error);
  }
  const cacheFile = cacheDir ? join(cacheDir, "pulumi-version.json") : undefined;
  if (cacheFile) {
    try {
      const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { key?: string; version?: string };
      if (cached.key === key && cached.version) return { command, version: cached.version };
    } catch {
      // No cache yet (or a torn one): ask the engine.
    }
  }
  let version: string;
  try {
    version = (await run(command, ["version"], { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" }))
      .trim()
      .replace(/^v/, "");
  } catch (error) {
    throw missing(error);
  }
  if (!/^3\.\d+\.\d+/.test(version)) {
    throw new EngineMissingError(
      `${command} is Pulumi ${version}; run402-pulumi needs Pulumi 3.x. ${engineAdvice(root)}`,
    );
  }
  if (cacheFile) writeAtomic(cacheFile, `${JSON.stringify({ key, version })}\n`);
  return { command, version };
}

/** Writes a file whole (temp file + rename): a concurrent reader sees the old or the new content. */
function writeAtomic(file: string, text: string, mode?: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  writeFileSync(temp, text, mode === undefined ? {} : { mode });
  renameSync(temp, file);
}

/** Where one manifest's workspace lives. */
export interface WorkspacePaths {
  /** `<dir>/.run402`. */
  root: string;
  /** The Pulumi workspace (Pulumi.yaml and Pulumi.<stack>.yaml). */
  workDir: string;
  /** The default file backend folder. */
  stateDir: string;
  /** The embedded sandbox's state. */
  sandboxDir: string;
  passphraseFile: string;
  /** Where the engine's cached facts (its version) live. */
  engineDir: string;
}

/** Workspace paths for a manifest folder; sandbox stacks are kept apart from real ones. */
export function workspacePaths(manifestDir: string, sandbox: boolean): WorkspacePaths {
  const root = join(manifestDir, ".run402");
  const workDir = sandbox ? join(root, "sandbox-workspace") : root;
  return {
    root,
    workDir,
    stateDir: join(workDir, "state"),
    sandboxDir: join(root, "sandbox"),
    passphraseFile: join(root, "passphrase"),
    engineDir: join(root, "engine"),
  };
}

/** A Pulumi project name from the manifest's project name or folder. */
export function pulumiProjectName(name: string | undefined, manifestDir: string): string {
  const raw = name ?? (basename(manifestDir) || "app");
  const clean = raw.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[-.]+|[-.]+$/g, "");
  return (clean || "app").slice(0, 100);
}

/**
 * Passphrase for the stack's secrets: PULUMI_CONFIG_PASSPHRASE / _FILE when set, else a random one
 * generated once and kept (mode 0600) in `<dir>/.run402/passphrase`.
 */
export function passphraseEnv(
  paths: WorkspacePaths,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined)
    return { PULUMI_CONFIG_PASSPHRASE: env.PULUMI_CONFIG_PASSPHRASE };
  if (env.PULUMI_CONFIG_PASSPHRASE_FILE)
    return { PULUMI_CONFIG_PASSPHRASE_FILE: env.PULUMI_CONFIG_PASSPHRASE_FILE };
  if (!existsSync(paths.passphraseFile)) {
    mkdirSync(dirname(paths.passphraseFile), { recursive: true });
    writeFileSync(paths.passphraseFile, randomBytes(32).toString("base64url"), { mode: 0o600, flag: "wx" });
  }
  chmodSync(paths.passphraseFile, 0o600);
  return { PULUMI_CONFIG_PASSPHRASE_FILE: paths.passphraseFile };
}

/** A stack output: its value (secrets as `"[secret]"`) and whether it is secret. */
export type Outputs = Record<string, { value: unknown; secret: boolean }>;

/** The engine's `stack export` document: `{ version, deployment }`. */
export interface ExportedState {
  version: number;
  deployment: {
    resources?: { urn: string; type: string; outputs?: Record<string, unknown> }[];
    pending_operations?: { resource: { urn: string }; type: string }[];
  } & Record<string, unknown>;
}

/** Options of one engine operation. */
export interface OperationOptions {
  /** Every engine event, in order, as the engine writes them. */
  onEvent?: (event: EngineEvent) => void;
  /** Aborting sends the engine one SIGINT (it stops and saves its state). */
  signal?: AbortSignal;
  /** Only these URNs (and what they need). */
  target?: string[];
  /** refresh: clear the pending creates an interrupted run left. */
  clearPendingCreates?: boolean;
  /** preview: save the plan to this file; up: apply exactly this plan file. */
  plan?: string;
  /** up, refresh: fail when the engine would change anything. */
  expectNoChanges?: boolean;
  /** preview, up: CrossGuard policy pack folders (`--policy-pack`), run before each resource's step. */
  policyPacks?: string[];
  /** Their config files (`--policy-pack-config`), one per pack, in the same order. */
  policyPackConfigs?: string[];
}

/** What an operation produced, from the event log. */
export interface OperationResult {
  /** The stack's outputs after an `up` (secrets as `"[secret]"`); undefined for the other operations. */
  outputs?: Outputs;
  /** The engine's summary event (resource changes, duration). */
  summary?: NonNullable<EngineEvent["summaryEvent"]>;
}

type Op = "preview" | "up" | "refresh" | "destroy";

/** Pulumi's marker for a secret value in state (a JSON object key with this fixed value). */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretSigValue = "1b47061264138c4ac30d75fd1eb44270";

/** A state value with every secret replaced by `"[secret]"`; `secret` when the value itself is one. */
function unsecret(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) return { value: value.map((v) => unsecret(v).value), secret: false };
  if (value && typeof value === "object") {
    const object = value as Record<string, unknown>;
    if (object[secretSig] === secretSigValue) return { value: "[secret]", secret: true };
    return {
      value: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unsecret(v).value])),
      secret: false,
    };
  }
  return { value, secret: false };
}

const stackType = "pulumi:pulumi:Stack";

/** The stack's outputs in an exported state (the root resource's), secrets as `"[secret]"`. */
export function stateOutputs(state: ExportedState): Outputs {
  return outputsOf(state.deployment.resources?.find((r) => r.type === stackType)?.outputs);
}

function outputsOf(values: Record<string, unknown> | undefined): Outputs {
  const outputs: Outputs = {};
  for (const [key, value] of Object.entries(values ?? {})) {
    outputs[key] = value === "[secret]" ? { value, secret: true } : unsecret(value);
  }
  return outputs;
}

/**
 * A file backend's stack, read and written directly. Pulumi's layout with per-project folders
 * (`.pulumi/meta.yaml` version 1): the checkpoint `.pulumi/stacks/<project>/<stack>.json` and its
 * tags `<stack>.pulumi-tags`. Anything else (the legacy layout, gzip, another organization) is left
 * to the engine: {@link FileBackend.for} returns undefined for it.
 */
export class FileBackend {
  private constructor(
    readonly dir: string,
    readonly project: string,
    readonly stack: string,
  ) {}

  /** The direct reader for this backend and stack, or undefined when the engine must be asked. */
  static for(backend: string, project: string, stackName: string): FileBackend | undefined {
    const dir = fileBackendDir(backend);
    if (!dir) return undefined;
    if (process.env.PULUMI_DIY_BACKEND_GZIP || process.env.PULUMI_SELF_MANAGED_STATE_GZIP) return undefined;
    if (process.env.PULUMI_DIY_BACKEND_LEGACY_LAYOUT || process.env.PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT)
      return undefined;
    const parts = stackName.split("/");
    let stack = stackName;
    if (parts.length === 3) {
      if (parts[0] !== "organization" || parts[1] !== project) return undefined;
      stack = parts[2] as string;
    } else if (parts.length !== 1) return undefined;
    const meta = join(dir, ".pulumi", "meta.yaml");
    if (existsSync(meta)) {
      const version = /^version:\s*(\d+)\s*$/m.exec(readFileSync(meta, "utf8"))?.[1];
      if (version !== "1") return undefined;
    } else if (existsSync(join(dir, ".pulumi", "stacks"))) {
      // Stacks without meta.yaml: the legacy layout.
      return undefined;
    }
    return new FileBackend(dir, project, stack);
  }

  private get base(): string {
    return join(this.dir, ".pulumi", "stacks", this.project, this.stack);
  }

  /** The checkpoint file; a `.json.gz` one (written with gzip on) is read too. */
  private checkpointFile(): string | undefined {
    for (const file of [`${this.base}.json`, `${this.base}.json.gz`]) if (existsSync(file)) return file;
    return undefined;
  }

  exists(): boolean {
    return this.checkpointFile() !== undefined;
  }

  /**
   * Creates the stack as `pulumi stack init` would in this layout: an empty checkpoint. The engine
   * adds the secrets provider's salt to Pulumi.<stack>.yaml the first time it needs it.
   */
  create(): void {
    const meta = join(this.dir, ".pulumi", "meta.yaml");
    if (!existsSync(meta)) writeAtomic(meta, "version: 1\n");
    const file = `${this.base}.json`;
    if (existsSync(file)) return;
    const checkpoint = {
      version: 3,
      checkpoint: { stack: `organization/${this.project}/${this.stack}`, latest: null },
    };
    mkdirSync(dirname(file), { recursive: true });
    // Exclusive: two runs creating the same stack at once both end with one empty checkpoint.
    try {
      writeFileSync(file, JSON.stringify(checkpoint), { flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }

  /** The state, as `pulumi stack export` prints it. */
  export(): ExportedState {
    const file = this.checkpointFile();
    if (!file) throw new Error(`Stack ${this.stack} does not exist in ${this.dir}.`);
    const raw = readFileSync(file);
    const parsed = JSON.parse((file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8")) as {
      version?: number;
      checkpoint?: { latest?: ExportedState["deployment"] | null };
    };
    if (parsed.version !== 3) throw new Error(`Unsupported checkpoint version ${parsed.version} in ${file}.`);
    return { version: 3, deployment: parsed.checkpoint?.latest ?? {} };
  }

  outputs(): Outputs {
    return stateOutputs(this.export());
  }

  tags(): Record<string, string> {
    try {
      const parsed = JSON.parse(readFileSync(`${this.base}.pulumi-tags`, "utf8")) as {
        version?: number;
        tags?: Record<string, string>;
      };
      if (parsed.version !== 1) throw new Error(`Unsupported tags file version ${parsed.version}.`);
      return parsed.tags ?? {};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
  }

  setTag(key: string, value: string): void {
    const file = `${this.base}.pulumi-tags`;
    writeAtomic(file, JSON.stringify({ version: 1, tags: { ...this.tags(), [key]: value } }));
    // The blob store's attributes of the old content (its md5) no longer describe the file.
    rmSync(`${file}.attrs`, { force: true });
  }
}

/** What an engine process printed, and how it ended. */
interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Keeps the last `limit` characters of a stream (errors are at the end). */
class Tail {
  private text = "";
  constructor(private readonly limit = 1 << 20) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > 2 * this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.slice(-this.limit);
  }
}

/**
 * An engine command that failed: its exit code and output are in `output` (and the message). The
 * provider's coded errors are in that text; cli/exit.ts's `engineErrors` reads them out of it.
 */
export class EngineCommandError extends BaseError {
  override readonly name = "EngineCommandError";
  /** `pulumi <command> failed (exit N):`, then its stderr and stdout. */
  readonly output: string;
  constructor(
    readonly args: string[],
    readonly result: Finished,
  ) {
    const output =
      `pulumi ${args[0] ?? ""} failed (exit ${result.code}):\n${result.stderr.trim()}\n${result.stdout.trim()}`.trim();
    super(output, { code: "ENGINE_ERROR" });
    this.output = output;
  }
}

/**
 * Reads the engine's event log (JSON lines) as it grows: on every change the file reports, and once
 * more when the engine has exited, so nothing written is missed and nothing is polled.
 */
class EventLog {
  readonly file: string;
  private readonly dir: string;
  private fd: number;
  private offset = 0;
  private partial = "";
  private readonly watcher: ReturnType<typeof watch> | undefined;
  private readonly buffer = Buffer.allocUnsafe(1 << 20);

  constructor(private readonly onEvent: (event: EngineEvent) => void) {
    this.dir = mkdtempSync(join(tmpdir(), "run402-events-"));
    this.file = join(this.dir, "events.jsonl");
    writeFileSync(this.file, "");
    this.fd = openSync(this.file, "r");
    try {
      this.watcher = watch(this.file, () => this.drain());
    } catch {
      this.watcher = undefined;
    }
  }

  drain(): void {
    if (this.fd < 0) return;
    for (;;) {
      const read = readSync(this.fd, this.buffer, 0, this.buffer.length, this.offset);
      if (read === 0) break;
      this.offset += read;
      const text = this.partial + this.buffer.toString("utf8", 0, read);
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) this.emit(line);
    }
  }

  private emit(line: string): void {
    if (line.trim() === "") return;
    let event: EngineEvent;
    try {
      event = JSON.parse(line) as EngineEvent;
    } catch {
      return; // A line the engine cut short (it was killed): nothing more can be read from it.
    }
    this.onEvent(event);
  }

  close(): void {
    this.drain();
    if (this.partial !== "") this.emit(this.partial);
    this.partial = "";
    this.watcher?.close();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Loads what serving an inline program takes: the SDK's language runtime and gRPC. */
function languageRuntime() {
  const fromPulumi = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi/package.json"));
  const grpc = fromPulumi("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const { LanguageServer } = fromPulumi("@pulumi/pulumi/automation/server.js") as {
    LanguageServer: new (
      program: () => Promise<Record<string, unknown> | undefined>,
    ) => { onPulumiExit(hasError: boolean): void };
  };
  const langrpc = fromPulumi("@pulumi/pulumi/proto/language_grpc_pb.js") as {
    LanguageRuntimeService: import("@grpc/grpc-js").ServiceDefinition;
  };
  const { grpcChannelOptions } = fromPulumi("@pulumi/pulumi/runtime/settings.js") as {
    grpcChannelOptions: Record<string, unknown>;
  };
  return { grpc, LanguageServer, langrpc, grpcChannelOptions };
}

/** What {@link openStack} needs. */
export interface OpenStackOptions {
  /** Absolute path of the manifest. */
  manifestFile: string;
  projectName: string;
  stackName: string;
  paths: WorkspacePaths;
  /** Backend URL; default `file://<paths.stateDir>`. */
  backend: string | undefined;
  /** The engine ({@link findPulumi}). */
  engine: Engine;
  packageRoot: string;
  /** Create the stack when missing (false: return undefined). */
  create: boolean;
}

/** Tags and the environment of the stack's engine commands (shaped like the Automation API's workspace). */
export interface StackWorkspace {
  /** Environment of every engine command (the run's settings are set here per operation). */
  envVars: Record<string, string>;
  listTags(stackName: string): Promise<Record<string, string>>;
  setTag(stackName: string, key: string, value: string): Promise<void>;
}

/**
 * How long the engine has, after a stop, to cancel its providers, save its state and exit before
 * its supervisor ends it (a second interrupt, then SIGKILL of everything it started 2 s later).
 */
export const stopGraceMs = Number(process.env.RUN402_STOP_GRACE_MS ?? 5000);

/** How long cli/supervise.ts gives the engine between its second interrupt and SIGKILL on a hard stop. */
export const hardStopGraceMs = 2000;

/** The signal that tells cli/supervise.ts to end its engine now. */
export const hardStopSignal = "SIGUSR2";

/** The supervisors of engine operations running in this process. */
const supervisors = new Set<ChildProcess>();

/**
 * This process as `<pid>:<start time>` (clock ticks since boot, from /proc; empty elsewhere), the
 * value of RUN402_RUN_OWNER that the provider plugin (scripts/pulumi-resource-pulumi-nodejs.cjs)
 * and the language host watch: they exit once it is gone, a reused pid having another start time.
 */
export function runOwner(pid: number = process.pid): string {
  let start = "";
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    // No /proc: the pid alone.
  }
  return `${pid}:${start}`;
}

/** Ends every engine operation of this process now (a second SIGINT/SIGTERM): see cli/supervise.ts. */
export function stopEngines(): void {
  for (const child of supervisors) child.kill(hardStopSignal);
}

/**
 * One stack of the workspace. Each operation is one engine process; reading the state of a file
 * backend starts none.
 */
export class EngineStack {
  readonly workspace: StackWorkspace;
  private readonly file: FileBackend | undefined;
  private running: ChildProcess | undefined;
  /**
   * Loads what the inline program imports, started once the engine process is: its own start-up
   * (and the language host's connection back here) then overlaps this process's module loading.
   */
  preload: (() => Promise<unknown>) | undefined;
  /** A damaged checkpoint found (and, where a copy was readable, restored) when the stack was opened. */
  repaired: CheckpointRepair | undefined;

  constructor(
    readonly name: string,
    private readonly engine: Engine,
    private readonly workDir: string,
    readonly backend: string,
    envVars: Record<string, string>,
    private readonly program: () => Promise<Record<string, unknown>>,
    projectName: string,
  ) {
    this.file = FileBackend.for(backend, projectName, name);
    const self = this;
    this.workspace = {
      envVars,
      async listTags() {
        if (self.file) return self.file.tags();
        const { stdout } = await self.command(["stack", "tag", "ls", "--json"]);
        return JSON.parse(stdout || "{}") as Record<string, string>;
      },
      async setTag(_stack, key, value) {
        if (self.file) return self.file.setTag(key, value);
        await self.command(["stack", "tag", "set", key, value]);
      },
    };
  }

  /** The environment of an engine process. */
  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PULUMI_DEBUG_COMMANDS: "true",
      PULUMI_AUTOMATION_API: "true",
      ...this.workspace.envVars,
      // The engine finds its bundled plugins (the provider launcher) next to itself.
      PATH: `${dirname(this.engine.command)}${delimiter}${this.workspace.envVars.PATH ?? process.env.PATH ?? ""}`,
    };
  }

  /** Runs a short engine command on this stack (no program, no events); throws on failure. */
  async command(args: string[]): Promise<Finished> {
    const full = [...args, "--stack", this.name, "--non-interactive"];
    const finished = await this.spawn(this.engine.command, full, undefined);
    if (finished.code !== 0) throw new EngineCommandError(full, finished);
    return finished;
  }

  private spawn(command: string, args: string[], signal: AbortSignal | undefined, viaSupervisor = false) {
    return new Promise<Finished>((done, fail) => {
      const file = viaSupervisor ? process.execPath : command;
      const argv = viaSupervisor ? [join(import.meta.dirname, "supervise.js"), command, ...args] : args;
      // stdin stays an open pipe: the supervisor takes its closing as this process's death.
      const child = spawn(file, argv, {
        cwd: this.workDir,
        env: this.env(),
        stdio: ["pipe", "pipe", "pipe"],
      });
      if (viaSupervisor) this.running = child;
      const stdout = new Tail();
      const stderr = new Tail();
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout.push(chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
      child.stdin.on("error", () => {});
      let hard: NodeJS.Timeout | undefined;
      const abort = () => {
        child.kill("SIGINT");
        // The engine cancels its providers (they abandon in-flight requests and waits at once) and
        // saves its state; one that has not exited within the bound is stopped (cli/supervise.ts).
        if (viaSupervisor) hard = setTimeout(() => child.kill(hardStopSignal), stopGraceMs);
      };
      signal?.addEventListener("abort", abort, { once: true });
      if (viaSupervisor) supervisors.add(child);
      child.once("error", (error) => {
        signal?.removeEventListener("abort", abort);
        fail(new EngineMissingError(`Could not start ${command}: ${error.message}`, { cause: error }));
      });
      child.once("close", (code, killed) => {
        signal?.removeEventListener("abort", abort);
        clearTimeout(hard);
        supervisors.delete(child);
        if (this.running === child) this.running = undefined;
        child.stdin.destroy();
        done({
          code: code ?? (killed === "SIGINT" ? 130 : 1),
          stdout: stdout.toString(),
          stderr: stderr.toString(),
        });
      });
    });
  }

  /**
   * One operation: the engine runs under the supervisor (cli/supervise.ts), the inline program is
   * served from this process, and the event log feeds `onEvent` and the result.
   */
  private async operate(op: Op, options: OperationOptions): Promise<OperationResult> {
    const args: string[] = [op];
    if (op === "preview") {
      if (options.plan) args.push("--save-plan", options.plan);
    } else {
      args.push("--yes", "--skip-preview", "--suppress-outputs", "--suppress-progress");
      if (op === "up" && options.plan) args.push("--plan", options.plan);
    }
    if (options.expectNoChanges) args.push("--expect-no-changes");
    if (op === "refresh" && options.clearPendingCreates) args.push("--clear-pending-creates");
    for (const urn of options.target ?? []) args.push("--target", urn);
    if (op === "preview" || op === "up") {
      for (const pack of options.policyPacks ?? []) args.push("--policy-pack", pack);
      for (const file of options.policyPackConfigs ?? []) args.push("--policy-pack-config", file);
    }

    const result: OperationResult = {};
    let rootOutputs: Record<string, unknown> | undefined;
    const log = new EventLog((event) => {
      const outputs = event.resOutputsEvent?.metadata;
      if (outputs?.type === stackType) rootOutputs = outputs.new?.outputs;
      if (event.summaryEvent) result.summary = event.summaryEvent;
      options.onEvent?.(event);
    });
    const { grpc, LanguageServer, langrpc, grpcChannelOptions } = languageRuntime();
    const server = new grpc.Server(grpcChannelOptions);
    const language = new LanguageServer(this.program);
    server.addService(langrpc.LanguageRuntimeService, language as never);
    const port = await new Promise<number>((done, fail) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? fail(error) : done(bound),
      ),
    );
    args.push(`--client=127.0.0.1:${port}`, "--exec-kind", "auto.inline", "--event-log", log.file);
    args.push("--stack", this.name, "--non-interactive");
    let finished: Finished | undefined;
    try {
      const running = this.spawn(this.engine.command, args, options.signal, true);
      // Only preview and up run the program. A failed load fails its run the same way: nothing to report here.
      if (op === "preview" || op === "up") this.preload?.().catch(() => {});
      finished = await running;
    } finally {
      language.onPulumiExit(finished?.code !== 0);
      server.forceShutdown();
      log.close();
    }
    if (finished.code !== 0) throw new EngineCommandError(args, finished);
    if (op === "up") result.outputs = outputsOf(rootOutputs);
    return result;
  }

  preview(options: OperationOptions = {}): Promise<OperationResult> {
    return this.operate("preview", options);
  }
  up(options: OperationOptions = {}): Promise<OperationResult> {
    return this.operate("up", options);
  }
  refresh(options: OperationOptions = {}): Promise<OperationResult> {
    return this.operate("refresh", options);
  }
  destroy(options: OperationOptions = {}): Promise<OperationResult> {
    return this.operate("destroy", options);
  }

  /** The state (`pulumi stack export`): read from the files of a file backend. */
  async exportStack(): Promise<ExportedState> {
    if (this.file) return this.file.export();
    return JSON.parse((await this.command(["stack", "export"])).stdout) as ExportedState;
  }

  /** The stack's outputs, secrets as `"[secret]"`. */
  async outputs(): Promise<Outputs> {
    if (this.file) return this.file.outputs();
    const { stdout } = await this.command(["stack", "output", "--json"]);
    return outputsOf(JSON.parse(stdout || "{}") as Record<string, unknown>);
  }

  /** The stack's configuration (Pulumi.<stack>.yaml): plain values, and secrets marked secret (undecrypted). */
  async getAllConfig(): Promise<Record<string, { value: string; secret: boolean }>> {
    const file = join(this.workDir, `Pulumi.${this.name.split("/").pop()}.yaml`);
    let parsed: { config?: Record<string, unknown> } | null;
    try {
      parsed = parseYaml(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
    const config: Record<string, { value: string; secret: boolean }> = {};
    for (const [key, value] of Object.entries(parsed?.config ?? {})) {
      const secure = value && typeof value === "object" && "secure" in value;
      config[key] = secure
        ? { value: "[secret]", secret: true }
        : { value: typeof value === "string" ? value : JSON.stringify(value), secret: false };
    }
    return config;
  }
}

/** Pulumi.yaml of the workspace: the project, its runtime and `main` (where providers start), the backend. */
function projectFile(name: string, main: string, backend: string): string {
  const quote = (text: string) => JSON.stringify(text);
  return [
    "# Written by run402-pulumi.",
    `name: ${quote(name)}`,
    "runtime: nodejs",
    `main: ${quote(main)}`,
    "backend:",
    `  url: ${quote(backend)}`,
    "",
  ].join("\n");
}

/** Opens (or creates) the stack; its inline program declares the manifest's resources. */
export async function openStack(options: OpenStackOptions): Promise<EngineStack | undefined> {
  const { paths, packageRoot: root } = options;
  mkdirSync(paths.workDir, { recursive: true });
  // State, passphrase and sandbox keys live here: keep the folder out of version control.
  const ignore = join(paths.root, ".gitignore");
  if (!existsSync(ignore))
    writeFileSync(ignore, "# Written by run402-pulumi: state, passphrase, sandbox.\n*\n");
  let backend = options.backend;
  if (!backend) {
    mkdirSync(paths.stateDir, { recursive: true });
    backend = `file://${paths.stateDir}`;
  } else if (backend.startsWith("file://")) {
    let path = backend.slice("file://".length);
    // Relative to where the user ran the CLI.
    if (!path.startsWith("/") && !path.startsWith("~")) {
      path = resolve(path);
      backend = `file://${path}`;
    }
    if (!path.startsWith("~")) mkdirSync(path, { recursive: true });
  }
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: backend,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    ...passphraseEnv(paths),
  };
  const project = join(paths.workDir, "Pulumi.yaml");
  const text = projectFile(options.projectName, root, backend);
  if (!existsSync(project) || readFileSync(project, "utf8") !== text) writeAtomic(project, text);
  // Dynamic providers run in `main` and `require("pulumi-run402/…")` from there; the manifest path
  // the Deployment stores is relative to it (baseDir), wherever this process runs.
  const manifest = relative(root, options.manifestFile) || options.manifestFile;
  const load = () => import("../provider/stack.js");
  const program = async (): Promise<Record<string, unknown>> => {
    const { manifestStack } = await load();
    return (await manifestStack({ manifest, baseDir: root })).outputs;
  };
  const stack = new EngineStack(
    options.stackName,
    options.engine,
    paths.workDir,
    backend,
    envVars,
    program,
    options.projectName,
  );
  stack.preload = load;
  const file = FileBackend.for(backend, options.projectName, options.stackName);
  if (file) {
    if (file.exists()) {
      stack.repaired = repairCheckpoint(file.dir, file.project, file.stack);
      return stack;
    }
    if (!options.create) return undefined;
    file.create();
    return stack;
  }
  const select = ["stack", "select", "--stack", options.stackName, "--non-interactive"];
  if (options.create) select.push("--create", "--secrets-provider", "passphrase");
  const attempt = () =>
    new Promise<Finished>((done) =>
      execFile(
        options.engine.command,
        select,
        { cwd: paths.workDir, env: { ...process.env, ...envVars }, maxBuffer: 1 << 20 },
        (error, stdout, stderr) =>
          done({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
      ),
    );
  let selected = await attempt();
  // Runners sharing a backend (a fleet on one postgres://) may first-use it, or create the same
  // stack, at the same moment: the loser sees the table or the stack the winner just made. Again.
  for (let tries = 1; tries < 4 && selected.code !== 0; tries++) {
    if (
      !/already exists|unable to open state database|could not create stack|could not list bucket/i.test(
        selected.stderr,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 250 * tries));
    selected = await attempt();
  }
  if (selected.code === 0) return stack;
  if (!options.create && /no stack named|not found|does not exist/i.test(selected.stderr)) return undefined;
  throw new EngineCommandError(select, selected);
}
