/**
 * Corpus manifests through the real Pulumi engine: a folder holding Run402's `run402.deploy.json` is
 * found like app.json, deploys, and its preview shows the release diff `@run402/release` computes.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation/index.js";
import { digestMaterializedRelease, materializeRelease } from "@run402/release";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, inlineStack } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { resolveManifest } from "../../provider/manifest/index.js";
import { manifestStack } from "../../provider/stack.js";
import { validDir } from "./corpus.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 1 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

async function stackFor(app: string): Promise<Stack> {
  const stack = await inlineStack(engine, {
    projectName: "run402-corpus-e2e",
    program: async () => (await manifestStack({ manifest: app, tier: "prototype" })).outputs,
  });
  const w = sandbox.wallets[0]!;
  await stack.setAllConfig({
    "run402:apiBase": { value: sandbox.apiBase },
    "run402:privateKey": { value: w.privateKey, secret: true },
    "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
    "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
    "run402:allowedRecipients": { value: sandbox.treasury },
    "run402:journalPath": { value: join(engine.dir, "journal.jsonl") },
  });
  return stack;
}

describe("the corpus through the engine", () => {
  test("a run402.deploy.json folder deploys (i18n, functions, priced routes); preview --diff shows each change as what it is", async () => {
    const app = mkdtempSync(join(engine.dir, "app-"));
    cpSync(join(validDir, "site"), join(app, "site"), { recursive: true });
    cpSync(join(validDir, "fn"), join(app, "fn"), { recursive: true });
    const i18n = JSON.parse(readFileSync(join(validDir, "i18n-snake.json"), "utf8"));
    const priced = JSON.parse(readFileSync(join(validDir, "routes-pricing.json"), "utf8"));
    const manifest = { ...i18n, ...priced };
    writeFileSync(join(app, "run402.deploy.json"), JSON.stringify(manifest, null, 2));

    const stack = await stackFor(app);
    const up = await stack.up();
    expect(up.summary.result).toBe("succeeded");
    const release = await resolveManifest({ manifest, dir: app, projectId: "prj_e2e" });
    const expected = materializeRelease({ spec: release.spec });
    expect(up.outputs.releaseDigest?.value).toBe(digestMaterializedRelease(expected));

    // Change the locales, a priced route and a page: preview names them as @run402/release does, and pays nothing.
    manifest.i18n.locales = ["en", "es"];
    manifest.routes.replace[1].pricing.amount_usd_micros = 500000;
    writeFileSync(join(app, "site", "index.html"), "<!doctype html><h1>Home, again</h1>");
    writeFileSync(join(app, "run402.deploy.json"), JSON.stringify(manifest, null, 2));
    const paidBefore = (await sandbox.ledger()).length;
    const preview = await stack.preview({ diff: true });
    expect(preview.changeSummary).toMatchObject({ update: 1 });
    // Pulumi's diff of the release as maps: the page, the route's price and the locale, each as what it is.
    expect(preview.stdout).toMatch(/~ index\.html\s*: "[0-9a-f]{64}" => "[0-9a-f]{64}"/);
    expect(preview.stdout).toMatch(/~ \/premium[^\n]*: \{[\s\S]*?~ amount_usd_micros: \d+ => 500000/);
    expect(preview.stdout).toMatch(/i18n[\s\S]*- \[2\]: "fr"/);
    expect((await sandbox.ledger()).length).toBe(paidBefore);

    const again = await stack.up();
    expect(again.summary.resourceChanges).toMatchObject({ update: 1 });
    expect((again.outputs["changes"]!.value as { routes: { changed: string[] } }).routes.changed).toEqual([
      "/premium (pricing)",
    ]);
    await stack.destroy();
  });
});
