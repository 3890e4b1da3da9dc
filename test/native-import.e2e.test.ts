/**
 * Adopting what exists with the native `run402` provider, through the real engine against the sandbox:
 *   - `pulumi import` of the Tier, Project and Deployment the run402-pulumi CLI created (and of a Secret
 *     set beside them), into a fresh stack of a YAML program: refused with a clear message while the
 *     key store lacks the project's keys, adopted once they are there; the next `up` writes only the
 *     secret's value (Run402 never returns it), then nothing changes, and nothing is paid;
 *   - a stack made with the dynamic resources moves to the native ones in place (TypeScript program,
 *     the plugin found on PATH): the project keeps its id, the tier is adopted, nothing is paid.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  assertBuilt,
  copyQuickstart,
  report,
  runCli,
  sandboxSettings,
  settingFlags,
  why,
} from "~test/cli-harness.js";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli } from "~test/engine.js";
import { assertNativeBuilt, nativeConfig, pluginStack, yamlProgram } from "~test/native-sdk.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { Project, Tier } from "../provider/index.js";

/** A resource of the native provider, declared by its token (what a generated SDK's classes do). */
class NativeResource extends pulumi.CustomResource {
  declare readonly projectId: pulumi.Output<string>;
}

let engine: EngineWorkspace;
let sandbox: TestSandbox;
const secretValue = "imported-secret-value";

