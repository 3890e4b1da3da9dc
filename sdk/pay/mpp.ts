/**
 * The MPP rail: mppx's tempo charge client signs, pinned to the challenge's own chain and its
 * configured RPC, in pull mode (the server broadcasts; the client never does), with every recipient
 * it may pay named. Challenges are parsed strictly first (tempo, charge, an explicit chain, pull
 * offered, splits that add up); the account handed to mppx signs only the one expected Tempo
 * transaction; the credential it produced is decoded and checked again before it is returned.
 */
import { Challenge, Credential as MppCredential } from "mppx";
import { Mppx, tempo } from "mppx/client";
import {
  type Chain,
  createClient,
  createPublicClient,
  decodeFunctionData,
  type Hex,
  isAddressEqual,
  keccak256,
  type LocalAccount,
  maxUint256,
  parseAbi,
  TransactionReceiptNotFoundError,
} from "viem";
import { tempo as tempoMainnet, tempoModerato } from "viem/chains";
import { Transaction } from "viem/tempo";
import { z } from "zod";
import { PaymentCredentialMismatchError, type SpendPolicyError } from "../errors/payment.js";
import {
  address,
  atomicAmount,
  type ChainState,
  type Credential,
  type Offers,
  type PaymentChallenge,
  type Proof,
  type Rail,
  SignedThenFailed,
  shapeRefusal,
  type Transfer,
} from "./rail.js";
import { createRpcResolver, rpcTransport } from "./rpc.js";

/** Options for {@link create}. */
export type CreateOptions = {
  account: LocalAccount;
  /** The Tempo RPC; it serves the chain it reports and no other. Unset: each known chain's public RPC. */
  rpcUrl?: string | undefined;
  /** The run\'s stop: chain reads and waits end once it fires. */
  signal?: AbortSignal | undefined;
  /** The API is on loopback (a sandbox): no public RPC is ever used (see {@link createRpcResolver}). */
  localApi?: boolean | undefined;
};

type Raw = { challenge: Challenge.Challenge; chainId: number };

/** The longest an mpp pull credential stays valid: mppx signs `validBefore` = now + 25 s at most. */
const maxValiditySeconds = 60;

const split = z.strictObject({
  amount: atomicAmount,
  recipient: address,
  memo: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/)
    .optional(),
});
const request = z.strictObject({
  amount: atomicAmount,
  currency: address,
  recipient: address,
  description: z.string().optional(),
  externalId: z.string().optional(),
  methodDetails: z.strictObject(
    {
      chainId: z.number().int().positive(),
      supportedModes: z
        .array(z.enum(["pull", "push"]))
        .min(1)
        .refine(
          (modes) => modes.includes("pull"),
          "offers only push mode, where the client itself would broadcast",
        )
        .optional(),
      splits: z.array(split).min(1).max(10).optional(),
      // A sponsored transaction is re-signed by the server, so its hash (how the client finds it on
      // chain afterwards) is not the one the client signed.
      feePayer: z.literal(false).optional(),
    },
    { error: (issue) => (issue.input === undefined ? "a chainId is required" : undefined) },
  ),
});
const challengeShape = z.strictObject({
  id: z.string().min(1),
  realm: z.string(),
  method: z.literal("tempo"),
  intent: z.literal("charge"),
  request,
  description: z.string().optional(),
  digest: z.string().optional(),
  expires: z.iso.datetime({ offset: true }).optional(),
  opaque: z.string().optional(),
  meta: z.record(z.string(), z.string()).optional(),
  header: z.enum(["Authorization", "Payment-Authorization"]).optional(),
});

const tokenAbi = parseAbi([
  "function transfer(address to, uint256 amount) returns (bool)",
  "function transferWithMemo(address to, uint256 amount, bytes32 memo)",
]);

/** The transfers a charge makes: the primary recipient gets what the splits leave. */
function transfersOf(r: z.output<typeof request>): Transfer[] | string {
  const splits = r.methodDetails.splits ?? [];
  const total = BigInt(r.amount);
  const splitTotal = splits.reduce((sum, s) => sum + BigInt(s.amount), 0n);
  if (splitTotal >= total)
    return `the splits (${splitTotal}) do not leave the recipient a positive part of ${total}`;
  return [
    { recipient: r.recipient, amountAtomic: total - splitTotal },
    ...splits.map((s) => ({ recipient: s.recipient, amountAtomic: BigInt(s.amount) })),
  ];
}

