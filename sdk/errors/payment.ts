import { BaseError } from "../../core/errors.js";
import type { Settlement } from "../Receipt.js";

/** Which spend-policy limit refused a payment. */
export type PolicyLimit =
  | "max_payment"
  | "max_spend"
  | "network"
  | "asset"
  | "recipient"
  | "expiry"
  | "challenge"
  | "budget_run"
  | "budget_window";

const policyCodes = {
  max_payment: "POLICY_MAX_PAYMENT",
  max_spend: "POLICY_MAX_SPEND",
  network: "POLICY_NETWORK",
  asset: "POLICY_ASSET",
  recipient: "POLICY_RECIPIENT",
  expiry: "POLICY_EXPIRY",
  challenge: "POLICY_CHALLENGE",
  budget_run: "POLICY_BUDGET_RUN",
  budget_window: "POLICY_BUDGET_WINDOW",
} as const satisfies Record<PolicyLimit, string>;

/** The spend policy refused a challenge before anything was signed. */
export class SpendPolicyError extends BaseError {
  override name = "SpendPolicyError" as const;
  declare readonly code: (typeof policyCodes)[PolicyLimit];
  readonly limit: PolicyLimit;
  /** What the challenge asked for (an amount in USD, a network, an asset, a recipient, a lifetime). */
  readonly asked: string;
  /** What the policy allows. */
  readonly allowed: string;
  readonly rail: string;
  constructor(options: {
    limit: PolicyLimit;
    rail: string;
    asked: string;
    allowed: string;
    reason: string;
    /** Refused at the claim, after signing: the credential was discarded unsent. */
    signed?: boolean | undefined;
  }) {
    super(
      `Refused to pay on ${options.rail}: ${options.reason}. ${options.signed ? "The signed credential was discarded unsent." : "Nothing was signed."}`,
      {
        code: policyCodes[options.limit],
        metaMessages: [`Asked: ${options.asked}`, `Allowed: ${options.allowed}`],
      },
    );
    this.limit = options.limit;
    this.asked = options.asked;
    this.allowed = options.allowed;
    this.rail = options.rail;
  }
}
/** `SpendPolicyError` narrowed by `name`. */
export type SpendPolicyErrorType = SpendPolicyError & { name: "SpendPolicyError" };

/** The 402 carried no challenge for the configured rail (nor the fallback). */
export class RailNotOfferedError extends BaseError {
  override name = "RailNotOfferedError" as const;
  readonly wanted: string[];
  readonly offered: string[];
  constructor(options: { wanted: string[]; offered: string[]; url: string }) {
    super(
      `The server did not offer the ${options.wanted.join(" or ")} rail for ${options.url}; offered: ${
        options.offered.length ? options.offered.join(", ") : "none"
      }.`,
      { code: "RAIL_NOT_OFFERED", status: 402 },
    );
    this.wanted = options.wanted;
    this.offered = options.offered;
  }
}
/** `RailNotOfferedError` narrowed by `name`. */
export type RailNotOfferedErrorType = RailNotOfferedError & { name: "RailNotOfferedError" };

/**
 * A paid retry was answered with another 402. The credential had left the process, so the server may
 * still have settled it: the intent stays pending (counted against the caps) until the chain says
 * whether it was used. The SDK does not pay again.
 */
export class PaymentRejectedError extends BaseError {
  override name = "PaymentRejectedError" as const;
  readonly rail: string;
  readonly serverCode: string | undefined;
  readonly body: unknown;
  constructor(options: {
    rail: string;
    url: string;
    serverCode?: string | undefined;
    message?: string | undefined;
    body: unknown;
  }) {
    super(`The server answered the ${options.rail} payment for ${options.url} with another 402.`, {
      code: "PAYMENT_REJECTED",
      status: 402,
      details: options.message,
      metaMessages: [
        ...(options.serverCode ? [`Server code: ${options.serverCode}`] : []),
        "The payment stays pending until the chain shows whether it was used; a rerun resolves it and never pays it twice.",
      ],
    });
    this.rail = options.rail;
    this.serverCode = options.serverCode;
    this.body = options.body;
  }
}
/** `PaymentRejectedError` narrowed by `name`. */
export type PaymentRejectedErrorType = PaymentRejectedError & { name: "PaymentRejectedError" };

