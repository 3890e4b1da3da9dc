import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import { describe, expect, test } from "vitest";
import { ApiError } from "./errors.js";
import { siwxMessage, verifySiwx } from "./siwx.js";

const KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const account = privateKeyToAccount(KEY);
const URL_ = new URL("http://127.0.0.1:4020/tiers/v1/status?x=1");
const NOW = Date.parse("2026-11-24T12:00:00.000Z");

async function header(overrides: Record<string, unknown> = {}, signOverrides: Record<string, unknown> = {}) {
  const fields = {
    domain: "127.0.0.1",
    address: account.address,
    statement: "Sign in to Run402",
    uri: "http://127.0.0.1:4020/tiers/v1/status?x=1",
    version: "1",
    chainId: "eip155:84532",
    type: "eip191",
    nonce: "0123456789abcdef",
    issuedAt: "2026-11-24T12:00:00.000Z",
    expirationTime: "2026-11-24T12:05:00.000Z",
    ...overrides,
  };
  const signature = await account.signMessage({ message: siwxMessage({ ...fields, ...signOverrides }) });
  return Buffer.from(JSON.stringify({ ...fields, signature })).toString("base64");
}

async function reason(h: string | undefined): Promise<string> {
  try {
    await verifySiwx(h, URL_, NOW);
  } catch (error) {
    if (error instanceof ApiError) return `${error.status} ${error.code}: ${error.message}`;
    throw error;
  }
  return "ok";
}

describe("verifySiwx", () => {
  test("default: returns the checksummed signer", async () => {
    expect(await verifySiwx(await header(), URL_, NOW)).toBe(account.address);
  });

  test("behavior: the text equals viem's EIP-4361 message (what the SDK signs)", () => {
    const fields = {
      domain: "127.0.0.1",
      address: account.address,
      statement: "Sign in to Run402",
      uri: "http://127.0.0.1:4020/x",
      version: "1",
      chainId: "eip155:84532",
      nonce: "0123456789abcdef",
      issuedAt: "2026-11-24T12:00:00.000Z",
      expirationTime: "2026-11-24T12:05:00.000Z",
    };
    expect(siwxMessage(fields)).toBe(
      createSiweMessage({
        ...fields,
        version: "1",
        chainId: 84532,
        issuedAt: new Date(fields.issuedAt),
        expirationTime: new Date(fields.expirationTime),
      }),
    );
  });

  test("behavior: accepts a signature over the normalized ISO dates", async () => {
    const h = await header({ issuedAt: "2026-11-24T12:00:00Z" }, { issuedAt: "2026-11-24T12:00:00.000Z" });
    expect(await reason(h)).toBe("ok");
  });

  test("error: every refusal names its reason", async () => {
    expect(await reason(undefined)).toMatchInlineSnapshot(
      `"401 AUTH_REQUIRED: This route needs SIWX authentication (SIGN-IN-WITH-X)."`,
    );
    expect(await reason("not-base64!")).toMatchInlineSnapshot(
      `"402 SIWX_INVALID: Invalid SIGN-IN-WITH-X header: not base64 JSON."`,
    );
    expect(await reason(await header({ chainId: 84532 }, { chainId: "eip155:84532" }))).toContain("chainId");
    expect(await reason(await header({ domain: "api.run402.com" }))).toMatchInlineSnapshot(
      `"402 SIWX_INVALID: Invalid SIGN-IN-WITH-X header: domain api.run402.com does not match 127.0.0.1."`,
    );
    expect(await reason(await header({ uri: "http://127.0.0.1:4020/tiers/v1/status" }))).toContain("uri");
    expect(await reason(await header({ expirationTime: "2026-11-24T11:59:00.000Z" }))).toContain("expired");
    expect(
      await reason(
        await header({ issuedAt: "2026-11-24T12:02:00.000Z", expirationTime: "2026-11-24T12:06:00.000Z" }),
      ),
    ).toContain("future");
    expect(await reason(await header({ expirationTime: "2026-11-24T12:11:00.000Z" }))).toContain(
      "10 minutes",
    );
    expect(await reason(await header({}, { nonce: "ffffffffffffffff" }))).toContain("does not match address");
    const { statement: _, ...noStatement } = JSON.parse(Buffer.from(await header(), "base64").toString());
    expect(await reason(Buffer.from(JSON.stringify(noStatement)).toString("base64"))).toContain("statement");
  });
});
