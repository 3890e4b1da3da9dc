/**
 * What `pulumi preview` and `pulumi up` print by default (no --diff, no --json), through the real
 * CLI in a program folder against the sandbox: the amount a run would pay is on the screen that
 * asks to pay it, as the provider plans it from the server's state (nothing for a held lease), and
 * preview pays nothing.
 */
import { cpSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sandboxSettings } from "~test/cli-harness.js";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 3 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** A program folder (the quickstart's site) whose Tier's tier is the config `app:tier`. */
function program(): string {
  const dir = mkdtempSync(join(engine.dir, "program-"));
  cpSync(join(repoRoot, "examples", "quickstart", "site"), join(dir, "site"), { recursive: true });
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, "Pulumi.yaml"), "name: screen\nruntime: nodejs\nmain: index.ts\n");
  writeFileSync(join(dir, "app.json"), JSON.stringify({ site: { dir: "site" } }));
  writeFileSync(
    join(dir, "index.ts"),
    [
      'import * as pulumi from "@pulumi/pulumi";',
      'import { Deployment, Project, Tier } from "pulumi-run402";',
      'const tier = new Tier("tier", { tier: new pulumi.Config("app").require("tier") as "prototype" });',
      'const project = new Project("app", { name: "screen" }, { dependsOn: [tier] });',
      'new Deployment("site", { project, manifest: "app.json" });',
      "",
    ].join("\n"),
  );
  return dir;
}

/** A stack of `program()` on wallet `wallet`; returns the CLI bound to it. */
async function stackOn(dir: string, stack: string, wallet: number) {
  const env = { RUN402_CONFIG_DIR: mkdtempSync(join(engine.dir, "run402-")) };
  const cli = (...args: string[]) => pulumiCli(engine, [...args, "--stack", stack], { cwd: dir, env });
  const init = await cli("stack", "init");
  expect(init.code, init.stderr).toBe(0);
  const settings: Record<string, string> = {
    ...Object.fromEntries(Object.entries(sandboxSettings(sandbox)).map(([key, v]) => [`run402:${key}`, v])),
    "run402:rail": "x402",
    "run402:maxPaymentUsd": "20",
    "app:tier": "prototype",
  };
  for (const [key, value] of Object.entries(settings)) {
    const set = await cli("config", "set", key, value);
    expect(set.code, `${key}: ${set.stderr}`).toBe(0);
  }
  const key = sandbox.wallets[wallet]!.privateKey;
  expect((await cli("config", "set", "--secret", "run402:privateKey", key)).code).toBe(0);
  return cli;
}

/** The Diagnostics block the CLI prints for the Tier's row (empty when it has none). */
function tierDiagnostics(stdout: string): string {
  const match = /Diagnostics:\n([\s\S]*?)\nResources:/.exec(stdout);
  const block = match?.[1] ?? "";
  const tier = /run402:Tier \(tier\):\n((?: {4}.*\n?)*)/.exec(`${block}\n`);
  return tier?.[1] ?? "";
}

describe("the default preview and up screens", () => {
  test("behavior: the amount to pay is on the Tier's row in preview and up; a converged stack shows none; a held lease says adopted", async () => {
    const dir = program();
    const cli = await stackOn(dir, "first", 0);
    const payments = async () => (await sandbox.requests()).filter((r) => r.method === "POST").length;

    const before = await payments();
    const preview = await cli("preview");
    expect(preview.code, preview.stderr + preview.stdout).toBe(0);
    expect(tierDiagnostics(preview.stdout)).toMatch(/will pay \$0\.10 on x402 .*subscribe.*prototype/);
    expect(await payments(), "preview posts nothing").toBe(before);

    // `pulumi up` shows its preview first (the confirmation screen; --yes only skips the question).
    const up = await cli("up", "--yes");
    expect(up.code, up.stderr + up.stdout).toBe(0);
    expect(up.stdout).toMatch(/will pay \$0\.10 on x402/);
    expect(up.stdout).toMatch(/paid \$0\.10 on x402/);
    // Upload and deploy progress is on the Deployment's row (docs/cli.md), not the Stack's.
    expect(up.stdout).toMatch(/run402:Deployment site .*uploaded \d+ of \d+ files/);
    expect(up.stdout).not.toMatch(/pulumi:Stack .*(uploaded|deploy op_)/);

    const afterUp = await payments();
    const converged = await cli("preview");
    expect(converged.code, converged.stderr).toBe(0);
    expect(converged.stdout).not.toContain("$");

    // An upgrade to team: $20, on the default screen.
    expect((await cli("config", "set", "app:tier", "team")).code).toBe(0);
    const upgrade = await cli("preview");
    expect(upgrade.code, upgrade.stderr + upgrade.stdout).toBe(0);
    expect(tierDiagnostics(upgrade.stdout)).toMatch(/will pay \$20\.00 on x402 .*upgrade.*team/);
    expect(await payments(), "preview posts nothing").toBe(afterUp);

    // Another stack on the same wallet finds the prototype lease held: adopted, nothing to pay.
    const other = await stackOn(program(), "second", 0);
    const adopt = await other("preview");
    expect(adopt.code, adopt.stderr + adopt.stdout).toBe(0);
    const said = tierDiagnostics(adopt.stdout);
    expect(said).toMatch(/adopt/);
    expect(said).toMatch(/nothing to pay/);
    expect(adopt.stdout).not.toMatch(/will pay/);
  });

  test("behavior: a Deployment given an app.json with tier and project blocks says it does not read them, on its row", async () => {
    const dir = program();
    writeFileSync(
      join(dir, "app.json"),
      JSON.stringify({ tier: "hobby", project: { name: "ignored" }, site: { dir: "site" } }),
    );
    const cli = await stackOn(dir, "blocks", 1);
    const preview = await cli("preview");
    expect(preview.code, preview.stderr + preview.stdout).toBe(0);
    // Every resource's diagnostics, in whichever order the engine prints them.
    const block = /Diagnostics:\n([\s\S]*?)\nResources:/.exec(preview.stdout)?.[1] ?? "";
    const row = /run402:Deployment \(site\):\n((?: {4}.*\n?)*)/.exec(`${block}\n`)?.[1] ?? "";
    expect(row).toMatch(/warning: app\.json: \/tier, \/project are not read by a Deployment/);
    expect(row).toMatch(/Declare a Tier and a Project in the program/);
    // The program's own Tier (prototype) is what is paid for, not the manifest's hobby block.
    expect(preview.stdout).not.toMatch(/\$5\.00/);
  });
});

