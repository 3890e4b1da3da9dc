import { describe, expect, test } from "vitest";
import { parseCli } from "./args.js";

describe("governance flags", () => {
  test("behavior: forecast takes --days (default 30); plan takes --days and policy packs with their configs", () => {
    const forecast = parseCli(["forecast", "--days", "90"]);
    expect(forecast.kind === "run" && forecast.options.days).toBe(90);
    const defaults = parseCli(["forecast"]);
    expect(defaults.kind === "run" && defaults.options.days).toBe(30);
    const plan = parseCli([
      "plan",
      "--policy-pack",
      "a",
      "--policy-pack",
      "b",
      "--policy-pack-config",
      "a.json",
      "--policy-pack-config",
      "b.json",
    ]);
    expect(plan.kind === "run" && plan.options).toMatchObject({
      policyPacks: ["a", "b"],
      policyPackConfigs: ["a.json", "b.json"],
    });
  });

  test("error: a bad --days, configs that do not pair with packs, and flags where they do not apply", () => {
    for (const days of ["0", "3651", "1.5", "x"]) {
      const parsed = parseCli(["forecast", "--days", days]);
      expect(parsed.kind === "error" && parsed.message).toContain("--days");
    }
    const unpaired = parseCli([
      "plan",
      "--policy-pack",
      "a",
      "--policy-pack-config",
      "a.json",
      "--policy-pack-config",
      "b.json",
    ]);
    expect(unpaired.kind === "error" && unpaired.message).toContain("one config file per --policy-pack");
    expect(parseCli(["forecast", "--policy-pack", "a"]).kind).toBe("error");
    expect(parseCli(["forecast", "--max-spend", "1"]).kind).toBe("error");
    expect(parseCli(["status", "--days", "3"]).kind).toBe("error");
  });
});
