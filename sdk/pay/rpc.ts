import { SpendPolicyError } from "../errors/payment.js";
import type { RailName } from "./rail.js";

/** Each known chain's public RPC, used only when no RPC is configured for the rail at all. */
export const publicRpcUrls: Readonly<Record<number, string>> = {
  8453: "https://mainnet.base.org",
  84532: "https://sepolia.base.org",
  4217: "https://rpc.tempo.xyz",
  42431: "https://rpc.moderato.tempo.xyz",
};

/** The config key that names each rail's RPC (for error messages). */
const configKey: Record<RailName, string> = { x402: "run402:baseRpcUrl", mpp: "run402:tempoRpcUrl" };

/** Finds the RPC for a chain id, or throws a refusal naming the config key to set. */
export type RpcResolver = (chainId: number) => Promise<string>;

/**
 * The RPC a rail uses for a chain. A configured URL serves exactly the chain it reports
 * (`eth_chainId`, asked once) and no other; with nothing configured, a known chain's public RPC.
 * Never a library's default client: a challenge on a chain nobody configured is refused before
 * anything is signed.
 */
export function createRpcResolver(rail: RailName, configured: string | undefined): RpcResolver {
  let served: Promise<number> | undefined;
  const refuse = (chainId: number, reason: string) =>
    new SpendPolicyError({
      limit: "network",
      rail,
      reason: `no RPC is configured for eip155:${chainId} (${reason}); set ${configKey[rail]} to an RPC of that chain`,
      asked: `eip155:${chainId}`,
      allowed: reason,
    });
  return async (chainId) => {
    if (!configured) {
      const url = publicRpcUrls[chainId];
      if (!url) throw refuse(chainId, "no RPC is configured and the chain has no known public RPC");
      return url;
    }
    served ??= chainIdOf(configured).catch((error: unknown) => {
      served = undefined;
      throw error;
    });
    const actual = await served;
    if (actual !== chainId) throw refuse(chainId, `the configured RPC serves eip155:${actual}`);
    return configured;
  };
}

async function chainIdOf(url: string): Promise<number> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    redirect: "manual",
    signal: AbortSignal.timeout(15_000),
  });
  const json = (await response.json()) as { result?: unknown };
  if (typeof json.result !== "string" || !/^0x[0-9a-f]+$/i.test(json.result)) {
    throw new Error(`The RPC at ${url} did not answer eth_chainId.`);
  }
  return Number(BigInt(json.result));
}