describe("the --diff screen of a Deployment", () => {
  test("behavior: after one file changes and one is added, the diff names exactly those, and nothing reads as removed", async () => {
    const dir = program();
    // Its own wallet: the tier it buys must not be there for the tests that need none.
    const cli = await stackOn(dir, "diff", 2);
    const up = await cli("up", "--yes");
    expect(up.code, up.stderr + up.stdout).toBe(0);
    writeFileSync(join(dir, "site", "index.html"), "<p>changed</p>");
    writeFileSync(join(dir, "site", "new.html"), "<p>new</p>");
    const preview = await cli("preview", "--diff");
    expect(preview.code, preview.stderr + preview.stdout).toBe(0);
    const text = preview.stdout;
    expect(text).toMatch(/~ index\.html: "[0-9a-f]{64}" => "[0-9a-f]{64}"/);
    expect(text).toMatch(/\+ new\.html\s*: "[0-9a-f]{64}"/);
    // No removal is planned, so no line may read as one: what the last plan changed, or the
    // release's file list diffed by position, is not shown.
    expect(text.split("\n").filter((line) => /^\s*- /.test(line))).toEqual([]);
    expect(text).not.toMatch(/style\.css"? =>|=> "?new\.html/);
  });
});

describe("errors on the default screen name the way out", () => {
  test("error: an unreachable API names run402:apiBase and the URL, once, without a stack trace", async () => {
    const cli = await stackOn(program(), "unreachable", 1);
    // A port nothing listens on: the one a server just closed.
    const server = createServer();
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
    const { port } = server.address() as AddressInfo;
    await new Promise((closed) => server.close(closed));
    const apiBase = `http://127.0.0.1:${port}`;
    const preview = await cli("preview", "--config", `run402:apiBase=${apiBase}`);
    expect(preview.code).not.toBe(0);
    const text = preview.stdout + preview.stderr;
    expect(text).toContain(`The Run402 API at ${apiBase} did not answer`);
    expect(text).toMatch(/pulumi config set run402:apiBase/);
    expect(text).not.toMatch(/\.ts:\d+:\d+/);
    expect(text).not.toMatch(/^\s+at /m);
    // One line in the Diagnostics, on the resource that asked (not a second copy on the Stack's row).
    expect(text.split("\n").filter((l) => /^\s+error: .*did not answer/.test(l))).toHaveLength(1);
  });

  test("error: no wallet key names run402:privateKey and the environment variable", async () => {
    const cli = await stackOn(program(), "nokey", 1);
    expect((await cli("config", "rm", "run402:privateKey")).code).toBe(0);
    const preview = await cli("preview");
    expect(preview.code).not.toBe(0);
    const text = preview.stdout + preview.stderr;
    expect(text).toContain("pulumi config set --secret run402:privateKey");
    expect(text).toContain("RUN402_PRIVATE_KEY");
    expect(text).not.toMatch(/pass privateKey/);
  });

  test("error: a Project without an active tier tells a Pulumi user to declare one and depend on it", async () => {
    const dir = program();
    writeFileSync(
      join(dir, "index.ts"),
      'import { Project } from "pulumi-run402";\nnew Project("app", { name: "notier" });\n',
    );
    const cli = await stackOn(dir, "notier", 1);
    const up = await cli("up", "--yes", "--skip-preview");
    expect(up.code).not.toBe(0);
    const text = up.stdout + up.stderr;
    expect(text).toMatch(/dependsOn: \[tier\]/);
    expect(text).not.toMatch(/POST \/tiers\/v1\/:tier/);
  });
});
