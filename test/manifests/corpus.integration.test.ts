/**
 * Every valid manifest of the corpus deploys through the provider's Deployment handlers (check, then
 * create), in process, to the sandbox; the release the provider records is the one `@run402/release`
 * materializes from the manifest's spec, and the sandbox reports it field for field.
 */
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  digestMaterializedRelease,
  digestPortableManifest,
  materializeRelease,
  type PortableReleaseState,
} from "@run402/release";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { configure, getContext } from "../../provider/impl/context.js";
import { deployment, type Inputs, type Outputs } from "../../provider/impl/deployment.js";
import { loadManifest, resolveManifest } from "../../provider/manifest/index.js";
import { sha256Hex } from "../../schema/release.js";
import { preUploadedDir, validDir, validManifests } from "./corpus.js";

// biome-ignore lint/suspicious/noExplicitAny: the test edits a JSON manifest in place
type Json = Record<string, any>;

let sb: TestSandbox;

beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 1 });
  const w = sb.wallets[0]!;
  const config: Record<string, string> = {
    "run402:apiBase": sb.apiBase,
    "run402:privateKey": w.privateKey,
    "run402:baseRpcUrl": sb.x402.rpcUrl,
    "run402:tempoRpcUrl": sb.mpp.rpcUrl,
    "run402:allowedRecipients": sb.treasury,
    "run402:journalPath": join(mkdtempSync(join(tmpdir(), "corpus-")), "journal.jsonl"),
  };
  configure((key) => config[key]);
  const ctx = await getContext();
  await ctx.client.tiers.set({ tier: "prototype", intent: "corpus-tier" });
  await preUpload(await ctx.client.projects.create({ name: "cas", intent: "corpus-cas" }));
});
afterAll(async () => {
  await sb?.close();
});

/** Uploads the corpus's `cas/` files, the content some manifests reference by `{ sha256, size }`. */
async function preUpload(project: { anon_key: string }) {
  const files = readdirSync(preUploadedDir).map((name) => readFileSync(join(preUploadedDir, name)));
  const headers = { apikey: project.anon_key, "content-type": "application/json" };
  const content = files.map((b) => ({ sha256: sha256Hex(b), size: b.length, content_type: "text/plain" }));
  const plan = (await (
    await fetch(`${sb.apiBase}/content/v1/plans`, {
      method: "POST",
      headers,
      body: JSON.stringify({ content }),
    })
  ).json()) as { plan_id: string; missing: { sha256: string; parts: { url: string }[] }[] };
  for (const m of plan.missing) {
    const bytes = files.find((b) => sha256Hex(b) === m.sha256)!;
    expect((await fetch(m.parts[0]!.url, { method: "PUT", body: bytes })).status).toBe(200);
  }
  const commit = await fetch(`${sb.apiBase}/content/v1/plans/${plan.plan_id}/commit`, {
    method: "POST",
    headers,
    body: "{}",
  });
  expect(commit.status).toBe(200);
}

/** A fresh project with every secret the manifest requires set, then check and create, as the engine calls them. */
async function deploy(name: string, manifest: string | Record<string, unknown>, required: string[]) {
  const ctx = await getContext();
  const project = await ctx.client.projects.create({ name, intent: `corpus-${name}` });
  for (const key of required) {
    await ctx.client.secrets.set({
      projectId: project.project_id,
      serviceKey: project.service_key,
      key,
      value: `v-${key}`,
    });
  }
  const checked = await deployment.check(
    {},
    { projectId: project.project_id, anonKey: project.anon_key, manifest, baseDir: validDir },
  );
  expect(checked.failures ?? [], name).toEqual([]);
  const inputs = checked.inputs as Inputs;
  const created = await deployment.create(inputs);
  return { project, inputs, outs: created.outs as Outputs };
}

/** Run402's inventory of the live release, with the sandbox's own record of it (digest, expose, assets). */
async function active(anonKey: string) {
  const live = (await (
    await fetch(`${sb.apiBase}/apply/v1/releases/active`, { headers: { apikey: anonKey } })
  ).json()) as Record<string, unknown> & {
    release_id: string;
    migrations_applied: { migration_id: string }[];
  };
  const own = (await (await fetch(`${sb.apiBase}/_sandbox/releases/${live.release_id}`)).json()) as {
    release_digest: string;
    database: unknown;
    assets: unknown;
  };
  return { ...live, release_digest: own.release_digest, database: own.database, assets: own.assets };
}

