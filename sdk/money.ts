/**
 * USD amounts, the one conversion between decimal strings and atomic units: both rails' stablecoins
 * (USDC, pathUSD) have 6 decimals. Exact (bigint digits), never a float. No import: the CLI loads this
 * module on every command, and viem's index (what parseUnits/formatUnits came from) costs it ~0.3 s.
 */

/** Decimals of USDC and pathUSD. */
export const usdDecimals = 6;

/** Formats atomic units (6 decimals) as a USD decimal string with at least two decimals. */
export function atomicToUsd(atomic: bigint): string {
  const sign = atomic < 0n ? "-" : "";
  const digits = (atomic < 0n ? -atomic : atomic).toString().padStart(usdDecimals + 1, "0");
  const fraction = digits.slice(-usdDecimals).replace(/0+$/, "");
  return `${sign}${digits.slice(0, -usdDecimals)}.${fraction.padEnd(2, "0")}`;
}

/** Parses a USD amount (number or decimal string) into atomic units (6 decimals), rounding down. */
export function usdToAtomic(usd: number | string): bigint {
  const text = typeof usd === "number" ? usd.toFixed(usdDecimals) : usd.trim();
  const match = /^(\d+)(?:\.(\d*))?$/.exec(text);
  if (!match) throw new TypeError(`Not a USD amount: ${text}`);
  // Digits past the sixth are cut (never rounded up).
  return BigInt(`${match[1]}${(match[2] ?? "").slice(0, usdDecimals).padEnd(usdDecimals, "0")}`);
}

/** Sums USD decimal strings exactly. */
export function sumUsd(amounts: readonly string[]): string {
  return atomicToUsd(amounts.reduce((total, amount) => total + usdToAtomic(amount), 0n));
}

/**
 * The USD amount of a price as Run402 writes it (`"$0.10"`; the `$` optional, at most 6 decimals),
 * as a decimal string (`"0.10"`), or undefined when the text is no such amount (never NaN).
 */
export function parseUsdPrice(text: string): string | undefined {
  return /^\s*\$?\s*(\d+(?:\.\d{1,6})?)\s*$/.exec(text)?.[1];
}
