/**
 * Uploads through presigned URLs on a separate origin, as Run402 takes them: the sandbox signs them
 * with the AWS SDK's presigner and checks every PUT as S3 does. Run402's own client (@run402/sdk
 * 3.3.3, x402) and this project's provider (mpp) each deploy a site with a file over the multipart
 * threshold, listed as an upload origin; the bytes served are the bytes sent, and a second plan of
 * the same manifest changes nothing.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { MULTIPART_THRESHOLD_BYTES } from "../../packages/sandbox/api/s3.js";
import { configure, getContext } from "../../provider/impl/context.js";
import { deployment, type Inputs, type Outputs } from "../../provider/impl/deployment.js";

let sb: TestSandbox;
const saved = { ...process.env };

/** Deterministic bytes over the multipart threshold (two parts). */
const big = Buffer.alloc(MULTIPART_THRESHOLD_BYTES + 1024 * 1024);
for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 2, uploads: "presigned" });
  expect(sb.uploadOrigin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(sb.uploadOrigin).not.toBe(sb.apiBase);
});
afterAll(async () => {
  process.env = saved;
  await sb?.close();
});

/** Every PUT the sandbox's API saw (uploads must not go there). */
async function apiPuts() {
  return (await sb.requests()).filter((r) => r.method === "PUT").length;
}

describe("multipart uploads through the presigned-URL origin", () => {
  test("behavior: @run402/sdk 3.3.3 deploys a site with a file over the multipart threshold", async () => {
    const configDir = mkdtempSync(join(tmpdir(), "run402-sdk-"));
    const w = sb.wallets[0]!;
    writeFileSync(
      join(configDir, "allowance.json"),
      JSON.stringify({ address: w.address, privateKey: w.privateKey, rail: "x402" }),
      { mode: 0o600 },
    );
    process.env.RUN402_CONFIG_DIR = configDir;
    process.env.RUN402_API_BASE = sb.apiBase;
    const { run402 } = await import("@run402/sdk/node");
    const r = run402();
    await r.tier.set("prototype");
    const project = (await r.projects.provision({ name: "presigned-sdk" })) as { project_id: string };
    const scoped = await r.project(project.project_id);
    const before = await apiPuts();
    const result = (await scoped.apply(
      {
        project: project.project_id,
        site: {
          replace: {
            "index.html": "<h1>big</h1>",
            "big.bin": { data: new Uint8Array(big), contentType: "application/octet-stream" },
          },
        },
      } as never,
      { maxRetries: 0 },
    )) as { release_id: string };
    expect(result.release_id).toMatch(/^rel_/);
    expect(await apiPuts()).toBe(before);
    const served = Buffer.from(
      await (await fetch(`${sb.apiBase}/_site/${project.project_id}/big.bin`)).arrayBuffer(),
    );
    expect(served.length).toBe(big.length);
    expect(sha(served)).toBe(sha(big));
  });

  test("behavior: the provider (mpp) deploys the same through the upload origin it lists, and plans it again as unchanged", async () => {
    const w = sb.wallets[1]!;
    configure(
      (key) =>
        ({
          "run402:apiBase": sb.apiBase,
          "run402:privateKey": w.privateKey,
          "run402:rail": "mpp",
          "run402:baseRpcUrl": sb.x402.rpcUrl,
          "run402:tempoRpcUrl": sb.mpp.rpcUrl,
          "run402:allowedRecipients": sb.treasury,
          "run402:uploadOrigins": sb.uploadOrigin ?? "",
          "run402:journalPath": join(mkdtempSync(join(tmpdir(), "presigned-")), "journal.jsonl"),
        })[key],
    );
    const ctx = await getContext();
    const bought = await ctx.client.tiers.set({ tier: "prototype", intent: "presigned-tier" });
    expect(bought.settlement).toMatchObject({ rail: "mpp" });
    const project = await ctx.client.projects.create({
      name: "presigned-provider",
      intent: "presigned-provider",
    });
    const dir = mkdtempSync(join(tmpdir(), "presigned-site-"));
    mkdirSync(join(dir, "site"));
    writeFileSync(join(dir, "site", "index.html"), "<h1>provider</h1>");
    // Other bytes than the first test's: content is stored by hash across projects.
    const mine = Buffer.from(big);
    mine[0] = 0xff;
    writeFileSync(join(dir, "site", "big.bin"), mine);
    const news = {
      projectId: project.project_id,
      anonKey: project.anon_key,
      manifest: { site: { dir: "site" } },
      baseDir: dir,
    };
    const checked = await deployment.check({}, news);
    expect(checked.failures ?? []).toEqual([]);
    const before = await apiPuts();
    const created = await deployment.create(checked.inputs as Inputs);
    const outs = created.outs as Outputs;
    expect(outs.uploaded).toContain(sha(mine));
    expect(await apiPuts()).toBe(before);
    const served = Buffer.from(
      await (await fetch(`${sb.apiBase}/_site/${project.project_id}/big.bin`)).arrayBuffer(),
    );
    expect(sha(served)).toBe(sha(mine));
    // The live release is read back as Run402's inventory; the digest recorded is the planned one.
    const again = await deployment.check(outs, news);
    const diff = await deployment.diff("id", outs, again.inputs as Inputs);
    expect(diff.changes).toBe(false);
  });
});
