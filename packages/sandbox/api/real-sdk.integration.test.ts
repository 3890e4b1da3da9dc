/**
 * Run402's own client, `@run402/sdk` 3.3.3 from npm, drives the sandbox as it would drive Run402: it
 * buys a tier (paying with its own x402 fetch), provisions a project, sets a secret, applies a release
 * with migrations, a site, functions, secrets, a subdomain and routes, and reads it back.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { digestMaterializedRelease, materializeRelease } from "@run402/release";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

let sb: TestSandbox;
const saved = { ...process.env };

beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 1 });
  // The SDK reads its wallet (the "allowance") and API base the way the run402 CLI does: from its config dir.
  const configDir = mkdtempSync(join(tmpdir(), "run402-sdk-"));
  mkdirSync(configDir, { recursive: true });
  const w = sb.wallets[0]!;
  writeFileSync(
    join(configDir, "allowance.json"),
    JSON.stringify({ address: w.address, privateKey: w.privateKey, rail: "x402" }),
    { mode: 0o600 },
  );
  process.env.RUN402_CONFIG_DIR = configDir;
  process.env.RUN402_API_BASE = sb.apiBase;
});
afterAll(async () => {
  process.env = saved;
  await sb?.close();
});

describe("@run402/sdk 3.3.3 against the sandbox", () => {
  test("tier, provision, secret, apply (migrations, site, functions, secrets, subdomain, routes), read back", async () => {
    const { run402 } = await import("@run402/sdk/node");
    const r = run402();

    const tier: unknown = await r.tier.set("prototype");
    expect(tier).toMatchObject({ action: "subscribe", tier: "prototype", wallet: sb.wallets[0]!.address });
    const paid = await sb.ledger();
    expect(paid).toMatchObject([{ rail: "x402", amount: "100000", payer: sb.wallets[0]!.address }]);
    expect((await r.tier.status()) as unknown).toMatchObject({
      tier: "prototype",
      active: true,
    });

    const project = (await r.projects.provision({ name: "real-sdk" })) as {
      project_id: string;
      anon_key: string;
    };
    expect(project.project_id).toMatch(/^prj_/);
    await r.secrets.set(project.project_id, "STRIPE_KEY", "sk_test_real_sdk");

    const html = "<!doctype html><h1>deployed by @run402/sdk</h1>";
    const sql =
      "CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());";
    const spec = {
      project: project.project_id,
      database: { migrations: [{ id: "001_visits", sql }] },
      site: { replace: { "index.html": html, "about.html": "<h1>about</h1>" } },
      functions: {
        replace: {
          api: {
            runtime: "node22" as const,
            source: "export default async () => Response.json({ ok: true });",
            config: { timeoutSeconds: 10, memoryMb: 128 },
          },
        },
      },
      secrets: { require: ["STRIPE_KEY"] },
      subdomains: { set: ["real-sdk"] },
      routes: {
        replace: [
          {
            pattern: "/api/*",
            methods: ["GET", "POST"] as ("GET" | "POST")[],
            target: { type: "function" as const, name: "api" },
          },
        ],
      },
    };
    const scoped = await r.project(project.project_id);
    const result = (await scoped.apply(spec as never, { maxRetries: 0 })) as {
      release_id: string;
      urls: unknown;
    };
    expect(result.release_id).toMatch(/^rel_/);
    expect(result.urls).toBeTruthy();

    // The migration travelled as sql_ref content and ran.
    const rows = await fetch(`${sb.apiBase}/_sandbox/sql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        project_id: project.project_id,
        sql: "INSERT INTO visits DEFAULT VALUES RETURNING id",
      }),
    });
    expect(((await rows.json()) as { rows: unknown[] }).rows).toEqual([{ id: 1 }]);

    const live = (await scoped.apply.getActiveRelease()) as unknown as Record<string, unknown> & {
      kind: string;
      state_kind: string;
      release_id: string;
      static_manifest_sha256: string | null;
      site: { paths: { path: string }[]; totals: { paths: number } };
      functions: Record<string, unknown>[];
      secrets: { keys: string[] };
      subdomains: { names: string[] };
      routes: { entries: { pattern: string }[] };
      migrations_applied: { migration_id: string }[];
    };
    // Run402's inventory (kychee-com/run402 deploy.types.ts ReleaseInventoryBase), not the full state.
    expect(live).toMatchObject({ kind: "release_inventory", state_kind: "current_live" });
    expect(live.release_id).toBe(result.release_id);
    expect(live.static_manifest_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(live["static_manifest"]).toBeUndefined();
    expect(live.site.paths.map((p) => p.path)).toEqual(["about.html", "index.html"]);
    expect(live.site.totals.paths).toBe(2);
    expect(live.functions).toMatchObject([{ name: "api", timeout_seconds: 10 }]);
    expect(Object.keys(live.functions[0]!)).not.toContain("deps");
    expect(live.secrets.keys).toEqual(["STRIPE_KEY"]);
    expect(live.subdomains.names).toEqual(["real-sdk"]);
    expect(live.routes.entries.map((e) => e.pattern)).toEqual(["/api/*"]);
    expect(live.migrations_applied.map((m) => m.migration_id)).toEqual(["001_visits"]);
    // The state the sandbox made is @run402/release's, digest included.
    const own = (await (await fetch(`${sb.apiBase}/_sandbox/releases/${live.release_id}`)).json()) as {
      release_digest: string;
      state: Record<string, unknown>;
    };
    const state = materializeRelease({
      spec: { project: project.project_id, base: { release: "empty" } },
      concreteBase: own.state as never,
    });
    expect(digestMaterializedRelease(state)).toBe(own.release_digest);

    const site = await fetch(`${sb.apiBase}/_site/${project.project_id}/`);
    expect(await site.text()).toBe(html);

    // A second apply of the same spec is a no-op the real client commits and reads back.
    const again = (await scoped.apply(spec as never, { maxRetries: 0 })) as { release_id: string };
    expect(again.release_id).toBe(result.release_id);
  });
});
