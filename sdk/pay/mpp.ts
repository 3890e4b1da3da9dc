import { Challenge } from "mppx";
import { Mppx, tempo } from "mppx/client";
import { type Chain, createClient, http, type LocalAccount } from "viem";
import { tempo as tempoMainnet, tempoModerato } from "viem/chains";
import type { PaymentChallenge, Rail } from "./rail.js";

/** Options for {@link create}. */
export type CreateOptions = {
  account: LocalAccount;
  /** Tempo RPC; mppx's tempo client has no URL option, so a viem client pointed here is handed in via `getClient`. */
  rpcUrl?: string | undefined;
  /** Chain ids the policy allows; mppx enforces them too. */
  allowedChainIds: number[];
  /** Recipients the policy pins, when it pins any; mppx enforces them too. */
  expectedRecipients?: string[] | undefined;
  fetch?: typeof globalThis.fetch | undefined;
};

type Raw = { challenge: Challenge.Challenge };

/** Tempo Moderato is the default when a challenge names no chain (mpp spec). */
const defaultChainId = 42431;

function chainFor(chainId: number): Chain {
  const base = chainId === tempoMainnet.id ? tempoMainnet : tempoModerato;
  return { ...base, id: chainId } as Chain;
}

/** The MPP rail (mppx client, tempo charge). */
export function create(options: CreateOptions): Rail {
  const { account, rpcUrl } = options;
  const mppx = Mppx.create({
    methods: [
      tempo.charge({
        account,
        allowedChainIds: options.allowedChainIds,
        ...(options.expectedRecipients?.length
          ? { expectedRecipients: options.expectedRecipients as `0x${string}`[] }
          : {}),
        ...(rpcUrl
          ? {
              getClient: ({ chainId }: { chainId?: number | undefined }) =>
                createClient({ chain: chainFor(chainId ?? defaultChainId), transport: http(rpcUrl) }),
            }
          : {}),
      }),
    ],
    // A library must not replace globalThis.fetch for the whole process.
    polyfill: false,
    // The payer owns the single paid retry; mppx's own loop would sign a fresh credential per 402.
    maxPaymentRetries: 0,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });

  return {
    name: "mpp",
    getChallenges(response) {
      let challenges: Challenge.Challenge[];
      try {
        challenges = Challenge.fromResponseList(response);
      } catch {
        return [];
      }
      const out: PaymentChallenge[] = [];
      for (const challenge of challenges) {
        if (challenge.method !== "tempo" || challenge.intent !== "charge") continue;
        const request = challenge.request as {
          amount?: unknown;
          currency?: unknown;
          recipient?: unknown;
          methodDetails?: { chainId?: unknown };
        };
        if (typeof request.amount !== "string" || !/^\d+$/.test(request.amount)) continue;
        if (typeof request.currency !== "string" || typeof request.recipient !== "string") continue;
        const chainId =
          typeof request.methodDetails?.chainId === "number" ? request.methodDetails.chainId : defaultChainId;
        const expiresAt = challenge.expires ? new Date(challenge.expires) : null;
        out.push({
          rail: "mpp",
          network: `eip155:${chainId}`,
          asset: request.currency,
          amountAtomic: BigInt(request.amount),
          recipient: request.recipient,
          lifetimeSeconds: expiresAt ? Math.ceil((expiresAt.getTime() - Date.now()) / 1000) : null,
          expiresAt,
          raw: { challenge } satisfies Raw,
        });
      }
      return out;
    },
    async createCredential(challenge) {
      const { challenge: approved } = challenge.raw as Raw;
      // Hand mppx a 402 carrying only the approved challenge, so its selection cannot pick another.
      const only = new Response(null, {
        status: 402,
        headers: { "WWW-Authenticate": Challenge.serialize(approved) },
      });
      const credential = await mppx.createCredential(only);
      return { [Challenge.credentialHeader(approved)]: credential };
    },
  };
}
