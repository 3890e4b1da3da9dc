/**
 * The policy pack (packages/policy) through the real engine: `pulumi preview --policy-pack` and
 * `pulumi up --policy-pack` (also `--skip-preview`) against the sandbox. The engine starts the pack
 * through our language host's RunPlugin (scripts/pulumi-language-nodejs.cjs), which hands it the
 * stack's name and config; a mandatory violation stops the Tier before anything is paid.
 */
import { existsSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;
const program = join(repoRoot, "test", "fixtures", "policy-program");
const pack = join(repoRoot, "packages", "policy");

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox()]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** A stack of the fixture program on sandbox wallet `wallet`, its config outside the repository. */
async function stack(name: string, wallet: number, settings: Record<string, string>) {
  const configFile = join(mkdtempSync(join(engine.dir, "config-")), `Pulumi.${name}.yaml`);
  const env = { RUN402_CONFIG_DIR: mkdtempSync(join(engine.dir, "run402-")) };
  const cli = (...args: string[]) =>
    pulumiCli(engine, [...args, "--config-file", configFile], { cwd: program, env });
  const init = await pulumiCli(engine, ["stack", "init", name], { cwd: program, env });
  expect(init.code, init.stderr).toBe(0);
  const written = join(program, `Pulumi.${name}.yaml`);
  if (existsSync(written)) renameSync(written, configFile);
  const all: Record<string, string> = {
    "run402:apiBase": sandbox.apiBase,
    "run402:rail": "x402",
    "run402:baseRpcUrl": sandbox.x402.rpcUrl,
    "run402:tempoRpcUrl": sandbox.mpp.rpcUrl,
    "run402:allowedRecipients": sandbox.treasury,
    ...settings,
  };
  for (const [key, value] of Object.entries(all)) {
    const set = await cli("config", "set", key, value);
    expect(set.code, `${key}: ${set.stderr}`).toBe(0);
  }
  const key = await cli(
    "config",
    "set",
    "--secret",
    "run402:privateKey",
    sandbox.wallets[wallet]!.privateKey,
  );
  expect(key.code, key.stderr).toBe(0);
  return cli;
}

/** A `--policy-pack-config` file. */
function packConfig(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(engine.dir, "pack-")), "policy.json");
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const payments = async () => (await sandbox.ledger()).length;

describe("policy pack through the engine", () => {
  test("behavior: a Tier above the payment ceiling is stopped at preview and in up --skip-preview; nothing is paid", async () => {
    const cli = await stack("ceiling", 0, { "fixture:tier": "hobby" });
    const config = packConfig({ "run402-payment-ceiling": { maxUsd: 1 } });
    const before = await payments();

    const preview = await cli("preview", "--policy-pack", pack, "--policy-pack-config", config);
    const previewText = preview.stdout + preview.stderr;
    expect(preview.code, previewText).not.toBe(0);
    expect(previewText).toContain("run402-payment-ceiling");
    expect(previewText).toContain("mandatory");
    expect(previewText).toContain("plans to pay $5");

    const up = await cli(
      "up",
      "--yes",
      "--skip-preview",
      "--policy-pack",
      pack,
      "--policy-pack-config",
      config,
    );
    const upText = up.stdout + up.stderr;
    expect(up.code, upText).not.toBe(0);
    expect(upText).toContain("run402-payment-ceiling");

    const upWithPreview = await cli("up", "--yes", "--policy-pack", pack, "--policy-pack-config", config);
    expect(upWithPreview.code, upWithPreview.stdout).not.toBe(0);
    expect(upWithPreview.stdout + upWithPreview.stderr).toContain("run402-payment-ceiling");

    expect(await payments()).toBe(before);
    // Nothing was created either: the Tier never reached its step.
    const state = await cli("stack", "export");
    expect(state.stdout).not.toContain("run402:Tier");
  });

  test("behavior: an advisory ceiling warns and the run pays", async () => {
    const cli = await stack("advisory", 1, { "fixture:tier": "prototype" });
    const config = packConfig({
      "run402-payment-ceiling": { enforcementLevel: "advisory", maxUsd: 0.05 },
      "run402-run-ceiling": { enforcementLevel: "advisory", maxUsd: 0.05 },
    });
    const before = await payments();
    const up = await cli("up", "--yes", "--policy-pack", pack, "--policy-pack-config", config);
    const text = up.stdout + up.stderr;
    expect(up.code, text).toBe(0);
    expect(text).toContain("run402-payment-ceiling");
    expect(text).toContain("advisory");
    expect(text).toContain("plans to pay $0.10");
    // The stack total, a second check (the preview's stack analysis), warns too.
    expect(text).toContain("run402-run-ceiling");
    expect(text).toContain("plans to pay $0.10 in total (tier $0.10)");
    expect(await payments()).toBe(before + 1);
  });

  test("behavior: a dev stack whose config names a mainnet is refused before anything is paid; prod may", async () => {
    const config = packConfig({ "run402-allowed-networks": { mainnetStacks: ["prod", "prod-*"] } });
    const dev = await stack("dev", 2, {
      "fixture:tier": "prototype",
      "run402:allowedNetworks": "eip155:84532,eip155:8453",
    });
    const before = await payments();
    const preview = await dev("preview", "--policy-pack", pack, "--policy-pack-config", config);
    const previewText = preview.stdout + preview.stderr;
    expect(preview.code, previewText).not.toBe(0);
    expect(previewText).toContain("run402-allowed-networks");
    expect(previewText).toContain('Stack "dev" names mainnet "eip155:8453"');
    const up = await dev(
      "up",
      "--yes",
      "--skip-preview",
      "--policy-pack",
      pack,
      "--policy-pack-config",
      config,
    );
    expect(up.code, up.stdout).not.toBe(0);
    expect(up.stdout + up.stderr).toContain("run402-allowed-networks");
    expect(await payments()).toBe(before);

    // The same config in a stack the pack names passes the policy (preview only: nothing paid).
    const prod = await stack("prod-eu", 2, {
      "fixture:tier": "prototype",
      "run402:allowedNetworks": "eip155:84532,eip155:8453",
    });
    const ok = await prod("preview", "--policy-pack", pack, "--policy-pack-config", config);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).not.toContain("run402-allowed-networks");
    expect(await payments()).toBe(before);
  });
});
