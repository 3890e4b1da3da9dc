import { describe, expect, test } from "vitest";
import { emptyReport, renderHuman, withTotals } from "./report.js";

describe("the human summary", () => {
  test("behavior: a plan refused by the spend policy says it was refused and by which setting, not $0.00", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [
      {
        code: "POLICY_MAX_PAYMENT",
        message:
          "The hobby tier's upgrade costs $5.00, above run402:maxPaymentUsd ($1); up would refuse to pay it.",
      },
    ];
    const text = renderHuman(report);
    expect(text).not.toContain("Planned: $0.00");
    expect(text).toMatch(/Planned: refused by run402:maxPaymentUsd \(POLICY_MAX_PAYMENT\); nothing is paid/);
  });

  test("behavior: a plan refused by a policy pack names the pack", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [{ code: "POLICY_PACK_VIOLATION", message: "run402-payment-ceiling (tier): above 1" }];
    expect(renderHuman(report)).toMatch(/Planned: refused by the policy pack \(POLICY_PACK_VIOLATION\)/);
  });

  test("behavior: a plan that failed otherwise does not claim a total", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [{ code: "HTTP_REQUEST_FAILED", message: "down" }];
    const text = renderHuman(report);
    expect(text).not.toContain("Planned: $0.00");
    expect(text).toContain("Planned: unknown: the plan failed (see Errors)");
  });

  test("behavior: a plan that succeeded prints its total per rail", () => {
    const report = emptyReport("plan", "dev");
    report.actions = [{ resource: "tier", action: "upgrade", amountUsd: "5.00", rail: "x402", reason: "r" }];
    expect(renderHuman(withTotals(report, true))).toContain("Planned: $5.00 (x402 $5.00)");
  });
});
