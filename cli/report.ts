/** The result document of one run402-pulumi command (the `--json` contract) and its human rendering. */
import { settingOf } from "../provider/settings.js";
import { sumUsd } from "../sdk/money.js";
import type { PlanDocument } from "./plan.js";
import type { ReportedError } from "./reported.js";

/** A resource the command touched (or, for status, holds). */
export interface ResourceReport {
  /** Short type, e.g. `run402:Tier`. */
  type: string;
  name: string;
  /** The engine's step: create, update, same, delete, replace, refresh, read… */
  op: string;
  /** Public outputs (never keys). */
  outputs?: Record<string, unknown>;
}

/** Added, changed and removed names of one kind in a release. */
export interface NameChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

/**
 * What a Deployment's create or update changes in the live release: `@run402/release`'s diff of the
 * recorded release and the planned one, as the provider's check computes it.
 */
export interface DeploymentChanges {
  /** Run402's one-line summary, e.g. "1 migration new, 3 site paths added". */
  summary: string;
  /** Site paths (files served). */
  site: NameChanges;
  /** Functions; a changed one names the fields that change: `api (source, config)`. */
  functions: NameChanges;
  /** Migrations the deploy runs (a migration is never changed or removed). */
  migrations: { added: string[] };
  /** Secret names the release requires (values are set out of band). */
  secrets: { added: string[]; removed: string[] };
  routes: NameChanges;
  subdomains: { added: string[]; removed: string[] };
}

/** One action convergence needs, with its cost. */
export interface ActionReport {
  resource: string;
  /** subscribe, renew, upgrade, downgrade (paid), or the engine step (create, update, delete…). */
  action: string;
  /** USD decimal string; "0" for free actions. */
  amountUsd: string;
  rail: "x402" | "mpp" | null;
  reason: string;
  /** A Deployment's create or update: what it changes. */
  changes?: DeploymentChanges;
}

/** Lines naming a deployment's changes (at most `limit` names per list; the JSON has them all). */
export function changeLines(changes: DeploymentChanges, limit = 10): string[] {
  const names = (list: string[]) =>
    list.length > limit
      ? `${list.slice(0, limit).join(", ")} and ${list.length - limit} more`
      : list.join(", ");
  const part = (sign: string, list: string[] | undefined) =>
    list && list.length > 0 ? [`${sign}${list.length} (${names(list)})`] : [];
  const line = (label: string, c: Partial<NameChanges>) => {
    const parts = [...part("+", c.added), ...part("~", c.changed), ...part("-", c.removed)];
    return parts.length > 0 ? [`${label}: ${parts.join(", ")}`] : [];
  };
  return [
    ...line("files", changes.site),
    ...line("migrations", changes.migrations),
    ...line("functions", changes.functions),
    ...line("secrets", changes.secrets),
    ...line("routes", changes.routes),
    ...line("subdomains", changes.subdomains),
  ];
}

/** A settled payment. */
export interface PaymentReport {
  rail: string;
  /** On-chain transaction hash (null for allowance settlements). */
  reference: string | null;
  amountUsd: string;
  network?: string;
}

/** A resource step that started and did not finish (the run was stopped), or a pending operation in state. */
export interface PendingReport {
  resource: string;
  /** The engine's step (create, update, delete…) or the pending operation's kind (creating, updating…). */
  op: string;
}

/** The saved plan a `plan --save` wrote, or an `apply --plan` was given (see cli/plan.ts). */
export interface SavedPlanReport {
  /** `plan_` and the fingerprint's first 16 hex digits. */
  id: string;
  fingerprint: string;
  /** The plan file (absolute). */
  file: string;
  /** The plan's total: what `apply --plan` may pay at most. */
  totalUsd: string;
  /** `apply --plan` refused: what differs between the saved plan and a fresh one. */
  changed?: string[];
  /** The MCP server's `plan` tool: the plan document itself. */
  document?: PlanDocument;
}

