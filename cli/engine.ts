/**
 * The Pulumi side of run402-pulumi: finds the engine, keeps the workspace (Pulumi.yaml, stack
 * config, passphrase, file backend) under `<manifest dir>/.run402/`, and opens the stack whose
 * inline program is `manifestStack({ manifest })`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, delimiter, dirname, join, relative, resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import {
  type ConfigMap,
  LocalWorkspace,
  PulumiCommand,
  type Stack,
  StackNotFoundError,
} from "@pulumi/pulumi/automation/index.js";
import { manifestStack } from "../provider/stack.js";

/** The Pulumi engine could not be found or started. */
export class EngineMissingError extends Error {
  override readonly name = "EngineMissingError";
  readonly code = "ENGINE_NOT_FOUND";
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

/** The `pulumi` executable: `<package root>/.tools/pulumi/bin/pulumi` when present, else from PATH. */
export function pulumiExecutable(root: string, path: string = process.env.PATH ?? ""): string | undefined {
  const bundled = join(root, ".tools", "pulumi", "bin", "pulumi");
  if (existsSync(bundled)) return bundled;
  for (const dir of path.split(delimiter)) {
    if (dir && existsSync(join(dir, "pulumi"))) return join(dir, "pulumi");
  }
  return undefined;
}

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/**
 * The engine, as the Automation API runs it: through a small `bin/pulumi` script in `shimDir`
 * that runs the long commands (up, preview, refresh, destroy) under cli/supervise.ts, so that the
 * engine and its plugins never outlive this process (see there).
 */
export async function findPulumi(root: string, shimDir?: string): Promise<PulumiCommand> {
  const pulumi = pulumiExecutable(root);
  const missing = (cause?: unknown) =>
    new EngineMissingError(
      `The Pulumi CLI was not found (looked in ${join(root, ".tools", "pulumi", "bin")} and on PATH). ` +
        "Install Pulumi 3.x (https://www.pulumi.com/docs/install/) or run `npm run engine` in pulumi-run402.",
      { cause },
    );
  if (!pulumi) throw missing();
  const bundled = pulumi === join(root, ".tools", "pulumi", "bin", "pulumi");
  let command: string | undefined = bundled ? join(root, ".tools", "pulumi") : undefined;
  if (shimDir) {
    const supervisor = join(import.meta.dirname, "supervise.js");
    const script = [
      "#!/bin/sh",
      "# Written by run402-pulumi: long engine commands run under its supervisor (cli/supervise.ts).",
      `PATH=${quote(dirname(pulumi))}:"$PATH"; export PATH`,
      'case "$1" in',
      `  up|preview|refresh|destroy) exec ${quote(process.execPath)} ${quote(supervisor)} ${quote(pulumi)} "$@" ;;`,
      `  *) exec ${quote(pulumi)} "$@" ;;`,
      "esac",
      "",
    ].join("\n");
    const bin = join(shimDir, "bin");
    mkdirSync(bin, { recursive: true });
    const file = join(bin, "pulumi");
    const current = existsSync(file) ? readFileSync(file, "utf8") : "";
    if (current !== script) {
      // Another run may read it right now: replace it whole.
      const temp = `${file}.${randomUUID()}`;
      writeFileSync(temp, script, { mode: 0o755 });
      renameSync(temp, file);
    }
    command = shimDir;
  }
  try {
    return await PulumiCommand.get({ ...(command ? { root: command } : {}), skipVersionCheck: true });
  } catch (error) {
    throw missing(error);
  }
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
  /** Where the engine shim lives (see {@link findPulumi}). */
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

/** What {@link openStack} needs. */
export interface OpenStackOptions {
  /** Absolute path of the manifest. */
  manifestFile: string;
  projectName: string;
  stackName: string;
  paths: WorkspacePaths;
  /** Backend URL; default `file://<paths.stateDir>`. */
  backend: string | undefined;
  pulumiCommand: PulumiCommand;
  packageRoot: string;
  /** Create the stack when missing (false: return undefined). */
  create: boolean;
}

/** Selects (or creates) the stack; its inline program declares the manifest's resources. */
export async function openStack(options: OpenStackOptions): Promise<Stack | undefined> {
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
    // Relative to where the user ran the CLI (this process moves to the package root below).
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
  // Dynamic providers run in `main` and `require("pulumi-run402/…")` from there; the manifest path
  // the Deployment stores is relative to it, so this process works from the same folder.
  process.chdir(root);
  const manifest = relative(root, options.manifestFile) || options.manifestFile;
  const program = async (): Promise<Record<string, pulumi.Output<unknown>>> =>
    (await manifestStack({ manifest })).outputs;
  const args = { stackName: options.stackName, projectName: options.projectName, program };
  const workspaceOptions = {
    workDir: paths.workDir,
    pulumiCommand: options.pulumiCommand,
    envVars,
    secretsProvider: "passphrase",
    projectSettings: {
      name: options.projectName,
      runtime: "nodejs" as const,
      main: root,
      backend: { url: backend },
    },
  };
  if (options.create) return LocalWorkspace.createOrSelectStack(args, workspaceOptions);
  try {
    return await LocalWorkspace.selectStack(args, workspaceOptions);
  } catch (error) {
    if (error instanceof StackNotFoundError) return undefined;
    throw error;
  }
}

/** Writes run402:* config to the stack (secret values encrypted with the stack's passphrase). */
export async function setConfig(
  stack: Stack,
  values: Record<string, { value: string; secret?: boolean }>,
): Promise<void> {
  const config: ConfigMap = {};
  for (const [key, entry] of Object.entries(values))
    config[key] = { value: entry.value, secret: entry.secret ?? false };
  if (Object.keys(config).length > 0) await stack.setAllConfig(config);
}
