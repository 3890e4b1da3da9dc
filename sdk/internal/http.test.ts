import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { inventoryLimitBytes } from "../actions/getActiveRelease.js";
import { createRun402 } from "../client.js";
import {
  ApiError,
  RedirectError,
  ResponseTooLargeError,
  ResponseValidationError,
  TimeoutError,
} from "../errors/http.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");

function api(answers: (() => Response)[]) {
  const seen: Request[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    seen.push(new Request(input, init));
    const next = answers[Math.min(seen.length - 1, answers.length - 1)]!;
    return next();
  };
  const r402 = createRun402({
    apiBase: "http://127.0.0.1:4021",
    wallet: { account },
    rail: "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
    journal: false,
    fetch: fetch as typeof globalThis.fetch,
    timeoutMs: 200,
  });
  return { r402, seen };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  () =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });

const status = {
  wallet: account.address,
  tier: null,
  lease_started_at: null,
  lease_expires_at: null,
  active: false,
  organization_lifecycle_state: null,
  lease_perpetual: false,
};

describe("error envelope", () => {
  test("error: maps code, status, category, next actions", async () => {
    const { r402 } = api([
      json(403, {
        code: "TIER_REQUIRED",
        message: "An active tier is required",
        category: "lifecycle",
        retryable: false,
        safe_to_retry: false,
        next_actions: [{ type: "renew_tier" }],
      }),
    ]);
    const err = (await r402.projects
      .create({ name: "a", intent: "p1" })
      .catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect({ code: err.code, status: err.status, category: err.category, next: err.nextActions }).toEqual({
      code: "TIER_REQUIRED",
      status: 403,
      category: "lifecycle",
      next: [{ type: "renew_tier" }],
    });
    expect(err.message).toMatchInlineSnapshot(`
      "An active tier is required (TIER_REQUIRED).

      Request: POST http://127.0.0.1:4021/projects/v1
      Status: 403
      Next actions: renew_tier"
    `);
  });

  test("error: a body without an envelope still gets a stable code", async () => {
    const { r402 } = api([() => new Response("bad gateway", { status: 502 })]);
    const err = (await r402.tiers.status().catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("HTTP_502");
  });

  test("error: a 2xx body that breaks the contract", async () => {
    const { r402 } = api([json(200, { wallet: 1 })]);
    const err = (await r402.tiers.status().catch((e: unknown) => e)) as ResponseValidationError;
    expect(err).toBeInstanceOf(ResponseValidationError);
    expect(err.code).toBe("RESPONSE_INVALID");
  });
});

describe("retries", () => {
  test("behavior: 429 with Retry-After is retried", async () => {
    const { r402, seen } = api([
      json(429, { code: "RATE_LIMITED", message: "slow down" }, { "retry-after": "0" }),
      json(200, status),
    ]);
    expect((await r402.tiers.status()).active).toBe(false);
    expect(seen).toHaveLength(2);
    // A fresh SIWX per attempt.
    expect(seen[0]!.headers.get("sign-in-with-x")).not.toBe(seen[1]!.headers.get("sign-in-with-x"));
  });

  test("behavior: 429 without Retry-After is not retried", async () => {
    const { r402, seen } = api([
      json(429, { code: "RATE_LIMITED", message: "slow down" }),
      json(200, status),
    ]);
    await expect(r402.tiers.status()).rejects.toMatchObject({ code: "RATE_LIMITED", status: 429 });
    expect(seen).toHaveLength(1);
  });

  test("behavior: 5xx is retried only when safe_to_retry", async () => {
    const unsafe = api([
      json(503, { code: "UNAVAILABLE", message: "x", safe_to_retry: false }),
      json(200, status),
    ]);
    await expect(unsafe.r402.tiers.status()).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(unsafe.seen).toHaveLength(1);
    const safe = api([
      json(503, { code: "UNAVAILABLE", message: "x", safe_to_retry: true }),
      json(200, status),
    ]);
    expect((await safe.r402.tiers.status()).active).toBe(false);
    expect(safe.seen).toHaveLength(2);
  });

  test("error: timeout", async () => {
    const seen: Request[] = [];
    const r402 = createRun402({
      apiBase: "http://127.0.0.1:4021",
      wallet: { account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      timeoutMs: 50,
      fetch: ((input: string | URL | Request, init?: RequestInit) => {
        seen.push(new Request(input, init));
        return new Promise<Response>((_, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        });
      }) as typeof globalThis.fetch,
    });
    const err = await r402.tiers.quote().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatchInlineSnapshot(
      `"GET http://127.0.0.1:4021/tiers/v1 timed out after 50 ms."`,
    );
  });
});

describe("auth headers", () => {
  test("default: service key as Bearer, anon key as apikey, SIWX on wallet routes", async () => {
    const { r402, seen } = api([
      json(200, { secrets: [] }),
      json(200, { ...status }),
      json(404, { code: "NOT_FOUND", message: "x" }),
    ]);
    await r402.secrets.list({ projectId: "prj_1", serviceKey: "svc" });
    await r402.tiers.status();
    await r402.deploy.active({ anonKey: "anon" }).catch(() => {});
    expect(seen[0]!.headers.get("authorization")).toBe("Bearer svc");
    expect(seen[0]!.headers.get("sign-in-with-x")).toBeNull();
    expect(seen[1]!.headers.get("sign-in-with-x")).toBeTruthy();
    expect(seen[2]!.headers.get("apikey")).toBe("anon");
  });
});

describe("credentials stay home", () => {
  test("error: a redirect is not followed; every request asks fetch not to follow one", async () => {
    const { r402, seen } = api([
      () => new Response(null, { status: 302, headers: { location: "/elsewhere" } }),
    ]);
    const err = await r402.tiers.quote().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedirectError);
    expect((err as RedirectError).location).toBe("http://127.0.0.1:4021/elsewhere");
    expect((err as RedirectError).message).toMatchInlineSnapshot(`
      "GET http://127.0.0.1:4021/tiers/v1 was redirected (302) to http://127.0.0.1:4021/elsewhere; redirects are not followed.

      Set run402:apiBase (apiBase) to the API's final URL if it moved."
    `);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.redirect).toBe("manual");
  });

  test("error: a body past maxResponseBytes stops the read", async () => {
    let pulled = 0;
    const endless = () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulled++;
            controller.enqueue(new Uint8Array(64 * 1024));
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    const r402 = createRun402({
      apiBase: "http://127.0.0.1:4021",
      wallet: { account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      maxResponseBytes: 1024 * 1024,
      fetch: (async () => endless()) as typeof globalThis.fetch,
    });
    const err = await r402.tiers.quote().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseTooLargeError);
    expect((err as ResponseTooLargeError).code).toBe("HTTP_RESPONSE_TOO_LARGE");
    expect(pulled).toBeLessThan(40);
  });

  test("behavior: the release inventory may grow past the client's limit, up to its own bound", async () => {
    const endless = (pulls: { n: number }) =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulls.n++;
            controller.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
          },
        }),
        { headers: { "content-type": "application/json" } },
      );
    const pulls = { n: 0 };
    const r402 = createRun402({
      apiBase: "http://127.0.0.1:4021",
      wallet: { account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      maxResponseBytes: 1024 * 1024,
      fetch: (async () => endless(pulls)) as typeof globalThis.fetch,
    });
    // The generic limit (1 MiB) does not cut the inventory short; its own bound still stops an endless body.
    const err = await r402.deploy.active({ anonKey: "anon" }).catch((e: unknown) => e);
    expect((err as ResponseTooLargeError).code).toBe("HTTP_RESPONSE_TOO_LARGE");
    expect(pulls.n).toBeGreaterThan(inventoryLimitBytes / (1024 * 1024));
    expect(pulls.n).toBeLessThan(inventoryLimitBytes / (1024 * 1024) + 4);
  });

  test("error: a declared Content-Length past the limit is refused before reading", async () => {
    const { r402 } = api([
      () =>
        new Response("{}", {
          headers: { "content-type": "application/json", "content-length": "99999999999" },
        }),
    ]);
    const err = await r402.tiers.quote().catch((e: unknown) => e);
    expect((err as ResponseTooLargeError).code).toBe("HTTP_RESPONSE_TOO_LARGE");
  });
});