function chainFor(chainId: number, rpcUrl: string): Chain {
  const base = chainId === tempoMainnet.id ? tempoMainnet : tempoModerato;
  return {
    ...base,
    id: chainId,
    rpcUrls: { default: { http: [rpcUrl] } },
    prepareTransactionRequest: zeroExpiringNonce(base.prepareTransactionRequest),
  } as Chain;
}

/**
 * viem ≥ 2.57.15 gives an expiring-nonce transaction a random `nonce` as a discriminator
 * (TIP-1106). Tempo nodes without TIP-1106 (anvil 1.7.1, the newest on npm, which the sandbox runs)
 * refuse any expiring-nonce transaction whose nonce is not 0, and a nonce of 0 is the form every
 * Tempo node takes. A payment needs no discriminator: mppx binds each transfer to its challenge
 * (the attribution memo), so two payments never form the same transaction.
 */
function zeroExpiringNonce(hook: Chain["prepareTransactionRequest"]): Chain["prepareTransactionRequest"] {
  if (!Array.isArray(hook)) return hook;
  const [fn, options] = hook as Extract<Chain["prepareTransactionRequest"], readonly unknown[]>;
  if (!fn) return hook;
  return [
    (request, context) => {
      const r = request as { nonceKey?: unknown; nonce?: unknown };
      if ((r.nonceKey === "expiring" || r.nonceKey === maxUint256) && r.nonce === undefined) r.nonce = 0;
      return fn(request, context);
    },
    options,
  ];
}

/** The calls of a Tempo transaction, checked against the approved transfers; the first difference, or null. */
function checkCalls(
  calls: readonly { to?: string | null | undefined; data?: string | undefined; value?: bigint | undefined }[],
  currency: string,
  transfers: Transfer[],
): [field: string, signed: string, approved: string] | null {
  if (calls.length !== transfers.length)
    return ["call count", String(calls.length), String(transfers.length)];
  for (const [i, call] of calls.entries()) {
    const want = transfers[i]!;
    if (!call.to || !isAddressEqual(call.to as Hex, currency as Hex))
      return [`call ${i} target`, String(call.to), currency];
    if (call.value && call.value !== 0n) return [`call ${i} value`, String(call.value), "0"];
    let decoded: { functionName: string; args: readonly unknown[] };
    try {
      decoded = decodeFunctionData({ abi: tokenAbi, data: (call.data ?? "0x") as Hex });
    } catch {
      return [`call ${i}`, String(call.data).slice(0, 10), "transfer / transferWithMemo"];
    }
    const [to, amount] = decoded.args as [Hex, bigint];
    if (!isAddressEqual(to, want.recipient as Hex)) return [`call ${i} recipient`, to, want.recipient];
    if (amount !== want.amountAtomic) return [`call ${i} amount`, String(amount), String(want.amountAtomic)];
  }
  return null;
}

/** Seconds of clock difference tolerated between this machine (which checked validBefore at signing) and the chain. */
const chainSkewSeconds = 300;
/** The most blocks {@link minedIn} reads before it gives up (an answer it cannot give is "unknown"). */
const maxBlocksScanned = 4_000;

/**
 * Whether `hash` is in `head` or one of its ancestors back to before `validBefore` − the longest
 * validity (when the transaction could not have been signed yet), each block read by its hash.
 * Throws when a block cannot be read: the caller must then say "unknown", never "void".
 */
async function minedIn(
  client: {
    getBlock(args: {
      blockHash: Hex;
    }): Promise<{ hash: Hex | null; parentHash: Hex; timestamp: bigint; transactions: readonly unknown[] }>;
  },
  head: { hash: Hex | null; parentHash: Hex; timestamp: bigint; transactions: readonly unknown[] },
  hash: Hex,
  validBefore: number,
): Promise<boolean> {
  const earliest = BigInt(validBefore - maxValiditySeconds - chainSkewSeconds);
  const wanted = hash.toLowerCase();
  let block = head;
  for (let i = 0; i < maxBlocksScanned; i++) {
    if (
      block.transactions.some(
        (tx) => String(typeof tx === "string" ? tx : (tx as { hash: string }).hash).toLowerCase() === wanted,
      )
    )
      return true;
    if (block.timestamp < earliest || /^0x0+$/.test(block.parentHash)) return false;
    const parent = await client.getBlock({ blockHash: block.parentHash });
    if (!parent || parent.hash?.toLowerCase() !== block.parentHash.toLowerCase())
      throw new Error(`The RPC did not return block ${block.parentHash}.`);
    block = parent;
  }
  throw new Error(
    `The transaction's window spans more than ${maxBlocksScanned} blocks; its outcome is unknown.`,
  );
}

