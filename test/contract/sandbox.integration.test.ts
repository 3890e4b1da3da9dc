/**
 * The contract, server side: the sandbox answers every endpoint this project calls in the shape of
 * Run402's types (test/contract/run402-types.ts, read from kychee-com/run402), the same types the
 * fixtures are checked against. Requests are made raw (SIWX, anon key, service key), so the sandbox is
 * judged by Run402's types, not by what our client accepts.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { siwxHeader, startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { createRun402 } from "../../sdk/client.js";
import { BY_ENDPOINT, type Endpoint } from "./run402-types.js";

let sb: TestSandbox;
// biome-ignore lint/suspicious/noExplicitAny: raw JSON answers
type Json = Record<string, any>;
const key = () => sb.wallets[0]!.privateKey;
const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");

beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 1, uploads: "presigned" });
});
afterAll(async () => {
  await sb?.close();
});

/** One raw call; `auth` is "siwx", an anon key, a service key, or none. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  auth?: "siwx" | { apikey: string } | { bearer: string },
): Promise<{ status: number; body: Json }> {
  const url = `${sb.apiBase}${path}`;
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth === "siwx") headers["sign-in-with-x"] = await siwxHeader(key(), url);
  else if (auth && "apikey" in auth) headers["apikey"] = auth.apikey;
  else if (auth && "bearer" in auth) headers["authorization"] = `Bearer ${auth.bearer}`;
  const res = await fetch(url, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Asserts `answer` is a 2xx in the shape of Run402's type for `endpoint`. */
function conforms(endpoint: Endpoint, answer: { status: number; body: Json }) {
  expect(answer.status, `${endpoint}: ${JSON.stringify(answer.body).slice(0, 300)}`).toBeLessThan(300);
  const result = BY_ENDPOINT[endpoint].safeParse(answer.body);
  expect(result.success, `${endpoint}: ${JSON.stringify(result.error?.issues.slice(0, 5))}`).toBe(true);
}

