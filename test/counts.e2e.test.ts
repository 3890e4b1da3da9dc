/**
 * What a command costs, as counts (never as times): the built CLI (dist/cli/main.js) as a child
 * process against a sandbox, with the engine wrapped (`RUN402_PULUMI`) by a script that logs every
 * invocation before it runs the real one.
 * - Each command starts the engine once at most (status: never; the version probe: once per
 *   workspace, for an engine that is not the bundled one).
 * - A no-op apply reads at most once per resource, writes nothing, pays nothing.
 * - After one file of a site changes, apply uploads exactly that file.
 * - A site of 10,000 files deploys (its content plans stay within the server's body limit).
 */
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, type Run, runCli, sandboxSettings, settingFlags, why } from "~test/cli-harness.js";
import { engineBin, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { createRun402, resolveWallet } from "../sdk/index.js";

let sandbox: TestSandbox;
let tmp: string;
/** The wrapped engine and the log it appends each invocation's arguments to. */
let wrapper: string;
let engineLog: string;

beforeAll(async () => {
  assertBuilt();
  const real = join(engineBin, "pulumi");
  if (!existsSync(real))
    throw new Error(`${real} is missing: run \`bash scripts/engine.sh\` (npm test does).`);
  tmp = mkdtempSync(join(tmpdir(), "run402-counts-"));
  engineLog = join(tmp, "engine.log");
  wrapper = join(tmp, "bin", "pulumi");
  mkdirSync(join(tmp, "bin"));
  writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${engineLog}'\nexec '${real}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  // The engine's language host beside the wrapper, where the CLI looks for it.
  symlinkSync(join(engineBin, "pulumi-language-nodejs"), join(tmp, "bin", "pulumi-language-nodejs"));
  sandbox = await startTestSandbox({ walletCount: 4 });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The shared harness (test/cli-harness.ts) with a wallet, and the engine behind the counting wrapper. */
const cli = (args: string[], wallet: number) =>
  runCli(tmp, args, { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey, RUN402_PULUMI: wrapper });

/** Flags pointing the CLI at the sandbox. */
function flags(name: string): string[] {
  return [
    "--rail",
    "x402",
    ...settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, `journal-${name}.json`) }),
    "--json",
  ];
}

/** The engine invocations (their first argument) since the last call. */
let seenInvocations = 0;
function engineRuns(): string[] {
  const lines = existsSync(engineLog) ? readFileSync(engineLog, "utf8").split("\n").filter(Boolean) : [];
  const fresh = lines.slice(seenInvocations);
  seenInvocations = lines.length;
  return fresh;
}

/** A private copy of the quickstart app. */
function appCopy(): string {
  const dir = mkdtempSync(join(tmp, "app-"));
  cpSync(join(repoRoot, "examples", "quickstart", "app.json"), join(dir, "app.json"));
  cpSync(join(repoRoot, "examples", "quickstart", "site"), join(dir, "site"), { recursive: true });
  return dir;
}

