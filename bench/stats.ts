/** Small, dependency-free statistics and formatting for the bench report. */

/** Summary of a sample of durations in milliseconds. */
export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  max: number;
}

/** Min, median (mean of the middle two for even n), nearest-rank p90, max. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const p90 = sorted[Math.max(0, Math.ceil(0.9 * n) - 1)]!;
  return { n, min: sorted[0]!, median, p90, max: sorted[n - 1]! };
}

/** `1234.5` → `"1235"`; values under 10 ms keep one decimal. */
export function ms(value: number): string {
  return value < 10 ? value.toFixed(1) : Math.round(value).toString();
}

/** `2345` → `"2.35 s"`. */
export function seconds(valueMs: number): string {
  return `${(valueMs / 1000).toFixed(2)} s`;
}

/** A GitHub-flavoured Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Message of anything thrown. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
