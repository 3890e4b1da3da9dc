import { z } from "zod";
import type { TierName } from "../../schema/app.types.js";
import type { ActionContext } from "../internal/context.js";
import { parse } from "../internal/http.js";
import { type PaidActionError, paidPost } from "../internal/paid.js";
import type { Settlement } from "../Receipt.js";

const schema = z.looseObject({
  wallet: z.string(),
  action: z.enum(["subscribe", "renew", "upgrade", "downgrade"]),
  tier: z.string(),
  previous_tier: z.string().nullable(),
  lease_started_at: z.string(),
  lease_expires_at: z.string(),
  allowance_remaining_usd_micros: z.union([z.number(), z.string()]).nullable().optional(),
});

/** A tier name (the manifest schema's). */
export type { TierName };

/** Parameters of `setTier`. */
export type SetTierParameters = {
  tier: TierName;
  /** Stable id of why this purchase happens (e.g. resource URN + lease period); a rerun with the same intent cannot pay twice. */
  intent: string;
  /** Refuse (before signing) a challenge above this amount, e.g. the price a preview showed. @default the policy's cap */
  maxPaymentUsd?: number | undefined;
};
/** The response body of `setTier`. */
export type SetTierResult = z.output<typeof schema>;
/** What `setTier` resolves to. */
export type SetTierReturnType = { result: SetTierResult; settlement: Settlement | null; replayed: boolean };
/** Errors `setTier` can throw. */
export type SetTierErrorType = PaidActionError;

/** Buys, renews, upgrades or downgrades the tier (`POST /tiers/v1/:tier`, SIWX + payment). */
export async function setTier(ctx: ActionContext, parameters: SetTierParameters): Promise<SetTierReturnType> {
  const path = `/tiers/v1/${encodeURIComponent(parameters.tier)}`;
  const body = {};
  const ex = await paidPost(ctx, path, body, {
    intent: parameters.intent,
    maxPaymentUsd: parameters.maxPaymentUsd,
  });
  return { result: parse(schema, ex), settlement: ex.settlement, replayed: ex.replayed };
}
