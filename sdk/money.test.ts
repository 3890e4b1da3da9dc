import { formatUnits, parseUnits } from "viem";
import { describe, expect, test } from "vitest";
import { atomicToUsd, sumUsd, usdToAtomic } from "./money.js";

describe("money", () => {
  test("default: atomic ↔ USD, at least two decimals", () => {
    expect(atomicToUsd(100_000n)).toBe("0.10");
    expect(atomicToUsd(30_000n)).toBe("0.03");
    expect(atomicToUsd(20_000_000n)).toBe("20.00");
    expect(atomicToUsd(1_234_567n)).toBe("1.234567");
    expect(atomicToUsd(1n)).toBe("0.000001");
    expect(atomicToUsd(0n)).toBe("0.00");
    expect(atomicToUsd(-100_000n)).toBe("-0.10");
    expect(usdToAtomic("0.10")).toBe(100_000n);
    expect(usdToAtomic("20")).toBe(20_000_000n);
    expect(usdToAtomic(" 5 ")).toBe(5_000_000n);
    expect(usdToAtomic("1.")).toBe(1_000_000n);
    expect(usdToAtomic(0.1)).toBe(100_000n);
    expect(sumUsd(["0.10", "0.03", "5"])).toBe("5.13");
    expect(sumUsd(["0.1", "0.2"])).toBe("0.30");
    expect(sumUsd([])).toBe("0.00");
  });

  test("behavior: digits past the sixth are cut, never rounded up", () => {
    expect(usdToAtomic("0.0300009")).toBe(30_000n);
    expect(usdToAtomic("0.9999999")).toBe(999_999n);
  });

  test("behavior: exact beyond 2^53 micro-dollars, where a Number conversion loses cents", () => {
    expect(usdToAtomic("9007199254.740993")).toBe(9_007_199_254_740_993n);
    expect(sumUsd(["9007199254.740993", "0.000001"])).toBe("9007199254.740994");
    expect(atomicToUsd(12_345_678_901_234_567_890n)).toBe("12345678901234.56789");
  });

  test("error: what is not a non-negative decimal amount is refused", () => {
    for (const bad of ["", "-1", "1e3", "0x10", "1,5", ".5", "five", "1.2.3"])
      expect(() => usdToAtomic(bad), bad).toThrow(/Not a USD amount/);
    expect(() => usdToAtomic(-0.5)).toThrow(/Not a USD amount/);
  });

  test("behavior: the same amounts as viem's formatUnits/parseUnits at 6 decimals (what this module used)", () => {
    const atomics = [0n, 1n, 9n, 10n, 99n, 100n, 999_999n, 1_000_000n, 1_000_001n, 100_000n, 120_000n];
    atomics.push(123_456_789_012_345_678_901n, 10n ** 30n + 7n, 2n ** 64n, 2n ** 53n + 1n);
    for (const atomic of [...atomics, ...atomics.map((a) => -a)]) {
      const [whole, fraction = ""] = formatUnits(atomic, 6).split(".");
      expect(atomicToUsd(atomic), String(atomic)).toBe(`${whole}.${fraction.padEnd(2, "0")}`);
    }
    for (const text of [
      "0",
      "0.1",
      "0.000001",
      "1.5",
      "000.010",
      "123456789012345.654321",
      "7.",
      "0.0000009",
    ]) {
      const [whole, fraction = ""] = text.split(".");
      expect(usdToAtomic(text), text).toBe(parseUnits(`${whole}.${fraction.slice(0, 6) || "0"}`, 6));
    }
  });
});
