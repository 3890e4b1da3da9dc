/**
 * The x402 rail: @x402's exact EVM scheme signs, but only ever one EIP-3009 authorization that
 * matches the approved challenge. Challenges are parsed strictly first (scheme `exact`, EIP-3009,
 * no extensions, integer fields, v1 amounts that agree); the signer handed to @x402 refuses any
 * other signature; the header it produced is decoded and checked again before it is returned.
 */
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import { EVM_NETWORK_CHAIN_ID_MAP } from "@x402/evm/v1";
import { type PaymentRequired, x402Client, x402HTTPClient } from "@x402/fetch";
import {
  type Chain,
  createPublicClient,
  createWalletClient,
  type Hex,
  isAddressEqual,
  type LocalAccount,
  parseAbi,
  parseAbiItem,
  parseSignature,
  recoverTypedDataAddress,
} from "viem";
import { z } from "zod";
import { PaymentCredentialMismatchError, type SpendPolicyError } from "../errors/payment.js";
import { decodeJson } from "../internal/base64.js";
import {
  address,
  atomicAmount,
  type ChainState,
  type Credential,
  type Offers,
  type PaymentChallenge,
  type Proof,
  type Rail,
  shapeRefusal,
} from "./rail.js";
import { createRpcResolver, rpcTransport } from "./rpc.js";

/** Options for {@link create}. */
export type CreateOptions = {
  account: LocalAccount;
  /** RPC of the x402 chain (Base / Base Sepolia): reads authorization state, sends cancellations. */
  rpcUrl?: string | undefined;
  /** The run\'s stop: chain reads and waits end once it fires. */
  signal?: AbortSignal | undefined;
  /** The API is on loopback (a sandbox): no public RPC is ever used (see {@link createRpcResolver}). */
  localApi?: boolean | undefined;
};

/** The one EIP-3009 authorization's EIP-712 types. */
const transferTypes = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;
const cancelTypes = {
  CancelAuthorization: [
    { name: "authorizer", type: "address" },
    { name: "nonce", type: "bytes32" },
  ],
} as const;
const tokenAbi = parseAbi([
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
  "function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)",
]);
const usedEvent = parseAbiItem("event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce)");

/** Seconds of clock skew tolerated between this machine and the signer's timestamps. */
const skewSeconds = 5;

const v1Networks = EVM_NETWORK_CHAIN_ID_MAP as Record<string, number>;
const extra = z.strictObject({
  name: z.string().min(1),
  version: z.string().min(1),
  assetTransferMethod: z.literal("eip3009").optional(),
});
const seconds = z.number().int().positive().max(31_536_000);
const requirementV2 = z.strictObject({
  scheme: z.literal("exact"),
  network: z.string().regex(/^eip155:[1-9]\d*$/, "expected eip155:<chain id>"),
  amount: atomicAmount,
  asset: address,
  payTo: address,
  maxTimeoutSeconds: seconds,
  extra,
});
const requirementV1 = z
  .strictObject({
    scheme: z.literal("exact"),
    network: z.string().refine((n) => n in v1Networks, "unknown v1 network"),
    maxAmountRequired: atomicAmount,
    amount: atomicAmount.optional(),
    resource: z.string(),
    description: z.string(),
    mimeType: z.string(),
    outputSchema: z.unknown().optional(),
    payTo: address,
    maxTimeoutSeconds: seconds,
    asset: address,
    extra,
  })
  .refine((r) => r.amount === undefined || r.amount === r.maxAmountRequired, {
    message: "amount and maxAmountRequired disagree",
    path: ["maxAmountRequired"],
  });
const resource = z.looseObject({
  url: z.string(),
  description: z.string().optional(),
  mimeType: z.string().optional(),
});
const envelope = z.looseObject({
  x402Version: z.union([z.literal(1), z.literal(2)]),
  resource: resource.optional(),
  accepts: z.array(z.unknown()).min(1),
});

export type Requirement =
  | { version: 2; value: z.output<typeof requirementV2> }
  | { version: 1; value: z.output<typeof requirementV1> };
export type Raw = { requirement: Requirement; resource: z.output<typeof resource> | undefined };

const signedHeader = z.looseObject({
  x402Version: z.union([z.literal(1), z.literal(2)]),
  payload: z.strictObject({
    authorization: z.strictObject({
      from: address,
      to: address,
      value: z.string().regex(/^\d+$/),
      validAfter: z.string().regex(/^\d+$/),
      validBefore: z.string().regex(/^\d+$/),
      nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
    }),
    signature: z.string().regex(/^0x[0-9a-fA-F]+$/),
  }),
  accepted: z
    .looseObject({ network: z.string(), asset: address, payTo: address, amount: z.string() })
    .optional(),
  extensions: z.unknown().optional(),
});

