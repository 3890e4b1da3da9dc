/** `forecast`, and `plan`'s forecast: the renewals the stack's state will pay within --days. */
import type { EngineStack, ExportedState } from "../engine/index.js";
import { forecastRenewals, isTier, priceList } from "../forecast.js";
import type { ForecastReport, Report } from "../report.js";
import {
  defaultApiBase,
  existingStack,
  flagSettings,
  missingStack,
  type Session,
  startSandbox,
} from "./session.js";

/**
 * The renewals the stack's state will pay within `days` (cli/forecast.ts): priced from the API's
 * current price list, on the server's clock, on the rail this run names (--rail, -c), else the
 * stack's run402:rail, else the rail the Tier last paid on, else x402. Reads only.
 */
export async function stackForecast(
  session: Session,
  stack: EngineStack,
  state: ExportedState,
  days: number,
): Promise<ForecastReport> {
  const config = await stack.getAllConfig();
  const run = { ...flagSettings(session.options), ...session.settings };
  const apiBase = (run.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase).replace(/\/+$/, "");
  const rail = run.rail ?? config["run402:rail"]?.value;
  const resources = state.deployment.resources ?? [];
  // No Tier, no lease to renew: the price list is not asked for.
  const { terms, now } = resources.some((r) => isTier(r.type))
    ? await priceList(apiBase)
    : { terms: {}, now: Date.now() };
  return forecastRenewals(resources, terms, now, days, (outputs) => {
    const last = (outputs.lastSettlement as { rail?: unknown } | null | undefined)?.rail;
    return rail ?? (last === "x402" || last === "mpp" ? last : "x402");
  });
}

/** `forecast`: what the stack's leases will cost within --days; no engine operation, no payment, no write. */
export async function forecast(session: Session, report: Report): Promise<Report> {
  const stack = await existingStack(session);
  if (!stack) return missingStack(session, report);
  // The price list comes from the API: with --sandbox, the sandbox's (a missing stack starts none).
  if (session.options.sandbox) session.settings = await startSandbox(session);
  const state = await stack.exportStack();
  report.forecast = await stackForecast(session, stack, state, session.options.days);
  return report;
}
