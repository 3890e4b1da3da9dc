import { describe, expect, test } from "vitest";
import {
  allowedNetworks,
  allowedRails,
  allowedTiers,
  autoRenew,
  leaseCost,
  micros,
  paymentCeiling,
  run402Kind,
  runCeiling,
  stackMatches,
  stackNetworks,
  usd,
} from "./rules";

// The text pulumi-run402's provider/resources/stub.ts writes into `__provider` (first lines).
const stub = (kind: string) =>
  [
    "exports.handler = function () {",
    '  const impl = () => require("pulumi-run402/provider/impl");',
    "  return {",
    `    check: (olds, news) => impl().handlers[${JSON.stringify(kind)}].check(olds, news),`,
    "  };",
    "};",
  ].join("\n");

const hobbyPlan = {
  tier: "hobby",
  plannedPayment: { action: "subscribe", tier: "hobby", amountUsd: "5", rail: "x402", reason: "new" },
};

describe("run402Kind", () => {
  test("behavior: native tokens and the dynamic stub are both recognised, by kind", () => {
    expect(run402Kind("run402:index:Tier", {})).toBe("Tier");
    expect(run402Kind("run402:index:Deployment", {})).toBe("Deployment");
    expect(run402Kind("pulumi-nodejs:dynamic/run402:Tier", { __provider: stub("tier") })).toBe("Tier");
    // The stub names the kind whatever the dynamic type token says.
    expect(run402Kind("pulumi-nodejs:dynamic:Resource", { __provider: stub("project") })).toBe("Project");
    expect(run402Kind("pulumi-nodejs:dynamic/run402:Secret", {})).toBe("Secret");
  });

  test("edge: other dynamic resources and other packages are not Run402's", () => {
    expect(run402Kind("pulumi-nodejs:dynamic:Resource", { __provider: "exports.handler = () => ({})" })).toBe(
      undefined,
    );
    expect(run402Kind("aws:s3:Bucket", { __provider: stub("tier") })).toBe(undefined);
    expect(run402Kind("run402x:index:Tier", {})).toBe(undefined);
  });
});

describe("money", () => {
  test("behavior: USD strings and numbers in micro-dollars, rounded up past 6 decimals", () => {
    expect(micros("0.10")).toBe(100_000n);
    expect(micros(5)).toBe(5_000_000n);
    expect(micros("20")).toBe(20_000_000n);
    expect(micros("0.0000001")).toBe(1n);
    expect(micros("abc")).toBe(undefined);
    expect(micros("-1")).toBe(undefined);
    expect(usd(5_000_000n)).toBe("$5");
    expect(usd(100_000n)).toBe("$0.10");
    expect(usd(1n)).toBe("$0.000001");
  });
});

describe("rules", () => {
  const dev = { stack: "dev", config: {} };

  test("behavior: the payment ceiling refuses a planned payment above it, and only above", () => {
    expect(paymentCeiling("t", hobbyPlan, { maxUsd: 1 })[0]).toContain("plans to pay $5");
    expect(paymentCeiling("t", hobbyPlan, { maxUsd: 5 })).toEqual([]);
    expect(paymentCeiling("t", { tier: "hobby", plannedPayment: null }, { maxUsd: 0 })).toEqual([]);
  });

  test("behavior: allowed tiers and rails", () => {
    expect(allowedTiers("t", hobbyPlan, { tiers: ["prototype"] })[0]).toContain('"hobby"');
    expect(allowedTiers("t", hobbyPlan, { tiers: ["hobby"] })).toEqual([]);
    expect(allowedRails("t", hobbyPlan, dev, { rails: ["mpp"] })[0]).toContain('"x402"');
    expect(
      allowedRails(
        "t",
        { tier: "hobby" },
        { stack: "s", config: { "run402:fallbackRail": "mpp" } },
        {
          rails: ["x402"],
        },
      )[0],
    ).toContain('"mpp"');
    expect(allowedRails("t", hobbyPlan, dev, { rails: ["x402", "mpp"] })).toEqual([]);
  });

  test("behavior: mainnet only in the stacks the config names; unset networks are the rails' testnets", () => {
    const named = (stack: string) => ({ stack, config: { "run402:allowedNetworks": "84532,eip155:8453" } });
    expect(stackNetworks(named("dev"))).toEqual(["eip155:84532", "eip155:8453"]);
    expect(stackNetworks({ stack: "x", config: { "run402:rail": "mpp" } })).toEqual(["eip155:42431"]);
    expect(allowedNetworks("t", named("dev"), { mainnetStacks: ["prod-*"] })[0]).toContain("mainnet");
    expect(allowedNetworks("t", named("prod-eu"), { mainnetStacks: ["prod-*"] })).toEqual([]);
    expect(allowedNetworks("t", dev, {})).toEqual([]);
    expect(
      allowedNetworks("t", named("prod"), { mainnetStacks: ["prod"], networks: ["eip155:84532"] })[0],
    ).toContain('"eip155:8453"');
    expect(stackMatches("prod", ["prod-*"])).toBe(false);
    expect(stackMatches("a.b", ["a*b"])).toBe(true);
    expect(stackMatches("axb", ["a.b"])).toBe(false);
  });

  test("behavior: autoRenew required or forbidden per stack (unset means true)", () => {
    expect(
      autoRenew("t", { autoRenew: false }, { stack: "prod", config: {} }, { requiredIn: ["prod"] }),
    ).toHaveLength(1);
    expect(autoRenew("t", {}, { stack: "prod", config: {} }, { requiredIn: ["prod"] })).toEqual([]);
    expect(autoRenew("t", {}, dev, { forbiddenIn: ["dev"] })[0]).toContain("defaults to true");
    expect(autoRenew("t", { autoRenew: false }, dev, { forbiddenIn: ["dev"] })).toEqual([]);
  });

  test("behavior: lease cost per period counts the leases a period holds, against the wallet budget", () => {
    // Prototype: $0.10 a 7-day lease, 5 leases in 30 days.
    const proto = { tier: "prototype" };
    expect(leaseCost("t", proto, dev, { maxUsd: 0.5 })).toEqual([]);
    const [over] = leaseCost(
      "t",
      proto,
      { stack: "dev", config: { "run402:budgetUsd": "1" } },
      { maxUsd: 0.4 },
    );
    expect(over).toContain("$0.50 per 30 days (5 leases)");
    expect(over).toContain("50% of the wallet budget run402:budgetUsd = $1");
    // Without autoRenew, one lease per period.
    expect(leaseCost("t", { ...proto, autoRenew: false }, dev, { maxUsd: 0.1 })).toEqual([]);
    // A planned price wins over the published one.
    expect(leaseCost("t", hobbyPlan, dev, { maxUsd: 4, periodDays: 30 })[0]).toContain("$5 per 30 days");
  });

  test("behavior: the run ceiling sums every Tier's planned payment", () => {
    const tiers = [
      { name: "a", props: hobbyPlan },
      { name: "b", props: hobbyPlan },
    ];
    expect(runCeiling(tiers, { maxUsd: 9 })[0]).toContain("$10 in total (a $5, b $5)");
    expect(runCeiling(tiers, { maxUsd: 10 })).toEqual([]);
  });
});