/** One payment the forecast expects. */
export interface RenewalForecast {
  /** The Tier's resource name. */
  resource: string;
  /** The wallet (organization) whose lease it is; null when the state does not name it. */
  wallet: string | null;
  /** When it falls due (ISO, server clock); a payment already due is dated now. */
  date: string;
  tier: string;
  /** renew (inside the renewal window), or subscribe (the lease lapsed: bought back). */
  action: "renew" | "subscribe";
  amountUsd: string;
  rail: string;
}

/** The forecast of one stack (cli/forecast.ts). */
export interface ForecastReport {
  days: number;
  /** The server's time the forecast starts from (ISO). */
  from: string;
  until: string;
  /** Every expected payment, by date. */
  renewals: RenewalForecast[];
  totalUsd: string;
  /** The total per rail. */
  byRail: Record<string, string>;
}

/** Lines for the human report. */
function forecastLines(forecast: ForecastReport): string[] {
  const lines = [`Forecast (next ${forecast.days} days, from ${forecast.from}):`];
  if (forecast.renewals.length === 0) lines.push("  no renewal falls due");
  for (const r of forecast.renewals) {
    lines.push(`  ${r.date}  ${r.resource}: ${r.action} ${r.tier} $${r.amountUsd} via ${r.rail}`);
  }
  const rails = Object.entries(forecast.byRail)
    .map(([rail, usd]) => `${rail} $${usd}`)
    .join(", ");
  lines.push(`  total $${forecast.totalUsd}${rails ? ` (${rails})` : ""}`);
  return lines;
}

/** A policy pack's violation (CrossGuard `--policy-pack`), as the engine reported it. */
export interface ViolationReport {
  /** The policy's name, e.g. `run402-payment-ceiling`. */
  policy: string;
  /** The pack's name, e.g. `run402`. */
  pack: string;
  /** mandatory: the run stopped (nothing past the resource was done); advisory: a warning. */
  level: "mandatory" | "advisory";
  /** The resource's name; null for a stack policy. */
  resource: string | null;
  message: string;
}

/** The one JSON document written to stdout with `--json`. */
export interface Report {
  ok: boolean;
  command: string;
  stack: string;
  resources: ResourceReport[];
  actions: ActionReport[];
  payments: PaymentReport[];
  totalPaidUsd: string;
  /** plan and apply: the sum of the planned payments. */
  totalPlannedUsd?: string;
  /** plan and apply: planned spend per rail. */
  plannedByRail?: Record<string, string>;
  outputs?: Record<string, unknown>;
  /** reconcile: how many refresh + apply rounds ran, and how many of them failed. */
  rounds?: number;
  failedRounds?: number;
  /** What the CLI repaired before it ran: a stale lock, pending operations of a run that died. */
  recovered?: string[];
  /** Steps left unfinished by an interrupted run, and pending operations still in the state. */
  pending?: PendingReport[];
  /** `plan --save` and `apply --plan`: the saved plan. */
  savedPlan?: SavedPlanReport;
  /** `--policy-pack`: the violations the packs reported (absent without a pack). */
  violations?: ViolationReport[];
  /** forecast, plan: the renewals the stack's state will pay within the horizon (cli/forecast.ts). */
  forecast?: ForecastReport;
  errors: ReportedError[];
}

/** An empty report for a command. */
export function emptyReport(command: string, stack: string): Report {
  return {
    ok: true,
    command,
    stack,
    resources: [],
    actions: [],
    payments: [],
    totalPaidUsd: "0.00",
    errors: [],
  };
}

/** Fills totals from actions and payments. */
export function withTotals(report: Report, planned: boolean): Report {
  report.totalPaidUsd = sumUsd(report.payments.map((p) => p.amountUsd));
  if (planned) {
    const paid = report.actions.filter((a) => a.rail !== null);
    report.totalPlannedUsd = sumUsd(paid.map((a) => a.amountUsd));
    const byRail: Record<string, string> = {};
    for (const rail of new Set(paid.map((a) => a.rail as string))) {
      byRail[rail] = sumUsd(paid.filter((a) => a.rail === rail).map((a) => a.amountUsd));
    }
    report.plannedByRail = byRail;
  }
  return report;
}

