/**
 * The MPP rail's steps, each on its own: parse → guard → (guarded account) → verify. No chain, no
 * server: challenges and credentials are built here with mppx's own serializers, and the account
 * signs locally. (`sign` drives mppx, which asks the chain for gas and fees: the integration suites
 * cover it.)
 */
import { Challenge, Credential as MppCredential } from "mppx";
import { encodeFunctionData, type Hex, keccak256, maxUint256, parseAbi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { PaymentCredentialMismatchError } from "../errors/payment.js";
import { type Approved, approvedOf, guard, guardedAccount, parse, verify } from "./mpp.js";
import { type PaymentChallenge, SignedThenFailed } from "./rail.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const stranger = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const treasury = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const partner = "0x3333333333333333333333333333333333333333";
const other = "0x2222222222222222222222222222222222222222";
const pathUsd = "0x20c0000000000000000000000000000000000000";
const usdcE = "0x20C000000000000000000000b9537d11c60E8b50";
const now = Math.floor(Date.now() / 1000);
const tokenAbi = parseAbi([
  "function transfer(address to, uint256 amount) returns (bool)",
  "function transferWithMemo(address to, uint256 amount, bytes32 memo)",
  "function approve(address spender, uint256 amount) returns (bool)",
]);

/** A tempo charge challenge, as a Run402 server serializes it. */
function tempoCharge(
  methodDetails: Record<string, unknown> = { chainId: 42431 },
  request: Record<string, unknown> = {},
) {
  return Challenge.from({
    secretKey: "0123456789abcdef0123456789abcdef",
    realm: "api.run402.test",
    method: "tempo",
    intent: "charge",
    request: { amount: "100000", currency: pathUsd, recipient: treasury, methodDetails, ...request },
    expires: new Date(Date.now() + 300_000).toISOString(),
  });
}

function challenge402(wwwAuthenticate: string): Response {
  return new Response(null, { status: 402, headers: { "WWW-Authenticate": wwwAuthenticate } });
}

/** The approval of the one challenge a 402 carrying `challenge` offers. */
function approved(challenge = tempoCharge()): Approved {
  const offers = parse(challenge402(Challenge.serialize(challenge)));
  expect(offers.refused).toEqual([]);
  return approvedOf(offers.challenges[0] as PaymentChallenge, account.address);
}

const transfer = (to: string, amount: bigint) =>
  encodeFunctionData({ abi: tokenAbi, functionName: "transfer", args: [to as Hex, amount] });

/** The Tempo transaction mppx would ask to sign for the approved charge, with `change` applied. */
function transaction(change: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "tempo",
    chainId: 42431,
    from: account.address,
    calls: [{ to: pathUsd, data: transfer(treasury, 100000n) }],
    nonceKey: maxUint256,
    nonce: 0,
    validBefore: now + 25,
    gas: 100_000n,
    maxFeePerGas: 1_000_000_000n,
    maxPriorityFeePerGas: 1n,
    ...change,
  };
}

/** The field of the mismatch `fn` throws or returns (unwrapped from SignedThenFailed when `signed`). */
async function mismatchField(fn: () => unknown, signed = false): Promise<string> {
  let err = await (async () => fn())().then(
    (returned) => returned,
    (thrown: unknown) => thrown,
  );
  if (signed) {
    expect(err).toBeInstanceOf(SignedThenFailed);
    err = (err as SignedThenFailed).cause;
  }
  expect(err).toBeInstanceOf(PaymentCredentialMismatchError);
  return (err as PaymentCredentialMismatchError).field;
}

