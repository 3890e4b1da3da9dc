/**
 * The contract, client side: every fixture conforms to the Run402 type it names, and our parsers read
 * it as Run402's own client does (tolerant on ordinary answers, strict on amounts). The server side is
 * sandbox.integration.test.ts, against the same types.
 */
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { nextPollWait, operationFinished } from "../../sdk/actions/applyRelease.js";
import { createRun402 } from "../../sdk/client.js";
import { ApiError, DeployFailedError, ResponseValidationError } from "../../sdk/errors/http.js";
import { type Fixture, fixture, fixtures } from "./fixtures.js";
import { BY_ENDPOINT, RUN402_COMMIT } from "./run402-types.js";

const account = privateKeyToAccount(`0x${"22".repeat(32)}`);
type Answer =
  | Fixture
  | { status: number; body: unknown }
  | ((req: Request) => { status: number; body: unknown });

/** A client whose server answers each `METHOD /path` (path without query) from `routes`, in order when an array. */
function client(routes: Record<string, Answer | Answer[]>) {
  const seen: Request[] = [];
  const counts = new Map<string, number>();
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const req = new Request(input, init);
    seen.push(req);
    const url = new URL(req.url);
    const key = `${req.method} ${url.pathname}`;
    const route = routes[key];
    if (!route) return new Response(JSON.stringify({ code: "NO_ROUTE", message: key }), { status: 599 });
    const n = counts.get(key) ?? 0;
    counts.set(key, n + 1);
    const pick = Array.isArray(route) ? route[Math.min(n, route.length - 1)]! : route;
    const answer = typeof pick === "function" ? pick(req) : pick;
    return new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "content-type": "application/json" },
    });
  }) as typeof globalThis.fetch;
  const r402 = createRun402({
    apiBase: "https://api.run402.test",
    wallet: { account },
    rail: "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
    journal: false,
    fetch,
  });
  return { r402, seen };
}

