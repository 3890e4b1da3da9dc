/**
 * Test harness around the sandbox (imported as `~test/sandbox.js`): starts one in-process sandbox and
 * wraps its `/_sandbox` controls. Tests start one per file and close it in `afterAll`.
 */
import { randomBytes } from "node:crypto";
import {
  type FaultKind,
  type LedgerEntry,
  type RequestLogEntry,
  type Sandbox,
  type SandboxOptions,
  siwxMessage,
  startSandbox,
} from "@pulumi-run402/sandbox";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

/** A fault for `POST /_sandbox/faults`. */
export interface FaultSpec {
  /** `METHOD /pattern`, e.g. `"POST /tiers/v1/:tier"`. */
  route: string;
  kind: FaultKind;
  /** @default 1 */
  count?: number;
  delayMs?: number;
  retryAfterSeconds?: number;
}

/** A running sandbox plus its test controls. */
export interface TestSandbox extends Sandbox {
  /** Every settled payment, oldest first. */
  ledger(): Promise<LedgerEntry[]>;
  /** Every API request so far (not the /_sandbox ones), oldest first. */
  requests(): Promise<RequestLogEntry[]>;
  /** Moves the lease clock forward; returns the new sandbox time (ISO). */
  advanceClock(seconds: number): Promise<string>;
  /** Arms a fault for the next matching requests. */
  fault(spec: FaultSpec): Promise<void>;
  /** Sets a tier's price (USD decimal string) from now on: the catalog and the 402 challenge. */
  setPrice(tier: string, price: string): Promise<void>;
  /** The ids of the live projects sandbox wallet `wallet` sees (its signed-in project list). */
  projectsOf(wallet: number): Promise<string[]>;
  /** Stops the sandbox. */
  close(): Promise<void>;
}

async function control<T>(apiBase: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${apiBase}/_sandbox/${path}`, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`/_sandbox/${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** Starts a sandbox for a test file. */
export async function startTestSandbox(options: SandboxOptions = {}): Promise<TestSandbox> {
  const sandbox = await startSandbox({ walletCount: 3, log: () => {}, ...options });
  const { apiBase } = sandbox;
  return {
    ...sandbox,
    ledger: async () => (await control<{ payments: LedgerEntry[] }>(apiBase, "ledger")).payments,
    requests: async () => (await control<{ requests: RequestLogEntry[] }>(apiBase, "requests")).requests,
    advanceClock: async (seconds) =>
      (await control<{ now: string }>(apiBase, "clock", { advanceSeconds: seconds })).now,
    fault: async (spec) => void (await control(apiBase, "faults", { count: 1, ...spec })),
    setPrice: async (tier, price) => void (await control(apiBase, "prices", { tier, price })),
    projectsOf: async (wallet) => {
      const url = `${apiBase}/projects/v1`;
      const response = await fetch(url, {
        headers: { "sign-in-with-x": await siwxHeader(sandbox.wallets[wallet]!.privateKey, url) },
      });
      // Rows are keyed `id`, as Run402 lists them.
      return ((await response.json()) as { projects: { id: string }[] }).projects.map((p) => p.id);
    },
    close: () => sandbox.stop(),
  };
}

/** A SIGN-IN-WITH-X header for `url`, signed by `privateKey` (the sandbox's own tests use it). */
export async function siwxHeader(
  privateKey: Hex,
  url: string,
  overrides: { domain?: string; uri?: string; issuedAt?: Date; expirationTime?: Date } = {},
): Promise<string> {
  const account = privateKeyToAccount(privateKey);
  const u = new URL(url);
  const issuedAt = overrides.issuedAt ?? new Date();
  const fields = {
    domain: overrides.domain ?? u.hostname,
    address: account.address,
    statement: "Sign in to Run402",
    uri: overrides.uri ?? u.origin + u.pathname + u.search,
    version: "1",
    chainId: "eip155:84532",
    type: "eip191",
    nonce: randomBytes(16).toString("hex"),
    issuedAt: issuedAt.toISOString(),
    expirationTime: (overrides.expirationTime ?? new Date(issuedAt.getTime() + 5 * 60_000)).toISOString(),
  };
  const signature = await account.signMessage({ message: siwxMessage(fields) });
  return Buffer.from(JSON.stringify({ ...fields, signature })).toString("base64");
}