describe("mpp parse", () => {
  test("default: a tempo charge is one normalized challenge; splits are transfers of their own", () => {
    const offers = parse(
      challenge402(
        Challenge.serialize(
          tempoCharge({ chainId: 42431, splits: [{ amount: "30000", recipient: partner }] }),
        ),
      ),
    );
    expect(offers.refused).toEqual([]);
    expect(offers.challenges).toMatchObject([
      {
        rail: "mpp",
        network: "eip155:42431",
        asset: pathUsd,
        amountAtomic: 100000n,
        recipient: treasury,
        transfers: [
          { recipient: treasury, amountAtomic: 70000n },
          { recipient: partner, amountAtomic: 30000n },
        ],
      },
    ]);
  });

  test("error: a charge offering only push mode (the client would broadcast) is refused", () => {
    const offers = parse(
      challenge402(Challenge.serialize(tempoCharge({ chainId: 42431, supportedModes: ["push"] }))),
    );
    expect(offers.challenges).toEqual([]);
    expect(offers.refused[0]?.shortMessage).toContain("offers only push mode");
  });

  test("error: a sponsored charge (fee payer), one without a chain, and splits that take it all are refused", () => {
    const offers = parse(
      challenge402(
        [
          tempoCharge({ chainId: 42431, feePayer: true }),
          tempoCharge({}),
          tempoCharge({ chainId: 42431, splits: [{ amount: "100000", recipient: partner }] }),
        ]
          .map((c) => Challenge.serialize(c))
          .join(", "),
      ),
    );
    expect(offers.challenges).toEqual([]);
    expect(offers.refused.map((r) => r.shortMessage)).toEqual([
      expect.stringContaining("challenge[0].request.methodDetails.feePayer"),
      expect.stringContaining("challenge[1].request.methodDetails.chainId"),
      expect.stringContaining("do not leave the recipient a positive part"),
    ]);
  });

  test("behavior: another method's challenge is not this rail's concern; an unreadable Payment header is refused", () => {
    expect(parse(challenge402('Bearer realm="x"'))).toEqual({ challenges: [], refused: [] });
    const unreadable = parse(challenge402('Payment id="x", method="tempo", request="%%%"'));
    expect(unreadable.challenges).toEqual([]);
    expect(unreadable.refused).toHaveLength(1);
  });
});

describe("mpp guard", () => {
  test("default: the approved transfer, on the approved chain, passes", () => {
    expect(guard(approved(), transaction(), now)).toBeNull();
  });

  test("error: a transaction on another chain is refused", async () => {
    expect(await mismatchField(() => guard(approved(), transaction({ chainId: 4217 }), now))).toBe("chain");
  });

  test("error: a transfer of another asset (call target) is refused", async () => {
    const tx = transaction({ calls: [{ to: usdcE, data: transfer(treasury, 100000n) }] });
    expect(await mismatchField(() => guard(approved(), tx, now))).toBe("call 0 target");
  });

  test("error: a transfer to another recipient is refused", async () => {
    const tx = transaction({ calls: [{ to: pathUsd, data: transfer(other, 100000n) }] });
    expect(await mismatchField(() => guard(approved(), tx, now))).toBe("call 0 recipient");
  });

  test("error: a transfer of another amount is refused", async () => {
    const tx = transaction({ calls: [{ to: pathUsd, data: transfer(treasury, 100001n) }] });
    expect(await mismatchField(() => guard(approved(), tx, now))).toBe("call 0 amount");
  });

  test("error: a call that is no transfer (an approval), or one call too many, is refused", async () => {
    const approval = encodeFunctionData({
      abi: tokenAbi,
      functionName: "approve",
      args: [other, maxUint256],
    });
    expect(
      await mismatchField(() =>
        guard(approved(), transaction({ calls: [{ to: pathUsd, data: approval }] }), now),
      ),
    ).toBe("call 0");
    const twice = transaction({
      calls: [
        { to: pathUsd, data: transfer(treasury, 100000n) },
        { to: pathUsd, data: transfer(treasury, 100000n) },
      ],
    });
    expect(await mismatchField(() => guard(approved(), twice, now))).toBe("call count");
  });

  test("error: fields a charge never carries (an authorization list, a fee payer) are refused", async () => {
    expect(
      await mismatchField(() =>
        guard(
          approved(),
          transaction({ authorizationList: [{ address: other, chainId: 42431, nonce: 0 }] }),
          now,
        ),
      ),
    ).toBe("transaction field authorizationList");
    expect(await mismatchField(() => guard(approved(), transaction({ feePayer: other }), now))).toBe(
      "transaction field feePayer",
    );
  });

  test("error: another sender, a plain nonce, a validity over 60 s, another fee token are refused", async () => {
    const a = approved();
    expect(await mismatchField(() => guard(a, transaction({ from: stranger.address }), now))).toBe("sender");
    expect(await mismatchField(() => guard(a, transaction({ nonceKey: undefined }), now))).toBe("nonce key");
    expect(await mismatchField(() => guard(a, transaction({ validBefore: now + 61 }), now))).toBe(
      "validBefore",
    );
    expect(await mismatchField(() => guard(a, transaction({ feeToken: usdcE }), now))).toBe("fee token");
  });

  test("behavior: splits are paid exactly as approved, each to its own recipient", async () => {
    const a = approved(tempoCharge({ chainId: 42431, splits: [{ amount: "30000", recipient: partner }] }));
    const split = (second: string) =>
      transaction({
        calls: [
          { to: pathUsd, data: transfer(treasury, 70000n) },
          { to: pathUsd, data: transfer(second, 30000n) },
        ],
      });
    expect(guard(a, split(partner), now)).toBeNull();
    expect(await mismatchField(() => guard(a, split(other), now))).toBe("call 1 recipient");
  });
});