/** The API requests `go` makes, each attributed to the resource kind whose routes it uses. */
async function requestsOf(go: () => Promise<unknown>) {
  const mark = (await sandbox.requests()).length;
  await go();
  const made = (await sandbox.requests()).slice(mark);
  const kind = (path: string) =>
    path.startsWith("/tiers/")
      ? "tier"
      : path.startsWith("/projects/")
        ? "project"
        : path.startsWith("/apply/") || path.startsWith("/content/") || path.startsWith("/_uploads/")
          ? "deployment"
          : path;
  const reads: Record<string, number> = {};
  for (const r of made.filter((r) => r.method === "GET")) {
    const k = kind(r.path);
    reads[k] = (reads[k] ?? 0) + 1;
  }
  return {
    reads,
    writes: made.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path}`),
    paid: made.filter((r) => r.paid).length,
    uploads: made.filter((r) => r.method === "PUT" && r.path.startsWith("/_uploads/")).length,
  };
}

describe("counts", () => {
  test("behavior: each command starts the engine once (status never); a no-op apply reads at most once per resource, writes and pays nothing", {
    timeout: 300_000,
  }, async () => {
    const app = appCopy();
    engineRuns();
    const plan = await cli(["plan", "--manifest", app, ...flags("engine")], 0);
    expect(plan.code, why(plan)).toBe(0);
    // An engine that is not the bundled one is asked its version once per workspace, then known.
    expect(engineRuns()).toEqual(["version", "preview"]);

    const apply = await cli(["apply", "--manifest", app, "--yes", ...flags("engine")], 0);
    expect(apply.code, why(apply)).toBe(0);
    expect(engineRuns()).toEqual(["up"]);

    let noop: Run | undefined;
    const made = await requestsOf(async () => {
      noop = await cli(["apply", "--manifest", app, "--yes", ...flags("engine")], 0);
    });
    expect(noop?.code, noop && why(noop)).toBe(0);
    expect(engineRuns()).toEqual(["up"]);
    const resources = (JSON.parse(noop?.stdout ?? "{}") as { resources: { op: string }[] }).resources;
    expect(resources.map((r) => r.op)).toEqual(["same", "same", "same"]);
    // Tier, project, deployment: at most one read each; nothing written, nothing paid.
    for (const [kind, count] of Object.entries(made.reads)) expect([kind, count]).toEqual([kind, 1]);
    expect(made.writes).toEqual([]);
    expect(made.paid).toBe(0);

    const again = await cli(["plan", "--manifest", app, ...flags("engine")], 0);
    expect(again.code, why(again)).toBe(0);
    expect(engineRuns()).toEqual(["preview"]);

    const status = await cli(["status", "--manifest", app, "--json"], 0);
    expect(status.code, why(status)).toBe(0);
    expect(engineRuns()).toEqual([]);
  });

  test("behavior: after one file of a 300-file site changes, apply uploads exactly that file", {
    timeout: 300_000,
  }, async () => {
    const app = mkdtempSync(join(tmp, "site-"));
    mkdirSync(join(app, "site", "pages"), { recursive: true });
    for (let i = 0; i < 300; i++)
      writeFileSync(join(app, "site", "pages", `p${i}.html`), `<h1>page ${i}</h1>`);
    writeFileSync(
      join(app, "app.json"),
      JSON.stringify({ tier: "prototype", project: { name: "uploads" }, site: { dir: "site" } }),
    );
    const first = await requestsOf(async () => {
      const run = await cli(["apply", "--manifest", app, "--yes", ...flags("uploads")], 1);
      expect(run.code, why(run)).toBe(0);
    });
    expect(first.uploads).toBe(300);

    writeFileSync(join(app, "site", "pages", "p7.html"), "<h1>page 7, edited</h1>");
    const second = await requestsOf(async () => {
      const run = await cli(["apply", "--manifest", app, "--yes", ...flags("uploads")], 1);
      expect(run.code, why(run)).toBe(0);
    });
    expect(second.uploads).toBe(1);
    expect(second.paid).toBe(0);
    const sha = createHash("sha256").update("<h1>page 7, edited</h1>").digest("hex");
    const puts = (await sandbox.requests()).filter((r) => r.method === "PUT").slice(-1);
    expect(puts[0]?.path).toContain(sha);
  });

  // Listed in one content plan, 10,000 refs are over 1.2 MB: more than the sandbox's 1 MiB body limit.
  test("behavior: a site of 10,000 files deploys; every file is uploaded once", {
    timeout: 300_000,
  }, async () => {
    const wallet = resolveWallet({ privateKey: sandbox.wallets[2]!.privateKey });
    const client = createRun402({
      apiBase: sandbox.apiBase,
      wallet,
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1, allowedRecipients: [sandbox.treasury] },
      rpcUrls: { base: sandbox.x402.rpcUrl, tempo: sandbox.mpp.rpcUrl },
    });
    await client.tiers.set({ tier: "prototype", intent: `counts-${Date.now()}` });
    const project = await client.projects.create({ name: "ten-thousand", intent: `counts-p-${Date.now()}` });
    const replace: Record<string, { sha256: string; size: number; contentType: string }> = {};
    const content = new Map<string, { bytes: Uint8Array; contentType: string }>();
    for (let i = 0; i < 10_000; i++) {
      const bytes = new Uint8Array(Buffer.from(`file ${i}`));
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      replace[`f/${i}.bin`] = { sha256, size: bytes.length, contentType: "application/octet-stream" };
      content.set(sha256, { bytes, contentType: "application/octet-stream" });
    }
    const made = await requestsOf(async () => {
      const result = await client.deploy.apply({
        projectId: project.project_id,
        anonKey: project.anon_key,
        spec: { site: { replace } },
        content,
      });
      expect(result.uploaded).toHaveLength(10_000);
    });
    expect(made.uploads).toBe(10_000);
  });
});