/** A difference between what was signed (or is about to be) and what the policy approved. */
export function mismatch(field: string, signed: unknown, expected: unknown): PaymentCredentialMismatchError {
  return new PaymentCredentialMismatchError({
    rail: "mpp",
    field,
    signed: String(signed),
    approved: String(expected),
  });
}

/**
 * Parse: the tempo charges in a 402's `WWW-Authenticate`, strictly (tempo, charge, an explicit
 * chain, pull offered, no fee payer, splits that leave the recipient a positive part). Other
 * methods' challenges are not this rail's concern; an unreadable header that offers a payment is
 * refused.
 */
export function parse(response: Response): Offers {
  let challenges: Challenge.Challenge[];
  try {
    challenges = Challenge.fromResponseList(response);
  } catch (error) {
    const offered = /(^|,)\s*payment\s/i.test(response.headers.get("www-authenticate") ?? "");
    return offered
      ? {
          challenges: [],
          refused: [shapeRefusal("mpp", "WWW-Authenticate", `unreadable: ${(error as Error).message}`)],
        }
      : { challenges: [], refused: [] };
  }
  const out: PaymentChallenge[] = [];
  const refused: SpendPolicyError[] = [];
  challenges.forEach((challenge, i) => {
    if (challenge.method !== "tempo") return; // another method's challenge (stripe, …): not ours
    const parsed = challengeShape.safeParse(challenge);
    if (!parsed.success) {
      refused.push(shapeRefusal("mpp", `challenge[${i}]`, parsed.error));
      return;
    }
    const r = parsed.data.request;
    const transfers = transfersOf(r);
    if (typeof transfers === "string") {
      refused.push(shapeRefusal("mpp", `challenge[${i}].request.methodDetails.splits`, transfers));
      return;
    }
    const expiresAt = parsed.data.expires ? new Date(parsed.data.expires) : null;
    out.push({
      rail: "mpp",
      network: `eip155:${r.methodDetails.chainId}`,
      asset: r.currency,
      amountAtomic: BigInt(r.amount),
      recipient: r.recipient,
      transfers,
      lifetimeSeconds: expiresAt ? Math.ceil((expiresAt.getTime() - Date.now()) / 1000) : null,
      expiresAt,
      raw: { challenge, chainId: r.methodDetails.chainId } satisfies Raw,
    });
  });
  return { challenges: out, refused };
}

/** What the policy approved, as the one Tempo transaction must reproduce it. */
export type Approved = {
  /** The normalized challenge the policy checked (asset, transfers). */
  challenge: PaymentChallenge;
  /** The mppx challenge it was parsed from, the only one mppx is shown. */
  offer: Challenge.Challenge;
  chainId: number;
  /** The payer: the account that signs. */
  from: Hex;
};

/** The approval of `challenge` (one parse returned) for the payer `from`. */
export function approvedOf(challenge: PaymentChallenge, from: Hex): Approved {
  const { challenge: offer, chainId } = challenge.raw as Raw;
  return { challenge, offer, chainId, from };
}

/** Fields a charge's transaction may carry; anything else (an authorization list, a key authorization, a fee payer, a top-level call) is refused. */
const allowedFields = new Set([
  "account",
  "calls",
  "chainId",
  "from",
  "gas",
  "maxFeePerGas",
  "maxPriorityFeePerGas",
  "nonce",
  "nonceKey",
  "type",
  "validAfter",
  "validBefore",
  "feeToken",
  "accessList",
]);

/**
 * Guard: one transaction mppx asks to sign, checked before it is signed: only allowed fields, a
 * Tempo transaction on the approved chain from the payer, whose calls are exactly the approved
 * transfers of the approved asset, with an expiring nonce valid at most {@link maxValiditySeconds}
 * from `now` (unix seconds), its fee (if any) paid in the approved asset. Returns the first
 * difference, or null.
 */
