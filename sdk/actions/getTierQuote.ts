import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const tier = z.looseObject({
  price: z.string(),
  price_atomic: z.string(),
  lease_days: z.number(),
  storage_mb: z.number().optional(),
  api_calls: z.number().optional(),
  max_functions: z.number().optional(),
  description: z.string().optional(),
});
const schema = z.looseObject({ tiers: z.record(z.string(), tier) });

/** Prices and limits of every tier. */
export type GetTierQuoteReturnType = z.output<typeof schema>;
/** Errors `getTierQuote` can throw. */
export type GetTierQuoteErrorType = ApiError;

/** Reads the tier price list (`GET /tiers/v1`, no auth). */
export function getTierQuote(ctx: ActionContext): Promise<GetTierQuoteReturnType> {
  return call(ctx.transport, { method: "GET", path: "/tiers/v1", auth: { kind: "none" } }, schema);
}
