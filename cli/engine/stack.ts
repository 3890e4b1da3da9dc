/**
 * One stack and its operations. Each operation (preview, up, refresh, destroy) is one `pulumi`
 * process under the supervisor (cli/supervise.ts): the inline program's language runtime is served
 * from this process, and steps, outputs and the summary come from the engine's event log. In a
 * `file://` backend, state, outputs and tags are read and written directly (./state.ts); other
 * backends fall back to the engine's own commands.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation/events.js";
import { parse as parseYaml } from "yaml";
import { BaseError } from "../../core/errors.js";
import { type CheckpointRepair, repairCheckpoint } from "../checkpoint.js";
import { writeAtomic } from "./atomic.js";
import { noSuchStack, racedOnBackend } from "./classify.js";
import { EventLog } from "./events.js";
import { languageRuntime } from "./language.js";
import { type Engine, EngineMissingError } from "./lookup.js";
import { type ExportedState, FileBackend, type Outputs, outputsOf, stackType } from "./state.js";
import { hardStopSignal, stopGraceMs, supervisors } from "./stop.js";
import { passphraseEnv, projectFile, type WorkspacePaths } from "./workspace.js";

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

/** What an engine process printed, and how it ended. */
export interface Finished {
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
 * provider's coded errors are in that text; ./classify.ts's `engineErrors` reads them out of it.
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
      const argv = viaSupervisor ? [join(import.meta.dirname, "..", "supervise.js"), command, ...args] : args;
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
  const load = () => import("../../provider/stack.js");
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
    if (!racedOnBackend(selected.stderr)) break;
    await new Promise((r) => setTimeout(r, 250 * tries));
    selected = await attempt();
  }
  if (selected.code === 0) return stack;
  if (!options.create && noSuchStack(selected.stderr)) return undefined;
  throw new EngineCommandError(select, selected);
}