describe("mpp guarded account", () => {
  test("behavior: signs the one guarded transaction and remembers its bytes; refuses a second", async () => {
    const guarded = guardedAccount(approved(), account);
    const raw = await guarded.account.signTransaction(transaction() as never);
    expect(guarded.signed()).toEqual({ raw, validBefore: now + 25 });
    expect(await mismatchField(() => guarded.account.signTransaction(transaction() as never))).toBe(
      "signature count",
    );
  });

  test("error: a transaction the guard refuses is not signed", async () => {
    const guarded = guardedAccount(approved(), account);
    expect(
      await mismatchField(() => guarded.account.signTransaction(transaction({ chainId: 4217 }) as never)),
    ).toBe("chain");
    expect(guarded.signed()).toBeNull();
  });

  test("error: messages and typed data are never signed", async () => {
    const guarded = guardedAccount(approved(), account);
    expect(await mismatchField(() => guarded.account.signMessage({ message: "hi" }))).toBe("signature");
    expect(
      await mismatchField(() =>
        guarded.account.signTypedData({
          types: {},
          primaryType: "EIP712Domain",
          domain: {},
          message: {},
        } as never),
      ),
    ).toBe("signature");
    expect(guarded.signed()).toBeNull();
  });
});

describe("mpp verify", () => {
  const done = { raw: `0x76${"ab".repeat(80)}` as Hex, validBefore: now + 25 };
  const credential = (a: Approved, payload: unknown, challenge = a.offer) =>
    MppCredential.serialize({ challenge, payload });

  test("default: the bytes the guard signed, as a pull transaction for the approved challenge, are the credential", () => {
    const a = approved();
    const value = credential(a, { type: "transaction", signature: done.raw });
    expect(verify(a, value, done)).toEqual({
      headers: { [Challenge.credentialHeader(a.offer)]: value },
      proof: {
        rail: "mpp",
        network: "eip155:42431",
        hash: keccak256(done.raw),
        validBefore: done.validBefore,
      },
    });
  });

  test("error: a transaction other than the one the guard signed is refused (signed: maybe broadcast)", async () => {
    const a = approved();
    const value = credential(a, { type: "transaction", signature: `0x76${"cd".repeat(80)}` });
    expect(await mismatchField(() => verify(a, value, done), true)).toBe("transaction");
  });

  test("error: a hash payload (push mode: the library broadcast) is refused as signed, then failed", async () => {
    const a = approved();
    const value = credential(a, { type: "hash", hash: keccak256(done.raw) });
    const err = await (async () => verify(a, value, done))().catch((e: unknown) => e);
    expect((err as SignedThenFailed).proof).toEqual({
      rail: "mpp",
      network: "eip155:42431",
      hash: keccak256(done.raw),
      validBefore: done.validBefore,
    });
    expect(await mismatchField(() => verify(a, value, done), true)).toBe("payload");
  });

  test("error: a credential for another challenge is refused", async () => {
    const a = approved();
    const value = credential(
      a,
      { type: "transaction", signature: done.raw },
      tempoCharge({ chainId: 42431 }, { amount: "1" }),
    );
    expect(await mismatchField(() => verify(a, value, done), true)).toBe("challenge");
  });

  test("error: a transaction when the guard signed nothing is refused, and nothing counts as signed", async () => {
    const a = approved();
    const value = credential(a, { type: "transaction", signature: done.raw });
    expect(await mismatchField(() => verify(a, value, null))).toBe("transaction");
  });
});
