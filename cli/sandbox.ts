/**
 * `--sandbox` loads the local Run402 from its own package, `@pulumi-run402/sandbox`, which carries
 * the chains (anvil) and Postgres (PGlite). pulumi-run402 does not depend on it: a user who deploys
 * to the real Run402 never installs them. Where it is missing, the error says what to install.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BaseError } from "../core/errors.js";

/** The sandbox's package name. */
export const sandboxPackage = "@pulumi-run402/sandbox";

/** What the CLI uses of a running sandbox (the package's `Sandbox`). */
export interface SandboxHandle {
  apiBase: string;
  x402: { rpcUrl: string };
  mpp: { rpcUrl: string };
  wallets: { address: string; privateKey: string }[];
  treasury: string;
  /** The presigned-upload origin (absent in sandbox builds before it, null when not started). */
  uploadOrigin?: string | null;
  stop(): Promise<void>;
}

/** What the CLI uses of the sandbox package. */
export interface SandboxModule {
  startSandbox(options: {
    stateDir: string;
    log?: (line: string) => void;
    uploads?: "presigned" | "api";
  }): Promise<SandboxHandle>;
}

/** `--sandbox` without the sandbox package installed (exit 2). */
export class SandboxMissingError extends BaseError {
  override name = "SandboxMissingError";
  constructor(version: string, cause?: unknown) {
    super(
      `--sandbox needs the package ${sandboxPackage}, which is not installed. Install it next to pulumi-run402: ` +
        `npm install --save-dev ${sandboxPackage}@${version}`,
      { code: "CLI_SANDBOX_NOT_INSTALLED", cause },
    );
  }
}

function notFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
}

/**
 * The sandbox package's entry: resolved from pulumi-run402 itself (installed side by side), else
 * from `projectDir` (a global run402-pulumi with the sandbox in the project), else undefined.
 */
export function resolveSandbox(projectDir: string, specifier: string = sandboxPackage): string | undefined {
  try {
    return import.meta.resolve(specifier);
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  try {
    return pathToFileURL(createRequire(join(projectDir, "package.json")).resolve(specifier)).href;
  } catch (error) {
    if (!notFound(error)) throw error;
  }
  return undefined;
}

/**
 * Loads the sandbox package. `version` is pulumi-run402's: the two are released together, so the
 * install hint names the same version.
 */
export async function loadSandbox(
  projectDir: string,
  version: string,
  specifier: string = sandboxPackage,
): Promise<SandboxModule> {
  const url = resolveSandbox(projectDir, specifier);
  if (!url) throw new SandboxMissingError(version);
  return (await import(url)) as SandboxModule;
}
