/**
 * The engine boundary's fast path against the engine itself. In a `file://` backend, cli/engine/ reads
 * a stack's state, outputs and tags from the backend's files (state.ts) instead of starting `pulumi`;
 * here the same stack is read both ways and must agree:
 * - `exportStack()`: equal to the engine's own `pulumi stack export`, and to the Automation API's
 *   (`--show-secrets`: its secrets are decrypted, so each side's secrets are compared as `"[secret]"`);
 * - `outputs()`: the same keys and secret flags as the Automation API's `outputs()`, and the values the
 *   engine's `pulumi stack output --json` prints (secrets, also nested ones, as `"[secret]"`);
 * - the stack's tags (`workspace.listTags`, where the CLI keeps the stack's identity): the Automation
 *   API's `listTags`.
 * Two stacks: one the built CLI applied against a sandbox (the quickstart app: a Tier, a Project with
 * secret keys in its state, a Deployment), and one whose outputs are secret at the top and nested.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, type PulumiFn, Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, report, runCli, sandboxSettings, settingFlags, why } from "~test/cli-harness.js";
import { engineBin, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import {
  type EngineStack,
  findPulumi,
  openStack,
  packageRoot,
  pulumiProjectName,
  workspacePaths,
} from "../cli/engine/index.js";

const exec = promisify(execFile);

/** Pulumi's marker of a secret value in state: an object with this key and value (its checkpoint format). */
const secretSig = ["4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"] as const;

/** `value` with every secret envelope (ciphertext or, from `--show-secrets`, plaintext) as `"[secret]"`. */
function masked(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(masked);
  if (value && typeof value === "object") {
    const object = value as Record<string, unknown>;
    if (object[secretSig[0]] === secretSig[1]) return "[secret]";
    return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, masked(v)]));
  }
  return value;
}

let tmp: string;
let sandbox: TestSandbox | undefined;
let pulumiCommand: PulumiCommand;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-conformance-"));
  pulumiCommand = await PulumiCommand.get({
    root: join(repoRoot, ".tools", "pulumi"),
    skipVersionCheck: true,
  });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Opens stack `dev` of the workspace in `manifestDir` through the engine boundary (no engine process in a file backend). */
async function boundaryStack(manifestDir: string, projectName: string, create = false): Promise<EngineStack> {
  const root = packageRoot();
  const stack = await openStack({
    manifestFile: join(manifestDir, "app.json"),
    projectName,
    stackName: "dev",
    paths: workspacePaths(manifestDir, false),
    backend: undefined,
    engine: await findPulumi(root),
    packageRoot: root,
    create,
  });
  if (!stack) throw new Error(`no stack dev in ${manifestDir}`);
  return stack;
}

/** The same stack through the Automation API, with the boundary's environment (backend, passphrase). */
async function automationStack(stack: EngineStack, manifestDir: string, program?: PulumiFn) {
  const workDir = workspacePaths(manifestDir, false).workDir;
  const envVars = { ...stack.workspace.envVars, PULUMI_HOME: join(tmp, "pulumi-home") };
  const workspace = await LocalWorkspace.create({
    workDir,
    pulumiCommand,
    envVars,
    ...(program ? { program } : {}),
  });
  /** The engine's own command on this stack: its stdout. */
  const engine = async (args: string[]) =>
    (
      await exec(join(engineBin, "pulumi"), [...args, "--stack", stack.name, "--non-interactive"], {
        cwd: workDir,
        env: { ...process.env, ...envVars },
        maxBuffer: 64 * 1024 * 1024,
      })
    ).stdout;
  return { workspace, stack: await Stack.select(stack.name, workspace), engine };
}

