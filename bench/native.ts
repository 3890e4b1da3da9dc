/**
 * Dynamic vs native provider, same run, interleaved: the quickstart's Tier, Project and Deployment
 * declared as the dynamic resources (what run402-pulumi uses today) and as the native `run402`
 * provider's resources (tokens, plugin on PATH), each through an inline Automation API stack against
 * the sandbox: first apply (pays once) and a no-op up. Run: `npx tsx bench/native.ts [rounds]`.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace } from "@pulumi/pulumi/automation/index.js";
import { Deployment, Project, Tier } from "../provider/index.js";
import { createEngineWorkspace, repoRoot } from "../test/engine.js";
import { startTestSandbox } from "../test/sandbox.js";

class NativeResource extends pulumi.CustomResource {
  declare readonly projectId: pulumi.Output<string>;
  declare readonly anonKey: pulumi.Output<string>;
}

const rounds = Number(process.argv[2] ?? 2);
const engine = await createEngineWorkspace();
const sandbox = await startTestSandbox({ walletCount: rounds * 2 });
const results: { kind: string; first: number; noop: number }[] = [];
try {
  for (let round = 0; round < rounds; round++) {
    for (const kind of ["dynamic", "native"] as const) {
      const wallet = round * 2 + (kind === "native" ? 1 : 0);
      const app = mkdtempSync(join(engine.dir, "app-"));
      cpSync(join(repoRoot, "examples", "quickstart"), app, {
        recursive: true,
        filter: (src) => !/node_modules|\.run402|Pulumi\.|index\.ts/.test(src),
      });
      const manifest = join(app, "app.json");
      const program = async () => {
        if (kind === "dynamic") {
          const tier = new Tier("tier", { tier: "prototype" });
          const project = new Project("project", { name: "bench" }, { dependsOn: [tier] });
          const site = new Deployment("site", { project, manifest });
          return { url: site.url };
        }
        const tier = new NativeResource("run402:index:Tier", "tier", { tier: "prototype" });
        const project = new NativeResource(
          "run402:index:Project",
          "project",
          { name: "bench", projectId: undefined, anonKey: undefined },
          { dependsOn: [tier] },
        );
        new NativeResource("run402:index:Deployment", "site", {
          projectId: project.projectId,
          anonKey: project.anonKey,
          manifest,
        });
        return {};
      };
      const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: `${kind}-${round}`, projectName: "bench-native", program },
        {
          pulumiCommand: engine.pulumiCommand,
          envVars: { ...engine.env, PATH: `${join(repoRoot, "bin")}:${engine.env.PATH}` },
          pulumiHome: engine.env.PULUMI_HOME,
          secretsProvider: "passphrase",
          projectSettings: {
            name: "bench-native",
            runtime: "nodejs",
            main: repoRoot,
            backend: { url: engine.backendUrl },
          },
        },
      );
      const w = sandbox.wallets[wallet]!;
      await stack.setAllConfig({
        "run402:apiBase": { value: sandbox.apiBase },
        "run402:rail": { value: "x402" },
        "run402:privateKey": { value: w.privateKey, secret: true },
        "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
        "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
        "run402:allowedRecipients": { value: sandbox.treasury },
        "run402:journalPath": { value: join(app, "journal.json") },
      });
      let t = performance.now();
      await stack.up();
      const first = performance.now() - t;
      t = performance.now();
      const noop = await stack.up();
      const noopMs = performance.now() - t;
      if (JSON.stringify(noop.summary.resourceChanges) !== JSON.stringify({ same: 4 })) {
        throw new Error(
          `${kind}: the second up changed something: ${JSON.stringify(noop.summary.resourceChanges)}`,
        );
      }
      results.push({ kind, first, noop: noopMs });
      process.stderr.write(
        `${kind} round ${round}: first apply ${(first / 1000).toFixed(1)} s, no-op up ${(noopMs / 1000).toFixed(1)} s (load ${loadavg()[0]?.toFixed(2)})\n`,
      );
    }
  }
} finally {
  await sandbox.close();
  engine.cleanup();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
for (const kind of ["dynamic", "native"]) {
  const mine = results.filter((r) => r.kind === kind);
  console.log(
    `${kind}: first apply median ${(median(mine.map((r) => r.first)) / 1000).toFixed(1)} s, no-op up median ${(median(mine.map((r) => r.noop)) / 1000).toFixed(1)} s (${mine.length} runs)`,
  );
}