/** The x402 `PaymentRequired` in a 402 (header first, then body), or null when there is none. */
function paymentRequiredOf(response: Response, body: unknown): unknown {
  const header = response.headers.get("payment-required");
  if (header) {
    try {
      return decodeJson(header);
    } catch {
      return { x402Version: 2, accepts: [], unreadable: true };
    }
  }
  if (body && typeof body === "object" && "x402Version" in body && "accepts" in body) return body;
  return null;
}

function chainIdOf(requirement: Requirement): number {
  return requirement.version === 2
    ? Number(requirement.value.network.slice("eip155:".length))
    : (v1Networks[requirement.value.network] as number);
}

/** A difference between what was signed (or is about to be) and what the policy approved. */
export function mismatch(field: string, signed: unknown, approved: unknown): PaymentCredentialMismatchError {
  return new PaymentCredentialMismatchError({
    rail: "x402",
    field,
    signed: String(signed),
    approved: String(approved),
  });
}

/**
 * Parse: the x402 offers in a 402, strictly (scheme `exact`, EIP-3009, integer fields, v1 amounts
 * that agree). A 402 that declares extensions is refused whole: they make @x402 sign more than the
 * one authorization (an ERC-20 approval, an EIP-2612 permit) or send data the policy never saw.
 */
export function parse(response: Response, body: unknown): Offers {
  const required = paymentRequiredOf(response, body);
  if (required === null) return { challenges: [], refused: [] };
  const parsed = envelope.safeParse(required);
  if (!parsed.success)
    return { challenges: [], refused: [shapeRefusal("x402", "PaymentRequired", parsed.error)] };
  const paymentRequired = parsed.data;
  // Nothing is stripped: the whole 402 is refused.
  if ("extensions" in paymentRequired) {
    const names = Object.keys((paymentRequired["extensions"] as object | null) ?? {});
    return {
      challenges: [],
      refused: [
        shapeRefusal(
          "x402",
          "extensions",
          `it declares x402 extensions (${names.join(", ") || "an empty set"}), which sign more than one EIP-3009 authorization`,
        ),
      ],
    };
  }
  const out: PaymentChallenge[] = [];
  const refused: SpendPolicyError[] = [];
  paymentRequired.accepts.forEach((entry, i) => {
    const where = `accepts[${i}]`;
    const version = paymentRequired.x402Version;
    const entryParsed = version === 2 ? requirementV2.safeParse(entry) : requirementV1.safeParse(entry);
    if (!entryParsed.success) {
      refused.push(shapeRefusal("x402", where, entryParsed.error));
      return;
    }
    const requirement = { version, value: entryParsed.data } as Requirement;
    const r = requirement.value;
    const amount = BigInt(
      requirement.version === 2 ? requirement.value.amount : requirement.value.maxAmountRequired,
    );
    out.push({
      rail: "x402",
      network: `eip155:${chainIdOf(requirement)}`,
      asset: r.asset,
      amountAtomic: amount,
      recipient: r.payTo,
      transfers: [{ recipient: r.payTo, amountAtomic: amount }],
      lifetimeSeconds: r.maxTimeoutSeconds,
      expiresAt: null,
      raw: { requirement, resource: paymentRequired.resource } satisfies Raw,
    });
  });
  return { challenges: out, refused };
}

/**
 * What the policy approved, as the one authorization must reproduce it: compared with the
 * normalized challenge the policy checked, not with the raw offer.
 */
export type Approved = {
  challenge: PaymentChallenge;
  requirement: Requirement;
  resource: Raw["resource"];
  /** The payer: the account that signs. */
  from: Hex;
  chainId: number;
  /** The token's EIP-712 domain on the approved chain. */
  domain: { name: string; version: string; chainId: number; verifyingContract: Hex };
  to: string;
  value: bigint;
  /** The longest the authorization may stay valid, seconds. */
  lifetime: number;
};

/** The approval of `challenge` (one parse returned) for the payer `from`. */
export function approvedOf(challenge: PaymentChallenge, from: Hex): Approved {
  const { requirement, resource: res } = challenge.raw as Raw;
  const r = requirement.value;
  const chainId = Number(challenge.network.slice("eip155:".length));
  return {
    challenge,
    requirement,
    resource: res,
    from,
    chainId,
    domain: {
      name: r.extra.name,
      version: r.extra.version,
      chainId,
      verifyingContract: challenge.asset as Hex,
    },
    to: challenge.recipient,
    value: challenge.amountAtomic,
    lifetime: challenge.lifetimeSeconds ?? r.maxTimeoutSeconds,
  };
}