describe("contract fixtures", () => {
  test("every fixture names the kychee-com/run402 commit and paths it was read from", () => {
    expect(Object.keys(fixtures).length).toBeGreaterThan(10);
    for (const f of Object.values(fixtures)) {
      expect(f.source.repo, f.name).toBe("kychee-com/run402");
      expect(f.source.commit, f.name).toBe(RUN402_COMMIT);
      expect(f.source.paths.length, f.name).toBeGreaterThan(0);
    }
  });

  test("every 2xx fixture conforms to the Run402 type of its endpoint", () => {
    for (const f of Object.values(fixtures)) {
      if (f.status >= 300) continue;
      const result = BY_ENDPOINT[f.endpoint].safeParse(f.body);
      expect(result.success, `${f.name}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
    }
  });
});

describe("tier prices", () => {
  test('behavior: "$0.10" is read as the exact amount 0.10 (100000 atomic), with no price_atomic', async () => {
    const { r402 } = client({ "GET /tiers/v1": fixture("tier-quote") });
    const quote = await r402.tiers.quote();
    expect(quote.tiers["prototype"]!.price).toMatchObject({ text: "$0.10", usd: "0.10", atomic: 100_000n });
    expect(quote.tiers["hobby"]!.price.usd).toBe("5.00");
    expect(quote.tiers["team"]!.price).toMatchObject({ usd: "20.00", atomic: 20_000_000n });
  });

  test.each(["$abc", "", "$", "$-1", "$1e3", "€1.00", "$0.1234567", "0.1.0", "NaN", "$Infinity"])(
    "error: a price of %j is refused, never a cap",
    async (price) => {
      const body = { tiers: { prototype: { price, lease_days: 7 } } };
      const { r402 } = client({ "GET /tiers/v1": { status: 200, body } });
      const err = await r402.tiers.quote().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ResponseValidationError);
    },
  );

  test("error: a price_atomic that disagrees with the price is refused", async () => {
    const body = { tiers: { prototype: { price: "$0.10", price_atomic: "1000000", lease_days: 7 } } };
    const { r402 } = client({ "GET /tiers/v1": { status: 200, body } });
    expect(await r402.tiers.quote().catch((e: unknown) => e)).toBeInstanceOf(ResponseValidationError);
  });
});

describe("tier status of a fresh wallet", () => {
  test.each(["tier-status-runtime", "tier-status-no-org"])("behavior: %s is read", async (name) => {
    const { r402 } = client({ "GET /tiers/v1/status": fixture(name) });
    const status = await r402.tiers.status();
    expect(status.wallet).toBe((fixture(name).body as { wallet: string }).wallet);
  });
});

describe("project list rows keyed id", () => {
  test("behavior: rows keyed id are read as projects, deleted rows dropped", async () => {
    const { r402 } = client({ "GET /projects/v1": fixture("project-list") });
    const listed = await r402.projects.list();
    expect(listed.projects.map((p) => [p.id, p.project_id])).toEqual([["prj_fixture_1", "prj_fixture_1"]]);
  });

  test("error: a row with neither id nor project_id is refused", async () => {
    const body = { projects: [{ name: "x", created_at: "2026-12-01T10:00:00Z" }] };
    const { r402 } = client({ "GET /projects/v1": { status: 200, body } });
    expect(await r402.projects.list().catch((e: unknown) => e)).toBeInstanceOf(ResponseValidationError);
  });
});

describe("project create without endpoints", () => {
  test("behavior: Run402 Cloud's answer (no endpoints) is read with its keys", async () => {
    const { r402 } = client({ "POST /projects/v1": fixture("project-create") });
    const created = await r402.projects.create({ intent: "contract/create", name: "one" });
    expect(created).toMatchObject({ project_id: "prj_fixture_1", service_key: "service_fixture" });
  });
});

describe("bodies nobody reads", () => {
  test("behavior: project delete answered {status: purged} resolves", async () => {
    const { r402 } = client({ "DELETE /projects/v1/prj_fixture_1": fixture("project-delete") });
    await expect(
      r402.projects.delete({ projectId: "prj_fixture_1", serviceKey: "s" }),
    ).resolves.toBeDefined();
  });
});

/** A deploy against fixtures: plan (content present), the given commit answers, then the given operation answers. */
function deployClient(commits: Answer[], operations: Answer[], plans: Answer[] = []) {
  const plan = (n: number) => ({
    status: 201,
    body: {
      plan_id: `pln_${n}`,
      operation_id: `op_${n}`,
      base_release_id: null,
      manifest_digest: "f".repeat(64),
      missing_content: [],
    },
  });
  return client({
    "POST /apply/v1/plans": plans.length ? plans : [plan(1), plan(2), plan(3), plan(4)],
    "POST /apply/v1/plans/pln_1/commit": commits[0]!,
    "POST /apply/v1/plans/pln_2/commit": commits[1] ?? commits[0]!,
    "POST /apply/v1/plans/pln_3/commit": commits[2] ?? commits[0]!,
    "GET /apply/v1/operations/op_fixture_2": operations,
  });
}
const spec = { secrets: { require: [] } };
const apply = (r402: ReturnType<typeof client>["r402"]) =>
  r402.deploy.apply({ projectId: "prj_fixture_1", anonKey: "anon", spec, content: new Map() });

describe("the operation lifecycle", () => {
  test("behavior: schema_settling is waited through, a plan without is_noop is committed", async () => {
    const { r402, seen } = deployClient(
      [fixture("apply-commit-running")],
      [
        fixture("operation-schema-settling"),
        fixture("operation-schema-settling"),
        fixture("operation-ready"),
      ],
    );
    const result = await apply(r402);
    expect(result).toMatchObject({ releaseId: "rel_fixture_2", operationId: "op_fixture_2", isNoop: false });
    expect(seen.filter((r) => r.url.includes("/operations/")).length).toBe(3);
  });

  test("error: activation_pending with a static activation failure ends the wait with its code", async () => {
    const { r402 } = deployClient(
      [fixture("apply-commit-running")],
      [fixture("operation-activation-pending-static")],
    );
    const err = await apply(r402).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployFailedError);
    expect(err).toMatchObject({
      code: "FUNCTION_TIMEOUT_EXCEEDS_TIER",
      operationStatus: "activation_pending",
    });
  });

  test("behavior: terminal statuses and activation_pending as Run402's client reads them", () => {
    for (const s of ["ready", "failed", "rolled_back", "needs_repair"])
      expect(operationFinished(s, null)).toBe(true);
    for (const s of [
      "planning",
      "staging",
      "gating",
      "migrating",
      "schema_settling",
      "activating",
      "running",
      "some_new_phase",
    ])
      expect(operationFinished(s, null)).toBe(false);
    expect(operationFinished("activation_pending", { code: "EDGE_SLOW" })).toBe(false);
    expect(operationFinished("activation_pending", { code: "EDGE_SLOW", safe_to_retry: false })).toBe(true);
    expect(operationFinished("activation_pending", { code: "tier_limit_exceeded" })).toBe(true);
  });

  test("behavior: polls 1 s apart for 30 s, then 1.5 times longer up to 30 s; ten minutes in all", () => {
    const waits: number[] = [];
    let wait = 50;
    let elapsed = 0;
    while (elapsed < 600_000) {
      wait = nextPollWait(wait, elapsed, 30_000);
      waits.push(wait);
      elapsed += wait;
    }
    expect(waits.slice(0, 4)).toEqual([100, 200, 400, 800]);
    expect(waits.slice(4, 30).every((w) => w === 1000)).toBe(true);
    expect(Math.max(...waits)).toBe(30_000);
    expect(waits.at(-1)).toBe(30_000);
    expect(
      waits
        .filter((w) => w > 1000 && w < 30_000)
        .every((w, i, all) => i === 0 || w === Math.floor(all[i - 1]! * 1.5)),
    ).toBe(true);
    // Within ten minutes, Run402's client reads the operation about 50 times; this client as often, give or take the first second.
    expect(waits.length).toBeLessThan(70);
  });

  test("behavior: an abort signal stops the wait at once, naming the operation", async () => {
    const { r402 } = deployClient([fixture("apply-commit-running")], [fixture("operation-schema-settling")]);
    const stop = new AbortController();
    const pending = r402.deploy
      .apply({ projectId: "prj_fixture_1", anonKey: "anon", spec, content: new Map(), signal: stop.signal })
      .catch((e: unknown) => e);
    setTimeout(() => stop.abort(new Error("run stopped")), 300);
    const err = await pending;
    expect(err).toMatchObject({ code: "RUN_CANCELLED" });
    expect(String((err as Error).message)).toContain("op_fixture_2");
  });
});

describe("errors and conflicts", () => {
  test("behavior: a conflict answered as a 200 failed commit is planned again", async () => {
    const { r402, seen } = deployClient(
      [fixture("apply-commit-conflict"), fixture("apply-commit-running")],
      [fixture("operation-ready")],
    );
    const result = await apply(r402);
    expect(result.releaseId).toBe("rel_fixture_2");
    expect(seen.filter((r) => r.method === "POST" && r.url.endsWith("/apply/v1/plans")).length).toBe(2);
  });

  test("error: a conflict that keeps coming ends as BASE_RELEASE_CONFLICT after three plans", async () => {
    const { r402, seen } = deployClient([fixture("apply-commit-conflict")], [fixture("operation-ready")]);
    const err = await apply(r402).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeployFailedError);
    expect(err).toMatchObject({ code: "BASE_RELEASE_CONFLICT" });
    expect(seen.filter((r) => r.method === "POST" && r.url.endsWith("/apply/v1/plans")).length).toBe(3);
  });

  test("error: a nested envelope keeps its code, message, retry hint and next actions", async () => {
    const f = fixture("error-nested");
    const { r402 } = client({ "POST /apply/v1/plans": f });
    const err = await apply(r402).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      code: "MIGRATION_CHECKSUM_MISMATCH",
      status: 409,
      safeToRetry: false,
      category: "conflict",
      nextActions: [{ type: "edit_migration" }],
    });
    expect((err as ApiError).shortMessage).toContain("Migration 001_init was applied with other SQL.");
  });

  test('behavior: {error: "<message>", code} keeps both, and its safe_to_retry is honoured', async () => {
    const f = fixture("error-string");
    const { r402, seen } = client({ "POST /apply/v1/plans": f });
    const err = await apply(r402).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "PLANNER_BUSY", safeToRetry: true, status: 503 });
    expect((err as ApiError).shortMessage).toContain("The planner is busy.");
    expect(seen.length).toBe(3);
  });
});
