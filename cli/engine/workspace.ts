/**
 * The workspace of one manifest under `<manifest dir>/.run402/`: its paths, the Pulumi project name
 * and Pulumi.yaml this module writes, and the passphrase of the stack's secrets.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

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

/** Pulumi.yaml of the workspace: the project, its runtime and `main` (where providers start), the backend. */
export function projectFile(name: string, main: string, backend: string): string {
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