/** An EIP-3009 authorization, its numbers as bigints. */
export type Authorization = {
  from: string;
  to: string;
  value: bigint;
  validAfter: bigint;
  validBefore: bigint;
};

/** Checks an authorization against the approval at `now` (unix seconds); returns the first difference. */
export function checkAuthorization(
  approved: Approved,
  a: Authorization,
  now: bigint = BigInt(Math.floor(Date.now() / 1000)),
): PaymentCredentialMismatchError | null {
  if (!isAddressEqual(a.from as Hex, approved.from)) return mismatch("payer", a.from, approved.from);
  if (!isAddressEqual(a.to as Hex, approved.to as Hex)) return mismatch("recipient", a.to, approved.to);
  if (a.value !== approved.value) return mismatch("amount", a.value, approved.value);
  if (a.validAfter > now + BigInt(skewSeconds)) return mismatch("validAfter", a.validAfter, `≤ ${now}`);
  const ceiling = now + BigInt(approved.lifetime + skewSeconds);
  if (a.validBefore > ceiling || a.validBefore <= now)
    return mismatch("validBefore", a.validBefore, `${now + 1n}…${ceiling}`);
  return null;
}

/** What @x402 asks its signer to sign. */
export type TypedDataRequest = {
  domain: Record<string, unknown>;
  types: Record<string, unknown>;
  primaryType: string;
  message: Record<string, unknown>;
};

/**
 * Guard: the `n`th typed-data signature @x402 asks for, checked before anything is signed. Only
 * the first may be signed, and only a TransferWithAuthorization in the approved token's domain on
 * the approved chain, from the payer, to the approved recipient, of the approved amount, valid no
 * longer than approved. Returns the first difference, or null.
 */
export function guard(
  approved: Approved,
  request: TypedDataRequest,
  n: number,
  now?: bigint,
): PaymentCredentialMismatchError | null {
  if (n > 1) return mismatch("signature count", n, 1);
  if (request.primaryType !== "TransferWithAuthorization")
    return mismatch("typed data", request.primaryType, "TransferWithAuthorization");
  const d = request.domain;
  const { domain } = approved;
  if (
    d["name"] !== domain.name ||
    d["version"] !== domain.version ||
    Number(d["chainId"]) !== approved.chainId ||
    !isAddressEqual(String(d["verifyingContract"]) as Hex, domain.verifyingContract)
  )
    return mismatch("EIP-712 domain", JSON.stringify(d), JSON.stringify(domain));
  const m = request.message;
  return checkAuthorization(
    approved,
    {
      from: String(m["from"]),
      to: String(m["to"]),
      value: BigInt(m["value"] as bigint),
      validAfter: BigInt(m["validAfter"] as bigint),
      validBefore: BigInt(m["validBefore"] as bigint),
    },
    now,
  );
}

/** The only signing @x402 gets: what {@link guard} passes, signed by `account` in the approved domain. */
export function guardedSigner(approved: Approved, account: LocalAccount) {
  let signatures = 0;
  return {
    address: account.address,
    signTypedData: async (request: TypedDataRequest) => {
      const problem = guard(approved, request, ++signatures);
      if (problem) throw problem;
      return account.signTypedData({
        domain: approved.domain,
        types: transferTypes,
        primaryType: "TransferWithAuthorization",
        message: request.message as never,
      });
    },
  };
}

/**
 * Sign: @x402 builds the payment header for the approved requirement only, rebuilt from its parsed
 * fields, with its own spend control set to exactly the approved amount of exactly the approved
 * asset, and `signer` ({@link guardedSigner}) as its only way to sign. Returns the headers.
 */
