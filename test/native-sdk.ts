/**
 * The native `run402` provider (provider/native/, its plugin bin/pulumi-resource-run402) in the e2e
 * tests (imported as `~test/native-sdk.js`): the check that it is built, the stack settings that
 * point it at a test sandbox, a YAML program over the quickstart app, an inline TypeScript stack
 * whose engine finds the plugin on PATH, and the Node.js SDK `pulumi package gen-sdk` makes for it.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import type * as pulumi from "@pulumi/pulumi";
import type { PulumiFn, Stack } from "@pulumi/pulumi/automation/index.js";
import { type EngineWorkspace, inlineStack, repoRoot } from "./engine.js";
import type { TestSandbox } from "./sandbox.js";

/** Fails (in a `beforeAll`) when the native provider is not built. */
export function assertNativeBuilt(): void {
  if (!existsSync(join(repoRoot, "dist", "provider", "native", "main.js"))) {
    throw new Error("dist/provider/native/main.js is missing: run `npm run build` (npm test does).");
  }
}

/** A stack's config, as `Stack.setAllConfig` takes it. */
export type StackConfig = Record<string, { value: string; secret?: boolean }>;

/**
 * The stack settings that point the provider at `sandbox`: its API, both chains' RPCs and its
 * treasury, paying from sandbox wallet `wallet` (its key a secret) on `rail`, with the payment
 * journal at `journalPath`.
 */
export function nativeConfig(
  sandbox: TestSandbox,
  wallet: number,
  rail: "x402" | "mpp",
  journalPath: string,
): StackConfig {
  return {
    "run402:apiBase": { value: sandbox.apiBase },
    "run402:rail": { value: rail },
    "run402:privateKey": { value: sandbox.wallets[wallet]!.privateKey, secret: true },
    "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
    "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
    "run402:allowedRecipients": { value: sandbox.treasury },
    "run402:journalPath": { value: journalPath },
  };
}

/**
 * The Pulumi.yaml of a YAML program `name` over the quickstart's app.json beside it, with the plugin
 * from bin/: a Tier `tier`, a Project `project` named `projectName` (after the tier), its
 * Deployment `site` and a Secret `token` (API_TOKEN, `secretValue`); `outputs` maps each output to
 * the property it shows (e.g. `{ projectId: "project.projectId" }`).
 */
export function yamlProgram(options: {
  name: string;
  projectName: string;
  secretValue: string;
  outputs: Record<string, string>;
}): string {
  return `name: ${options.name}
runtime: yaml
plugins:
  providers:
    - name: run402
      path: ${join(repoRoot, "bin")}
resources:
  tier:
    type: run402:index:Tier
    properties:
      tier: prototype
  project:
    type: run402:index:Project
    properties:
      name: ${options.projectName}
    options:
      dependsOn:
        - \${tier}
  site:
    type: run402:index:Deployment
    properties:
      projectId: \${project.projectId}
      anonKey: \${project.anonKey}
      manifest: app.json
  token:
    type: run402:index:Secret
    properties:
      projectId: \${project.projectId}
      serviceKey: \${project.serviceKey}
      name: API_TOKEN
      value:
        fn::secret: ${options.secretValue}
outputs:
${Object.entries(options.outputs)
  .map(([name, property]) => `  ${name}: \${${property}}\n`)
  .join("")}`;
}

/**
 * Creates (or selects) a stack of an inline TypeScript program whose engine finds the plugin on PATH
 * (bin/, as a program on a generated SDK does) and whose provider processes see `env`.
 */
export function pluginStack(
  engine: EngineWorkspace,
  options: { projectName: string; stackName: string; program: PulumiFn; env?: Record<string, string> },
): Promise<Stack> {
  return inlineStack(engine, {
    ...options,
    env: { ...options.env, PATH: `${join(repoRoot, "bin")}:${engine.env.PATH}` },
  });
}

/** The generated Node.js SDK's resource classes, by name (`Tier`, `Project`, `Deployment`, `Secret`). */
export type NodeSdk = Record<
  string,
  new (
    name: string,
    args: Record<string, unknown>,
    opts?: pulumi.CustomResourceOptions,
  ) => pulumi.CustomResource & Record<string, pulumi.Output<unknown>>
>;

/**
 * The Node.js SDK as `pulumi package gen-sdk` would make it (scripts/sdk-gen.sh), generated into
 * `out`, compiled and loaded.
 */
export async function generateNodeSdk(out: string): Promise<NodeSdk> {
  const run = promisify(execFile);
  await run("bash", [join(repoRoot, "scripts", "sdk-gen.sh"), out, "nodejs"], { cwd: repoRoot });
  const sdk = join(out, "nodejs");
  symlinkSync(join(repoRoot, "node_modules"), join(sdk, "node_modules"), "dir");
  await run(join(repoRoot, "node_modules", ".bin", "tsc"), ["-p", sdk], { cwd: sdk });
  // What a publish step does: the compiled package reads its version from a package.json beside it.
  cpSync(join(sdk, "package.json"), join(sdk, "bin", "package.json"));
  return createRequire(import.meta.url)(join(sdk, "bin", "index.js")) as NodeSdk;
}
