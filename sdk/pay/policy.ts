import { SpendPolicyError } from "../errors/payment.js";
import { atomicToUsd, usdToAtomic } from "../money.js";
import type { PaymentChallenge, RailName } from "./rail.js";

/** The caller's spend limits, checked before anything is signed. */
export type SpendPolicy = {
  /** Largest single payment, USD. */
  maxPaymentUsd: number;
  /** Largest total over this client's lifetime, USD. */
  maxSpendUsd: number;
  /**
   * CAIP-2 ids or bare chain ids. @default the chain of the rail's configured RPC; with none
   * configured, the testnets only (eip155:84532 for x402, eip155:42431 for mpp): a mainnet is paid
   * on only when the operator lists it here or configures an RPC of it.
   */
  allowedNetworks?: string[] | undefined;
  /** Token addresses. @default USDC on Base / Base Sepolia, pathUSD and USDC.e on Tempo */
  allowedAssets?: string[] | undefined;
  /** Recipients (split recipients included). When unset, the first recipient seen per API base and rail is pinned (trust on first use), and splits to anyone else are refused. */
  allowedRecipients?: string[] | undefined;
  /** Longest credential / challenge lifetime accepted, seconds. @default 900 */
  maxChallengeExpirySeconds?: number | undefined;
};

/** Networks each rail may pay on when the policy names none and the rail has no RPC configured: testnets. */
export const defaultNetworks: Record<RailName, string[]> = {
  x402: ["eip155:84532"],
  mpp: ["eip155:42431"],
};

/** Stablecoins (6 decimals) the policy accepts unless told otherwise. */
export const defaultAssets = [
  "0x036CbD53842c5426634e7929541eC2318f3dCF7e", // USDC, Base Sepolia
  "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", // USDC, Base
  "0x20c0000000000000000000000000000000000000", // pathUSD, Tempo
  "0x20C000000000000000000000b9537d11c60E8b50", // USDC.e, Tempo mainnet
];

/** Normalizes `84532` / `eip155:84532` to CAIP-2. */
export function normalizeNetwork(network: string): string {
  return /^\d+$/.test(network.trim()) ? `eip155:${network.trim()}` : network.trim().toLowerCase();
}

/**
 * The networks a rail may pay on under `policy`: its own list, else `configured` (the chain of the
 * rail's configured RPC), else the testnets.
 */
export function networksFor(policy: SpendPolicy, rail: RailName, configured?: string | null): string[] {
  return (policy.allowedNetworks ?? (configured ? [configured] : defaultNetworks[rail])).map(
    normalizeNetwork,
  );
}

/** The assets the policy accepts. */
export function assetsFor(policy: SpendPolicy): string[] {
  return policy.allowedAssets ?? defaultAssets;
}

