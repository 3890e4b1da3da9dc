/**
 * Large releases, as the real client sends them: a 10,000-file site plans inline (the body is under
 * 5 MiB), and a spec over 5 MiB is uploaded as content and planned by `manifest_ref`.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSet } from "@run402/release";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { createRun402, type Run402 } from "../client.js";
import { resolveWallet } from "../wallet.js";
import { PLAN_BODY_LIMIT_BYTES, planBody } from "./planRelease.js";

let sb: TestSandbox;
let r402: Run402;
let project: { project_id: string; anon_key: string };

beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 1 });
  r402 = createRun402({
    apiBase: sb.apiBase,
    wallet: resolveWallet({ privateKey: sb.wallets[0]!.privateKey }),
    rail: "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
    journal: { path: join(mkdtempSync(join(tmpdir(), "large-")), "journal.jsonl") },
    rpcUrls: { base: sb.x402.rpcUrl, tempo: sb.mpp.rpcUrl },
  });
  await r402.tiers.set({ tier: "prototype", intent: "large-tier" });
  project = await r402.projects.create({ name: "large", intent: "large-project" });
});
afterAll(async () => {
  await sb?.close();
});

/** `count` site files at paths of about `pathLength` characters; they share a few blobs. */
function site(count: number, pathLength: number) {
  const blobs = ["a", "b", "c"].map((s) => new Uint8Array(Buffer.from(`<p>${s}</p>`)));
  const refs = blobs.map((bytes) => ({
    sha256: createHash("sha256").update(bytes).digest("hex"),
    size: bytes.length,
    contentType: "text/html",
  }));
  const files: FileSet = {};
  for (let i = 0; i < count; i++) {
    const name = `page-${String(i).padStart(6, "0")}.html`;
    files[`${"d/".repeat(Math.max(0, (pathLength - name.length) / 2))}${name}`] = refs[i % 3]!;
  }
  const content = new Map(blobs.map((bytes, i) => [refs[i]!.sha256, { bytes, contentType: "text/html" }]));
  return { files, content };
}

describe("large releases", () => {
  test("a 10,000-file site deploys with an inline plan", async () => {
    const { files, content } = site(10_000, 40);
    const spec = { site: { replace: files } };
    const size = JSON.stringify(planBody({ projectId: project.project_id, spec })).length;
    expect(size).toBeGreaterThan(1024 * 1024);
    expect(size).toBeLessThan(PLAN_BODY_LIMIT_BYTES);
    const mark = (await sb.requests()).length;
    const applied = await r402.deploy.apply({
      projectId: project.project_id,
      anonKey: project.anon_key,
      spec,
      content,
    });
    expect(applied.manifestRef).toBeUndefined();
    expect(applied.releaseId).toMatch(/^rel_/);
    const live = await r402.deploy.active({ anonKey: project.anon_key });
    expect(live.site.paths).toHaveLength(10_000);
    const calls = (await sb.requests()).slice(mark).map((q) => `${q.method} ${q.path}`);
    expect(calls[0]).toBe("POST /apply/v1/plans");
  });

  test("a spec over 5 MiB travels as content and is planned by manifest_ref", async () => {
    const { files, content } = site(20_000, 200);
    const spec = { site: { replace: files } };
    expect(JSON.stringify(planBody({ projectId: project.project_id, spec })).length).toBeGreaterThan(
      PLAN_BODY_LIMIT_BYTES,
    );
    const mark = (await sb.requests()).length;
    const applied = await r402.deploy.apply({
      projectId: project.project_id,
      anonKey: project.anon_key,
      spec,
      content,
    });
    expect(applied.manifestRef).toMatchObject({
      content_type: "application/vnd.run402.deploy-manifest+json",
    });
    expect(applied.manifestRef!.size).toBeGreaterThan(PLAN_BODY_LIMIT_BYTES);
    const live = await r402.deploy.active({ anonKey: project.anon_key });
    expect(live.release_id).toBe(applied.releaseId);
    expect(live.site.paths).toHaveLength(20_000);
    // The spec went up as content first; the plan request named it.
    const calls = (await sb.requests())
      .slice(mark)
      .map((q) => `${q.method} ${q.path.replace(/cpl_\w+/, ":plan").replace(/[0-9a-f]{64}$/, ":sha256")}`);
    expect(calls.slice(0, 4)).toEqual([
      "POST /content/v1/plans",
      "PUT /_uploads/:plan/:sha256",
      "POST /content/v1/plans/:plan/commit",
      "POST /apply/v1/plans",
    ]);
  });
});
