import { z } from "zod";
import type { ApiError, ResponseValidationError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import { atomicToUsd, parseUsdPrice, usdToAtomic } from "../money.js";

/**
 * A quoted price. Run402 sends a `$`-prefixed decimal string (`"$0.10"`; kychee-com/run402
 * sdk/src/namespaces/projects.types.ts `TierQuote.price`, and the live-gateway fixture in
 * projects.test.ts); a bare decimal is read the same way. Anything else (no digits, a sign, an
 * exponent, another currency, more than 6 decimals) is refused: a price that cannot be read exactly
 * must never become a cap (`Number("$0.10")` is NaN, and NaN compares false with every limit).
 */
export const priceSchema = z.string().transform((text, ctx) => {
  const usd = parseUsdPrice(text);
  if (usd === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `price ${JSON.stringify(text)} is not a USD amount like "$0.10"`,
    });
    return z.NEVER;
  }
  const atomic = usdToAtomic(usd);
  return { text, usd: atomicToUsd(atomic), atomic };
});

const tier = z.looseObject({
  price: priceSchema,
  /** Atomic units (6 decimals), when a server sends them; must agree with `price`. */
  price_atomic: z.string().regex(/^\d+$/).optional(),
  lease_days: z.number(),
  storage_mb: z.number().optional(),
  api_calls: z.number().optional(),
  max_functions: z.number().optional(),
  description: z.string().optional(),
});
const schema = z
  .looseObject({ tiers: z.record(z.string(), tier), auth: z.unknown().optional() })
  .superRefine((quote, ctx) => {
    for (const [name, t] of Object.entries(quote.tiers)) {
      if (t.price_atomic !== undefined && BigInt(t.price_atomic) !== t.price.atomic) {
        ctx.addIssue({
          code: "custom",
          path: ["tiers", name, "price_atomic"],
          message: `price_atomic ${t.price_atomic} disagrees with price ${t.price.text}`,
        });
      }
    }
  });

/** Prices and limits of every tier; each `price` parsed to `{ text, usd, atomic }` (`usd` like "0.10"). */
export type GetTierQuoteReturnType = z.output<typeof schema>;
/** Errors `getTierQuote` can throw: a price that is not an exact USD amount is a ResponseValidationError. */
export type GetTierQuoteErrorType = ApiError | ResponseValidationError;

/** Reads the tier price list (`GET /tiers/v1`, no auth). */
export function getTierQuote(ctx: ActionContext): Promise<GetTierQuoteReturnType> {
  return call(ctx.transport, { method: "GET", path: "/tiers/v1", auth: { kind: "none" } }, schema);
}