/** The request handed to the payer already carries a payment header. */
export class PaymentAlreadyAttemptedError extends BaseError {
  override name = "PaymentAlreadyAttemptedError" as const;
  constructor(options: { header: string }) {
    super(`Refused to pay a request that already carries a payment (${options.header}).`, {
      code: "PAYMENT_ALREADY_ATTEMPTED",
    });
  }
}
/** `PaymentAlreadyAttemptedError` narrowed by `name`. */
export type PaymentAlreadyAttemptedErrorType = PaymentAlreadyAttemptedError & {
  name: "PaymentAlreadyAttemptedError";
};

/** The rail could not build a credential (signing or RPC failed). */
export class PaymentCredentialError extends BaseError {
  override name = "PaymentCredentialError" as const;
  constructor(options: { rail: string; cause: unknown }) {
    super(`Could not create a ${options.rail} payment credential.`, {
      code: "PAYMENT_CREDENTIAL_FAILED",
      cause: options.cause,
      details: options.cause instanceof Error ? options.cause.message : undefined,
    });
  }
}
/** `PaymentCredentialError` narrowed by `name`. */
export type PaymentCredentialErrorType = PaymentCredentialError & { name: "PaymentCredentialError" };

/** The journal file could not be locked (another run holds it) or read. */
export class JournalError extends BaseError {
  override name = "JournalError" as const;
  readonly path: string;
  constructor(options: {
    path: string;
    reason: string;
    code:
      | "JOURNAL_LOCKED"
      | "JOURNAL_CORRUPT"
      | "JOURNAL_IO"
      | "JOURNAL_LOCK_LOST"
      | "JOURNAL_UNAVAILABLE"
      | "JOURNAL_SCHEMA";
    metaMessages?: string[] | undefined;
    cause?: unknown;
  }) {
    super(`Payment journal ${options.path}: ${options.reason}.`, {
      code: options.code,
      cause: options.cause,
      ...(options.metaMessages ? { metaMessages: options.metaMessages } : {}),
    });
    this.path = options.path;
  }
}
/** `JournalError` narrowed by `name`. */
export type JournalErrorType = JournalError & { name: "JournalError" };

/** The journal already holds a settled payment for this intent, yet the server asks again. */
export class IntentAlreadyPaidError extends BaseError {
  override name = "IntentAlreadyPaidError" as const;
  readonly idempotencyKey: string;
  constructor(options: { idempotencyKey: string; url: string }) {
    super(
      `Intent ${options.idempotencyKey} was already paid, but ${options.url} asks for payment again; not paying twice.`,
      {
        code: "INTENT_ALREADY_PAID",
        status: 402,
        metaMessages: ["Use a new intent id to buy again."],
      },
    );
    this.idempotencyKey = options.idempotencyKey;
  }
}
/** `IntentAlreadyPaidError` narrowed by `name`. */
export type IntentAlreadyPaidErrorType = IntentAlreadyPaidError & { name: "IntentAlreadyPaidError" };

/** A previous run signed a payment for this intent whose outcome is still unknown, and it could still settle. */
export class PaymentOutcomeUnknownError extends BaseError {
  override name = "PaymentOutcomeUnknownError" as const;
  readonly idempotencyKey: string;
  readonly validUntil: string;
  constructor(options: { idempotencyKey: string; url: string; validUntil: string }) {
    super(
      `A payment for ${options.url} signed by an earlier run has no known outcome and could still settle until ${options.validUntil}; not paying again.`,
      {
        code: "PAYMENT_OUTCOME_UNKNOWN",
        metaMessages: [`Idempotency-Key: ${options.idempotencyKey}`, "Retry after that time."],
      },
    );
    this.idempotencyKey = options.idempotencyKey;
    this.validUntil = options.validUntil;
  }
}
/** `PaymentOutcomeUnknownError` narrowed by `name`. */
export type PaymentOutcomeUnknownErrorType = PaymentOutcomeUnknownError & {
  name: "PaymentOutcomeUnknownError";
};

/**
 * What the rail signed differs from what the policy approved (amount, recipient, chain, asset or
 * validity): the credential was discarded before it was sent.
 */
