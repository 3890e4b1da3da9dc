import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const schema = z.looseObject({
  wallet: z.string(),
  tier: z.string().nullable(),
  lease_started_at: z.string().nullable(),
  lease_expires_at: z.string().nullable(),
  active: z.boolean(),
  // kychee-com/run402 sdk/src/namespaces/tier.ts TierStatusResult: null for a wallet without an
  // organization; the runtime fixtures in tier.test.ts omit it. An open set: Run402 adds states.
  organization_lifecycle_state: z.string().nullable().optional(),
  // null for a wallet without an organization (same source).
  lease_perpetual: z.boolean().nullable().optional(),
  pool_usage: z.unknown().optional(),
  projects: z.array(z.unknown()).optional(),
});

/** The wallet's tier and lease. */
export type GetTierStatusReturnType = z.output<typeof schema>;
/** Errors `getTierStatus` can throw. */
export type GetTierStatusErrorType = ApiError;

/** Reads the wallet's tier and lease state (`GET /tiers/v1/status`, SIWX). */
export function getTierStatus(ctx: ActionContext): Promise<GetTierStatusReturnType> {
  return call(ctx.transport, { method: "GET", path: "/tiers/v1/status", auth: { kind: "siwx" } }, schema);
}
