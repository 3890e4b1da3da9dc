/**
 * Each payment code, raised in the provider process, through the real Pulumi engine and the built
 * CLI, to the exit code docs/cli.md gives it. The provider's Tier `check` throws the package's own
 * error (test/fixtures/provider-fault/fault.cjs, loaded into the CLI's child processes); the code
 * crosses the engine as text, so this is where a prefix or a mismatch between the provider and the
 * CLI shows (it did: `RUN402_PAYMENT_CREDENTIAL_MISMATCH` exited 4 instead of 3, `INTENT_IN_PROGRESS`
 * 4 instead of 6). `plan` runs the preview only: nothing reaches the network (the API is a closed
 * port), nothing is paid.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, report, runCli, why } from "~test/cli-harness.js";
import { repoRoot } from "~test/engine.js";
import { errorCodes, type RegisteredCode } from "../core/codes.js";

const fault = join(repoRoot, "test", "fixtures", "provider-fault", "fault.cjs");
const sdk = "sdk/index.js";
const url = "http://127.0.0.1:9/tiers/v1/prototype";
const settlement = {
  rail: "x402",
  reference: null,
  network: null,
  asset: null,
  amountAtomic: "100000",
  amountUsd: "0.10",
  payer: "0x0000000000000000000000000000000000000001",
};

/** Every payment code, and the error of the package that carries it. */
const cases: { code: RegisteredCode; module: string; error: string; options: unknown }[] = [
  ...(
    [
      "max_payment",
      "max_spend",
      "network",
      "asset",
      "recipient",
      "expiry",
      "challenge",
      "budget_run",
      "budget_window",
    ] as const
  ).map((limit) => ({
    code: `POLICY_${limit.toUpperCase()}` as RegisteredCode,
    module: sdk,
    error: "SpendPolicyError",
    options: { limit, rail: "x402", asked: "a", allowed: "b", reason: `the ${limit} limit` },
  })),
  {
    code: "POLICY_ACTION_NOT_ALLOWED",
    module: "provider/impl/errors.js",
    error: "ActionNotAllowedError",
    options: { action: "upgrade", allowed: ["renew"], tier: "prototype", reason: "a bigger tier" },
  },
  {
    code: "PAYMENT_CREDENTIAL_MISMATCH",
    module: sdk,
    error: "PaymentCredentialMismatchError",
    options: { rail: "x402", field: "amount", signed: "2", approved: "1" },
  },
  {
    code: "RAIL_NOT_OFFERED",
    module: sdk,
    error: "RailNotOfferedError",
    options: { wanted: ["mpp"], offered: ["x402"], url },
  },
  {
    code: "PAYMENT_REJECTED",
    module: sdk,
    error: "PaymentRejectedError",
    options: { rail: "x402", url, body: null },
  },
  {
    code: "PAYMENT_ALREADY_ATTEMPTED",
    module: sdk,
    error: "PaymentAlreadyAttemptedError",
    options: { header: "PAYMENT-SIGNATURE" },
  },
  {
    code: "PAYMENT_CREDENTIAL_FAILED",
    module: sdk,
    error: "PaymentCredentialError",
    options: { rail: "x402", cause: null },
  },
  {
    code: "PAYMENT_OUTCOME_UNKNOWN",
    module: sdk,
    error: "PaymentOutcomeUnknownError",
    options: { idempotencyKey: "k", url, validUntil: "2026-12-06T15:00:00Z" },
  },
  {
    code: "PAYMENT_UNDELIVERED",
    module: sdk,
    error: "PaymentUndeliveredError",
    options: { idempotencyKey: "k", url, settlement, status: 500 },
  },
  {
    code: "PAYMENT_CHAIN_UNAVAILABLE",
    module: sdk,
    error: "PaymentChainUnavailableError",
    options: { idempotencyKey: "k", url, network: "eip155:84532", cause: null },
  },
  {
    code: "INTENT_ALREADY_PAID",
    module: sdk,
    error: "IntentAlreadyPaidError",
    options: { idempotencyKey: "k", url },
  },
  {
    code: "INTENT_IN_PROGRESS",
    module: sdk,
    error: "IntentInProgressError",
    options: { idempotencyKey: "k", url, owner: "pid 1" },
  },
  ...(
    [
      "JOURNAL_LOCKED",
      "JOURNAL_CORRUPT",
      "JOURNAL_IO",
      "JOURNAL_LOCK_LOST",
      "JOURNAL_UNAVAILABLE",
      "JOURNAL_SCHEMA",
    ] as const
  ).map((code) => ({
    code,
    module: sdk,
    error: "JournalError",
    options: { path: "/j", reason: "r", code },
  })),
];

let tmp: string;

beforeAll(() => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-codes-"));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("payment codes through the built CLI", () => {
  test("behavior: every payment code of the registry is driven here", () => {
    // POLICY_PACK_VIOLATION is the CLI's own (a policy pack's mandatory violation, reported by the
    // engine): test/policy-cli.e2e.test.ts drives it.
    const payment = Object.keys(errorCodes).filter(
      (code) => /^(POLICY|PAYMENT|INTENT|JOURNAL|RAIL)_/.test(code) && code !== "POLICY_PACK_VIOLATION",
    );
    expect(cases.map((c) => c.code).sort()).toEqual(payment.sort());
  });

  test.each(cases)(
    "behavior: $code raised in the provider exits as docs/cli.md says",
    {
      timeout: 180_000,
    },
    async ({ code, module, error, options }) => {
      const dir = mkdtempSync(join(tmp, "app-"));
      cpSync(join(repoRoot, "examples", "quickstart"), dir, {
        recursive: true,
        filter: (src) => !/node_modules|\.run402|Pulumi\./.test(src),
      });
      const run = await runCli(
        tmp,
        [
          "plan",
          "--manifest",
          join(dir, "app.json"),
          "--json",
          "-c",
          "run402:apiBase=http://127.0.0.1:9",
          // A local API needs the paying rail's RPC set, or configure refuses first (CONFIG_INVALID).
          "-c",
          "run402:baseRpcUrl=http://127.0.0.1:9",
        ],
        {
          NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${fault}`.trim(),
          RUN402_TEST_PROVIDER_FAULT: JSON.stringify({ module, error, options }),
          RUN402_PRIVATE_KEY: `0x${"11".repeat(32)}`,
        },
      );
      expect(
        report(run).errors.map((e) => e.code),
        why(run),
      ).toEqual([code]);
      expect(run.code, why(run)).toBe(errorCodes[code].exit);
    },
  );
});
