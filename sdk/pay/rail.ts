/** A payment rail's name. */
export type RailName = "x402" | "mpp";

/** One payable offer from a 402, normalized so the payer can apply one policy to every rail. */
export type PaymentChallenge = {
  rail: RailName;
  /** CAIP-2 network id (`eip155:<chainId>`). */
  network: string;
  /** Token contract address. */
  asset: string;
  /** Atomic units (6 decimals on both rails). */
  amountAtomic: bigint;
  /** Who gets paid. */
  recipient: string;
  /** How long the signed credential may stay valid (x402 `maxTimeoutSeconds`, mpp `expires` − now). */
  lifetimeSeconds: number | null;
  /** When the challenge itself expires, when it says. */
  expiresAt: Date | null;
  /** Rail-private data needed to sign. */
  raw: unknown;
};

/** A payment rail: reads its own challenges out of a 402 and turns one into request headers. */
export interface Rail {
  readonly name: RailName;
  /** The rail's challenges in this 402; `[]` when the 402 is not its concern. Never throws. */
  getChallenges(response: Response, body: unknown): PaymentChallenge[];
  /** Signs `challenge` and returns the headers that carry the payment. Called only after the policy approved it. */
  createCredential(challenge: PaymentChallenge): Promise<Record<string, string>>;
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
