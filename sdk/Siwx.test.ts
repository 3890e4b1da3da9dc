import { recoverMessageAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { parseSiweMessage } from "viem/siwe";
import { describe, expect, test } from "vitest";
import * as Siwx from "./Siwx.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");

describe("Siwx.message", () => {
  test("default: EIP-4361 text", () => {
    expect(
      Siwx.message({
        domain: "api.run402.com",
        address: account.address,
        statement: Siwx.statement,
        uri: "https://api.run402.com/tiers/v1/status?x=1",
        version: "1",
        chainId: Siwx.chainId,
        type: "eip191",
        nonce: "0123456789abcdef0123456789abcdef",
        issuedAt: "2026-11-24T12:00:00.000Z",
        expirationTime: "2026-11-24T12:05:00.000Z",
      }),
    ).toMatchInlineSnapshot(`
      "api.run402.com wants you to sign in with your Ethereum account:
      0x70997970C51812dc3A010C7d01b50e0d17dc79C8

      Sign in to Run402

      URI: https://api.run402.com/tiers/v1/status?x=1
      Version: 1
      Chain ID: 84532
      Nonce: 0123456789abcdef0123456789abcdef
      Issued At: 2026-11-24T12:00:00.000Z
      Expiration Time: 2026-11-24T12:05:00.000Z"
    `);
  });
});

describe("Siwx.create", () => {
  test("default: domain without port, uri with path and query, signature recovers", async () => {
    const now = new Date("2026-11-24T12:00:00.000Z");
    const payload = await Siwx.create({
      account,
      url: "http://127.0.0.1:4021/projects/v1/prj_1?full=1",
      now,
    });
    expect(payload.domain).toBe("127.0.0.1");
    expect(payload.uri).toBe("http://127.0.0.1:4021/projects/v1/prj_1?full=1");
    expect(payload.chainId).toBe("eip155:84532");
    expect(payload.issuedAt).toBe("2026-11-24T12:00:00.000Z");
    expect(payload.expirationTime).toBe("2026-11-24T12:05:00.000Z");
    const { signature, ...unsigned } = payload;
    const text = Siwx.message(unsigned);
    expect(await recoverMessageAddress({ message: text, signature })).toBe(account.address);
    expect(parseSiweMessage(text)).toMatchObject({
      domain: "127.0.0.1",
      chainId: 84532,
      nonce: payload.nonce,
    });
  });

  test("behavior: fresh nonce per request; header is standard base64 JSON", async () => {
    const a = await Siwx.create({ account, url: "https://api.run402.com/tiers/v1/status" });
    const b = await Siwx.create({ account, url: "https://api.run402.com/tiers/v1/status" });
    expect(a.nonce).not.toBe(b.nonce);
    const header = Siwx.serialize(a);
    expect(header).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(Buffer.from(header, "base64").toString("utf8"))).toEqual(a);
  });
});
