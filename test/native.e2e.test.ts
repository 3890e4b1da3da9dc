/**
 * The native `run402` provider (provider/native/) through the real engine and Pulumi's real YAML
 * language host (pulumi-language-yaml, scripts/yaml-host.sh) against the sandbox: a YAML program
 * declares a Tier, a Project, a Deployment from app.json and a Secret; preview pays nothing, up pays
 * once on the configured rail and records it, a second up is a no-op, destroy deletes. The plugin is
 * the package's own launcher (bin/pulumi-resource-run402), found through `plugins.providers`.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { copyQuickstart } from "~test/cli-harness.js";
import { createEngineWorkspace, type EngineWorkspace, engineBin, pulumiCli, repoRoot } from "~test/engine.js";
import {
  assertNativeBuilt,
  generateNodeSdk,
  nativeConfig,
  pluginStack,
  type StackConfig,
  yamlProgram,
} from "~test/native-sdk.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;
const secretValue = "yaml-s3cr3t-that-must-not-reach-state";

beforeAll(async () => {
  for (const bin of ["pulumi-language-yaml"]) {
    if (!existsSync(join(engineBin, bin))) {
      throw new Error(`${bin} is missing from ${engineBin}: run \`bash scripts/engine.sh\` (npm test does).`);
    }
  }
  assertNativeBuilt();
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 5 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** A YAML program over a copy of the quickstart app, with its stack configured for `rail` and `wallet`. */
async function yamlStack(name: string, rail: "x402" | "mpp", wallet: number): Promise<string> {
  const dir = copyQuickstart(mkdtempSync(join(engine.dir, `yaml-${name}-`)), { program: false });
  writeFileSync(
    join(dir, "Pulumi.yaml"),
    yamlProgram({
      name: `run402-yaml-${name}`,
      projectName: `yaml-${name}`,
      secretValue,
      outputs: {
        projectId: "project.projectId",
        serviceKey: "project.serviceKey",
        siteUrl: "site.url",
        lastSettlement: "tier.lastSettlement",
        plannedPayment: "tier.plannedPayment",
      },
    }),
  );
  const cli = (args: string[]) => pulumiCli(engine, args, { cwd: dir });
  await expectOk(cli(["stack", "init", "dev"]));
  const config: StackConfig = {
    ...nativeConfig(sandbox, wallet, rail, join(dir, "journal.json")),
    "run402:maxSpendUsd": { value: "1" },
  };
  for (const [key, { value, secret }] of Object.entries(config)) {
    await expectOk(cli(["config", "set", key, value, ...(secret ? ["--secret"] : [])]));
  }
  return dir;
}