export function guard(
  approved: Approved,
  tx: Record<string, unknown>,
  now: number = Math.floor(Date.now() / 1000),
): PaymentCredentialMismatchError | null {
  const { challenge, chainId } = approved;
  const extra = Object.entries(tx).find(
    ([k, v]) =>
      !allowedFields.has(k) && v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0),
  );
  if (extra) return mismatch(`transaction field ${extra[0]}`, "present", "absent");
  if (tx["type"] !== undefined && tx["type"] !== "tempo")
    return mismatch("transaction type", tx["type"], "tempo");
  if (tx["chainId"] !== chainId) return mismatch("chain", tx["chainId"], chainId);
  if (tx["from"] !== undefined && !isAddressEqual(tx["from"] as Hex, approved.from))
    return mismatch("sender", tx["from"], approved.from);
  const calls = checkCalls(
    (tx["calls"] as Parameters<typeof checkCalls>[0] | undefined) ?? [],
    challenge.asset,
    challenge.transfers,
  );
  if (calls) return mismatch(...calls);
  if (tx["nonceKey"] !== maxUint256) return mismatch("nonce key", tx["nonceKey"], "expiring (2^256 - 1)");
  const validBefore = Number(tx["validBefore"] ?? 0);
  if (validBefore <= now || validBefore > now + maxValiditySeconds)
    return mismatch("validBefore", validBefore, `${now + 1}…${now + maxValiditySeconds}`);
  if (Number(tx["validAfter"] ?? 0) > now + 5) return mismatch("validAfter", tx["validAfter"], `≤ ${now}`);
  const feeToken = tx["feeToken"];
  if (feeToken !== undefined && feeToken !== null && !isAddressEqual(feeToken as Hex, challenge.asset as Hex))
    return mismatch("fee token", feeToken, challenge.asset);
  return null;
}

/** The one transaction the guarded account signed: its bytes, and until when it can be included. */
export type Signed = { raw: Hex; validBefore: number };

/**
 * The only account mppx gets: it signs one transaction {@link guard} passes (serialized by viem's
 * Tempo serializer, never one handed in by the caller) and remembers its bytes; it signs no
 * message, typed data or authorization.
 */
export function guardedAccount(
  approved: Approved,
  account: LocalAccount,
): { account: LocalAccount; signed(): Signed | null } {
  let signed: Signed | null = null;
  const refuse = async (): Promise<never> => {
    throw mismatch("signature", "a message or typed data", "one Tempo transaction");
  };
  const guarded = {
    ...account,
    signMessage: refuse,
    signTypedData: refuse,
    signAuthorization: refuse,
    sign: refuse,
    signTransaction: async (tx) => {
      if (signed) throw mismatch("signature count", 2, 1);
      const problem = guard(approved, tx as Record<string, unknown>);
      if (problem) throw problem;
      const signWith = account.signTransaction as (
        tx: unknown,
        options: { serializer: typeof Transaction.serialize },
      ) => Promise<Hex>;
      const raw = await signWith(tx, { serializer: Transaction.serialize });
      signed = { raw, validBefore: Number((tx as { validBefore?: number }).validBefore) };
      return raw;
    },
  } as LocalAccount;
  return { account: guarded, signed: () => signed };
}

/** What a signed transaction commits to, to ask the chain about it later. */
export function proofOf(approved: Approved, done: Signed): Proof {
  return {
    rail: "mpp",
    network: `eip155:${approved.chainId}`,
    hash: keccak256(done.raw),
    validBefore: done.validBefore,
  };
}

/**
 * Sign: mppx's tempo charge client, pinned to the approved chain and `rpcUrl`, in pull mode, with
 * every approved recipient named, shown a 402 carrying only the approved challenge, signing only
 * through `guarded` ({@link guardedAccount}). Returns the credential's header value. Once the guard
 * has signed, a library failure is {@link SignedThenFailed}: it could have broadcast the transaction.
 */
export async function sign(
  approved: Approved,
  guarded: ReturnType<typeof guardedAccount>,
  rpcUrl: string,
  signal: AbortSignal | undefined,
): Promise<string> {
  const { chainId } = approved;
  const chain = chainFor(chainId, rpcUrl);
  const recipients = approved.challenge.transfers.map((t) => t.recipient as Hex);
  const mppx = Mppx.create({
    methods: [
      tempo.charge({
        account: guarded.account,
        expectedChainId: chainId,
        allowedChainIds: [chainId],
        expectedRecipients: recipients,
        mode: "pull",
        getClient: () => createClient({ chain, transport: rpcTransport(rpcUrl, signal, "mpp") }),
      }),
    ],
    // A library must not replace globalThis.fetch for the whole process.
    polyfill: false,
    // The payer owns the single paid retry; mppx's own loop would sign a fresh credential per 402.
    maxPaymentRetries: 0,
  });
  // Hand mppx a 402 carrying only the approved challenge, so its selection cannot pick another.
  const only = new Response(null, {
    status: 402,
    headers: { "WWW-Authenticate": Challenge.serialize(approved.offer) },
  });
  try {
    return await mppx.createCredential(only);
  } catch (error) {
    // Once the guard has signed, a library could have broadcast the transaction before failing:
    // the payer must treat it as maybe paid, not as nothing.
    const done = guarded.signed();
    if (done) throw new SignedThenFailed(proofOf(approved, done), error);
    throw error;
  }
}

