/**
 * Code-unit order of strings (what `Array.prototype.sort()` does without a comparator), for sorts
 * whose result is hashed, fingerprinted or shown: unlike `localeCompare`, the same on every machine.
 */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
