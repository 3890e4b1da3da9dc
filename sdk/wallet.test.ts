import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import { createRun402 } from "./client.js";
import { WalletError } from "./errors/wallet.js";
import { resolveWallet } from "./wallet.js";

const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const secretPart = key.slice(2, 40);

/** Everything an error or object could show: message, stack, JSON, util.inspect with depth. */
function exposed(value: unknown): string {
  const parts = [inspect(value, { depth: 10, showHidden: true }), JSON.stringify(value) ?? ""];
  if (value instanceof Error) parts.push(value.message, value.stack ?? "", String(value.cause ?? ""));
  return parts.join("\n");
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

function allowanceDir(content: string): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "r402-wallet-"));
  writeFileSync(join(dir, "allowance.json"), content);
  return { RUN402_CONFIG_DIR: dir };
}

describe("resolveWallet", () => {
  test("default: explicit key wins over env and file", () => {
    const w = resolveWallet({ privateKey: key, env: { RUN402_PRIVATE_KEY: "0xbad", ...allowanceDir("{}") } });
    expect({ address: w.address, source: w.source }).toEqual({ address, source: "explicit" });
  });

  test("behavior: env, then the allowance file with its rail", () => {
    expect(resolveWallet({ env: { RUN402_PRIVATE_KEY: key } }).source).toBe("env");
    const w = resolveWallet({ env: allowanceDir(JSON.stringify({ address, privateKey: key, rail: "mpp" })) });
    expect({ source: w.source, rail: w.rail, address: w.address }).toEqual({
      source: "allowance-file",
      rail: "mpp",
      address,
    });
  });

  test("behavior: RUN402_ALLOWANCE_PATH beats RUN402_CONFIG_DIR", () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-wallet-"));
    const path = join(dir, "custom.json");
    writeFileSync(path, JSON.stringify({ privateKey: key }));
    expect(
      resolveWallet({ env: { RUN402_ALLOWANCE_PATH: path, RUN402_CONFIG_DIR: "/nonexistent" } }).address,
    ).toBe(address);
  });

  test("behavior: the key never shows in the wallet object", () => {
    const w = resolveWallet({ privateKey: key });
    expect(exposed(w)).not.toContain(secretPart);
    expect(JSON.stringify(w)).toMatchInlineSnapshot(
      `"{"address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","source":"explicit"}"`,
    );
    expect(inspect(w)).toMatchInlineSnapshot(
      `"Wallet {"address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","source":"explicit"}"`,
    );
  });

  test("error: a malformed key is not echoed", () => {
    const nearMiss = `${key}ff`;
    const err = thrown(() => resolveWallet({ privateKey: nearMiss }));
    expect(err).toBeInstanceOf(WalletError);
    expect(exposed(err)).not.toContain(secretPart);
    expect((err as Error).message).toMatchInlineSnapshot(`
      "The private key is not 0x-prefixed 32-byte hex.

      Source: explicit"
    `);
  });

  test("error: an allowance file that is not JSON does not quote its content", () => {
    const err = thrown(() => resolveWallet({ env: allowanceDir(`{"privateKey": "${key}",,}`) }));
    expect((err as WalletError).code).toBe("WALLET_INVALID");
    expect(exposed(err)).not.toContain(secretPart);
  });

  test("error: an allowance file whose address does not match its key", () => {
    const err = thrown(() =>
      resolveWallet({
        env: allowanceDir(
          JSON.stringify({ address: "0x0000000000000000000000000000000000000001", privateKey: key }),
        ),
      }),
    );
    expect((err as WalletError).code).toBe("WALLET_INVALID");
    expect(exposed(err)).not.toContain(secretPart);
  });

  test("error: no wallet anywhere", () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-wallet-"));
    const err = thrown(() => resolveWallet({ env: { RUN402_CONFIG_DIR: dir } })) as WalletError;
    expect(err.code).toBe("WALLET_NOT_FOUND");
  });

  test("behavior: errors thrown while paying do not carry the key", async () => {
    const wallet = resolveWallet({ privateKey: key });
    const r402 = createRun402({
      apiBase: "http://127.0.0.1:4021",
      wallet,
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      fetch: (async () => {
        throw new Error("connection refused");
      }) as typeof globalThis.fetch,
    });
    const err = await r402.tiers.set({ tier: "prototype", intent: "x" }).catch((e: unknown) => e);
    expect(exposed(err)).not.toContain(secretPart);
    expect(exposed(r402)).not.toContain(secretPart);
  });
});
