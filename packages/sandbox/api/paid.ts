/**
 * The paid-route flow. Order: (caller) validation and identity → idempotency → preflight (lifecycle
 * and business rules) → payment. On a verified payment: final checks → settle → fulfil → ledger +
 * idempotency record persisted → answer. Settlement happens only once nothing can refuse the
 * request any more, and the result is stored right after, so money never moves without a delivered
 * resource.
 *
 * Identity: the SIWX wallet when the request signs in; otherwise the wallet its payment names (the
 * x402 authorization's `from`, the mpp credential's `source`), which verification then proves. A
 * request with neither gets the dual-rail 402, so a plain x402 or mpp client can buy.
 */
import { Credential } from "mppx";
import { getAddress, isAddress } from "viem";
import type { PaymentGate, Price } from "../payments/types.js";
import type { LedgerEntry, StateStore } from "../state.js";
import { ApiError } from "./errors.js";
import type { Ctx, Reply } from "./http.js";
import { faultReply } from "./http.js";
import { claim, complete } from "./idempotency.js";
import { verifySiwx } from "./siwx.js";

/** The wallet a payment header names, before any verification; undefined without a usable one. */
function namedPayer(ctx: Ctx): string | undefined {
  const x402 = ctx.header("payment-signature") ?? ctx.header("x-payment");
  if (x402 !== undefined) {
    try {
      const payload = JSON.parse(Buffer.from(x402.trim(), "base64").toString("utf8")) as {
        payload?: { authorization?: { from?: unknown } };
      };
      const from = payload.payload?.authorization?.from;
      return typeof from === "string" && isAddress(from) ? getAddress(from) : undefined;
    } catch {
      return undefined;
    }
  }
  const authorization = ctx.header("authorization");
  if (authorization && /^\s*payment\s/i.test(authorization)) {
    try {
      const source = Credential.deserialize(Credential.extractPaymentScheme(authorization) ?? "").source;
      const address = source?.split(":").pop();
      return address && isAddress(address) ? getAddress(address) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Who a paid request acts for: its SIWX wallet (401 when the header is bad), else its payer, else nobody. */
export async function paidIdentity(
  ctx: Ctx,
): Promise<{ wallet: string; by: "siwx" | "payment" } | undefined> {
  const header = ctx.header("sign-in-with-x");
  if (header !== undefined) return { wallet: await verifySiwx(header, ctx.url), by: "siwx" };
  const payer = namedPayer(ctx);
  return payer ? { wallet: payer, by: "payment" } : undefined;
}

/**
 * The dual-rail 402 for a request that names no wallet. A payment whose payer cannot be read is refused
 * unverified (verifying an mpp credential would broadcast it): PAYMENT_INVALID with a fresh challenge.
 */
export async function challenge(ctx: Ctx, deps: Pick<PaidDeps, "gate">, price: Price): Promise<Reply> {
  const authorization = ctx.header("authorization");
  const paying =
    ctx.header("payment-signature") !== undefined ||
    ctx.header("x-payment") !== undefined ||
    (authorization !== undefined && /^\s*payment\s/i.test(authorization));
  if (paying) {
    return freshChallenge(
      ctx,
      deps,
      price,
      "The payment does not name its payer; send SIGN-IN-WITH-X with it.",
    );
  }
  const outcome = await deps.gate.check(toRequest(ctx, true), price);
  return outcome.kind === "verified" ? { status: 402, headers: {}, body: {} } : outcome.response;
}

/** A settlement through any rail, including the org's prepaid allowance. */
export interface AnySettlement {
  rail: LedgerEntry["rail"];
  reference: string;
  amount: string;
  asset: string;
  network: string;
  payer: string;
  receiptHeaders: Record<string, string>;
}

/** What the paid flow needs from the sandbox. */
export interface PaidDeps {
  gate: PaymentGate;
  store: StateStore;
  now(): number;
  /** Idempotency keys whose payment is between verification and the stored result. */
  inFlight: Set<string>;
  log(line: string): void;
}

/** What one paid route contributes. */
export interface PaidSpec {
  wallet: string;
  /** How the wallet was learnt: signed in (SIWX), or named by the payment (checked against the verified payer). */
  by?: "siwx" | "payment";
  price: Price;
  /** The payload the idempotency fingerprint covers. */
  payload: unknown;
  /** Throws an ApiError when the request must be refused; runs before the challenge and again before settling. */
  preflight(): void;
  /** Spends prepaid allowance if the org has enough; returns false otherwise. Synchronous. */
  spendAllowance?(): boolean;
  /** Delivers the resource. Synchronous so that nothing interleaves between settlement and storage. */
  fulfill(settlement: AnySettlement): Reply;
}

function toRequest(ctx: Ctx, dropPayment: boolean): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (dropPayment && ["authorization", "payment-signature", "x-payment"].includes(lower)) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const hasBody = ctx.method !== "GET" && ctx.method !== "HEAD" && ctx.body.length > 0;
  return new Request(ctx.url, { method: ctx.method, headers, ...(hasBody ? { body: ctx.body } : {}) });
}

async function freshChallenge(
  ctx: Ctx,
  deps: Pick<PaidDeps, "gate">,
  price: Price,
  message: string,
): Promise<Reply> {
  const outcome = await deps.gate.check(toRequest(ctx, true), price);
  const response = outcome.kind === "verified" ? { status: 402, headers: {}, body: {} } : outcome.response;
  const body = { ...(response.body as Record<string, unknown>), code: "PAYMENT_INVALID", message };
  return { status: 402, headers: response.headers, body };
}

/** Runs a paid route for an authenticated wallet. */
export async function paidRoute(ctx: Ctx, deps: PaidDeps, spec: PaidSpec): Promise<Reply | "dropped"> {
  const { store, inFlight } = deps;
  const claimed = claim(ctx, store, inFlight, spec.wallet, spec.payload);
  if ("replay" in claimed) return claimed.replay;
  const slot = claimed.slot;
  spec.preflight();

  const payerHeaders = ["authorization", "payment-signature", "x-payment"].some((h) => ctx.header(h));
  const org = store.state.orgs[spec.wallet];
  const byAllowance =
    !payerHeaders && !!spec.spendAllowance && !!org && BigInt(org.allowanceMicros) >= spec.price.atomic;
  if (!payerHeaders && !byAllowance) {
    const outcome = await deps.gate.check(toRequest(ctx, false), spec.price);
    return outcome.kind === "verified"
      ? freshChallenge(ctx, deps, spec.price, "No payment was sent.")
      : outcome.response;
  }

  // From here a payment is in flight under this key: a concurrent repeat gets PAYMENT_INTENT_PENDING.
  if (slot) inFlight.add(slot.storeKey);
  try {
    // Before anything is verified: verifying an mpp credential broadcasts it, so a fault taken any
    // later would fail with the money already moved.
    if (ctx.takeFault("error_before_settlement")) return faultReply("error_before_settlement");
    let settle: () => Promise<AnySettlement>;
    if (byAllowance) {
      // Prepaid credit settles without a challenge; the check-and-spend happens at settlement time.
      settle = async () => {
        if (!spec.spendAllowance?.()) throw new Error("allowance no longer covers the price");
        return {
          rail: "allowance",
          reference: `alw_${store.nextSeq()}`,
          amount: spec.price.atomic.toString(),
          asset: "USD",
          network: "run402:allowance",
          payer: spec.wallet,
          receiptHeaders: {},
        };
      };
    } else {
      const outcome = await deps.gate.check(toRequest(ctx, false), spec.price);
      if (outcome.kind !== "verified") return outcome.response;
      // Without SIWX the payment named the wallet; the verified payer must be that wallet.
      if (spec.by === "payment" && outcome.payer.toLowerCase() !== spec.wallet.toLowerCase()) {
        deps.log(`payment names ${spec.wallet} but was made by ${outcome.payer}`);
        if (outcome.rail === "x402")
          return freshChallenge(ctx, deps, spec.price, "The payment's payer is not the wallet it names.");
      }
      settle = outcome.settle;
    }
    // Final checks: state may have moved while the payment was verified.
    spec.preflight();
    let settlement: AnySettlement;
    try {
      settlement = await settle();
    } catch (error) {
      deps.log(`settlement failed: ${error instanceof Error ? error.message : String(error)}`);
      return freshChallenge(ctx, deps, spec.price, "The payment could not be settled; nothing was charged.");
    }
    ctx.paid = settlement.rail !== "allowance";
    const ledgerEntry = {
      rail: settlement.rail,
      reference: settlement.reference,
      amount: settlement.amount,
      asset: settlement.asset,
      network: settlement.network,
      payer: settlement.payer,
      idempotencyKey: slot?.key ?? null,
      route: ctx.route,
      at: new Date().toISOString(),
    };
    if (ctx.takeFault("settled_not_stored")) {
      // The money moved (the ledger says so); the result was neither delivered nor stored.
      store.state.ledger.push(ledgerEntry);
      store.save();
      return faultReply("settled_not_stored");
    }
    const delivered = spec.fulfill(settlement);
    const reply: Reply = {
      ...delivered,
      headers: {
        ...delivered.headers,
        "x-run402-settlement-rail": settlement.rail,
        ...settlement.receiptHeaders,
        // A first delivery, as Run402 marks it (a replay turns these into "true" / "replay").
        "x-run402-payment-deduplicated": "false",
        "x-run402-payment-delivery": "first",
      },
    };
    store.state.ledger.push(ledgerEntry);
    complete(store, slot, reply, deps.now());
    store.save();
    if (ctx.takeFault("error_after_settlement")) return faultReply("error_after_settlement");
    if (ctx.takeFault("drop_after_settlement")) {
      ctx.res.destroy();
      return "dropped";
    }
    return reply;
  } catch (error) {
    if (error instanceof ApiError) {
      return { status: error.status, headers: error.options.headers ?? {}, body: error.envelope() };
    }
    throw error;
  } finally {
    if (slot) inFlight.delete(slot.storeKey);
  }
}
