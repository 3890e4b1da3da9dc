/**
 * Test harness for the real Pulumi engine: a private PULUMI_HOME, a file:// backend in a temp
 * folder, a passphrase, no update checks and no plugin downloads. The engine itself comes from
 * scripts/engine.sh (run by `npm test`); a missing engine fails the test, it is never skipped.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { LocalWorkspace, PulumiCommand, type PulumiFn, type Stack } from "@pulumi/pulumi/automation/index.js";

/** The repository root; the engine runs dynamic providers from here so `pulumi-run402` resolves. */
export const repoRoot = resolve(import.meta.dirname, "..");
/** Where scripts/engine.sh puts pulumi and its plugins. */
export const engineBin = join(repoRoot, ".tools", "pulumi", "bin");

const run = promisify(execFile);

/** An isolated engine environment; `cleanup()` removes its folders. */
export interface EngineWorkspace {
  /** Temp folder holding `home/` (PULUMI_HOME) and `state/` (the file backend). */
  dir: string;
  backendUrl: string;
  /** Environment for the CLI, the Automation API and anything they start. */
  env: Record<string, string>;
  pulumiCommand: PulumiCommand;
  /** `pulumi version`, e.g. "v3.259.0". */
  version: string;
  cleanup(): void;
}

/** Creates an isolated engine environment, failing loudly when the engine is not installed. */
export async function createEngineWorkspace(): Promise<EngineWorkspace> {
  const pulumi = join(engineBin, "pulumi");
  if (!existsSync(pulumi)) {
    throw new Error(
      `The Pulumi engine is missing at ${pulumi}. Run \`bash scripts/engine.sh\` (npm test does).`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "run402-engine-"));
  mkdirSync(join(dir, "state"));
  const backendUrl = `file://${join(dir, "state")}`;
  const env: Record<string, string> = {
    PULUMI_HOME: join(dir, "home"),
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_CONFIG_PASSPHRASE: "run402-test-passphrase",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    PATH: `${engineBin}:${process.env.PATH ?? ""}`,
  };
  const pulumiCommand = await PulumiCommand.get({
    root: join(repoRoot, ".tools", "pulumi"),
    skipVersionCheck: true,
  });
  const { stdout } = await run(pulumi, ["version"], { env: { ...process.env, ...env } });
  return {
    dir,
    backendUrl,
    env,
    pulumiCommand,
    version: stdout.trim(),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Creates (or selects) a stack whose program runs in this process (Automation API inline); `env` is
 * added to the workspace's environment (the engine and the plugins it starts see it).
 */
export async function inlineStack(
  engine: EngineWorkspace,
  options: { projectName: string; stackName?: string; program: PulumiFn; env?: Record<string, string> },
): Promise<Stack> {
  return LocalWorkspace.createOrSelectStack(
    { stackName: options.stackName ?? "test", projectName: options.projectName, program: options.program },
    {
      pulumiCommand: engine.pulumiCommand,
      envVars: { ...engine.env, ...options.env },
      pulumiHome: engine.env.PULUMI_HOME,
      secretsProvider: "passphrase",
      // The engine starts dynamic providers in `main`; it must see node_modules/pulumi-run402.
      projectSettings: {
        name: options.projectName,
        runtime: "nodejs",
        main: repoRoot,
        backend: { url: engine.backendUrl },
      },
    },
  );
}

/** The result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `pulumi` CLI in `cwd` with the workspace's environment; never throws on exit codes. */
export async function pulumiCli(
  engine: EngineWorkspace,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(join(engineBin, "pulumi"), [...args, "--non-interactive"], {
      cwd: options.cwd,
      env: { ...process.env, ...engine.env, ...options.env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === "number" ? failed.code : 1,
      stdout: failed.stdout ?? "",
      stderr: failed.stderr ?? "",
    };
  }
}
