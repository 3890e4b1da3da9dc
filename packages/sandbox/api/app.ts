/** Assembles the Run402 routes and the `/_sandbox` test controls into one request handler. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { getAddress } from "viem";
import { type Deps, orgOf } from "./context.js";
import { badRequest, notFound } from "./errors.js";
import { createHandler, type FaultKind, type Route } from "./http.js";
import { deployRoutes, siteHostHandler } from "./routes-deploy.js";
import { projectRoutes } from "./routes-projects.js";
import { sweep, tierRoutes } from "./routes-tiers.js";
import { isTier, TIERS, termsOf } from "./tiers.js";

const FAULT_KINDS: FaultKind[] = [
  "error_before_settlement",
  "error_after_settlement",
  "drop_after_settlement",
  "settled_not_stored",
  "delay",
  "rate_limit",
];

/** The `/_sandbox` routes: clock, ledger, faults, request log, prices, SQL peek. Never part of the client contract. */
function controlRoutes(deps: Deps): Route[] {
  const { clock, store, controls } = deps;
  const clockView = () => ({
    now: new Date(clock.now()).toISOString(),
    offset_seconds: clock.offsetMs() / 1000,
  });
  return [
    { method: "GET", pattern: "/_sandbox/clock", handler: async () => ({ status: 200, body: clockView() }) },
    {
      method: "POST",
      pattern: "/_sandbox/clock",
      async handler(ctx) {
        const { advanceSeconds } = ctx.json();
        if (typeof advanceSeconds !== "number" || !Number.isFinite(advanceSeconds) || advanceSeconds < 0) {
          throw badRequest("INVALID_CLOCK", "advanceSeconds must be a non-negative number.");
        }
        clock.advance(advanceSeconds);
        await sweep(deps);
        return { status: 200, body: clockView() };
      },
    },
    {
      method: "GET",
      pattern: "/_sandbox/ledger",
      handler: async () => ({ status: 200, body: { payments: store.state.ledger } }),
    },
    {
      method: "GET",
      pattern: "/_sandbox/requests",
      handler: async () => ({ status: 200, body: { requests: controls.requests } }),
    },
    {
      method: "DELETE",
      pattern: "/_sandbox/requests",
      async handler() {
        controls.requests.length = 0;
        return { status: 200, body: { requests: [] } };
      },
    },
    {
      method: "GET",
      pattern: "/_sandbox/faults",
      handler: async () => ({ status: 200, body: { faults: controls.faults } }),
    },
    {
      method: "POST",
      pattern: "/_sandbox/faults",
      async handler(ctx) {
        const { route, count = 1, kind, delayMs = 1000, retryAfterSeconds = 1 } = ctx.json();
        if (typeof route !== "string" || !/^[A-Z]+ \/\S*$|^\*$/.test(route)) {
          throw badRequest("INVALID_FAULT", 'route must be "METHOD /pattern", e.g. "POST /tiers/v1/:tier".');
        }
        if (!FAULT_KINDS.includes(kind as FaultKind)) {
          throw badRequest("INVALID_FAULT", `kind must be one of ${FAULT_KINDS.join(", ")}.`);
        }
        const nums = [count, delayMs, retryAfterSeconds];
        if (nums.some((n) => typeof n !== "number" || !Number.isFinite(n) || n < 0)) {
          throw badRequest(
            "INVALID_FAULT",
            "count, delayMs and retryAfterSeconds must be non-negative numbers.",
          );
        }
        controls.faults.push({
          route,
          kind: kind as FaultKind,
          remaining: count as number,
          delayMs: delayMs as number,
          retryAfterSeconds: retryAfterSeconds as number,
        });
        return { status: 200, body: { faults: controls.faults } };
      },
    },
    {
      method: "DELETE",
      pattern: "/_sandbox/faults",
      async handler() {
        controls.faults.length = 0;
        return { status: 200, body: { faults: [] } };
      },
    },
    {
      // Sets a wallet's prepaid allowance, so that a paid request without a payment is sold from it
      // (as Run402 sells when the allowance covers the price).
      method: "POST",
      pattern: "/_sandbox/allowance",
      async handler(ctx) {
        const { wallet, allowance_usd_micros } = ctx.json();
        if (typeof wallet !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(wallet)) {
          throw badRequest("INVALID_ALLOWANCE", "wallet must be a 0x-prefixed address.");
        }
        if (
          typeof allowance_usd_micros !== "number" ||
          !Number.isSafeInteger(allowance_usd_micros) ||
          allowance_usd_micros < 0
        ) {
          throw badRequest("INVALID_ALLOWANCE", "allowance_usd_micros must be a non-negative integer.");
        }
        const key = getAddress(wallet);
        store.state.orgs[key] = { ...orgOf(deps, key), allowanceMicros: allowance_usd_micros };
        store.save();
        return { status: 200, body: { wallet: key, allowance_usd_micros } };
      },
    },
    {
      method: "POST",
      pattern: "/_sandbox/prices",
      async handler(ctx) {
        const { tier, price } = ctx.json();
        if (typeof tier !== "string" || !isTier(tier)) {
          throw badRequest("INVALID_PRICE", `tier must be one of ${Object.keys(TIERS).join(", ")}.`);
        }
        const match = typeof price === "string" ? /^(\d+)(?:\.(\d{1,6}))?$/.exec(price) : null;
        if (!match) throw badRequest("INVALID_PRICE", 'price must be a USD decimal string such as "0.20".');
        controls.prices[tier] =
          BigInt(match[1] as string) * 1_000_000n + BigInt((match[2] ?? "").padEnd(6, "0"));
        return { status: 200, body: { tier, terms: termsOf(tier, controls.prices) } };
      },
    },
    {
      method: "DELETE",
      pattern: "/_sandbox/prices",
      async handler() {
        for (const tier of Object.keys(controls.prices)) delete controls.prices[tier];
        return { status: 200, body: { tiers: TIERS } };
      },
    },
    {
      method: "POST",
      pattern: "/_sandbox/sql",
      async handler(ctx) {
        const { project_id, sql, params = [] } = ctx.json();
        if (typeof project_id !== "string" || typeof sql !== "string" || !Array.isArray(params)) {
          throw badRequest("INVALID_SQL", "Send { project_id, sql, params? }.");
        }
        const p = store.state.projects[project_id];
        if (!p || p.deletedAt !== null) throw notFound("PROJECT_NOT_FOUND", "No such live project.");
        try {
          return { status: 200, body: { rows: await deps.db.query(p.schemaSlot, sql, params) } };
        } catch (error) {
          throw badRequest("SQL_ERROR", error instanceof Error ? error.message : String(error));
        }
      },
    },
  ];
}

/** Builds the node:http request handler for the whole sandbox API. */
export function createApi(deps: Deps): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = createHandler({
    routes: [...tierRoutes(deps), ...projectRoutes(deps), ...deployRoutes(deps), ...controlRoutes(deps)],
    controls: deps.controls,
    before: () => sweep(deps),
    log: deps.log,
    hostHandler: siteHostHandler(deps),
  });
  return (req, res) => {
    // HTTP's Date is the server's clock: clients measure leases against it, so it follows the
    // sandbox clock (advanced by POST /_sandbox/clock), not the machine's.
    res.setHeader("Date", new Date(deps.clock.now()).toUTCString());
    handle(req, res);
  };
}