export async function sign(
  approved: Approved,
  signer: ReturnType<typeof guardedSigner>,
): Promise<Record<string, string>> {
  const { challenge, requirement, resource: res } = approved;
  const client = new x402Client().setSpendControls({
    maxAmountPerPayment: false,
    allowedAssets: [
      {
        network: challenge.network as `${string}:${string}`,
        asset: challenge.asset,
        maxAmountPerPayment: challenge.amountAtomic.toString(),
      },
    ],
  });
  let paymentRequired: PaymentRequired;
  if (requirement.version === 2) {
    const v = requirement.value;
    client.register("eip155:*", new ExactEvmScheme(signer));
    paymentRequired = {
      x402Version: 2,
      resource: {
        url: res?.url ?? "",
        ...(res?.description !== undefined ? { description: res.description } : {}),
        ...(res?.mimeType !== undefined ? { mimeType: res.mimeType } : {}),
      },
      accepts: [
        {
          scheme: "exact",
          network: v.network as `${string}:${string}`,
          amount: v.amount,
          asset: v.asset,
          payTo: v.payTo,
          maxTimeoutSeconds: v.maxTimeoutSeconds,
          extra: { name: v.extra.name, version: v.extra.version },
        },
      ],
    } as PaymentRequired;
  } else {
    const v = requirement.value;
    client.registerV1(v.network, new ExactEvmSchemeV1(signer));
    paymentRequired = {
      x402Version: 1,
      accepts: [
        {
          scheme: "exact",
          network: v.network,
          maxAmountRequired: v.maxAmountRequired,
          resource: v.resource,
          description: v.description,
          mimeType: v.mimeType,
          payTo: v.payTo,
          maxTimeoutSeconds: v.maxTimeoutSeconds,
          asset: v.asset,
          extra: { name: v.extra.name, version: v.extra.version },
        },
      ],
    } as unknown as PaymentRequired;
  }
  const http402 = new x402HTTPClient(client);
  const payload = await client.createPaymentPayload(paymentRequired);
  return http402.encodePaymentSignatureHeader(payload);
}

/**
 * Verify: what will be sent, decoded from the header itself whatever the library did on the way:
 * one header, one EIP-3009 authorization of the approved version, no extensions, the approved
 * requirement, an authorization {@link checkAuthorization} passes, signed by the payer. Returns the
 * credential, or throws the first difference.
 */
export async function verify(
  approved: Approved,
  headers: Record<string, string>,
  now?: bigint,
): Promise<Credential> {
  const { challenge, requirement, chainId } = approved;
  const [name, value] = Object.entries(headers)[0] ?? [];
  if (Object.keys(headers).length !== 1 || !name || !value)
    throw mismatch("headers", Object.keys(headers), "one");
  const sent = signedHeader.safeParse(decodeJson(value));
  if (!sent.success) throw mismatch("payload", sent.error.issues[0]?.message, "one EIP-3009 authorization");
  if (sent.data.x402Version !== requirement.version)
    throw mismatch("version", sent.data.x402Version, requirement.version);
  if (sent.data.extensions !== undefined && Object.keys(sent.data.extensions ?? {}).length > 0)
    throw mismatch("extensions", JSON.stringify(sent.data.extensions), "none");
  const accepted = sent.data.accepted;
  if (
    accepted &&
    (accepted.network !== `eip155:${chainId}` ||
      !isAddressEqual(accepted.asset as Hex, challenge.asset as Hex) ||
      !isAddressEqual(accepted.payTo as Hex, challenge.recipient as Hex) ||
      accepted.amount !== challenge.amountAtomic.toString())
  )
    throw mismatch(
      "accepted requirement",
      JSON.stringify(accepted),
      `${challenge.network} ${challenge.asset} ${challenge.recipient}`,
    );
  const auth = sent.data.payload.authorization;
  const problem = checkAuthorization(
    approved,
    {
      from: auth.from,
      to: auth.to,
      value: BigInt(auth.value),
      validAfter: BigInt(auth.validAfter),
      validBefore: BigInt(auth.validBefore),
    },
    now,
  );
  if (problem) throw problem;
  const signerAddress = await recoverTypedDataAddress({
    domain: approved.domain,
    types: transferTypes,
    primaryType: "TransferWithAuthorization",
    message: {
      from: auth.from as Hex,
      to: auth.to as Hex,
      value: BigInt(auth.value),
      validAfter: BigInt(auth.validAfter),
      validBefore: BigInt(auth.validBefore),
      nonce: auth.nonce as Hex,
    },
    signature: sent.data.payload.signature as Hex,
  });
  if (!isAddressEqual(signerAddress, approved.from)) throw mismatch("signer", signerAddress, approved.from);
  const proof: Proof = {
    rail: "x402",
    network: `eip155:${chainId}`,
    asset: challenge.asset,
    from: approved.from,
    nonce: auth.nonce,
    validBefore: Number(auth.validBefore),
    domain: { name: approved.domain.name, version: approved.domain.version },
  };
  return { headers: { [name]: value }, proof } satisfies Credential;
}

