import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { WalletError } from "./errors/wallet.js";

/** Where the key came from. */
export type WalletSource = "explicit" | "env" | "allowance-file";

/** A resolved wallet: a viem account (the key lives only inside its signing closures). */
export type Wallet = {
  readonly account: LocalAccount;
  readonly address: `0x${string}`;
  readonly source: WalletSource;
  /** The rail the allowance file asks for, when it names one. */
  readonly rail?: "x402" | "mpp" | undefined;
};

/** Options for {@link resolveWallet}. */
export type ResolveWalletOptions = {
  /** An explicit 0x-prefixed 32-byte hex key; wins over everything else. */
  privateKey?: string | undefined;
  /** Environment to read `RUN402_PRIVATE_KEY`, `RUN402_ALLOWANCE_PATH`, `RUN402_CONFIG_DIR` from. @default process.env */
  env?: Record<string, string | undefined> | undefined;
};

const keyPattern = /^0x[0-9a-fA-F]{64}$/;

/** Resolves the paying wallet: explicit key, then `RUN402_PRIVATE_KEY`, then the run402 allowance file. */
export function resolveWallet(options: ResolveWalletOptions = {}): Wallet {
  const env = options.env ?? process.env;
  if (options.privateKey !== undefined) return fromKey(options.privateKey, "explicit");
  const fromEnv = env["RUN402_PRIVATE_KEY"];
  if (fromEnv) return fromKey(fromEnv.trim(), "env");
  const path = allowancePath(env);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new WalletError({
      code: "WALLET_NOT_FOUND",
      reason: `No wallet: pass privateKey, set RUN402_PRIVATE_KEY, or create ${path}`,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse quotes the offending text in its message, which may be the key: drop it.
    throw new WalletError({ code: "WALLET_INVALID", reason: `The allowance file ${path} is not valid JSON` });
  }
  const file = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
  const key = file["privateKey"];
  if (typeof key !== "string") {
    throw new WalletError({ code: "WALLET_INVALID", reason: `The allowance file ${path} has no privateKey` });
  }
  const rail = file["rail"] === "x402" || file["rail"] === "mpp" ? file["rail"] : undefined;
  const wallet = fromKey(key, "allowance-file", rail);
  if (typeof file["address"] === "string" && file["address"].toLowerCase() !== wallet.address.toLowerCase()) {
    throw new WalletError({
      code: "WALLET_INVALID",
      reason: `The allowance file ${path} names address ${file["address"]} but its key belongs to ${wallet.address}`,
    });
  }
  return wallet;
}

/**
 * The run402 config folder, shared with Run402's own CLI: `RUN402_CONFIG_DIR`, else `~/.config/run402`. It
 * holds the allowance file, the payment journal and the project key store.
 */
export function configDir(env: Record<string, string | undefined> = process.env): string {
  return env["RUN402_CONFIG_DIR"] ?? join(homedir(), ".config", "run402");
}

function allowancePath(env: Record<string, string | undefined>): string {
  if (env["RUN402_ALLOWANCE_PATH"]) return env["RUN402_ALLOWANCE_PATH"];
  return join(configDir(env), "allowance.json");
}

function fromKey(key: string, source: WalletSource, rail?: "x402" | "mpp"): Wallet {
  if (!keyPattern.test(key)) {
    // Never echo the value: a near-miss key is still a secret.
    throw new WalletError({
      code: "WALLET_INVALID",
      reason: "The private key is not 0x-prefixed 32-byte hex",
      source,
    });
  }
  let account: LocalAccount;
  try {
    account = privateKeyToAccount(key as `0x${string}`);
  } catch {
    throw new WalletError({
      code: "WALLET_INVALID",
      reason: "The private key is not a valid secp256k1 key",
      source,
    });
  }
  const wallet = { account, address: account.address, source, ...(rail ? { rail } : {}) };
  const summary = () => ({ address: account.address, source, ...(rail ? { rail } : {}) });
  Object.defineProperties(wallet, {
    toJSON: { value: summary, enumerable: false },
    [inspect.custom]: { value: () => `Wallet ${JSON.stringify(summary())}`, enumerable: false },
  });
  return wallet;
}
