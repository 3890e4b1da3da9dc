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
  organization_lifecycle_state: z.enum(["active", "past_due", "frozen", "dormant", "purged"]).nullable(),
  lease_perpetual: z.boolean().optional(),
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
