import { describe, expect, test } from "vitest";
import { JournalError, SpendPolicyError } from "../sdk/index.js";
import { ActionNotAllowedError, ConflictError } from "./impl/errors.js";
import { errorCode, withCode } from "./impl.js";

describe("errorCode", () => {
  test("default", () => {
    const policy = new SpendPolicyError({
      limit: "max_spend",
      rail: "x402",
      asked: "$0.10",
      allowed: "$0.05",
      reason: "over the cap",
    });
    expect(errorCode(policy)).toBe("POLICY_MAX_SPEND");
    expect(errorCode(new Error("a bug"))).toBeUndefined();
  });

  test("behavior: journal errors keep their own code (the local journal, not the Run402 API)", () => {
    for (const code of ["JOURNAL_LOCKED", "JOURNAL_CORRUPT", "JOURNAL_IO"] as const) {
      expect(errorCode(new JournalError({ path: "/j", reason: "r", code }))).toBe(code);
    }
  });

  test("behavior: a changed plan or digest is a coded conflict; a refused action is a policy error", () => {
    const changed = new ConflictError("PLAN_CHANGED", "The tier now needs renew; nothing was paid.");
    expect(() => withCode(changed)).toThrow(/^\[CONFLICT_PLAN_CHANGED\] The tier now needs renew/);
    expect(errorCode(new ConflictError("MANIFEST_CHANGED", "m"))).toBe("CONFLICT_MANIFEST_CHANGED");
    const refused = new ActionNotAllowedError({
      action: "upgrade",
      allowed: ["renew"],
      tier: "hobby",
      reason: "r",
    });
    expect(() => withCode(refused)).toThrow(/^\[POLICY_ACTION_NOT_ALLOWED\] The hobby tier needs "upgrade"/);
  });

  test("behavior: a coded error leaves the provider without stack frames (Pulumi's host prints e.stack on the Stack's row)", () => {
    const changed = new ConflictError("PLAN_CHANGED", "The tier now needs renew; nothing was paid.");
    let thrown: unknown;
    try {
      withCode(changed);
    } catch (error) {
      thrown = error;
    }
    expect((thrown as Error).stack).not.toMatch(/\n\s+at /);
    expect((thrown as Error).stack).toContain("[CONFLICT_PLAN_CHANGED]");
    // A bug keeps its stack: it is what a report of it needs.
    const bug = new Error("a bug");
    expect(() => withCode(bug)).toThrow(bug);
    expect(bug.stack).toMatch(/\n\s+at /);
  });
});
