/**
 * The x402 rail's steps, each on its own: parse → guard → sign → verify. No chain, no server: the
 * account signs locally and every header is built here.
 */
import type { Hex, LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { PaymentCredentialMismatchError } from "../errors/payment.js";
import type { PaymentChallenge } from "./rail.js";
import {
  type Approved,
  approvedOf,
  guard,
  guardedSigner,
  parse,
  sign,
  type TypedDataRequest,
  verify,
} from "./x402.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const stranger = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const treasury = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const other = "0x2222222222222222222222222222222222222222";
const usdcBaseSepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const usdcBase = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const nonce = `0x${"42".repeat(32)}` as Hex;
const now = BigInt(Math.floor(Date.now() / 1000));

const requirement = {
  scheme: "exact",
  network: "eip155:84532",
  amount: "100000",
  asset: usdcBaseSepolia,
  payTo: treasury,
  maxTimeoutSeconds: 300,
  extra: { name: "USDC", version: "2" },
};

/** A 402 whose PAYMENT-REQUIRED header carries `paymentRequired`. */
function challenge402(paymentRequired: unknown): Response {
  return new Response(null, {
    status: 402,
    headers: { "PAYMENT-REQUIRED": Buffer.from(JSON.stringify(paymentRequired)).toString("base64") },
  });
}

/** The one challenge a well-formed 402 offers, and its approval for `account`. */
function approved(accept: Record<string, unknown> = {}): Approved {
  const offers = parse(
    challenge402({
      x402Version: 2,
      resource: { url: "https://api.test/x" },
      accepts: [{ ...requirement, ...accept }],
    }),
    null,
  );
  expect(offers.refused).toEqual([]);
  return approvedOf(offers.challenges[0] as PaymentChallenge, account.address);
}

/** The typed data @x402 would ask to sign for the approved challenge, with `change` applied. */
function transferRequest(
  change: { domain?: Record<string, unknown>; message?: Record<string, unknown>; primaryType?: string } = {},
): TypedDataRequest {
  return {
    domain: {
      name: "USDC",
      version: "2",
      chainId: 84532,
      verifyingContract: usdcBaseSepolia,
      ...change.domain,
    },
    types: {},
    primaryType: change.primaryType ?? "TransferWithAuthorization",
    message: {
      from: account.address,
      to: treasury,
      value: 100000n,
      validAfter: now - 10n,
      validBefore: now + 60n,
      nonce,
      ...change.message,
    },
  };
}

/** The field of the mismatch `fn` throws (or returns). */
async function mismatchField(fn: () => unknown): Promise<string> {
  const err = await (async () => fn())().then(
    (returned) => returned,
    (thrown: unknown) => thrown,
  );
  expect(err).toBeInstanceOf(PaymentCredentialMismatchError);
  return (err as PaymentCredentialMismatchError).field;
}

describe("x402 parse", () => {
  test("default: a well-formed v2 offer is one normalized challenge", () => {
    const offers = parse(challenge402({ x402Version: 2, accepts: [requirement] }), null);
    expect(offers.refused).toEqual([]);
    expect(offers.challenges).toMatchObject([
      {
        rail: "x402",
        network: "eip155:84532",
        asset: usdcBaseSepolia,
        amountAtomic: 100000n,
        recipient: treasury,
        transfers: [{ recipient: treasury, amountAtomic: 100000n }],
        lifetimeSeconds: 300,
      },
    ]);
  });

  test("error: a 402 that declares extensions is refused whole, its offers with it", () => {
    const offers = parse(
      challenge402({ x402Version: 2, accepts: [requirement], extensions: { permit: {} } }),
      null,
    );
    expect(offers.challenges).toEqual([]);
    expect(offers.refused.map((r) => r.shortMessage)).toEqual([
      expect.stringContaining("it declares x402 extensions (permit)"),
    ]);
  });

  test("error: an offer outside the allowed shape (another scheme, an extra field) is refused, its siblings kept", () => {
    const offers = parse(
      challenge402({
        x402Version: 2,
        accepts: [
          { ...requirement, scheme: "upto" },
          { ...requirement, extra: { ...requirement.extra, permit: true } },
          requirement,
        ],
      }),
      null,
    );
    expect(offers.challenges).toHaveLength(1);
    expect(offers.refused.map((r) => r.code)).toEqual(["POLICY_CHALLENGE", "POLICY_CHALLENGE"]);
  });

  test("error: a v1 offer whose amount and maxAmountRequired disagree is refused", () => {
    const offers = parse(new Response(null, { status: 402 }), {
      x402Version: 1,
      accepts: [
        {
          scheme: "exact",
          network: "base-sepolia",
          maxAmountRequired: "100000",
          amount: "1",
          asset: usdcBaseSepolia,
          payTo: treasury,
          resource: "https://api.test/x",
          description: "",
          mimeType: "application/json",
          maxTimeoutSeconds: 60,
          extra: { name: "USDC", version: "2" },
        },
      ],
    });
    expect(offers.challenges).toEqual([]);
    expect(offers.refused[0]?.shortMessage).toContain("amount and maxAmountRequired disagree");
  });
});

describe("x402 guard", () => {
  test("default: the approved transfer, asked once, passes", () => {
    expect(guard(approved(), transferRequest(), 1)).toBeNull();
  });

  test("error: a domain on another chain is refused", async () => {
    expect(
      await mismatchField(() => guard(approved(), transferRequest({ domain: { chainId: 8453 } }), 1)),
    ).toBe("EIP-712 domain");
  });

  test("error: a domain of another token (asset) is refused", async () => {
    expect(
      await mismatchField(() =>
        guard(approved(), transferRequest({ domain: { verifyingContract: usdcBase } }), 1),
      ),
    ).toBe("EIP-712 domain");
  });

  test("error: another recipient is refused", async () => {
    expect(await mismatchField(() => guard(approved(), transferRequest({ message: { to: other } }), 1))).toBe(
      "recipient",
    );
  });

  test("error: another amount is refused", async () => {
    expect(
      await mismatchField(() => guard(approved(), transferRequest({ message: { value: 100001n } }), 1)),
    ).toBe("amount");
  });

  test("error: another payer is refused", async () => {
    expect(
      await mismatchField(() =>
        guard(approved(), transferRequest({ message: { from: stranger.address } }), 1),
      ),
    ).toBe("payer");
  });

  test("error: an authorization valid longer than the approved lifetime is refused", async () => {
    const tooLong = transferRequest({ message: { validBefore: now + 300n + 6n } });
    expect(await mismatchField(() => guard(approved(), tooLong, 1, now))).toBe("validBefore");
    expect(guard(approved(), transferRequest({ message: { validBefore: now + 300n } }), 1, now)).toBeNull();
  });

  test("error: anything but a TransferWithAuthorization (a permit) is refused", async () => {
    expect(await mismatchField(() => guard(approved(), transferRequest({ primaryType: "Permit" }), 1))).toBe(
      "typed data",
    );
  });

  test("error: a second signature is refused", async () => {
    expect(await mismatchField(() => guard(approved(), transferRequest(), 2))).toBe("signature count");
  });

  test("behavior: the guarded signer signs the approved transfer once, then refuses", async () => {
    const signer = guardedSigner(approved(), account);
    expect(await signer.signTypedData(transferRequest())).toMatch(/^0x[0-9a-f]{130}$/);
    expect(await mismatchField(() => signer.signTypedData(transferRequest()))).toBe("signature count");
  });
});

/** A PAYMENT-SIGNATURE header as @x402 encodes it: the authorization, signed by `by`, and `change` applied. */
async function header(
  a: Approved,
  change: {
    by?: LocalAccount;
    authorization?: Record<string, string>;
    top?: Record<string, unknown>;
  } = {},
): Promise<Record<string, string>> {
  const authorization = {
    from: account.address,
    to: treasury,
    value: "100000",
    validAfter: String(now - 10n),
    validBefore: String(now + 60n),
    nonce,
    ...change.authorization,
  };
  const signature = await (change.by ?? account).signTypedData({
    domain: a.domain,
    types: {
      TransferWithAuthorization: [
        { name: "from", type: "address" },
        { name: "to", type: "address" },
        { name: "value", type: "uint256" },
        { name: "validAfter", type: "uint256" },
        { name: "validBefore", type: "uint256" },
        { name: "nonce", type: "bytes32" },
      ],
    },
    primaryType: "TransferWithAuthorization",
    message: {
      from: authorization.from as Hex,
      to: authorization.to as Hex,
      value: BigInt(authorization.value),
      validAfter: BigInt(authorization.validAfter),
      validBefore: BigInt(authorization.validBefore),
      nonce: authorization.nonce as Hex,
    },
  });
  const payload = {
    x402Version: 2,
    payload: { authorization, signature },
    accepted: { ...requirement },
    ...change.top,
  };
  return { "PAYMENT-SIGNATURE": Buffer.from(JSON.stringify(payload)).toString("base64") };
}

describe("x402 verify", () => {
  test("default: the approved authorization, signed by the payer, is the credential", async () => {
    const a = approved();
    const headers = await header(a);
    const credential = await verify(a, headers);
    expect(credential.headers).toEqual(headers);
    expect(credential.proof).toEqual({
      rail: "x402",
      network: "eip155:84532",
      asset: usdcBaseSepolia,
      from: account.address,
      nonce,
      validBefore: Number(now + 60n),
      domain: { name: "USDC", version: "2" },
    });
  });

  test("error: a signature by another key than the payer's is refused", async () => {
    const a = approved();
    expect(await mismatchField(() => header(a, { by: stranger }).then((h) => verify(a, h)))).toBe("signer");
  });

  test("error: a signed authorization to another recipient is refused", async () => {
    const a = approved();
    expect(
      await mismatchField(() => header(a, { authorization: { to: other } }).then((h) => verify(a, h))),
    ).toBe("recipient");
  });

  test("error: a signed authorization of another amount is refused", async () => {
    const a = approved();
    expect(
      await mismatchField(() => header(a, { authorization: { value: "1000000" } }).then((h) => verify(a, h))),
    ).toBe("amount");
  });

  test("error: a header naming another accepted requirement (chain, asset) is refused", async () => {
    const a = approved();
    const onMainnet = await header(a, { top: { accepted: { ...requirement, network: "eip155:8453" } } });
    expect(await mismatchField(() => verify(a, onMainnet))).toBe("accepted requirement");
    const otherAsset = await header(a, { top: { accepted: { ...requirement, asset: usdcBase } } });
    expect(await mismatchField(() => verify(a, otherAsset))).toBe("accepted requirement");
  });

  test("error: a header carrying extensions is refused", async () => {
    const a = approved();
    const withExtensions = await header(a, { top: { extensions: { permit: { value: "1" } } } });
    expect(await mismatchField(() => verify(a, withExtensions))).toBe("extensions");
  });

  test("error: a header of another x402 version, or more than one header, is refused", async () => {
    const a = approved();
    expect(await mismatchField(async () => verify(a, await header(a, { top: { x402Version: 1 } })))).toBe(
      "version",
    );
    expect(await mismatchField(async () => verify(a, { ...(await header(a)), "X-PAYMENT": "x" }))).toBe(
      "headers",
    );
  });
});

describe("x402 sign", () => {
  test("default: @x402 signs the approved requirement through the guarded signer, and verify accepts it", async () => {
    const a = approved();
    const headers = await sign(a, guardedSigner(a, account));
    const credential = await verify(a, headers);
    expect(Object.keys(headers)).toEqual(["PAYMENT-SIGNATURE"]);
    expect(credential.proof).toMatchObject({ rail: "x402", from: account.address, asset: usdcBaseSepolia });
  });

  test("behavior: what a signer outside the guard signed for another recipient is caught by verify", async () => {
    const a = approved();
    // A signer that ignores the approval (as a library bypassing the guard would): it signs the
    // transfer to someone else.
    const rogue = {
      address: account.address,
      signTypedData: async (request: TypedDataRequest) => {
        const message = { ...request.message, to: other };
        const signature = await account.signTypedData({ ...request, message } as never);
        rogueMessage = message;
        return signature;
      },
    };
    let rogueMessage: Record<string, unknown> | undefined;
    const headers = await sign(a, rogue);
    expect(rogueMessage?.["to"]).toBe(other);
    // @x402 put the message it asked for in the header, but the signature covers another one.
    expect(await mismatchField(() => verify(a, headers))).toBe("signer");
  });
});
