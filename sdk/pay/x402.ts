import { toClientEvmSigner } from "@x402/evm";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";
import type { PaymentRequired, PaymentRequirements } from "@x402/fetch";
import { x402Client, x402HTTPClient } from "@x402/fetch";
import { createPublicClient, http, type LocalAccount } from "viem";
import { atomicToUsd, usdToAtomic } from "../Receipt.js";
import type { PaymentChallenge, Rail } from "./rail.js";

/** Options for {@link create}. */
export type CreateOptions = {
  account: LocalAccount;
  /** Per-payment cap in USD, handed to @x402's own spend controls (its default is $1). */
  maxPaymentUsd: number;
  /** CAIP-2 networks × assets the policy allows, also handed to @x402's spend controls. */
  allowed: { networks: string[]; assets: string[] };
  /** RPC for reads some x402 flows need (EIP-3009 signing needs none). */
  rpcUrl?: string | undefined;
};

type Raw = { paymentRequired: PaymentRequired; requirement: PaymentRequirements };

/** v1 names (`base-sepolia`) → CAIP-2, so one policy covers both protocol versions. */
function toCaip2(network: string): string {
  if (network.includes(":")) return network;
  const id = (EVM_NETWORK_CHAIN_ID_MAP as Record<string, number | undefined>)[network];
  return id === undefined ? network : `eip155:${id}`;
}

/** The x402 rail (@x402/fetch + @x402/evm exact scheme; v2 challenges, v1 for old servers). */
export function create(options: CreateOptions): Rail {
  const { account, maxPaymentUsd, allowed } = options;
  const publicClient = options.rpcUrl ? createPublicClient({ transport: http(options.rpcUrl) }) : undefined;
  const signer = toClientEvmSigner(account, publicClient);
  const capAtomic = usdToAtomic(maxPaymentUsd).toString();
  const client = new x402Client().register("eip155:*", new ExactEvmScheme(signer)).setSpendControls({
    maxAmountPerPayment: `$${atomicToUsd(BigInt(capAtomic))}`,
    allowedAssets: allowed.networks.flatMap((network) =>
      allowed.assets.map((asset) => ({
        network: network as `${string}:${string}`,
        asset,
        maxAmountPerPayment: capAtomic,
      })),
    ),
  });
  for (const name of Object.keys(EVM_NETWORK_CHAIN_ID_MAP))
    client.registerV1(name, new ExactEvmSchemeV1(signer));
  const httpClient = new x402HTTPClient(client);

  return {
    name: "x402",
    getChallenges(response, body) {
      let paymentRequired: PaymentRequired;
      try {
        paymentRequired = httpClient.getPaymentRequiredResponse((h) => response.headers.get(h), body);
      } catch {
        return [];
      }
      const out: PaymentChallenge[] = [];
      for (const requirement of paymentRequired.accepts ?? []) {
        const r = requirement as PaymentRequirements & { maxAmountRequired?: string };
        const amount = r.amount ?? r.maxAmountRequired;
        if (typeof amount !== "string" || !/^\d+$/.test(amount) || typeof r.payTo !== "string") continue;
        out.push({
          rail: "x402",
          network: toCaip2(r.network),
          asset: r.asset,
          amountAtomic: BigInt(amount),
          recipient: r.payTo,
          lifetimeSeconds: typeof r.maxTimeoutSeconds === "number" ? r.maxTimeoutSeconds : null,
          expiresAt: null,
          raw: { paymentRequired, requirement } satisfies Raw,
        });
      }
      return out;
    },
    async createCredential(challenge) {
      const { paymentRequired, requirement } = challenge.raw as Raw;
      // Only the approved requirement goes to the signer, so @x402's selector cannot pick another one.
      const payload = await httpClient.createPaymentPayload({ ...paymentRequired, accepts: [requirement] });
      return httpClient.encodePaymentSignatureHeader(payload);
    },
  };
}
