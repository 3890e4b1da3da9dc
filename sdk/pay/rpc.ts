import { custom, type Transport } from "viem";
import { SpendPolicyError } from "../errors/payment.js";
import { throwIfCancelled } from "../internal/http.js";
import { onLoopback } from "../internal/loopback.js";
import type { RailName } from "./rail.js";

export { onLoopback };

/** Each known chain's public RPC, used only when no RPC is configured for the rail at all. */
export const publicRpcUrls: Readonly<Record<number, string>> = {
  8453: "https://mainnet.base.org",
  84532: "https://sepolia.base.org",
  4217: "https://rpc.tempo.xyz",
  42431: "https://rpc.moderato.tempo.xyz",
};

/** The config key that names each rail's RPC (for error messages). */
export const rpcConfigKey: Readonly<Record<RailName, string>> = {
  x402: "run402:baseRpcUrl",
  mpp: "run402:tempoRpcUrl",
};
const configKey = rpcConfigKey;

/**
 * Finds the RPC for a chain id, or throws a refusal naming the config key to set; `configured()`
 * is the chain id the configured RPC serves, or null when none is configured.
 */
export type RpcResolver = ((chainId: number) => Promise<string>) & { configured(): Promise<number | null> };

/**
 * The RPC a rail uses for a chain. A configured URL serves exactly the chain it reports
 * (`eth_chainId`, asked once) and no other; with nothing configured, a known chain's public RPC.
 * Never a library's default client: a challenge on a chain nobody configured is refused before
 * anything is signed.
 */
export function createRpcResolver(
  rail: RailName,
  configured: string | undefined,
  options: {
    /** The API is on loopback (a sandbox): its chains are local, so a public RPC is never a fallback. */
    localApi?: boolean | undefined;
  } = {},
): RpcResolver {
  let served: Promise<number> | undefined;
  const refuse = (chainId: number, reason: string) =>
    new SpendPolicyError({
      limit: "network",
      rail,
      reason: `no RPC is configured for eip155:${chainId} (${reason}); set ${configKey[rail]} to an RPC of that chain`,
      asked: `eip155:${chainId}`,
      allowed: reason,
    });
  const servedChain = (url: string) => {
    served ??= chainIdOf(url, rail).catch((error: unknown) => {
      served = undefined;
      throw error;
    });
    return served;
  };
  const resolve = async (chainId: number) => {
    if (!configured) {
      if (options.localApi)
        throw refuse(
          chainId,
          "the API is on this machine (a sandbox), whose chains no public RPC serves; `npx run402-sandbox --pulumi-config` prints the sandbox's settings",
        );
      const url = publicRpcUrls[chainId];
      if (!url) throw refuse(chainId, "no RPC is configured and the chain has no known public RPC");
      return url;
    }
    const actual = await servedChain(configured);
    if (actual !== chainId) throw refuse(chainId, `the configured RPC serves eip155:${actual}`);
    return configured;
  };
  return Object.assign(resolve, {
    configured: async () => (configured ? servedChain(configured) : null),
  });
}

async function chainIdOf(url: string, rail: RailName): Promise<number> {
  const result = await rpcRequest(rpcEndpoint(url, rail), "eth_chainId", []);
  if (typeof result !== "string" || !/^0x[0-9a-f]+$/i.test(result)) {
    throw new Error(`The RPC at ${rpcLabel(url)} did not answer eth_chainId.`);
  }
  return Number(BigInt(result));
}

/**
 * How an RPC URL is named in messages: scheme, host and port only. Its path often holds an API key
 * (`/v2/<key>`) and its userinfo a password; neither may reach an error, a log or state.
 */
export function rpcLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(an RPC URL that does not parse)";
  }
}

type Endpoint = { url: URL; headers: Record<string, string>; label: string; setting: string | undefined };

/** The URL without userinfo (fetch refuses it) and the Basic credentials it carried, as a header. */
function rpcEndpoint(url: string, rail?: RailName): Endpoint {
  const target = new URL(url);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.username || target.password) {
    const user = decodeURIComponent(target.username);
    const password = decodeURIComponent(target.password);
    headers["authorization"] = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    target.username = "";
    target.password = "";
  }
  return { url: target, headers, label: rpcLabel(url), setting: rail ? configKey[rail] : undefined };
}

let requestId = 0;

/** One JSON-RPC call; errors name the RPC by {@link rpcLabel} only. */
async function rpcRequest(
  endpoint: Endpoint,
  method: string,
  params: unknown,
  stop?: AbortSignal,
): Promise<unknown> {
  throwIfCancelled(stop, `about to ask the RPC at ${endpoint.label} (${method})`);
  let response: Response;
  try {
    response = await fetch(endpoint.url, {
      method: "POST",
      headers: endpoint.headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: ++requestId, method, params }),
      redirect: "manual",
      signal: stop ? AbortSignal.any([AbortSignal.timeout(15_000), stop]) : AbortSignal.timeout(15_000),
    });
  } catch (cause) {
    throwIfCancelled(stop, `waiting for the RPC at ${endpoint.label} (${method})`);
    const why =
      cause instanceof Error && cause.name === "TimeoutError" ? "timed out" : "could not be reached";
    // Name the setting that points here: a restarted sandbox, or a moved RPC, is fixed there.
    const fix = endpoint.setting
      ? ` Check that it runs, or set ${endpoint.setting} to an RPC that does (for a sandbox, \`npx run402-sandbox --pulumi-config\` prints its current settings).`
      : "";
    throw new Error(`The RPC at ${endpoint.label} ${why} (${method}).${fix}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`The RPC at ${endpoint.label} answered HTTP ${response.status} to ${method}.`);
  }
  let json: { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } };
  try {
    json = (await response.json()) as typeof json;
  } catch {
    throw new Error(`The RPC at ${endpoint.label} answered ${method} with something that is not JSON.`);
  }
  if (json.error) {
    // viem maps JSON-RPC error codes to its own errors (reverts, nonce too low, …).
    const message = typeof json.error.message === "string" ? json.error.message : "RPC error";
    throw Object.assign(new Error(message), { code: json.error.code, data: json.error.data });
  }
  return json.result;
}

/**
 * A viem transport for a configured RPC: userinfo becomes a Basic header, redirects are never
 * followed, and no error it raises carries the URL's path or credentials.
 */
export function rpcTransport(url: string, stop?: AbortSignal, rail?: RailName): Transport {
  const endpoint = rpcEndpoint(url, rail);
  return custom(
    { request: ({ method, params }) => rpcRequest(endpoint, method, params, stop) },
    { retryCount: 1 },
  );
}
