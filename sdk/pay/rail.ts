import { z } from "zod";
import { SpendPolicyError } from "../errors/payment.js";

/** A payment rail's name. */
export type RailName = "x402" | "mpp";

/** One transfer a payment makes. */
export type Transfer = { recipient: string; amountAtomic: bigint };

/**
 * One payable offer from a 402, parsed strictly into an allow-listed shape and normalized so the
 * payer applies one policy to every rail.
 */
export type PaymentChallenge = {
  rail: RailName;
  /** CAIP-2 network id (`eip155:<chainId>`). */
  network: string;
  /** Token contract address. */
  asset: string;
  /** Atomic units (6 decimals on both rails): the whole payment. */
  amountAtomic: bigint;
  /** Who gets paid (the primary recipient). */
  recipient: string;
  /** Every transfer the payment makes: the primary recipient's, then any splits. Amounts add up to `amountAtomic`. */
  transfers: Transfer[];
  /** How long the signed credential may stay valid (x402 `maxTimeoutSeconds`, mpp `expires` − now). */
  lifetimeSeconds: number | null;
  /** When the challenge itself expires, when it says. */
  expiresAt: Date | null;
  /** Rail-private data needed to sign. */
  raw: unknown;
};

/** A rail's reading of a 402: what it may pay, and what it refused to consider (nothing is signed for those). */
export type Offers = { challenges: PaymentChallenge[]; refused: SpendPolicyError[] };

/** What a signed credential commits to, so that the chain can later tell whether it was used. */
export type Proof =
  | {
      rail: "x402";
      network: string;
      asset: string;
      /** The EIP-3009 authorizer (the payer). */
      from: string;
      /** The authorization's nonce (bytes32 hex). */
      nonce: string;
      /** Unix seconds; the authorization cannot be used from then on. */
      validBefore: number;
      /** The token's EIP-712 domain name and version (to sign a cancellation). */
      domain: { name: string; version: string };
    }
  | {
      rail: "mpp";
      network: string;
      /** Hash of the signed Tempo transaction. */
      hash: string;
      /** Unix seconds; the transaction cannot be included from then on. */
      validBefore: number;
    };

/** A signed credential: the headers that carry it and what it commits to. */
export type Credential = { headers: Record<string, string>; proof: Proof };

/** Where a signed credential stands on chain. */
export type ChainState =
  /** It moved the money (`reference`: the transaction, when found). */
  | { state: "used"; reference: string | null }
  /** Not used yet, and still usable until `validBefore` (unix seconds, compared with chain time). */
  | { state: "unused"; validBefore: number; chainTime: number }
  /** Not used, and it never can be: expired, cancelled, or its transaction reverted. */
  | { state: "void" };

/** A payment rail: reads its own challenges out of a 402, signs one, and can tell what became of it. */
export interface Rail {
  readonly name: RailName;
  /**
   * Loads what the rail needs (its payment library), when it loads lazily (`lazyRail`); the payer
   * awaits it before {@link getChallenges}. Other methods load on their own.
   */
  ready?(): Promise<void>;
  /** The rail's offers in this 402; both lists empty when the 402 is not its concern. Never throws. */
  getChallenges(response: Response, body: unknown): Offers;
  /**
   * Signs `challenge` (called only after the policy approved it) and checks what was signed against
   * it; a difference throws and the credential is never returned. Throws {@link SpendPolicyError}
   * before signing when the challenge cannot be paid safely (e.g. no RPC for its chain).
   */
  createCredential(challenge: PaymentChallenge): Promise<Credential>;
  /**
   * The chain of the RPC configured for this rail (`eip155:<id>`, asked of the RPC once), or null
   * when none is configured: the network the policy allows by default.
   */
  configuredNetwork?(): Promise<string | null>;
  /** Asks the chain what became of a credential. */
  chainState(proof: Proof): Promise<ChainState>;
  /**
   * Makes an unused, still-valid credential unusable on chain where the scheme allows it (EIP-3009
   * `cancelAuthorization`); resolves to the state afterwards, or null when it cannot cancel.
   */
  cancel?(proof: Proof): Promise<ChainState | null>;
}

/**
 * Thrown by a rail whose signing failed after something was signed that the library may have
 * broadcast on its own: the payer records the intent as pending (maybe paid) with `proof`, never as
 * unpaid.
 */
export class SignedThenFailed extends Error {
  override name = "SignedThenFailed";
  readonly proof: Proof;
  constructor(proof: Proof, cause: unknown) {
    super("A credential was signed, then creating it failed.", { cause });
    this.proof = proof;
  }
}

/** Every header name a rail may use to carry a payment (lower case). */
export const paymentHeaders = ["payment-signature", "x-payment"] as const;

/** The payment header a request already carries, if any (`Authorization: Payment …` counts). */
export function carriedPayment(headers: Headers): string | null {
  for (const name of paymentHeaders) if (headers.has(name)) return name;
  const auth = headers.get("authorization");
  if (auth && /^payment\s/i.test(auth)) return "authorization: Payment";
  if (headers.has("payment-authorization")) return "payment-authorization";
  return null;
}

/** A positive amount of atomic units as a canonical decimal string. */
export const atomicAmount = z
  .string()
  .regex(/^[1-9]\d{0,30}$/, "expected a positive integer amount as a decimal string");
/** A 20-byte hex address. */
export const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "expected a 0x-prefixed 20-byte address");

/** A refusal for a challenge that does not parse into the allowed shape. */
export function shapeRefusal(rail: RailName, where: string, error: z.ZodError | string): SpendPolicyError {
  const issues =
    typeof error === "string"
      ? error
      : error.issues
          .slice(0, 3)
          .map((i) => `${[where, ...i.path].join(".")}: ${i.message}`)
          .join("; ");
  return new SpendPolicyError({
    limit: "challenge",
    rail,
    reason: `the challenge is not one the client signs (${issues})`,
    asked: where,
    allowed:
      rail === "x402"
        ? "scheme exact, EIP-3009 transfer, no extensions"
        : "tempo charge, pull mode, explicit chain",
  });
}