function show(value: unknown): string {
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** What refuses a payment, by the code it refuses with: the setting (or tool) that decides it. */
function refuser(code: string): string {
  if (code === "POLICY_PACK_VIOLATION") return "the policy pack";
  const key = settingOf(code);
  if (!key) return "the payment policy";
  return key === "maxSpendUsd" ? "run402:maxSpendUsd (--max-spend)" : `run402:${key}`;
}

/**
 * The "Planned:" line. A payment the policy refused never becomes an action, so a total would read
 * as "$0.00" beside it: the line says what refused it instead, and a run that failed before
 * anything was priced claims no total.
 */
function plannedLine(report: Report): string {
  const refused = report.errors.filter((e) => e.code.startsWith("POLICY_"));
  if (!report.ok && refused.length > 0) {
    const by = [...new Set(refused.map((e) => `${refuser(e.code)} (${e.code})`))];
    return `Planned: refused by ${by.join(", ")}; nothing is paid (see Errors)`;
  }
  if (!report.ok && report.actions.length === 0) return "Planned: unknown: the plan failed (see Errors)";
  const rails = Object.entries(report.plannedByRail ?? {})
    .map(([rail, usd]) => `${rail} $${usd}`)
    .join(", ");
  return `Planned: $${report.totalPlannedUsd}${rails ? ` (${rails})` : ""}`;
}

/** The human summary printed on stdout without `--json`. */
export function renderHuman(report: Report): string {
  const lines: string[] = [];
  const status = report.ok ? "ok" : "failed";
  lines.push(`run402-pulumi ${report.command} (stack ${report.stack}): ${status}`);
  const changed = report.resources.filter((r) => r.op !== "same");
  if (changed.length > 0) {
    lines.push("", "Resources:");
    for (const r of changed) lines.push(`  ${r.op.padEnd(8)} ${r.type} ${r.name}`);
  }
  if (report.actions.length > 0) {
    lines.push("", "Actions:");
    for (const a of report.actions) {
      const cost = a.rail ? `$${a.amountUsd} via ${a.rail}` : "free";
      lines.push(`  ${a.resource}: ${a.action} (${cost}) — ${a.reason}`);
      if (a.changes) for (const line of changeLines(a.changes)) lines.push(`      ${line}`);
    }
  }
  if (report.totalPlannedUsd !== undefined) lines.push(plannedLine(report));
  if (report.payments.length > 0) {
    lines.push("", "Payments:");
    for (const p of report.payments) {
      lines.push(
        `  $${p.amountUsd} settled on ${p.rail}${p.network ? ` (${p.network})` : ""}, ref ${p.reference ?? "-"}`,
      );
    }
  }
  lines.push(`Paid: $${report.totalPaidUsd}`);
  if (report.outputs && Object.keys(report.outputs).length > 0) {
    lines.push("", "Outputs:");
    for (const [key, value] of Object.entries(report.outputs)) {
      if (key === "files" || key === "plannedPayment" || key === "plan") continue;
      if (key === "lastSettlement" && value && typeof value === "object") {
        const s = value as Record<string, unknown>;
        lines.push(
          `  ${"lastSettlement".padEnd(16)} rail=${show(s.rail)} amountUsd=${show(s.amountUsd)} reference=${show(s.reference)} network=${show(s.network)} settledAt=${show(s.settledAt)}`,
        );
        continue;
      }
      lines.push(`  ${key.padEnd(16)} ${show(value)}`);
    }
  }
  if (report.savedPlan) {
    const plan = report.savedPlan;
    lines.push("", `Saved plan: ${plan.id} (${plan.file}), pays at most $${plan.totalUsd}`);
    for (const change of plan.changed ?? []) lines.push(`  changed: ${change}`);
  }
  if (report.forecast) lines.push("", ...forecastLines(report.forecast));
  if (report.violations && report.violations.length > 0) {
    lines.push("", "Policy violations:");
    for (const v of report.violations) {
      lines.push(`  [${v.level}] ${v.policy}${v.resource ? ` (${v.resource})` : ""}: ${v.message}`);
    }
  }
  if (report.recovered && report.recovered.length > 0) {
    lines.push("", "Recovered:");
    for (const r of report.recovered) lines.push(`  ${r}`);
  }
  if (report.pending && report.pending.length > 0) {
    lines.push("", "Unfinished:");
    for (const p of report.pending) lines.push(`  ${p.op.padEnd(8)} ${p.resource}`);
  }
  if (report.errors.length > 0) {
    lines.push("", "Errors:");
    for (const e of report.errors)
      lines.push(
        `  [${e.code}]${e.file !== undefined ? ` ${e.file}` : ""}${e.pointer !== undefined ? ` ${e.pointer || "(root)"}` : ""}${e.file !== undefined || e.pointer !== undefined ? ":" : ""} ${e.message}`,
      );
  }
  return `${lines.join("\n")}\n`;
}

/** How many names each list of a Deployment's `changes` keeps in a bounded report. */
export const changeListLimit = 100;

/**
 * The report as `--json` and the MCP tools give it by default: bounded whatever the site's size. The
 * stack output `files` (every site path and its sha256) becomes `{count}`, and each list of a
 * Deployment's `changes` keeps its first {@link changeListLimit} names, then one entry saying how
 * many more there are. `full` (`--files`, the tools' `files: true`) keeps everything.
 */
export function bounded(report: Report, full: boolean): Report {
  if (full) return report;
  const cut = (changes: DeploymentChanges | undefined): DeploymentChanges | undefined => {
    if (!changes) return changes;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(changes)) {
      if (!value || typeof value !== "object") {
        out[key] = value;
        continue;
      }
      const lists: Record<string, unknown> = {};
      for (const [name, list] of Object.entries(value as Record<string, unknown>)) {
        lists[name] =
          Array.isArray(list) && list.length > changeListLimit
            ? [
                ...list.slice(0, changeListLimit),
                `… ${list.length - changeListLimit} more (--files, or the tool's files: true, lists them all)`,
              ]
            : list;
      }
      out[key] = lists;
    }
    return out as unknown as DeploymentChanges;
  };
  const outputs = report.outputs && { ...report.outputs };
  if (outputs?.files && typeof outputs.files === "object") {
    outputs.files = {
      count: Object.keys(outputs.files as object).length,
      note: "every file and its sha256: --files (the MCP tools: files: true)",
    };
  }
  if (outputs?.changes && typeof outputs.changes === "object")
    outputs.changes = cut(outputs.changes as DeploymentChanges);
  return {
    ...report,
    ...(outputs ? { outputs } : {}),
    actions: report.actions.map((a) =>
      a.changes ? { ...a, changes: cut(a.changes) as DeploymentChanges } : a,
    ),
    resources: report.resources.map((r) => {
      const o = r.outputs;
      if (!o?.changes || typeof o.changes !== "object") return r;
      return { ...r, outputs: { ...o, changes: cut(o.changes as DeploymentChanges) } };
    }),
  };
}

/** The report with its keys in the documented order (for the JSON document). */
export function ordered(report: Report): Report {
  const {
    ok,
    command,
    stack,
    resources,
    actions,
    payments,
    totalPaidUsd,
    totalPlannedUsd,
    plannedByRail,
    outputs,
    rounds,
    failedRounds,
    recovered,
    pending,
    savedPlan,
    violations,
    forecast,
    errors,
  } = report;
  return {
    ok,
    command,
    stack,
    resources,
    actions,
    payments,
    totalPaidUsd,
    ...(totalPlannedUsd !== undefined ? { totalPlannedUsd } : {}),
    ...(plannedByRail !== undefined ? { plannedByRail } : {}),
    ...(outputs !== undefined ? { outputs } : {}),
    ...(rounds !== undefined ? { rounds } : {}),
    ...(failedRounds !== undefined ? { failedRounds } : {}),
    ...(recovered !== undefined && recovered.length > 0 ? { recovered } : {}),
    ...(pending !== undefined && pending.length > 0 ? { pending } : {}),
    ...(savedPlan !== undefined ? { savedPlan } : {}),
    ...(violations !== undefined ? { violations } : {}),
    ...(forecast !== undefined ? { forecast } : {}),
    errors,
  };
}