beforeAll(async () => {
  assertBuilt();
  assertNativeBuilt();
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 3 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** The stack settings of a program paying from `wallet` on x402, its journal at `journal`. */
const config = (wallet: number, journal: string) => nativeConfig(sandbox, wallet, "x402", journal);

/** An inline TypeScript stack whose provider processes see `env` (and the plugin on PATH). */
const tsStack = (
  name: string,
  env: Record<string, string>,
  program: () => Promise<Record<string, unknown>>,
) => pluginStack(engine, { stackName: name, projectName: "run402-migrate", program, env });

/** The run402 CLI's key store in `dir`, holding `projects`. */
function writeKeyStore(
  dir: string,
  projects: Record<string, { anon_key: string; service_key: string }>,
  target = sandbox.apiBase,
) {
  mkdirSync(join(dir, "credentials"), { recursive: true });
  writeFileSync(join(dir, "credentials", "project-keys.v1.json"), JSON.stringify({ projects }));
  // The API that run402 CLI config targets (its target.json): the only origin its keys go to.
  writeFileSync(join(dir, "target.json"), JSON.stringify({ api_base: target }));
}

async function dynamicStack(name: string, wallet: number, keys: string, retain = false): Promise<Stack> {
  const stack = await tsStack(name, { RUN402_CONFIG_DIR: keys }, async () => {
    const tier = new Tier("tier", { tier: "prototype" }, { retainOnDelete: retain });
    const project = new Project(
      "app",
      { name: `app-${name}` },
      { dependsOn: [tier], retainOnDelete: retain },
    );
    return { projectId: project.projectId, anonKey: project.anonKey, serviceKey: project.serviceKey };
  });
  await stack.setAllConfig(config(wallet, join(keys, "journal.json")));
  return stack;
}

describe("native provider: adopting what exists", () => {
  test("behavior: pulumi import of what run402-pulumi created (Tier, Project, Deployment) and of a Secret set beside it: refused without the project's keys, then adopted; the next up sets only the secret's value, then nothing changes, nothing is paid", {
    timeout: 600_000,
  }, async () => {
    const payer = sandbox.wallets[0]!.address.toLowerCase();
    const paid = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer).length;
    // The run402-pulumi CLI converges the quickstart, as a user migrating to a program would have.
    const cliTmp = mkdtempSync(join(engine.dir, "cli-"));
    const app = copyQuickstart(mkdtempSync(join(cliTmp, "app-")), { program: false });
    const applied = await runCli(
      cliTmp,
      [
        "apply",
        "--yes",
        "--json",
        "--manifest",
        join(app, "app.json"),
        ...settingFlags({ ...sandboxSettings(sandbox), journalPath: join(cliTmp, "journal.json") }),
      ],
      { RUN402_PRIVATE_KEY: sandbox.wallets[0]!.privateKey },
    );
    expect(applied.code, why(applied)).toBe(0);
    const projectId = report(applied).outputs?.projectId as string;
    expect(projectId).toMatch(/^prj_/);
    expect(await paid()).toBe(1);

    // The project's keys, from the CLI's stack state (README, "Importing"): the CLI does not print them.
    const work = join(app, ".run402");
    const exported = await pulumiCli(engine, ["stack", "export", "--show-secrets", "--stack", "dev"], {
      cwd: work,
      env: {
        PULUMI_BACKEND_URL: `file://${join(work, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: readFileSync(join(work, "passphrase"), "utf8"),
      },
    });
    expect(exported.code, exported.stderr).toBe(0);
    const state = JSON.parse(exported.stdout) as {
      deployment: { resources: { type: string; outputs?: Record<string, unknown> }[] };
    };
    const plain = (v: unknown) =>
      typeof v === "object" && v !== null && "plaintext" in v
        ? (JSON.parse((v as { plaintext: string }).plaintext) as string)
        : (v as string);
    const project = state.deployment.resources.find((r) => r.type.endsWith("run402:Project"))?.outputs ?? {};
    const keysOfProject = { anon_key: plain(project.anonKey), service_key: plain(project.serviceKey) };
    expect(keysOfProject.service_key).toMatch(/\S/);

    // A secret set beside the program (as the run402 CLI's `secrets set` does).
    const setSecret = await fetch(`${sandbox.apiBase}/projects/v1/admin/${projectId}/secrets`, {
      method: "POST",
      headers: { authorization: `Bearer ${keysOfProject.service_key}`, "content-type": "application/json" },
      body: JSON.stringify({ key: "API_TOKEN", value: "set-out-of-band" }),
    });
    expect(setSecret.ok).toBe(true);

    // A fresh stack of a YAML program that declares them, over its own copy of the app.
    const keys = mkdtempSync(join(engine.dir, "keys-"));
    const dir = copyQuickstart(mkdtempSync(join(engine.dir, "yaml-import-")), { program: false });
    writeFileSync(
      join(dir, "Pulumi.yaml"),
      yamlProgram({
        name: "run402-yaml-import",
        projectName: "quickstart",
        secretValue,
        outputs: { projectId: "project.projectId", url: "site.url" },
      }),
    );
    writeFileSync(
      join(dir, "import.json"),
      JSON.stringify({
        resources: [
          { type: "run402:index:Tier", name: "tier", id: `tier:${payer}` },
          { type: "run402:index:Project", name: "project", id: projectId },
          { type: "run402:index:Deployment", name: "site", id: `${projectId}/deployment` },
          { type: "run402:index:Secret", name: "token", id: `${projectId}/API_TOKEN` },
        ],
      }),
    );
    const env = { RUN402_CONFIG_DIR: keys };
    const cli = (args: string[]) => pulumiCli(engine, args, { cwd: dir, env });
    expect((await cli(["stack", "init", "dev"])).code).toBe(0);
    for (const [key, { value, secret }] of Object.entries(config(0, join(keys, "journal-yaml.json")))) {
      expect((await cli(["config", "set", key, value, ...(secret ? ["--secret"] : [])])).code).toBe(0);
    }
    const importAll = ["import", "--file", "import.json", "--yes", "--skip-preview", "--generate-code=false"];

    const refused = await cli(importAll);
    expect(refused.code).not.toBe(0);
    const said = `${refused.stdout}${refused.stderr}`;
    expect(said).toContain(
      `[IMPORT_KEYS_MISSING] Project ${projectId} exists, but its keys are not in the run402 key store`,
    );
    expect(said).toContain(join(keys, "credentials", "project-keys.v1.json"));

    // Keys of a store that targets another API are never sent to this one.
    writeKeyStore(keys, { [projectId]: keysOfProject }, "https://api.run402.com");
    const elsewhere = await cli(importAll);
    expect(elsewhere.code).not.toBe(0);
    expect(`${elsewhere.stdout}${elsewhere.stderr}`).toMatch(
      /keys were issued by https:\/\/api\.run402\.com, but this run's run402:apiBase is http:\/\/127\.0\.0\.1:\d+; keys are sent only to the origin that issued them, so nothing was sent/,
    );

    writeKeyStore(keys, { [projectId]: keysOfProject });
    const imported = await cli(importAll);
    expect(imported.code, `${imported.stdout}\n${imported.stderr}`).toBe(0);
    expect(`${imported.stdout}${imported.stderr}`).not.toMatch(/failed to validate/);

    // What the next up does: only the secret's value, which Run402 never returns, is written.
    const preview = await cli(["preview", "--json"]);
    expect(preview.code, preview.stderr).toBe(0);
    const steps = (JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[] }).steps
      .filter((s) => s.urn.includes("run402:index:"))
      .map((s) => [s.urn.split("::").pop(), s.op]);
    expect(Object.fromEntries(steps)).toEqual({
      tier: "same",
      project: "same",
      site: "same",
      token: "update",
    });
    const up = await cli(["up", "--yes", "--skip-preview"]);
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    const again = await cli(["up", "--yes", "--expect-no-changes"]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    const outputs = JSON.parse((await cli(["stack", "output", "--json"])).stdout) as {
      projectId: string;
      url: string;
    };
    expect(outputs.projectId).toBe(projectId);
    expect((await fetch(outputs.url)).status).toBe(200);
    expect(await sandbox.projectsOf(0)).toContain(projectId);
    expect(await paid()).toBe(1);
    // The keys are secrets in the new stack's state too.
    expect((await cli(["stack", "export"])).stdout).not.toContain(keysOfProject.service_key);
  });

  test("behavior: a stack made with the dynamic resources moves to the native ones: same project id, nothing deleted, nothing paid", {
    timeout: 600_000,
  }, async () => {
    const keys = mkdtempSync(join(engine.dir, "keys-"));
    const payer = sandbox.wallets[1]!.address.toLowerCase();
    const paid = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer).length;
    const before = await dynamicStack("moving", 1, keys);
    const first = await before.up();
    const projectId = first.outputs.projectId?.value as string;
    expect(await paid()).toBe(1);

    // 1. Keep the remote objects when the dynamic resources leave the program.
    const retained = await dynamicStack("moving", 1, keys, true);
    expect((await retained.up()).summary.result).toBe("succeeded");
    // 2. The keys where an import finds them (the run402 CLI's key store).
    writeKeyStore(keys, {
      [projectId]: {
        anon_key: first.outputs.anonKey?.value as string,
        service_key: first.outputs.serviceKey?.value as string,
      },
    });
    // 3. The native resources: the Tier adopts the active lease, the Project is imported by id.
    const native = await tsStack("moving", { RUN402_CONFIG_DIR: keys }, async () => {
      const tier = new NativeResource("run402:index:Tier", "tier", {
        tier: "prototype",
        wallet: undefined,
        lastSettlement: undefined,
      });
      const project = new NativeResource(
        "run402:index:Project",
        "app",
        { name: "app-moving", projectId: undefined },
        { import: projectId, dependsOn: [tier] },
      );
      return { projectId: project.projectId };
    });
    // An inline workspace is a fresh folder: the stack's config is set again, as for each stack above.
    await native.setAllConfig(config(1, join(keys, "journal.json")));
    const moved = await native.up();
    expect(moved.summary.result).toBe("succeeded");
    expect(moved.outputs.projectId?.value).toBe(projectId);
    expect(await sandbox.projectsOf(1)).toContain(projectId);
    expect(await paid()).toBe(1);
    const state = (await native.exportStack()).deployment as { resources: { type: string }[] };
    expect(state.resources.map((r) => r.type).filter((t) => t.includes("run402"))).toEqual(
      expect.arrayContaining(["run402:index:Tier", "run402:index:Project"]),
    );
    expect(state.resources.some((r) => r.type.startsWith("pulumi-nodejs:dynamic/run402"))).toBe(false);
    // And it stays converged.
    const again = await native.preview();
    expect(again.changeSummary).toEqual({ same: expect.any(Number) });
    expect(await paid()).toBe(1);
  });
});
