/**
 * The shipped Pulumi programs, run by the real CLI in their own folders against the sandbox:
 * the root stack (Pulumi.yaml → dist/program) and examples/quickstart (TypeScript).
 */
import { existsSync, mkdtempSync, renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox()]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** Runs a program folder through init → config → up → destroy; config lives outside the repo. */
async function upAndDestroy(
  folder: string,
  stack: string,
  wallet: number,
  extra: Record<string, string> = {},
  secrets: Record<string, string> = {},
) {
  const configFile = join(mkdtempSync(join(engine.dir, "config-")), `Pulumi.${stack}.yaml`);
  const env = { RUN402_CONFIG_DIR: mkdtempSync(join(engine.dir, "run402-")) };
  const cli = (...args: string[]) => pulumiCli(engine, args, { cwd: folder, env });
  const init = await cli("stack", "init", stack);
  expect(init.code, init.stderr).toBe(0);
  // `stack init` writes the passphrase salt into the folder's Pulumi.<stack>.yaml (it has no
  // --config-file); move it out so the repository stays clean.
  const written = join(folder, `Pulumi.${stack}.yaml`);
  if (existsSync(written)) renameSync(written, configFile);
  const settings: Record<string, string> = {
    "run402:apiBase": sandbox.apiBase,
    "run402:rail": "x402",
    "run402:baseRpcUrl": sandbox.x402.rpcUrl,
    "run402:tempoRpcUrl": sandbox.mpp.rpcUrl,
    "run402:allowedRecipients": sandbox.treasury,
    ...extra,
  };
  for (const [key, value] of Object.entries(settings)) {
    const set = await cli("config", "set", key, value, "--config-file", configFile);
    expect(set.code, `${key}: ${set.stderr}`).toBe(0);
  }
  for (const [name, value] of Object.entries(secrets)) {
    const set = await cli("config", "set", "--secret", name, value, "--config-file", configFile);
    expect(set.code, `${name}: ${set.stderr}`).toBe(0);
  }
  const key = sandbox.wallets[wallet]!.privateKey;
  expect(
    (await cli("config", "set", "--secret", "run402:privateKey", key, "--config-file", configFile)).code,
  ).toBe(0);

  const up = await cli("up", "--yes", "--skip-preview", "--config-file", configFile);
  expect(up.code, up.stderr + up.stdout).toBe(0);
  expect(up.stdout + up.stderr).not.toContain(key.slice(2));
  const outputs = await cli("stack", "output", "--json", "--show-secrets");
  expect(outputs.code, outputs.stderr).toBe(0);
  const destroy = await cli("destroy", "--yes", "--config-file", configFile);
  expect(destroy.code, destroy.stderr + destroy.stdout).toBe(0);
  return JSON.parse(outputs.stdout) as Record<string, unknown>;
}

describe("shipped programs", () => {
  test("behavior: `pulumi up` in the repository root deploys the quickstart app.json", async () => {
    const outputs = await upAndDestroy(repoRoot, "root-e2e", 0);
    expect(outputs.projectId).toMatch(/^prj_/);
    expect((outputs.lastSettlement as { rail: string }).rail).toBe("x402");
  });

  test("behavior: examples/mpp pays its tier over MPP and records the rail", async () => {
    const outputs = await upAndDestroy(
      join(repoRoot, "examples", "mpp"),
      "mpp-e2e",
      2,
      { "run402:rail": "mpp", "run402-mpp:tier": "prototype" },
      { "run402-mpp:webhookToken": "whk_example_token" },
    );
    expect(outputs.projectId).toMatch(/^prj_/);
    expect(outputs.settledOn).toBe("mpp");
  });

  test("behavior: examples/quickstart (TypeScript) converges and records its settlement", async () => {
    const outputs = await upAndDestroy(join(repoRoot, "examples", "quickstart"), "quickstart-e2e", 1);
    expect(outputs.projectId).toMatch(/^prj_/);
    expect(outputs.files).toHaveProperty(["index.html"]);
    expect((outputs.settlement as { rail: string }).rail).toBe("x402");
  });
});