/** The x402 rail (@x402/evm exact scheme; v2 challenges, v1 for old servers): parse → guard → sign → verify. */
export function create(options: CreateOptions): Rail {
  const { account } = options;
  const rpcFor = createRpcResolver("x402", options.rpcUrl, { localApi: options.localApi });

  const chainFor = async (network: string): Promise<Chain> => {
    const id = Number(network.slice("eip155:".length));
    const url = await rpcFor(id);
    return {
      id,
      name: network,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [url] } },
    };
  };

  async function chainState(proof: Proof): Promise<ChainState> {
    if (proof.rail !== "x402") throw new TypeError("not an x402 proof");
    const chain = await chainFor(proof.network);
    const client = createPublicClient({
      chain,
      transport: rpcTransport(chain.rpcUrls.default.http[0]!, options.signal, "x402"),
    });
    // One block for both reads: unused at a block at or past validBefore means unusable for good.
    const block = await client.getBlock({ blockTag: "latest" });
    const used = await client.readContract({
      address: proof.asset as Hex,
      abi: tokenAbi,
      functionName: "authorizationState",
      args: [proof.from as Hex, proof.nonce as Hex],
      blockNumber: block.number,
    });
    if (!used) {
      const chainTime = Number(block.timestamp);
      return chainTime >= proof.validBefore
        ? { state: "void" }
        : { state: "unused", validBefore: proof.validBefore, chainTime };
    }
    // Used or cancelled: only a transfer emits AuthorizationUsed. Look back over the blocks the
    // authorization could have been used in (it is at most a day long, see the expiry ceiling).
    const fromBlock = block.number > 50_000n ? block.number - 50_000n : 0n;
    const logs = await client
      .getLogs({
        address: proof.asset as Hex,
        event: usedEvent,
        args: { authorizer: proof.from as Hex, nonce: proof.nonce as Hex },
        fromBlock,
        toBlock: block.number,
      })
      .catch(() => null);
    if (logs === null) return { state: "used", reference: null };
    if (logs.length === 0) {
      // Not used by a transfer in that range: cancelled. Money moved only if the range was too short,
      // which the authorization's lifetime rules out; still, a cancellation is what we look for.
      const cancelled = await client
        .getLogs({
          address: proof.asset as Hex,
          event: parseAbiItem(
            "event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce)",
          ),
          args: { authorizer: proof.from as Hex, nonce: proof.nonce as Hex },
          fromBlock,
          toBlock: block.number,
        })
        .catch(() => []);
      return cancelled.length > 0 ? { state: "void" } : { state: "used", reference: null };
    }
    return { state: "used", reference: logs[0]!.transactionHash };
  }

  return {
    name: "x402",
    getChallenges: parse,

    async createCredential(challenge) {
      // Before anything is signed: a configured RPC binds the rail to its chain (an authorization for
      // any other chain is refused), and a chain with no RPC at all is refused.
      await rpcFor(Number(challenge.network.slice("eip155:".length)));
      const approved = approvedOf(challenge, account.address);
      return verify(approved, await sign(approved, guardedSigner(approved, account)));
    },

    chainState,

    async configuredNetwork() {
      const id = await rpcFor.configured();
      return id === null ? null : `eip155:${id}`;
    },

    async cancel(proof) {
      if (proof.rail !== "x402") return null;
      const chain = await chainFor(proof.network);
      const signature = await account.signTypedData({
        domain: {
          name: proof.domain.name,
          version: proof.domain.version,
          chainId: chain.id,
          verifyingContract: proof.asset as Hex,
        },
        types: cancelTypes,
        primaryType: "CancelAuthorization",
        message: { authorizer: proof.from as Hex, nonce: proof.nonce as Hex },
      });
      const { r, s, v, yParity } = parseSignature(signature);
      const transport = rpcTransport(chain.rpcUrls.default.http[0]!, options.signal, "x402");
      const wallet = createWalletClient({ account, chain, transport });
      const publicClient = createPublicClient({ chain, transport });
      try {
        const hash = await wallet.writeContract({
          address: proof.asset as Hex,
          abi: tokenAbi,
          functionName: "cancelAuthorization",
          args: [proof.from as Hex, proof.nonce as Hex, Number(v ?? BigInt(yParity + 27)), r, s],
        });
        const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
        // Mined without reverting: the authorization is cancelled and can never move money.
        if (receipt.status === "success") return { state: "void" };
      } catch {
        // No gas, or the authorization was used (or cancelled) first: the chain says which.
      }
      return chainState(proof);
    },
  };
}
