/** Small helpers shared by the sandbox's own integration tests. */
import { type Address, createPublicClient, erc20Abi, http } from "viem";

/** The treasury's (or anyone's) token balance on a rail, read over the rail's RPC. */
export async function startChainsBalance(
  sb: { x402: { rpcUrl: string; asset: Address }; mpp: { rpcUrl: string; currency: Address } },
  rail: "x402" | "mpp",
  address: Address,
): Promise<bigint> {
  const { rpcUrl, token } =
    rail === "x402"
      ? { rpcUrl: sb.x402.rpcUrl, token: sb.x402.asset }
      : { rpcUrl: sb.mpp.rpcUrl, token: sb.mpp.currency };
  const client = createPublicClient({ transport: http(rpcUrl) });
  return client.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [address] });
}