describe("the sandbox answers in Run402's shapes", () => {
  let project: Json;

  test("tiers: quote, status of a fresh wallet, purchase, status", async () => {
    conforms("GET /tiers/v1", await call("GET", "/tiers/v1"));
    const fresh = await call("GET", "/tiers/v1/status", undefined, "siwx");
    conforms("GET /tiers/v1/status", fresh);
    expect(fresh.body).toMatchObject({
      tier: null,
      lease_perpetual: null,
      organization_lifecycle_state: null,
    });
    // The purchase itself, paid through our client; its raw answer is checked below by shape.
    const r402 = createRun402({
      apiBase: sb.apiBase,
      wallet: { account: (await import("viem/accounts")).privateKeyToAccount(key()) },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      rpcUrls: { base: sb.x402.rpcUrl, tempo: sb.mpp.rpcUrl },
    });
    const bought = await r402.tiers.set({ tier: "prototype", intent: "contract-tier" });
    conforms("POST /tiers/v1/:tier", { status: 200, body: bought.result });
    conforms("GET /tiers/v1/status", await call("GET", "/tiers/v1/status", undefined, "siwx"));
  });

  test("projects: create, list, get", async () => {
    const created = await call("POST", "/projects/v1", { name: "contract" }, "siwx");
    conforms("POST /projects/v1", created);
    project = created.body;
    const list = await call("GET", "/projects/v1", undefined, "siwx");
    conforms("GET /projects/v1", list);
    expect(list.body.projects.map((p: Json) => p.id)).toContain(project.project_id);
    conforms(
      "GET /projects/v1/:id",
      await call("GET", `/projects/v1/${project.project_id}`, undefined, "siwx"),
    );
  });

  test("deploy: plan, content plan (presigned), upload, content commit, commit, operation, active release", async () => {
    const anon = { apikey: project.anon_key as string };
    const html = "<h1>contract</h1>";
    const sql = "CREATE TABLE c (id int);";
    const spec = {
      project_id: project.project_id,
      database: { migrations: [{ id: "001_c", checksum: sha(sql), sql }] },
      site: {
        replace: { "index.html": { sha256: sha(html), size: html.length, content_type: "text/html" } },
      },
    };
    const plan = await call("POST", "/apply/v1/plans", { spec }, "siwx");
    conforms("POST /apply/v1/plans", plan);
    const missing = plan.body.missing_content.filter((c: Json) => !c.present);
    const cp = await call("POST", "/content/v1/plans", { content: missing }, anon);
    conforms("POST /content/v1/plans", cp);
    const part = cp.body.missing[0].parts[0];
    expect(new URL(part.url).origin).toBe(sb.uploadOrigin);
    expect((await fetch(part.url, { method: "PUT", body: html })).status).toBe(200);
    conforms(
      "POST /content/v1/plans/:id/commit",
      await call("POST", `/content/v1/plans/${cp.body.plan_id}/commit`, {}, anon),
    );
    const commit = await call("POST", `/apply/v1/plans/${plan.body.plan_id}/commit`, {}, "siwx");
    conforms("POST /apply/v1/plans/:id/commit", commit);
    const seen = new Set<string>();
    let op: { status: number; body: Json };
    do {
      op = await call("GET", `/apply/v1/operations/${commit.body.operation_id}`, undefined, anon);
      conforms("GET /apply/v1/operations/:id", op);
      seen.add(op.body.status);
    } while (!["ready", "failed", "rolled_back", "needs_repair"].includes(op.body.status));
    expect(op.body.status).toBe("ready");
    const active = await call("GET", "/apply/v1/releases/active", undefined, anon);
    conforms("GET /apply/v1/releases/active", active);
    expect(active.body.site.totals.paths).toBe(1);
  });

  test("a deploy conflict is a 200 commit with status failed and error BASE_RELEASE_CONFLICT", async () => {
    const mk = (text: string) => ({
      spec: {
        project_id: project.project_id,
        site: {
          patch: {
            put: {
              [`${sha(text).slice(0, 8)}.txt`]: { sha256: sha(""), size: 0, content_type: "text/plain" },
            },
          },
        },
      },
    });
    const anon = { apikey: project.anon_key as string };
    const a = await call("POST", "/apply/v1/plans", mk("a"), "siwx");
    const b = await call("POST", "/apply/v1/plans", mk("b"), "siwx");
    const empty = await call(
      "POST",
      "/content/v1/plans",
      { content: [{ sha256: sha(""), size: 0, content_type: "text/plain" }] },
      anon,
    );
    for (const m of empty.body.missing)
      expect((await fetch(m.parts[0].url, { method: "PUT", body: "" })).status).toBe(200);
    await call("POST", `/content/v1/plans/${empty.body.plan_id}/commit`, {}, anon);
    const first = await call("POST", `/apply/v1/plans/${a.body.plan_id}/commit`, {}, "siwx");
    for (;;) {
      const op = await call("GET", `/apply/v1/operations/${first.body.operation_id}`, undefined, anon);
      if (op.body.status === "ready") break;
      expect(op.body.status).not.toBe("failed");
    }
    const second = await call("POST", `/apply/v1/plans/${b.body.plan_id}/commit`, {}, "siwx");
    conforms("POST /apply/v1/plans/:id/commit", second);
    expect(second.body).toMatchObject({
      status: "failed",
      error: { code: "BASE_RELEASE_CONFLICT", safe_to_retry: true },
    });
  });

  test("a deploy error carries Run402's nested form (error.code), which our client reads", async () => {
    const spec = { secrets: { require: ["NOT_SET_ANYWHERE"] } };
    const body = { spec: { project_id: project.project_id, ...spec } };
    const bad = await call("POST", "/apply/v1/plans", body, "siwx");
    expect(bad.status).toBe(409);
    expect(bad.body.error).toMatchObject({ code: "SECRETS_MISSING", message: expect.any(String) });
    const err = await createRun402({
      apiBase: sb.apiBase,
      wallet: { account: (await import("viem/accounts")).privateKeyToAccount(key()) },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
    })
      .deploy.plan({ projectId: project.project_id, spec })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SECRETS_MISSING", status: 409 });
  });

  test("projects: delete", async () => {
    const del = await call("DELETE", `/projects/v1/${project.project_id}`, undefined, {
      bearer: project.service_key,
    });
    conforms("DELETE /projects/v1/:id", del);
    expect(del.body).toEqual({ status: "purged" });
  });
});
