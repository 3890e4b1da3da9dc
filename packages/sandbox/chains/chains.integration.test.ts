import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Chain, createPublicClient, createWalletClient, encodeFunctionData, http, parseAbi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia } from "viem/chains";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Chains, MULTICALL3_ADDRESS, startChains } from "./index.js";

const tokenAbi = parseAbi([
  "function name() view returns (string)",
  "function version() view returns (string)",
  "function decimals() view returns (uint8)",
  "function transfer(address to, uint256 amount) returns (bool)",
]);
const DEV0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

let stateDir: string;
let chains: Chains;
let coldStartMs: number;

const baseChain = (): Chain => ({ ...baseSepolia, rpcUrls: { default: { http: [chains.base.rpcUrl] } } });

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = (await res.json()) as { result: T; error?: { message: string } };
  if (body.error) throw new Error(body.error.message);
  return body.result;
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "run402-chains-"));
  const started = performance.now();
  chains = await startChains({ stateDir, walletCount: 2 });
  coldStartMs = performance.now() - started;
});

afterAll(async () => {
  await chains?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe("startChains", () => {
  test("behavior: an idle chain's latest block keeps wall-clock time (Tempo's expiring nonces need it)", async () => {
    // Start time is measured by `npm run bench`, not asserted here.
    console.log(`start: ${coldStartMs.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 3000));
    for (const url of [chains.base.rpcUrl, chains.tempo.rpcUrl]) {
      const block = await rpc<{ timestamp: string }>(url, "eth_getBlockByNumber", ["latest", false]);
      const lag = Date.now() / 1000 - Number(BigInt(block.timestamp));
      expect(lag, url).toBeLessThan(2.5);
    }
  });

  test("both chains answer with their chain ids on 127.0.0.1", async () => {
    expect(chains.base.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(chains.tempo.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await rpc(chains.base.rpcUrl, "eth_chainId")).toBe("0x14a34");
    expect(await rpc(chains.tempo.rpcUrl, "eth_chainId")).toBe("0xa5bf");
  });

  test("base has the real FiatTokenV2_2 at the USDC address and Multicall3", async () => {
    const client = createPublicClient({ chain: baseChain(), transport: http(chains.base.rpcUrl) });
    const read = (functionName: "name" | "version" | "decimals") =>
      client.readContract({ address: chains.base.usdc, abi: tokenAbi, functionName });
    expect(await read("name")).toBe("USDC");
    expect(await read("version")).toBe("2");
    expect(await read("decimals")).toBe(6);
    expect((await client.getCode({ address: MULTICALL3_ADDRESS }))?.length).toBeGreaterThan(2);
  });

  test("wallets hold 1000 USDC, 1000 pathUSD and ETH; treasury starts empty; facilitator has gas", async () => {
    expect(chains.wallets).toHaveLength(2);
    for (const wallet of chains.wallets) {
      expect(await chains.balance("x402", wallet.address)).toBe(1000_000000n);
      expect(await chains.balance("mpp", wallet.address)).toBe(1000_000000n);
      expect(
        BigInt(await rpc<string>(chains.base.rpcUrl, "eth_getBalance", [wallet.address, "latest"])),
      ).toBeGreaterThan(0n);
      expect(privateKeyToAccount(wallet.privateKey).address).toBe(wallet.address);
    }
    expect(chains.wallets.map((w) => w.address)).not.toContain(chains.treasury);
    expect(await chains.balance("x402", chains.treasury)).toBe(0n);
    expect(await chains.balance("mpp", chains.treasury)).toBe(0n);
    const gas = await rpc<string>(chains.base.rpcUrl, "eth_getBalance", [
      chains.facilitator.address,
      "latest",
    ]);
    expect(BigInt(gas)).toBeGreaterThan(10n ** 18n);
  });

  test("a restart with the same stateDir keeps balances and nonces, and funds added wallets", async () => {
    const payer = chains.wallets[0]!;
    const wallet = createWalletClient({
      account: privateKeyToAccount(payer.privateKey),
      chain: baseChain(),
      transport: http(chains.base.rpcUrl),
    });
    const hash = await wallet.writeContract({
      address: chains.base.usdc,
      abi: tokenAbi,
      functionName: "transfer",
      args: [chains.treasury, 1_234567n],
    });
    const publicClient = createPublicClient({ chain: baseChain(), transport: http(chains.base.rpcUrl) });
    expect((await publicClient.waitForTransactionReceipt({ hash })).status).toBe("success");
    const tempoHash = await rpc<string>(chains.tempo.rpcUrl, "eth_sendTransaction", [
      {
        from: DEV0,
        to: chains.tempo.pathUsd,
        data: encodeFunctionData({
          abi: tokenAbi,
          functionName: "transfer",
          args: [chains.treasury, 7_654321n],
        }),
      },
    ]);
    // Mixed mining includes a transaction at once but asynchronously: wait for its receipt.
    for (let i = 0; i < 100; i++) {
      if (await rpc(chains.tempo.rpcUrl, "eth_getTransactionReceipt", [tempoHash])) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await chains.balance("mpp", chains.treasury)).toBe(7_654321n);

    const oldUrls = [chains.base.rpcUrl, chains.tempo.rpcUrl];
    await chains.stop();
    await expect(rpc(oldUrls[0]!, "eth_chainId")).rejects.toThrow();

    const restartedAt = performance.now();
    chains = await startChains({ stateDir, walletCount: 3 });
    console.log(`restart from state: ${(performance.now() - restartedAt).toFixed(0)} ms`);
    expect(await chains.balance("x402", chains.treasury)).toBe(1_234567n);
    expect(await chains.balance("x402", payer.address)).toBe(1000_000000n - 1_234567n);
    expect(await chains.balance("mpp", chains.treasury)).toBe(7_654321n);
    expect(await chains.balance("mpp", payer.address)).toBe(1000_000000n);
    expect(await rpc(chains.base.rpcUrl, "eth_getTransactionCount", [payer.address, "latest"])).toBe("0x1");
    // A wallet the saved state never saw is funded on restart; the old ones are not topped up.
    const added = chains.wallets[2]!;
    expect(await chains.balance("x402", added.address)).toBe(1000_000000n);
    expect(await chains.balance("mpp", added.address)).toBe(1000_000000n);
    expect(await chains.balance("mpp", chains.wallets[1]!.address)).toBe(1000_000000n);
  });
});