export class PaymentCredentialMismatchError extends BaseError {
  override name = "PaymentCredentialMismatchError" as const;
  readonly rail: string;
  readonly field: string;
  constructor(options: { rail: string; field: string; signed: string; approved: string }) {
    super(
      `The ${options.rail} credential signed a different ${options.field} than the policy approved; it was discarded unsent.`,
      {
        code: "PAYMENT_CREDENTIAL_MISMATCH",
        metaMessages: [`Signed: ${options.signed}`, `Approved: ${options.approved}`],
      },
    );
    this.rail = options.rail;
    this.field = options.field;
  }
}
/** `PaymentCredentialMismatchError` narrowed by `name`. */
export type PaymentCredentialMismatchErrorType = PaymentCredentialMismatchError & {
  name: "PaymentCredentialMismatchError";
};

/**
 * The chain shows this intent's payment was made, but the server does not deliver the result (it
 * lost the payment, or asks again). The SDK never pays the intent again; the settlement names the
 * transaction to show the operator.
 */
export class PaymentUndeliveredError extends BaseError {
  override name = "PaymentUndeliveredError" as const;
  readonly idempotencyKey: string;
  readonly settlement: Settlement;
  constructor(options: { idempotencyKey: string; url: string; settlement: Settlement; status: number }) {
    const s = options.settlement;
    super(
      `Paid ${s.amountUsd} USD on ${s.rail} for ${options.url}${s.reference ? ` (transaction ${s.reference})` : ""}, but the server has not delivered the result (it answered ${options.status}); not paying again.`,
      {
        code: "PAYMENT_UNDELIVERED",
        status: options.status,
        metaMessages: [
          `Idempotency-Key: ${options.idempotencyKey}`,
          `Network: ${s.network ?? "unknown"}`,
          "A rerun repeats the keyed request without paying; show the transaction to the API's operator if it never delivers.",
        ],
      },
    );
    this.idempotencyKey = options.idempotencyKey;
    this.settlement = s;
  }
}
/** `PaymentUndeliveredError` narrowed by `name`. */
export type PaymentUndeliveredErrorType = PaymentUndeliveredError & { name: "PaymentUndeliveredError" };

/**
 * A payment whose outcome depends on the chain could not be looked up there (the RPC failed or
 * timed out). The intent stays pending, counted against the caps, and is never paid again until
 * the chain answers.
 */
export class PaymentChainUnavailableError extends BaseError {
  override name = "PaymentChainUnavailableError" as const;
  readonly idempotencyKey: string;
  constructor(options: { idempotencyKey: string; url: string; network: string; cause: unknown }) {
    super(
      `Could not ask ${options.network} whether the payment for ${options.url} was used; it stays pending and is not paid again until the chain answers.`,
      {
        code: "PAYMENT_CHAIN_UNAVAILABLE",
        cause: options.cause,
        details: options.cause instanceof Error ? options.cause.message : String(options.cause),
        metaMessages: [
          `Idempotency-Key: ${options.idempotencyKey}`,
          "Check the rail's RPC (run402:baseRpcUrl for x402, run402:tempoRpcUrl for mpp) and run again.",
        ],
      },
    );
    this.idempotencyKey = options.idempotencyKey;
  }
}
/** `PaymentChainUnavailableError` narrowed by `name`. */
export type PaymentChainUnavailableErrorType = PaymentChainUnavailableError & {
  name: "PaymentChainUnavailableError";
};

/** Another live process is paying this intent right now. */
export class IntentInProgressError extends BaseError {
  override name = "IntentInProgressError" as const;
  readonly idempotencyKey: string;
  constructor(options: { idempotencyKey: string; url: string; owner: string }) {
    super(
      `Another process (${options.owner}) is paying for ${options.url} under this intent; not paying twice.`,
      {
        code: "INTENT_IN_PROGRESS",
        metaMessages: [
          `Idempotency-Key: ${options.idempotencyKey}`,
          "Run again once that process has finished.",
        ],
      },
    );
    this.idempotencyKey = options.idempotencyKey;
  }
}
/** `IntentInProgressError` narrowed by `name`. */
export type IntentInProgressErrorType = IntentInProgressError & { name: "IntentInProgressError" };
