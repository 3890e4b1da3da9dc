import { describe, expect, test } from "vitest";
import { createRpcResolver, publicRpcUrls } from "./rpc.js";

describe("createRpcResolver", () => {
  test("behavior: with no RPC configured, a known chain's public RPC (a remote API)", async () => {
    expect(await createRpcResolver("mpp", undefined)(42431)).toBe(publicRpcUrls[42431]);
  });

  test("error: with no RPC configured and a local API, never a public RPC; the refusal names the key", async () => {
    const resolve = createRpcResolver("mpp", undefined, { localApi: true });
    await expect(resolve(42431)).rejects.toThrow(/run402:tempoRpcUrl/);
    await expect(resolve(42431)).rejects.toThrow(/no public RPC serves/);
    await expect(createRpcResolver("x402", undefined, { localApi: true })(84532)).rejects.toThrow(
      /run402:baseRpcUrl/,
    );
  });
});

describe("an unreachable RPC", () => {
  test("error: names the setting that points at it and how to refresh a sandbox's", async () => {
    const real = globalThis.fetch;
    // What undici throws when nothing listens on the port (a restarted sandbox moved its chain).
    globalThis.fetch = async () => {
      throw new TypeError("fetch failed");
    };
    try {
      const error = await createRpcResolver("mpp", "http://user:pw@127.0.0.1:9/key")
        .configured()
        .catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(
        "The RPC at http://127.0.0.1:9 could not be reached (eth_chainId).",
      );
      expect((error as Error).message).toContain("run402:tempoRpcUrl");
      expect((error as Error).message).toContain("npx run402-sandbox --pulumi-config");
      // Never the path or the credentials.
      expect((error as Error).message).not.toMatch(/pw|\/key/);
    } finally {
      globalThis.fetch = real;
    }
  });
});