/** What the check needs beyond the challenge. */
export type CheckContext = {
  /** Paid so far in this client's lifetime, atomic units. */
  spentAtomic: bigint;
  /** The recipient pinned for this API base and rail, when no allow-list is configured. */
  pinnedRecipient: string | null;
  /** The chain of the rail's configured RPC (`eip155:<id>`), the default allowed network; null when none is configured. */
  configuredNetwork?: string | null | undefined;
  now?: Date | undefined;
};

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Returns the refusal for `challenge` under `policy`, or null when it may be paid. Pure: signs nothing. */
export function check(
  policy: SpendPolicy,
  challenge: PaymentChallenge,
  context: CheckContext,
): SpendPolicyError | null {
  const rail = challenge.rail;
  const networks = networksFor(policy, rail, context.configuredNetwork);
  if (!networks.includes(normalizeNetwork(challenge.network))) {
    return new SpendPolicyError({
      limit: "network",
      rail,
      reason: `network ${challenge.network} is not allowed${policy.allowedNetworks ? "" : " (by default only the chain of the configured RPC, or the testnet when none is configured)"}; an operator who means to pay there lists it in allowedNetworks (run402:allowedNetworks)`,
      asked: challenge.network,
      allowed: networks.join(", "),
    });
  }
  const assets = assetsFor(policy);
  if (!assets.some((a) => same(a, challenge.asset))) {
    return new SpendPolicyError({
      limit: "asset",
      rail,
      reason: `asset ${challenge.asset} is not allowed`,
      asked: challenge.asset,
      allowed: assets.join(", "),
    });
  }
  const moved = challenge.transfers.reduce((sum, t) => sum + t.amountAtomic, 0n);
  if (moved !== challenge.amountAtomic || challenge.transfers.some((t) => t.amountAtomic <= 0n)) {
    return new SpendPolicyError({
      limit: "challenge",
      rail,
      reason: `its transfers add up to ${atomicToUsd(moved)} USD, not the ${atomicToUsd(challenge.amountAtomic)} USD asked`,
      asked: `${atomicToUsd(moved)} USD`,
      allowed: `${atomicToUsd(challenge.amountAtomic)} USD`,
    });
  }
  // Every address the payment moves money to (the recipient and any splits) must pass.
  const recipients = challenge.transfers.map((t) => t.recipient);
  if (policy.allowedRecipients) {
    const outside = recipients.find((r) => !policy.allowedRecipients!.some((a) => same(a, r)));
    if (outside) {
      return new SpendPolicyError({
        limit: "recipient",
        rail,
        reason: `recipient ${outside} is not allowed`,
        asked: recipients.join(", "),
        allowed: policy.allowedRecipients.join(", "),
      });
    }
  } else {
    const pinned = context.pinnedRecipient ?? challenge.recipient;
    const other = recipients.find((r) => !same(pinned, r));
    if (other) {
      return new SpendPolicyError({
        limit: "recipient",
        rail,
        reason: context.pinnedRecipient
          ? `recipient ${other} differs from the one pinned on first use`
          : `recipient ${other} differs from the payment's own recipient; set allowedRecipients to pay splits`,
        asked: recipients.join(", "),
        allowed: pinned,
      });
    }
  }
  const now = context.now ?? new Date();
  const ceiling = policy.maxChallengeExpirySeconds ?? 900;
  if (challenge.expiresAt && challenge.expiresAt.getTime() <= now.getTime()) {
    return new SpendPolicyError({
      limit: "expiry",
      rail,
      reason: `the challenge expired at ${challenge.expiresAt.toISOString()}`,
      asked: challenge.expiresAt.toISOString(),
      allowed: `after ${now.toISOString()}`,
    });
  }
  if (challenge.lifetimeSeconds !== null && challenge.lifetimeSeconds > ceiling) {
    return new SpendPolicyError({
      limit: "expiry",
      rail,
      reason: `the challenge stays valid for ${challenge.lifetimeSeconds} s, over the ${ceiling} s ceiling`,
      asked: `${challenge.lifetimeSeconds} s`,
      allowed: `${ceiling} s`,
    });
  }
  const maxPayment = usdToAtomic(policy.maxPaymentUsd);
  if (challenge.amountAtomic > maxPayment) {
    return new SpendPolicyError({
      limit: "max_payment",
      rail,
      reason: `${atomicToUsd(challenge.amountAtomic)} USD is over the per-payment limit of ${atomicToUsd(maxPayment)} USD`,
      asked: `${atomicToUsd(challenge.amountAtomic)} USD`,
      allowed: `${atomicToUsd(maxPayment)} USD`,
    });
  }
  const maxSpend = usdToAtomic(policy.maxSpendUsd);
  if (context.spentAtomic + challenge.amountAtomic > maxSpend) {
    return new SpendPolicyError({
      limit: "max_spend",
      rail,
      reason: `${atomicToUsd(challenge.amountAtomic)} USD on top of ${atomicToUsd(context.spentAtomic)} USD already spent is over the run limit of ${atomicToUsd(maxSpend)} USD`,
      asked: `${atomicToUsd(context.spentAtomic + challenge.amountAtomic)} USD`,
      allowed: `${atomicToUsd(maxSpend)} USD`,
    });
  }
  return null;
}
