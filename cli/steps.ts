/**
 * Turns the engine's event stream into the report: one entry per resource step, the actions
 * convergence needs (a Tier's `plannedPayment`, set by the provider's check, carries the cost) and
 * the payments that settled (a Tier's `lastSettlement` that changed during the run).
 */
import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation/index.js";
import type { ReportedError } from "./exit.js";
import { codedErrors } from "./exit.js";
import type { ActionReport, PaymentReport, ResourceReport } from "./report.js";

/** Public output keys per short type; everything else (keys, anon keys, file maps) stays out. */
const publicKeys: Record<string, readonly string[]> = {
  "run402:Tier": ["wallet", "tier", "leaseStartedAt", "leaseExpiresAt", "lifecycleState", "lastSettlement"],
  "run402:Project": ["projectId", "name", "restUrl", "siteUrl"],
  "run402:Deployment": ["projectId", "releaseId", "url", "manifestDigest", "releaseDigest", "changes"],
  "run402:Secret": ["projectId", "name"],
};

/** What the engine sends for a value not known until the update (preview). */
const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** `pulumi-nodejs:dynamic/run402:Tier` → `run402:Tier`. */
export function shortType(type: string): string {
  return type.replace(/^pulumi-nodejs:dynamic\//, "");
}

/** The resource name at the end of a URN. */
export function urnName(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

/** Keeps only the outputs that are safe to print for a resource type. */
export function publicOutputs(
  type: string,
  outputs: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const keys = publicKeys[shortType(type)] ?? [];
  const picked: Record<string, unknown> = {};
  for (const key of keys) {
    const value = outputs?.[key];
    if (value !== undefined && value !== unknownValue) picked[key] = value;
  }
  return picked;
}

interface Planned {
  action: string;
  tier?: string;
  amountUsd: string;
  rail: "x402" | "mpp";
  reason: string;
}

interface Settlement {
  rail: string;
  reference: string | null;
  network: string | null;
  amountUsd: string;
  settledAt: string;
}

function asPlanned(value: unknown): Planned | undefined {
  const p = value as Partial<Planned> | null | undefined;
  return p && typeof p === "object" && typeof p.amountUsd === "string" && typeof p.action === "string"
    ? (p as Planned)
    : undefined;
}

function asSettlement(value: unknown): Settlement | undefined {
  const s = value as Partial<Settlement> | null | undefined;
  return s && typeof s === "object" && typeof s.amountUsd === "string" && typeof s.rail === "string"
    ? (s as Settlement)
    : undefined;
}

const ignoredTypes = /^pulumi:(pulumi:Stack|providers:)/;
const quietOps = new Set(["same", "read", "refresh", "discard"]);

/** Collects steps, actions, payments and error diagnostics from engine events. */
export class StepCollector {
  private readonly steps = new Map<string, ResourceReport>();
  private readonly planned = new Map<string, ActionReport>();
  private readonly paid = new Map<string, PaymentReport>();
  private readonly errorText: string[] = [];

  /** @param progress receives one human line per notable event (stderr). */
  constructor(private readonly progress: (line: string) => void = () => {}) {}

  /** Feed every engine event here (`onEvent`). */
  readonly onEvent = (event: EngineEvent): void => {
    if (event.resourcePreEvent)
      this.pre(event.resourcePreEvent.metadata, event.resourcePreEvent.planning === true);
    if (event.resOutputsEvent) this.done(event.resOutputsEvent.metadata);
    if (event.resOpFailedEvent) {
      const m = event.resOpFailedEvent.metadata;
      if (!ignoredTypes.test(m.type)) this.progress(`  failed   ${shortType(m.type)} ${urnName(m.urn)}`);
    }
    const diag = event.diagnosticEvent;
    if (diag) {
      const text = diag.message.trim();
      // Debug diagnostics carry serialized closures and raw property maps (keys included): never shown.
      if (diag.severity === "error") this.errorText.push(text);
      else if (text !== "" && (diag.severity === "info" || diag.severity === "warning"))
        this.progress(`  ${text}`);
    }
  };

  private pre(m: StepEventMetadata, planning: boolean): void {
    if (ignoredTypes.test(m.type)) return;
    const type = shortType(m.type);
    const name = urnName(m.urn);
    const step: ResourceReport = { type, name, op: m.op };
    this.steps.set(m.urn, step);
    if (quietOps.has(m.op)) return;
    const planned = asPlanned(m.new?.inputs?.plannedPayment);
    const action: ActionReport = planned
      ? {
          resource: name,
          action: planned.action,
          amountUsd: planned.amountUsd,
          rail: planned.rail,
          reason: planned.reason,
        }
      : { resource: name, action: m.op, amountUsd: "0", rail: null, reason: reasonOf(m) };
    this.planned.set(m.urn, action);
    if (!planning) {
      const cost = planned ? ` — paying $${planned.amountUsd} via ${planned.rail} (${planned.action})` : "";
      this.progress(`  ${m.op.padEnd(8)} ${type} ${name}${cost}`);
    }
  }

  private done(m: StepEventMetadata): void {
    if (ignoredTypes.test(m.type)) return;
    const step = this.steps.get(m.urn) ?? { type: shortType(m.type), name: urnName(m.urn), op: m.op };
    const outputs = publicOutputs(m.type, m.new?.outputs);
    if (Object.keys(outputs).length > 0) step.outputs = outputs;
    this.steps.set(m.urn, step);
    const after = asSettlement(m.new?.outputs?.lastSettlement);
    const before = asSettlement(m.old?.outputs?.lastSettlement);
    if (after && !quietOps.has(m.op) && JSON.stringify(after) !== JSON.stringify(before)) {
      const payment: PaymentReport = {
        rail: after.rail,
        reference: after.reference,
        amountUsd: after.amountUsd,
        ...(after.network ? { network: after.network } : {}),
      };
      this.paid.set(`${m.urn}|${after.settledAt}|${after.reference}`, payment);
      this.progress(
        `  paid $${after.amountUsd} on ${after.rail}${after.network ? ` (${after.network})` : ""}${after.reference ? `, tx ${after.reference}` : ""}`,
      );
    }
  }

  /** Every resource step seen, in order. */
  resources(): ResourceReport[] {
    return [...this.steps.values()];
  }

  /** Steps that change something, with their cost. */
  actions(): ActionReport[] {
    return [...this.planned.values()];
  }

  /** Payments settled during the run. */
  payments(): PaymentReport[] {
    return [...this.paid.values()];
  }

  /** Coded errors from the error diagnostics (empty when none carried a code). */
  errors(): ReportedError[] {
    return codedErrors(this.errorText.join("\n"));
  }

  /** The raw text of the error diagnostics. */
  diagnostics(): string {
    return this.errorText.join("\n");
  }
}

function reasonOf(m: StepEventMetadata): string {
  if (m.op === "create") return "does not exist yet";
  if (m.op === "delete") return "no longer declared";
  if (m.diffs && m.diffs.length > 0) return `changed: ${m.diffs.join(", ")}`;
  if (m.keys && m.keys.length > 0) return `replaced because of: ${m.keys.join(", ")}`;
  return m.op;
}