async function expectOk(result: Promise<{ code: number; stdout: string; stderr: string }>) {
  const r = await result;
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

/** Every file of the file backend, concatenated. */
function stateFiles(): string {
  const dir = join(engine.dir, "state");
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
    .join("\n");
}

describe("native provider: a YAML program through the real engine and YAML host", () => {
  test.each([
    ["x402", 0],
    ["mpp", 1],
  ] as const)(
    "behavior: %s: preview pays nothing, up pays once on the rail, a second up is a no-op, destroy deletes",
    {
      timeout: 600_000,
    },
    async (rail, wallet) => {
      const dir = await yamlStack(rail, rail, wallet);
      const cli = (args: string[]) => pulumiCli(engine, args, { cwd: dir });
      const payer = sandbox.wallets[wallet]!.address.toLowerCase();
      const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);

      const preview = await expectOk(cli(["preview", "--json"]));
      const steps = (JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[] }).steps;
      expect(steps.filter((s) => s.op === "create").map((s) => s.urn.split("::")[2])).toEqual(
        expect.arrayContaining([
          "run402:index:Tier",
          "run402:index:Project",
          "run402:index:Deployment",
          "run402:index:Secret",
        ]),
      );
      expect(await paidBy()).toHaveLength(0);

      await expectOk(cli(["up", "--yes", "--skip-preview"]));
      const ledger = await paidBy();
      expect(ledger).toHaveLength(1);
      expect(ledger[0]!.rail).toBe(rail);
      const outputs = JSON.parse(
        (await expectOk(cli(["stack", "output", "--json", "--show-secrets"]))).stdout,
      ) as Record<string, unknown>;
      expect(outputs.lastSettlement).toMatchObject({
        rail,
        amountUsd: "0.10",
        reference: ledger[0]!.reference,
      });
      expect(outputs.plannedPayment ?? null).toBeNull();
      expect(await sandbox.projectsOf(wallet)).toContain(outputs.projectId);
      expect((await fetch(outputs.siteUrl as string)).status).toBe(200);
      const listed = await fetch(`${sandbox.apiBase}/projects/v1/admin/${outputs.projectId}/secrets`, {
        headers: { authorization: `Bearer ${outputs.serviceKey}` },
      });
      expect(((await listed.json()) as { secrets: { key: string }[] }).secrets.map((s) => s.key)).toEqual([
        "API_TOKEN",
      ]);
      // Secrets stay encrypted in the state on disk: the service key, the secret's value, the wallet key.
      const state = stateFiles();
      expect(state).toContain("API_TOKEN");
      for (const plain of [
        secretValue,
        outputs.serviceKey as string,
        sandbox.wallets[wallet]!.privateKey.slice(2),
      ]) {
        expect(state).not.toContain(plain);
      }

      // A second up: nothing to change, nothing paid.
      await expectOk(cli(["up", "--yes", "--expect-no-changes"]));
      expect(await paidBy()).toHaveLength(1);

      // Preview of a converged stack pays nothing either.
      await expectOk(cli(["preview", "--expect-no-changes"]));
      expect(await paidBy()).toHaveLength(1);

      await expectOk(cli(["destroy", "--yes", "--skip-preview"]));
      expect(await sandbox.projectsOf(wallet)).not.toContain(outputs.projectId);
      expect(await paidBy()).toHaveLength(1);
    },
  );

  test("behavior: an explicit provider in the program may narrow the operator's caps, never widen them", {
    timeout: 300_000,
  }, async () => {
    const dir = await yamlStack("widen", "x402", 2);
    const program = readFileSync(join(dir, "Pulumi.yaml"), "utf8").replace(
      "resources:\n",
      `resources:
  loose:
    type: pulumi:providers:run402
    properties:
      maxSpendUsd: "100"
`,
    );
    writeFileSync(
      join(dir, "Pulumi.yaml"),
      program.replace("tier: prototype\n", `tier: prototype\n    options:\n      provider: \${loose}\n`),
    );
    const payer = sandbox.wallets[2]!.address.toLowerCase();
    const up = await pulumiCli(engine, ["up", "--yes", "--skip-preview"], { cwd: dir });
    expect(up.code).not.toBe(0);
    expect(`${up.stdout}${up.stderr}`).toMatch(
      /POLICY_PROVIDER_WIDENS\] maxSpendUsd 100 is above the operator's 1/,
    );
    expect((await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer)).toHaveLength(0);
  });

  test("behavior: a TypeScript program on the generated Node.js SDK (plugin on PATH), on each rail at once: pays once on its rail, a second up is a no-op, destroy deletes", {
    timeout: 600_000,
  }, async () => {
    // The SDK as `pulumi package gen-sdk` would make it, compiled once for both rails.
    const run402 = await generateNodeSdk(mkdtempSync(join(engine.dir, "sdk-")));

    // One stack per rail, each with its own wallet, run side by side on the one sandbox (the
    // Automation API runs inline programs concurrently): the second rail costs little wall time.
    const converge = async (rail: "x402" | "mpp", wallet: number) => {
      const app = copyQuickstart(mkdtempSync(join(engine.dir, `ts-app-${rail}-`)), { program: false });
      const stack = await pluginStack(engine, {
        stackName: `ts-sdk-${rail}`,
        projectName: "run402-ts-sdk",
        program: async () => {
          const tier = new run402.Tier!("tier", { tier: "prototype" });
          const project = new run402.Project!("app", { name: `ts-sdk-${rail}` }, { dependsOn: [tier] });
          const site = new run402.Deployment!("site", {
            projectId: project.projectId,
            anonKey: project.anonKey,
            manifest: join(app, "app.json"),
          });
          new run402.Secret!("token", {
            projectId: project.projectId,
            serviceKey: project.serviceKey,
            name: "API_TOKEN",
            value: pulumi.secret(secretValue),
          });
          return { projectId: project.projectId, url: site.url, lastSettlement: tier.lastSettlement };
        },
      });
      const w = sandbox.wallets[wallet]!;
      await stack.setAllConfig(nativeConfig(sandbox, wallet, rail, join(app, "journal.json")));
      const paidBy = async () =>
        (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === w.address.toLowerCase());
      const up = await stack.up();
      expect(up.summary.result).toBe("succeeded");
      const ledger = await paidBy();
      expect(ledger).toHaveLength(1);
      expect(ledger[0]!.rail).toBe(rail);
      expect(up.outputs.lastSettlement?.value).toMatchObject({
        rail,
        amountUsd: "0.10",
        reference: ledger[0]!.reference,
      });
      expect((await fetch(up.outputs.url?.value as string)).status).toBe(200);
      const again = await stack.up();
      expect(again.summary.resourceChanges).toEqual({ same: 5 });
      expect(await paidBy()).toHaveLength(1);
      await stack.destroy();
      expect(await sandbox.projectsOf(wallet)).not.toContain(up.outputs.projectId?.value);
      expect(await paidBy()).toHaveLength(1);
    };
    await Promise.all([converge("x402", 3), converge("mpp", 4)]);
  });

  test("behavior: installed into the plugin cache from the package's archive, the plugin serves a program with no path to it", {
    timeout: 300_000,
  }, async () => {
    const dir = mkdtempSync(join(engine.dir, "cache-"));
    const archive = join(dir, "run402.tgz");
    const run = promisify(execFile);
    await run("bash", [join(repoRoot, "scripts", "plugin-archive.sh"), archive], { cwd: dir });
    // A PULUMI_HOME of its own, and a PATH without the package's bin folder.
    const env = { PULUMI_HOME: join(dir, "home") };
    const install = await pulumiCli(
      engine,
      ["plugin", "install", "resource", "run402", "0.1.0", "--file", archive],
      {
        cwd: dir,
        env,
      },
    );
    expect(install.code, install.stderr).toBe(0);
    writeFileSync(
      join(dir, "Pulumi.yaml"),
      "name: run402-cache\nruntime: yaml\nresources:\n  app:\n    type: run402:index:Project\n    properties:\n      name: cached\n",
    );
    const cli = (args: string[]) => pulumiCli(engine, args, { cwd: dir, env });
    expect((await cli(["stack", "init", "dev"])).code).toBe(0);
    expect((await cli(["config", "set", "run402:apiBase", sandbox.apiBase])).code).toBe(0);
    // A local API needs the paying rail's RPC (never a public one): the sandbox's.
    expect((await cli(["config", "set", "run402:baseRpcUrl", sandbox.x402.rpcUrl])).code).toBe(0);
    const preview = await cli(["preview", "--json"]);
    expect(preview.code, preview.stderr).toBe(0);
    const steps = (JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[] }).steps;
    expect(steps).toContainEqual(
      expect.objectContaining({ op: "create", urn: expect.stringMatching(/run402:index:Project::app$/) }),
    );
    expect(preview.stderr).not.toMatch(/from \$PATH/);
  });
});
