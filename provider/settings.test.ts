import { describe, expect, test } from "vitest";
import { BaseError } from "../core/errors.js";
import { wayOut } from "./impl/wayout.js";
import { howToSet, settingOf } from "./settings.js";

describe("errors name the setting a user types", () => {
  test("behavior: howToSet writes the pulumi config command and the CLI flag; the wallet key only as a secret or env var", () => {
    expect(howToSet("maxPaymentUsd", "20")).toBe(
      "`pulumi config set run402:maxPaymentUsd 20` (run402-pulumi: `-c run402:maxPaymentUsd=20`)",
    );
    expect(howToSet("privateKey")).toContain("pulumi config set --secret run402:privateKey");
    expect(howToSet("privateKey")).toContain("RUN402_PRIVATE_KEY");
    expect(howToSet("privateKey")).not.toContain("-c run402:privateKey");
  });

  test("behavior: every spend-policy refusal maps to the setting that decides it", () => {
    expect(settingOf("POLICY_MAX_PAYMENT")).toBe("maxPaymentUsd");
    expect(settingOf("POLICY_BUDGET_RUN")).toBe("maxSpendUsd");
    expect(settingOf("POLICY_RECIPIENT")).toBe("allowedRecipients");
    expect(settingOf("CONFIG_INVALID")).toBeUndefined();
  });

  test("behavior: a refusal raised below the provider (the SDK's words) gains the run402: key and how to set it", () => {
    const refused = new BaseError("Payment refused: 20.00 USD is over the per-payment limit of 5.00 USD.", {
      code: "POLICY_MAX_PAYMENT",
    });
    const out = wayOut(refused) as BaseError;
    expect(out.code).toBe("POLICY_MAX_PAYMENT");
    expect(out.message).toContain("run402:maxPaymentUsd");
    expect(out.message).toContain("pulumi config set run402:maxPaymentUsd");
  });

  test("behavior: a message that already names how to set the key is left alone", () => {
    const said = new BaseError(`Above run402:maxPaymentUsd: ${howToSet("maxPaymentUsd", "20")}.`, {
      code: "POLICY_MAX_PAYMENT",
    });
    expect(wayOut(said)).toBe(said);
  });
});
