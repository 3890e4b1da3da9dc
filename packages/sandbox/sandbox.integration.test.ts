import { createHash } from "node:crypto";
import { request } from "node:http";
import { connect } from "node:net";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Mppx, tempo } from "mppx/client";
import { type Address, createClient, createPublicClient, erc20Abi, type Hex, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { siwxHeader, startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { sandboxTempoChain } from "./chains/index.js";

let sb: TestSandbox;
const DAY = 86_400;

beforeAll(async () => {
  sb = await startTestSandbox();
});
afterAll(async () => {
  await sb?.close();
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted on, not trusted
type Json = Record<string, any>;

/** A SIWX-authenticated JSON request. */
async function call(
  key: Hex | null,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const url = `${sb.apiBase}${path}`;
  const res = await fetch(url, {
    method,
    headers: {
      ...(key ? { "sign-in-with-x": await siwxHeader(key, url) } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as Json };
}

const x402Fetch = (key: Hex) =>
  wrapFetchWithPayment(
    fetch,
    new x402Client()
      .register("eip155:*", new ExactEvmScheme(privateKeyToAccount(key)))
      .setSpendControls({ maxAmountPerPayment: "$25" }),
  );

const mppFetch = (key: Hex) => {
  const chain = sandboxTempoChain(sb.mpp.rpcUrl);
  return Mppx.create({
    polyfill: false,
    methods: [
      tempo({
        account: privateKeyToAccount(key),
        getClient: () => createClient({ chain, transport: http(sb.mpp.rpcUrl) }),
      }),
    ],
  }).fetch;
};

/** Buys `tier` for wallet `key`, paying with `pay` (a payment-wrapped fetch). */
async function buy(pay: typeof fetch, key: Hex, tier: string, idempotencyKey?: string) {
  const url = `${sb.apiBase}/tiers/v1/${tier}`;
  const res = await pay(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "sign-in-with-x": await siwxHeader(key, url),
      ...(idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
    },
    body: "{}",
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
}

const w = (i: number) => sb.wallets[i]!;
/** The treasury's token balance on a rail, read over the rail's RPC. */
async function balance(rail: "x402" | "mpp"): Promise<bigint> {
  const [rpcUrl, token]: [string, Address] =
    rail === "x402" ? [sb.x402.rpcUrl, sb.x402.asset] : [sb.mpp.rpcUrl, sb.mpp.currency];
  const client = createPublicClient({ transport: http(rpcUrl) });
  return client.readContract({
    address: token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [sb.treasury],
  });
}

describe("SIWX", () => {
  const path = "/tiers/v1/status";
  const url = () => `${sb.apiBase}${path}`;
  const get = async (header?: string) => {
    const res = await fetch(url(), { headers: header ? { "sign-in-with-x": header } : {} });
    return { status: res.status, body: (await res.json()) as Json };
  };

  test("good header: status works before any purchase", async () => {
    const res = await get(await siwxHeader(w(0).privateKey, url()));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      wallet: w(0).address,
      tier: null,
      active: false,
      organization_lifecycle_state: null,
      lease_perpetual: null,
    });
  });

  test("error: missing, malformed, tampered, expired, wrong domain, wrong uri", async () => {
    expect((await get()).body.code).toBe("AUTH_REQUIRED");
    const cases: [string, string][] = [
      ["%%%", "not base64 JSON"],
      [Buffer.from("{}").toString("base64"), "domain"],
    ];
    const good = JSON.parse(Buffer.from(await siwxHeader(w(0).privateKey, url()), "base64").toString());
    const tampered = { ...good, nonce: `${good.nonce}ff` };
    cases.push([Buffer.from(JSON.stringify(tampered)).toString("base64"), "does not match address"]);
    const past = new Date(Date.now() - 20 * 60_000);
    cases.push([
      await siwxHeader(w(0).privateKey, url(), {
        issuedAt: past,
        expirationTime: new Date(past.getTime() + 60_000),
      }),
      "expired",
    ]);
    cases.push([await siwxHeader(w(0).privateKey, url(), { domain: "evil.example" }), "domain evil.example"]);
    cases.push([await siwxHeader(w(0).privateKey, url(), { uri: `${sb.apiBase}/projects/v1` }), "uri"]);
    cases.push([
      await siwxHeader(w(0).privateKey, url(), { expirationTime: new Date(Date.now() + 60 * 60_000) }),
      "more than 10 minutes",
    ]);
    for (const [header, reason] of cases) {
      const res = await get(header);
      // Run402 answers a bad SIWX 402 (core/src/siwx-integration.integ.ts), with no payment challenge.
      expect(res.status, reason).toBe(402);
      expect(res.body.code).toBe("SIWX_INVALID");
      expect(res.body.message).toContain(reason);
    }
  });
});

describe("input errors", () => {
  test("unknown tier → 400, bad JSON → 400, oversize → 413, unknown route → 404, no tier → 403", async () => {
    const k = w(0).privateKey;
    expect((await call(k, "POST", "/tiers/v1/platinum", {})).body).toMatchObject({ code: "UNKNOWN_TIER" });
    expect((await call(k, "POST", "/projects/v1", "{nope")).body).toMatchObject({ code: "INVALID_JSON" });
    const big = await call(k, "POST", "/projects/v1", { name: "x".repeat(1024 * 1024 + 10) });
    expect(big.status).toBe(413);
    expect((await call(null, "GET", "/nope")).status).toBe(404);
    const unparsable = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(sb.apiBase).port), "127.0.0.1", () =>
        socket.write("POST /tiers/v1/prototype HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"),
      );
      let data = "";
      socket.on("data", (d) => {
        data += d;
      });
      socket.on("close", () => resolve(data));
    });
    expect(unparsable).toMatch(/^HTTP\/1.1 400/);
    expect((await call(null, "GET", "/tiers/v1")).status).toBe(200);
    const noTier = await call(k, "POST", "/projects/v1", { name: "early" });
    expect(noTier.status).toBe(403);
    expect(noTier.body).toMatchObject({ code: "TIER_REQUIRED", category: "lifecycle" });
  });
});

describe("tiers", () => {
  test("x402: pays the exact price once; the idempotent repeat is not charged; renew stacks", async () => {
    const key = w(0).privateKey;
    const before = await balance("x402");
    const first = await buy(x402Fetch(key), key, "prototype", "buy-proto-1");
    expect(first.status).toBe(200);
    expect(first.headers.get("x-run402-settlement-rail")).toBe("x402");
    expect(first.headers.get("payment-response")).toBeTruthy();
    expect(first.body).toMatchObject({
      action: "subscribe",
      tier: "prototype",
      previous_tier: null,
      wallet: w(0).address,
    });
    expect((await balance("x402")) - before).toBe(100000n);

    const again = await buy(x402Fetch(key), key, "prototype", "buy-proto-1");
    expect(again.status).toBe(200);
    expect(again.headers.get("x-run402-payment-deduplicated")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect((await balance("x402")) - before).toBe(100000n);
    const ledger = (await sb.ledger()).filter((p) => p.idempotencyKey === "buy-proto-1");
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({
      rail: "x402",
      amount: "100000",
      payer: w(0).address,
      route: "POST /tiers/v1/:tier",
    });

    const reused = await call(key, "POST", "/tiers/v1/hobby", {}, { "idempotency-key": "buy-proto-1" });
    expect(reused.status).toBe(409);
    expect(reused.body.code).toBe("IDEMPOTENCY_KEY_REUSED");

    const renew = await buy(x402Fetch(key), key, "prototype", "buy-proto-2");
    expect(renew.body.action).toBe("renew");
    expect(Date.parse(renew.body.lease_expires_at) - Date.parse(first.body.lease_expires_at)).toBe(
      7 * DAY * 1000,
    );
    expect(renew.body.lease_started_at).toBe(first.body.lease_started_at);
  });

  test("mpp: mppx client pays the exact price on tempo", async () => {
    const key = w(1).privateKey;
    const before = await balance("mpp");
    const res = await buy(mppFetch(key), key, "prototype", "mpp-1");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-run402-settlement-rail")).toBe("mpp");
    expect(res.headers.get("payment-receipt")).toBeTruthy();
    expect((await balance("mpp")) - before).toBe(100000n);
    const entry = (await sb.ledger()).filter((p) => p.idempotencyKey === "mpp-1");
    expect(entry).toMatchObject([{ rail: "mpp", payer: w(1).address, amount: "100000" }]);
  });

  test("upgrade credits the unused lease to the allowance", async () => {
    const key = w(1).privateKey;
    const res = await buy(x402Fetch(key), key, "hobby", "upgrade-1");
    expect(res.body).toMatchObject({ action: "upgrade", tier: "hobby", previous_tier: "prototype" });
    expect(res.body.allowance_remaining_usd_micros).toBeGreaterThan(99_000);
  });
});

describe("faults", () => {
  test("error_after_settlement: charged, stored, answered 500; the keyed repeat replays", async () => {
    const key = w(2).privateKey;
    await sb.fault({ route: "POST /tiers/v1/:tier", kind: "error_after_settlement" });
    const failed = await buy(x402Fetch(key), key, "prototype", "fault-1");
    expect(failed.status).toBe(500);
    expect(failed.body.code).toBe("SANDBOX_FAULT");
    expect((await sb.ledger()).filter((p) => p.idempotencyKey === "fault-1")).toHaveLength(1);
    const retry = await buy(x402Fetch(key), key, "prototype", "fault-1");
    expect(retry.status).toBe(200);
    expect(retry.headers.get("x-run402-payment-deduplicated")).toBe("true");
    expect((await sb.ledger()).filter((p) => p.idempotencyKey === "fault-1")).toHaveLength(1);
  });

  test("error_before_settlement charges nothing; rate_limit → 429; delay; drop_after_settlement", async () => {
    const key = w(2).privateKey;
    const before = await balance("x402");
    await sb.fault({ route: "POST /tiers/v1/:tier", kind: "error_before_settlement" });
    const failed = await buy(x402Fetch(key), key, "prototype", "fault-2");
    expect(failed.status).toBe(500);
    expect(await balance("x402")).toBe(before);
    expect((await sb.ledger()).filter((p) => p.idempotencyKey === "fault-2")).toHaveLength(0);

    await sb.fault({ route: "GET /tiers/v1", kind: "rate_limit", retryAfterSeconds: 7 });
    const limited = await call(null, "GET", "/tiers/v1");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(limited.body).toMatchObject({ code: "RATE_LIMITED", retry_after: 7 });

    await sb.fault({ route: "GET /tiers/v1", kind: "delay", delayMs: 300 });
    const t0 = Date.now();
    expect((await call(null, "GET", "/tiers/v1")).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    await sb.fault({ route: "POST /projects/v1", kind: "drop_after_settlement" });
    await expect(
      call(key, "POST", "/projects/v1", { name: "dropped" }, { "idempotency-key": "drop-1" }),
    ).rejects.toThrow();
    const replay = await call(
      key,
      "POST",
      "/projects/v1",
      { name: "dropped" },
      { "idempotency-key": "drop-1" },
    );
    expect(replay.status).toBe(201);
    expect(replay.headers.get("x-run402-payment-deduplicated")).toBe("true");

    const log = await sb.requests();
    expect(log.some((r) => r.method === "POST" && r.path === "/tiers/v1/prototype" && r.paid)).toBe(true);
    expect(log.some((r) => r.status === 429)).toBe(true);
  });
});

describe("projects and deploys", () => {
  const key = () => w(0).privateKey;
  let project: Json;
  const sql = "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);";
  const html = "<h1>hello</h1>";
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  const anon = () => ({ apikey: project.anon_key as string });

  async function deploy(spec: Json, files: Record<string, string> = {}) {
    const plan = await call(key(), "POST", "/apply/v1/plans", {
      spec: { project_id: project.project_id, ...spec },
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    const missing = plan.body.missing_content.filter((c: Json) => !c.present);
    if (missing.length > 0) {
      const cp = await call(null, "POST", "/content/v1/plans", { content: missing }, anon());
      for (const m of cp.body.missing) {
        const put = await fetch(m.parts[0].url, { method: "PUT", body: files[m.sha256] });
        expect(put.status).toBe(200);
      }
      expect(
        (await call(null, "POST", `/content/v1/plans/${cp.body.plan_id}/commit`, {}, anon())).status,
      ).toBe(200);
    }
    const commit = await call(key(), "POST", `/apply/v1/plans/${plan.body.plan_id}/commit`, {});
    expect(commit.status, JSON.stringify(commit.body)).toBe(200);
    for (;;) {
      const op = await call(
        null,
        "GET",
        `/apply/v1/operations/${commit.body.operation_id}`,
        undefined,
        anon(),
      );
      if (["ready", "failed", "rolled_back"].includes(op.body.status))
        return { plan: plan.body, op: op.body };
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  test("create (idempotent), get, list", async () => {
    const created = await call(
      key(),
      "POST",
      "/projects/v1",
      { name: "app" },
      { "idempotency-key": "proj-1" },
    );
    expect(created.status).toBe(201);
    project = created.body;
    // Run402 Cloud's create answer: id, keys, schema slot, no endpoints (ProvisionResult).
    expect(Object.keys(project).sort()).toEqual(["anon_key", "project_id", "schema_slot", "service_key"]);
    expect(project).toMatchObject({ schema_slot: expect.stringMatching(/^p\d{4}$/) });
    const again = await call(key(), "POST", "/projects/v1", { name: "app" }, { "idempotency-key": "proj-1" });
    expect(again.body.project_id).toBe(project.project_id);
    const got = await call(key(), "GET", `/projects/v1/${project.project_id}`);
    expect(got.body).toMatchObject({
      project_id: project.project_id,
      name: "app",
      tier: "prototype",
      last_deploy: null,
    });
    expect(got.body.anon_key).toBeUndefined();
    project = { ...project, site_url: got.body.site_url };
    expect((await call(w(1).privateKey, "GET", `/projects/v1/${project.project_id}`)).body.code).toBe(
      "NOT_AUTHORIZED",
    );
    const list = await call(key(), "GET", "/projects/v1");
    // Rows keyed id, as Run402 lists them (ProjectSummary).
    expect(list.body.projects.map((p: Json) => p.id)).toContain(project.project_id);
  });

  test("secrets: set, list names only, delete, delete again 404", async () => {
    const auth = { authorization: `Bearer ${project.service_key}` };
    const base = `/projects/v1/admin/${project.project_id}/secrets`;
    expect((await call(null, "POST", base, { key: "API_TOKEN", value: "s3cret" }, auth)).status).toBe(200);
    expect((await call(null, "POST", base, { key: "bad-name", value: "x" }, auth)).status).toBe(400);
    const list = await call(null, "GET", base, undefined, auth);
    expect(list.body.secrets).toEqual([{ key: "API_TOKEN", updated_at: expect.any(String) }]);
    expect((await call(null, "DELETE", `${base}/API_TOKEN`, undefined, auth)).status).toBe(200);
    expect((await call(null, "DELETE", `${base}/API_TOKEN`, undefined, auth)).status).toBe(404);
    expect((await call(null, "GET", base)).status).toBe(401);
  });

  test("deploy: migration applied, site served, release readable", async () => {
    const { plan, op } = await deploy(
      {
        database: { migrations: [{ id: "001_init", checksum: sha(sql), sql, transaction: "required" }] },
        site: {
          replace: { "index.html": { sha256: sha(html), size: html.length, content_type: "text/html" } },
        },
      },
      { [sha(html)]: html },
    );
    expect(plan.migrations.new.map((m: Json) => m.id)).toEqual(["001_init"]);
    expect(plan.missing_content).toEqual([
      { sha256: sha(html), size: html.length, content_type: "text/html", present: false },
    ]);
    expect(op).toMatchObject({ status: "ready", release_id: expect.stringMatching(/^rel_/) });
    const site = await fetch(project.site_url);
    expect(site.headers.get("content-type")).toBe("text/html");
    expect(await site.text()).toBe(html);
    const active = await call(null, "GET", "/apply/v1/releases/active", undefined, anon());
    expect(active.body).toMatchObject({
      release_id: op.release_id,
      site: { paths: [{ path: "index.html", content_sha256: sha(html), content_type: "text/html" }] },
      migrations_applied: [{ migration_id: "001_init", checksum_hex: sha(sql) }],
    });
    const rows = await call(null, "POST", "/_sandbox/sql", {
      project_id: project.project_id,
      sql: "INSERT INTO notes (body) VALUES ('x') RETURNING id",
    });
    expect(rows.body.rows).toEqual([{ id: 1 }]);
    const same = await call(key(), "POST", "/apply/v1/plans", {
      spec: {
        project_id: project.project_id,
        site: {
          replace: { "index.html": { sha256: sha(html), size: html.length, content_type: "text/html" } },
        },
      },
    });
    expect(same.body.is_noop).toBe(true);
  });

  test("subdomains: claimed by a release, served on <name>.sites.localhost, taken for others", async () => {
    const { op } = await deploy({ subdomains: { set: ["myapp"] } });
    expect(op.status).toBe("ready");
    const port = Number(new URL(sb.apiBase).port);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, path: "/", headers: { host: `myapp.sites.localhost:${port}` } },
        (res) => {
          let data = "";
          res.on("data", (d) => {
            data += d;
          });
          res.on("end", () => resolve(data));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(body).toBe(html);
    const other = await call(key(), "POST", "/projects/v1", { name: "other" });
    const taken = await call(key(), "POST", "/apply/v1/plans", {
      spec: { project_id: other.body.project_id, subdomains: { set: ["myapp"] } },
    });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe("SUBDOMAIN_TAKEN");
    const auth = { authorization: `Bearer ${other.body.service_key}` };
    const del = await call(null, "DELETE", `/projects/v1/${other.body.project_id}`, undefined, auth);
    expect(del.body).toEqual({ status: "purged" });
    expect(
      (await call(null, "DELETE", `/projects/v1/${other.body.project_id}`, undefined, auth)).status,
    ).toBe(404);
    expect((await call(key(), "GET", `/projects/v1/${other.body.project_id}`)).status).toBe(403);
  });

  test("downgrade that exceeds the lower tier's limits → 409 before any challenge", async () => {
    // Wallet 1 holds hobby (25 functions); prototype allows 5.
    const k1 = w(1).privateKey;
    const proj = (await call(k1, "POST", "/projects/v1", { name: "fns" })).body;
    const src = "export default () => new Response('hi');";
    const source = { sha256: sha(src), size: src.length, content_type: "text/javascript" };
    const fns = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`fn${i}`, { runtime: "node22", source }]),
    );
    const plan = await call(k1, "POST", "/apply/v1/plans", {
      spec: { project_id: proj.project_id, functions: { replace: fns } },
    });
    const apikey = { apikey: proj.anon_key as string };
    const cp = await call(null, "POST", "/content/v1/plans", { content: plan.body.missing_content }, apikey);
    for (const m of cp.body.missing) await fetch(m.parts[0].url, { method: "PUT", body: src });
    await call(null, "POST", `/content/v1/plans/${cp.body.plan_id}/commit`, {}, apikey);
    const commit = await call(k1, "POST", `/apply/v1/plans/${plan.body.plan_id}/commit`, {});
    for (;;) {
      const op = await call(
        null,
        "GET",
        `/apply/v1/operations/${commit.body.operation_id}`,
        undefined,
        apikey,
      );
      if (op.body.status === "ready") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const down = await call(k1, "POST", "/tiers/v1/prototype", {});
    expect(down.status).toBe(409);
    expect(down.body).toMatchObject({
      code: "DOWNGRADE_EXCEEDS_LIMITS",
      details: { usage: { functions: 6 } },
    });
    expect(down.headers.get("payment-required")).toBeNull();
  });

  test("a bad migration fails the operation, rolls back, and the previous release stays live", async () => {
    const before = await call(null, "GET", "/apply/v1/releases/active", undefined, anon());
    const bad = "CREATE TABLE half (id int); SELECT no_such_column FROM notes;";
    const { op } = await deploy({
      database: { migrations: [{ id: "002_bad", checksum: sha(bad), sql: bad, transaction: "required" }] },
    });
    expect(op.status).toBe("failed");
    expect(op.error).toMatchObject({
      code: "MIGRATION_FAILED",
      message: expect.stringContaining("no_such_column"),
    });
    const after = await call(null, "GET", "/apply/v1/releases/active", undefined, anon());
    expect(after.body.release_id).toBe(before.body.release_id);
    expect(after.body.migrations_applied).toHaveLength(1);
    const tables = await call(null, "POST", "/_sandbox/sql", {
      project_id: project.project_id,
      sql: "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'half'",
    });
    expect(tables.body.rows).toEqual([{ n: 0 }]);
  });

  test("image generation is paid ($0.03) and returns a PNG", async () => {
    const url = `${sb.apiBase}/generate-image/v1`;
    const res = await x402Fetch(w(0).privateKey)(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "sign-in-with-x": await siwxHeader(w(0).privateKey, url),
      },
      body: JSON.stringify({ prompt: "a cat" }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.content_type).toBe("image/png");
    expect(Buffer.from(body.image, "base64").subarray(1, 4).toString()).toBe("PNG");
    expect((await sb.ledger()).at(-1)).toMatchObject({ route: "POST /generate-image/v1", amount: "30000" });
  });

  test("lifecycle: frozen writes → 403 with timestamps; purge drops projects; a purchase reactivates", async () => {
    // Two stacked prototype leases end 14 days from now; frozen starts 14 days after that.
    await sb.advanceClock(14 * DAY + 16 * DAY);
    const frozen = await call(key(), "POST", "/projects/v1", { name: "late" });
    expect(frozen.status).toBe(403);
    expect(frozen.body).toMatchObject({
      code: "PROJECT_FROZEN",
      lifecycle_state: "frozen",
      entered_state_at: expect.any(String),
      next_transition_at: expect.any(String),
    });
    expect((await fetch(project.site_url)).status).toBe(200);
    const status = await call(key(), "GET", "/tiers/v1/status");
    expect(status.body).toMatchObject({ active: false, organization_lifecycle_state: "frozen" });

    await sb.advanceClock(100 * DAY);
    expect((await call(key(), "GET", "/projects/v1")).body.projects).toEqual([]);
    const dropped = await call(null, "POST", "/_sandbox/sql", {
      project_id: project.project_id,
      sql: "SELECT 1",
    });
    expect(dropped.status).toBe(404);

    const back = await buy(x402Fetch(key()), key(), "prototype", "reactivate-1");
    expect(back.body.action).toBe("subscribe");
    expect((await call(key(), "GET", "/tiers/v1/status")).body.organization_lifecycle_state).toBe("active");
    expect((await call(key(), "POST", "/projects/v1", { name: "again" })).status).toBe(201);
  });
});