/** Reads `stack` both ways and holds the fast path to what the engine and the Automation API say. */
async function expectConformance(stack: EngineStack, manifestDir: string): Promise<void> {
  const auto = await automationStack(stack, manifestDir);

  const fastExport = await stack.exportStack();
  expect(fastExport).toEqual(JSON.parse(await auto.engine(["stack", "export"])));
  expect(masked(fastExport)).toEqual(masked(await auto.stack.exportStack()));

  const fastOutputs = await stack.outputs();
  const autoOutputs = await auto.stack.outputs();
  const printed = JSON.parse(await auto.engine(["stack", "output", "--json"])) as Record<string, unknown>;
  expect(Object.keys(fastOutputs).sort()).toEqual(Object.keys(autoOutputs).sort());
  for (const [key, output] of Object.entries(autoOutputs)) {
    expect(fastOutputs[key], key).toEqual({ value: printed[key], secret: output.secret });
  }

  expect(await stack.workspace.listTags(stack.name)).toEqual(await auto.workspace.listTags(stack.name));
}

describe("engine conformance: the fast path reads what the engine and the Automation API read", () => {
  test("behavior: a stack the CLI applied (sandbox): export, outputs and the stack-identity tag", {
    timeout: 300_000,
  }, async () => {
    sandbox = await startTestSandbox({ walletCount: 1 });
    const dir = mkdtempSync(join(tmp, "app-"));
    cpSync(join(repoRoot, "examples", "quickstart", "app.json"), join(dir, "app.json"));
    cpSync(join(repoRoot, "examples", "quickstart", "site"), join(dir, "site"), { recursive: true });
    const flags = settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, "journal.json") });
    const apply = await runCli(
      tmp,
      ["apply", "--manifest", dir, "--rail", "x402", "--yes", "--json", ...flags],
      {
        RUN402_PRIVATE_KEY: sandbox.wallets[0]!.privateKey,
      },
    );
    expect(apply.code, why(apply)).toBe(0);
    expect(report(apply).ok).toBe(true);

    const stack = await boundaryStack(dir, pulumiProjectName("quickstart", dir));
    await expectConformance(stack, dir);
    // What made the comparison worth it: resources, secrets in state, outputs, the CLI's tag.
    const state = await stack.exportStack();
    expect(state.deployment.resources?.map((r) => r.type)).toEqual(
      expect.arrayContaining(["pulumi:pulumi:Stack", expect.stringMatching(/^pulumi-nodejs:dynamic/)]),
    );
    expect(JSON.stringify(state)).toContain(secretSig[0]);
    expect(Object.keys(await stack.outputs())).toContain("siteUrl");
    expect(Object.keys(await stack.workspace.listTags(stack.name))).toContain("run402:stack-id");
  });

  test("behavior: a stack whose outputs are secret, at the top and nested, and a tag the fast path wrote", {
    timeout: 180_000,
  }, async () => {
    const dir = mkdtempSync(join(tmp, "secrets-"));
    const projectName = "conformance-secrets";
    // The boundary lays out the workspace, creates the stack and tags it; the Automation API runs the update.
    const created = await boundaryStack(dir, projectName, true);
    await created.workspace.setTag("dev", "conformance:tag", "written by the fast path");
    const program = async () => ({
      plain: "text",
      count: 7,
      empty: {},
      nothing: null,
      list: [1, "two", { three: 3 }],
      password: pulumi.secret("hunter2"),
      nested: { visible: "yes", hidden: pulumi.secret("no"), deep: [pulumi.secret(1), 2] },
      secretObject: pulumi.secret({ a: 1, b: ["c"] }),
    });
    const up = await (await automationStack(created, dir, program)).stack.up();
    expect(up.summary.result).toBe("succeeded");

    const stack = await boundaryStack(dir, projectName);
    await expectConformance(stack, dir);
    // What made the comparison worth it: secrets, at the top and nested, read without the engine.
    expect(await stack.outputs()).toMatchObject({
      password: { value: "[secret]", secret: true },
      nested: { value: { visible: "yes", hidden: "[secret]", deep: ["[secret]", 2] }, secret: false },
      plain: { value: "text", secret: false },
    });
  });
});
