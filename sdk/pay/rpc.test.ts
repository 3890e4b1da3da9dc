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