/**
 * Verify: what will be sent, decoded from the header value itself: a credential for the approved
 * challenge whose payload is a signed transaction for the server to broadcast (pull), byte for byte
 * the one the guard checked and signed (`done`). Returns the credential. Once the guard has signed,
 * every refusal is {@link SignedThenFailed}: the library could have broadcast what it got.
 */
export function verify(approved: Approved, value: string, done: Signed | null): Credential {
  const afterSigning = (error: unknown) =>
    done ? new SignedThenFailed(proofOf(approved, done), error) : error;
  let sent: ReturnType<typeof MppCredential.deserialize>;
  try {
    sent = MppCredential.deserialize(value);
  } catch (error) {
    throw afterSigning(error);
  }
  if (sent.challenge.id !== approved.offer.id)
    throw afterSigning(mismatch("challenge", sent.challenge.id, approved.offer.id));
  const payload = sent.payload as { type?: string; signature?: Hex };
  if (payload.type !== "transaction" || !payload.signature) {
    // A `hash` payload means the library broadcast what the guard signed.
    throw afterSigning(
      mismatch("payload", payload.type, "a signed transaction for the server to broadcast (pull)"),
    );
  }
  if (!done) throw mismatch("transaction", "bytes the guard did not sign", "the checked transaction");
  if (payload.signature.toLowerCase() !== done.raw.toLowerCase())
    throw afterSigning(mismatch("transaction", "bytes the guard did not sign", "the checked transaction"));
  return {
    headers: { [Challenge.credentialHeader(approved.offer)]: value },
    proof: proofOf(approved, done),
  } satisfies Credential;
}

/** The MPP rail (mppx client, tempo charge, pull mode): parse → guard → sign → verify. */
export function create(options: CreateOptions): Rail {
  const { account } = options;
  const rpcFor = createRpcResolver("mpp", options.rpcUrl, { localApi: options.localApi });

  return {
    name: "mpp",
    getChallenges: (response) => parse(response),

    async createCredential(challenge) {
      const approved = approvedOf(challenge, account.address);
      // Before anything is signed: the RPC of exactly this chain, or a refusal.
      const rpcUrl = await rpcFor(approved.chainId);
      const guarded = guardedAccount(approved, account);
      const value = await sign(approved, guarded, rpcUrl, options.signal);
      return verify(approved, value, guarded.signed());
    },

    async configuredNetwork() {
      const id = await rpcFor.configured();
      return id === null ? null : `eip155:${id}`;
    },

    async chainState(proof): Promise<ChainState> {
      if (proof.rail !== "mpp") throw new TypeError("not an mpp proof");
      const chainId = Number(proof.network.slice("eip155:".length));
      const rpcUrl = await rpcFor(chainId);
      const client = createPublicClient({
        chain: chainFor(chainId, rpcUrl),
        transport: rpcTransport(rpcUrl, options.signal, "mpp"),
      });
      // The block first: if the transaction is not in any block up to one at or past its validBefore,
      // no later block can include it.
      const block = await client.getBlock({ blockTag: "latest" });
      // Only "no receipt" means not mined; an RPC that fails to answer says nothing, and reading it as
      // "not mined" would let the intent expire and be paid again.
      const receipt = await client
        .getTransactionReceipt({ hash: proof.hash as Hex })
        .catch((error: unknown) => {
          if (error instanceof TransactionReceiptNotFoundError) return null;
          throw error;
        });
      if (receipt)
        return receipt.status === "success" ? { state: "used", reference: proof.hash } : { state: "void" };
      const chainTime = Number(block.timestamp);
      // An expiring-nonce transaction can only be included in a block before its validBefore.
      if (chainTime < proof.validBefore)
        return { state: "unused", validBefore: proof.validBefore, chainTime };
      // "Void" decides that paying again is safe, so it comes from block-pinned data only, never from
      // a missing receipt (one lagging RPC backend answers null for a transaction another has mined):
      // every block from the one read above back past the earliest moment the transaction could have
      // been signed, each read by its hash (a backend that lacks one answers nothing, not "absent").
      return (await minedIn(client, block, proof.hash as Hex, proof.validBefore))
        ? { state: "used", reference: proof.hash }
        : { state: "void" };
    },
  };
}