describe("the corpus through the provider", () => {
  test.each(validManifests.filter((f) => f !== "base-release-id.json"))(
    "%s: deploys; the recorded release is the one @run402/release materializes",
    async (file) => {
      const { manifest, dir } = await loadManifest(join(validDir, file));
      const resolved = await resolveManifest({ manifest, dir, projectId: "prj_any" });
      const { project, inputs, outs } = await deploy(file, file, resolved.spec.secrets?.require ?? []);

      const expected: PortableReleaseState = materializeRelease({ spec: resolved.spec });
      expect(JSON.parse(outs.release)).toEqual(expected);
      expect(outs.releaseDigest).toBe(digestMaterializedRelease(expected));
      expect(outs.manifestDigest).toBe(digestPortableManifest(resolved.spec));
      // What check planned (and preview showed) is what the server made.
      expect(inputs.releaseDigest).toBe(outs.releaseDigest);

      const live = await active(project.anon_key);
      expect(live.release_id).toBe(outs.releaseId);
      expect(live.release_digest).toBe(outs.releaseDigest);
      expect(live.migrations_applied.map((m) => m.migration_id).sort()).toEqual(
        (resolved.spec.database?.migrations ?? []).map((m) => m.id).sort(),
      );
      if (resolved.spec.database?.expose !== undefined)
        expect(live["database"]).toEqual({ expose: resolved.spec.database.expose });
      const puts = resolved.spec.assets?.put ?? [];
      if (puts.length > 0) {
        const keys = (live["assets"] as { entries: { key: string }[] }).entries.map((e) => e.key);
        expect(keys).toEqual(expect.arrayContaining(puts.map((p) => p.key)));
      }
    },
  );

  test("base-release-id.json: builds on a named release", async () => {
    const first = await deploy("named-base", "site-replace-map.json", []);
    const raw = JSON.parse(readFileSync(join(validDir, "base-release-id.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const manifest = { ...raw, base: { release_id: first.outs.releaseId } };
    const ctx = await getContext();
    const checked = await deployment.check(first.inputs, {
      projectId: first.project.project_id,
      anonKey: first.project.anon_key,
      manifest,
      baseDir: validDir,
    });
    const next = await deployment.update("id", first.outs, checked.inputs as Inputs);
    const outs = next.outs as Outputs;
    expect(Object.keys(outs.files)).toEqual([...Object.keys(first.outs.files), "next.html"].sort());
    expect(outs.changes.site.added).toEqual(["next.html"]);
    expect((await ctx.client.deploy.active({ anonKey: first.project.anon_key })).release_id).toBe(
      outs.releaseId,
    );
  });

  test("preview shows @run402/release's release diff between the recorded release and the planned one", async () => {
    const raw = JSON.parse(readFileSync(join(validDir, "run402-complete.json"), "utf8")) as Json;
    raw.subdomains = { set: ["corpus-preview"] };
    const first = await deploy("preview", raw, ["MAIL_TOKEN"]);
    const next = structuredClone(raw);
    next.site.replace["index.html"] = { data: "<!doctype html><h1>todos, v2</h1>" };
    next.site.replace["robots.txt"] = "User-agent: *";
    delete next.site.replace["favicon.png"];
    next.functions.replace.api.config.memory_mb = 256;
    next.database.migrations.push({
      id: "002_due",
      sql: "ALTER TABLE todos ADD COLUMN IF NOT EXISTS due date;",
    });
    next.routes.replace.push({
      pattern: "/hooks/*",
      methods: ["POST"],
      target: { type: "function", name: "api" },
    });
    next.i18n.locales.push("fr");
    next.secrets = { require: [] };
    const checked = await deployment.check(first.inputs, {
      projectId: first.project.project_id,
      anonKey: first.project.anon_key,
      manifest: next,
      baseDir: validDir,
    });
    const planned = checked.inputs as Inputs;
    expect(planned.changes).toEqual({
      summary: expect.stringContaining("1 migration new"),
      site: { added: ["robots.txt"], removed: ["favicon.png"], changed: ["index.html"] },
      functions: { added: [], removed: [], changed: ["api (memory_mb)"] },
      migrations: { new: ["002_due"] },
      routes: { added: ["/hooks/*"], removed: [], changed: [] },
      secrets: { added: [], removed: [] },
      subdomains: { added: [], removed: [] },
      i18n: {
        from: expect.objectContaining({ locales: ["en", "de"] }),
        to: expect.objectContaining({ locales: ["en", "de", "fr"] }),
      },
      warnings: expect.any(Array),
    });
    expect((await deployment.diff("id", first.outs, planned)).changes).toBe(true);
    // Unchanged: no diff, and nothing planned.
    const same = await deployment.check(first.inputs, {
      projectId: first.project.project_id,
      anonKey: first.project.anon_key,
      manifest: raw,
      baseDir: validDir,
    });
    expect((same.inputs as Inputs).changes.summary).toBe("No changes (noop)");
    expect((await deployment.diff("id", first.outs, same.inputs as Inputs)).changes).toBe(false);
    // And the update makes what preview showed.
    const updated = (await deployment.update("id", first.outs, planned)).outs as Outputs;
    expect(updated.releaseDigest).toBe(planned.releaseDigest);
  });
});
