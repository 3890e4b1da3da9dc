/**
 * Adopting what exists with the native `run402` provider, through the real engine against the sandbox:
 *   - `pulumi import run402:index:Project` of a project another program created, into a fresh stack of a
 *     YAML program: refused with a clear message while the key store lacks its keys, adopted once they
 *     are there, and the next `up` changes and pays nothing;
 *   - a stack made with the dynamic resources moves to the native ones in place (TypeScript program,
 *     the plugin found on PATH): the project keeps its id, the tier is adopted, nothing is paid.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli, repoRoot } from "~test/engine.js";
import { siwxHeader, startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { Project, Tier } from "../provider/index.js";

/** A resource of the native provider, declared by its token (what a generated SDK's classes do). */
class NativeResource extends pulumi.CustomResource {
  declare readonly projectId: pulumi.Output<string>;
}

let engine: EngineWorkspace;
let sandbox: TestSandbox;

beforeAll(async () => {
  if (!existsSync(join(repoRoot, "dist", "provider", "native", "main.js"))) {
    throw new Error("dist/provider/native/main.js is missing: run `npm run build` (npm test does).");
  }
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 3 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

function config(wallet: number, journal: string): Record<string, { value: string; secret?: boolean }> {
  return {
    "run402:apiBase": { value: sandbox.apiBase },
    "run402:rail": { value: "x402" },
    "run402:privateKey": { value: sandbox.wallets[wallet]!.privateKey, secret: true },
    "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
    "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
    "run402:allowedRecipients": { value: sandbox.treasury },
    "run402:journalPath": { value: journal },
  };
}

/** An inline TypeScript stack whose provider processes see `env` (and the plugin on PATH). */
async function tsStack(
  name: string,
  env: Record<string, string>,
  program: () => Promise<Record<string, unknown>>,
) {
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, projectName: "run402-migrate", program },
    {
      pulumiCommand: engine.pulumiCommand,
      envVars: { ...engine.env, ...env, PATH: `${join(repoRoot, "bin")}:${engine.env.PATH}` },
      pulumiHome: engine.env.PULUMI_HOME,
      secretsProvider: "passphrase",
      projectSettings: {
        name: "run402-migrate",
        runtime: "nodejs",
        main: repoRoot,
        backend: { url: engine.backendUrl },
      },
    },
  );
  return stack;
}

/** The run402 CLI's key store in `dir`, holding `projects`. */
function writeKeyStore(dir: string, projects: Record<string, { anon_key: string; service_key: string }>) {
  mkdirSync(join(dir, "credentials"), { recursive: true });
  writeFileSync(join(dir, "credentials", "project-keys.v1.json"), JSON.stringify({ projects }));
}

async function liveProjects(wallet: number): Promise<string[]> {
  const url = `${sandbox.apiBase}/projects/v1`;
  const response = await fetch(url, {
    headers: { "sign-in-with-x": await siwxHeader(sandbox.wallets[wallet]!.privateKey, url) },
  });
  return ((await response.json()) as { projects: { id: string }[] }).projects.map((p) => p.id);
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
  test("behavior: pulumi import of a Project another program created: refused without its keys (saying how to provide them), then adopted; the next up changes and pays nothing", {
    timeout: 600_000,
  }, async () => {
    const keys = mkdtempSync(join(engine.dir, "keys-"));
    const payer = sandbox.wallets[0]!.address.toLowerCase();
    const paid = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer).length;
    // Another program (TypeScript, dynamic resources) creates the project.
    const creator = await dynamicStack("creator", 0, keys);
    const created = await creator.up();
    const projectId = created.outputs.projectId?.value as string;
    expect(projectId).toMatch(/^prj_/);
    expect(await paid()).toBe(1);

    // A fresh stack of a YAML program that declares it.
    const dir = mkdtempSync(join(engine.dir, "yaml-import-"));
    writeFileSync(
      join(dir, "Pulumi.yaml"),
      `name: run402-yaml-import
runtime: yaml
plugins:
  providers:
    - name: run402
      path: ${join(repoRoot, "bin")}
resources:
  app:
    type: run402:index:Project
    properties:
      name: app-creator
outputs:
  projectId: \${app.projectId}
`,
    );
    const env = { RUN402_CONFIG_DIR: keys };
    const cli = (args: string[]) => pulumiCli(engine, args, { cwd: dir, env });
    expect((await cli(["stack", "init", "dev"])).code).toBe(0);
    for (const [key, { value, secret }] of Object.entries(config(0, join(keys, "journal-yaml.json")))) {
      expect((await cli(["config", "set", key, value, ...(secret ? ["--secret"] : [])])).code).toBe(0);
    }

    const refused = await cli([
      "import",
      "run402:index:Project",
      "app",
      projectId,
      "--yes",
      "--skip-preview",
      "--generate-code=false",
    ]);
    expect(refused.code).not.toBe(0);
    const said = `${refused.stdout}${refused.stderr}`;
    expect(said).toContain(
      `[IMPORT_KEYS_MISSING] Project ${projectId} exists, but its keys are not in the run402 key store`,
    );
    expect(said).toContain(join(keys, "credentials", "project-keys.v1.json"));

    // The keys, as the run402 CLI stores them.
    writeKeyStore(keys, {
      [projectId]: {
        anon_key: created.outputs.anonKey?.value as string,
        service_key: created.outputs.serviceKey?.value as string,
      },
    });
    const imported = await cli([
      "import",
      "run402:index:Project",
      "app",
      projectId,
      "--yes",
      "--skip-preview",
      "--generate-code=false",
    ]);
    expect(imported.code, `${imported.stdout}\n${imported.stderr}`).toBe(0);
    const up = await cli(["up", "--yes", "--expect-no-changes"]);
    expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
    const outputs = JSON.parse((await cli(["stack", "output", "--json"])).stdout) as { projectId: string };
    expect(outputs.projectId).toBe(projectId);
    expect(await paid()).toBe(1);
    // The key store's keys are secrets in the new stack's state too.
    const exported = (await cli(["stack", "export"])).stdout;
    expect(exported).not.toContain(created.outputs.serviceKey?.value as string);
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
    expect(await liveProjects(1)).toContain(projectId);
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
