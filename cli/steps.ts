/**
 * Turns the engine's event stream into the report: one entry per resource step, the actions
 * convergence needs (a Tier's `plannedPayment`, set by the provider's check, carries the cost; its
 * `plan` says why nothing is paid), the payments that settled (a Tier's `lastSettlement` that
 * changed during the run), the provider's progress lines (ephemeral engine logs), and the steps
 * that started and never finished (an interrupted run).
 */
import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation/index.js";
import { unknown as unknownValue } from "../provider/impl/values.js";
import { deploymentShape, revealQuiet } from "../provider/shapes.js";
import { codedErrors } from "./engine/index.js";
import type {
  ActionReport,
  DeploymentChanges,
  NameChanges,
  PaymentReport,
  PendingReport,
  ResourceReport,
  ViolationReport,
} from "./report.js";
import type { ReportedError } from "./reported.js";
import { shortType, urnName } from "./urn.js";

/** Public output keys per short type; everything else (keys, anon keys, file maps) stays out. */
const publicKeys: Record<string, readonly string[]> = {
  "run402:Tier": [
    "wallet",
    "tier",
    "leaseStartedAt",
    "leaseExpiresAt",
    "lifecycleState",
    "lastSettlement",
    "plannedPayment",
    "plan",
  ],
  "run402:Project": ["projectId", "name", "restUrl", "siteUrl"],
  "run402:Deployment": ["projectId", "releaseId", "url", "manifestDigest", "releaseDigest", "changes"],
  "run402:Secret": ["projectId", "name"],
};

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

interface Decision {
  action: string;
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

function asDecision(value: unknown): Decision | undefined {
  const d = value as Partial<Decision> | null | undefined;
  return d && typeof d === "object" && typeof d.action === "string" && typeof d.reason === "string"
    ? (d as Decision)
    : undefined;
}

function asSettlement(value: unknown): Settlement | undefined {
  const s = value as Partial<Settlement> | null | undefined;
  return s && typeof s === "object" && typeof s.amountUsd === "string" && typeof s.rail === "string"
    ? (s as Settlement)
    : undefined;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function names(value: unknown): NameChanges {
  const v = (value ?? {}) as Record<string, unknown>;
  return { added: strings(v.added), changed: strings(v.changed), removed: strings(v.removed) };
}

/**
 * A Deployment's `changes` input (the provider's release diff, a quiet property recorded under
 * another key: provider/shapes.ts `revealQuiet`) in the report's shape; undefined if absent.
 */
function asChanges(value: unknown): DeploymentChanges | undefined {
  const c = value as Record<string, unknown> | null | undefined;
  if (!c || typeof c !== "object" || typeof c.summary !== "string") return undefined;
  const secrets = names(c.secrets);
  const subdomains = names(c.subdomains);
  return {
    summary: c.summary,
    site: names(c.site),
    functions: names(c.functions),
    migrations: { added: strings((c.migrations as Record<string, unknown> | undefined)?.new) },
    secrets: { added: secrets.added, removed: secrets.removed },
    routes: names(c.routes),
    subdomains: { added: subdomains.added, removed: subdomains.removed },
  };
}

const ignoredTypes = /^pulumi:(pulumi:Stack|providers:)/;
const quietOps = new Set(["same", "read", "refresh", "discard"]);

/** Collects steps, actions, payments and error diagnostics from engine events. */
export class StepCollector {
  private readonly steps = new Map<string, ResourceReport>();
  private readonly planned = new Map<string, ActionReport>();
  private readonly paid = new Map<string, PaymentReport>();
  private readonly errorText: string[] = [];
  private readonly policyViolations: ViolationReport[] = [];
  /** URNs whose step started (not a preview) and has not finished. */
  private readonly running = new Map<string, PendingReport>();

  /** @param progress receives one human line per notable event (stderr). */
  constructor(private readonly progress: (line: string) => void = () => {}) {}

  /** Feed every engine event here (`onEvent`). */
  readonly onEvent = (event: EngineEvent): void => {
    if (event.resourcePreEvent)
      this.pre(event.resourcePreEvent.metadata, event.resourcePreEvent.planning === true);
    if (event.resOutputsEvent) this.done(event.resOutputsEvent.metadata);
    if (event.resOpFailedEvent) {
      const m = event.resOpFailedEvent.metadata;
      this.running.delete(m.urn);
      if (!ignoredTypes.test(m.type)) this.progress(`  failed   ${shortType(m.type)} ${urnName(m.urn)}`);
    }
    const policy = event.policyEvent;
    if (policy) {
      const violation: ViolationReport = {
        policy: policy.policyName,
        pack: policy.policyPackName,
        level: policy.enforcementLevel === "mandatory" ? "mandatory" : "advisory",
        resource: policy.resourceUrn ? urnName(policy.resourceUrn) : null,
        message: policy.message.trim(),
      };
      this.policyViolations.push(violation);
      this.progress(`  policy ${violation.level} ${violation.policy}: ${violation.message}`);
    }
    const diag = event.diagnosticEvent;
    if (diag) {
      const text = diag.message.trim();
      // Debug diagnostics carry serialized closures and raw property maps (keys included): never shown.
      if (diag.severity === "error") this.errorText.push(text);
      else if (text !== "" && (diag.severity === "info" || diag.severity === "warning")) {
        // The provider's progress (ephemeral), placed on its resource when it names one.
        const where = diag.urn && !/::pulumi:pulumi:Stack::/.test(diag.urn) ? `[${urnName(diag.urn)}] ` : "";
        this.progress(`  ${where}${text}`);
      }
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
    const decision = asDecision(m.new?.inputs?.plan);
    const action: ActionReport = planned
      ? {
          resource: name,
          action: planned.action,
          amountUsd: planned.amountUsd,
          rail: planned.rail,
          reason: planned.reason,
        }
      : decision && m.op !== "delete"
        ? {
            resource: name,
            action: decisionAction(m, decision),
            amountUsd: "0",
            rail: null,
            reason: decisionReason(m, decision),
          }
        : { resource: name, action: m.op, amountUsd: "0", rail: null, reason: reasonOf(m) };
    const changes =
      type === "run402:Deployment" && m.op !== "delete"
        ? asChanges(revealQuiet(deploymentShape, m.new?.inputs)?.changes)
        : undefined;
    if (changes) {
      action.changes = changes;
      if (changes.summary)
        action.reason = m.op === "create" ? `new release: ${changes.summary}` : changes.summary;
    }
    this.planned.set(m.urn, action);
    if (!planning) {
      this.running.set(m.urn, { resource: name, op: m.op });
      const cost = planned ? ` — ${planned.action}: $${planned.amountUsd} via ${planned.rail}` : "";
      this.progress(`  ${m.op.padEnd(8)} ${type} ${name}${cost}`);
    }
  }

  private done(m: StepEventMetadata): void {
    this.running.delete(m.urn);
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
      // The provider reported the payment as it happened (a progress line); this records it.
      this.paid.set(`${m.urn}|${after.settledAt}|${after.reference}`, payment);
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

  /** Steps that started and have not finished (yet, or ever: an interrupted run). */
  unfinished(): PendingReport[] {
    return [...this.running.values()];
  }

  /** Policy pack violations the engine reported (CrossGuard). */
  violations(): ViolationReport[] {
    return [...this.policyViolations];
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

/** Inputs that change without anything being asked of Run402: the plan itself, and the URN key. */
const bookkeeping = new Set(["plan", "plannedPayment", "resourceKey"]);

/** A Tier step that pays nothing: `adopt` when created on a held lease, else the engine's step. */
function decisionAction(m: StepEventMetadata, decision: Decision): string {
  return decision.action === "adopt" ? "adopt" : m.op;
}

function decisionReason(m: StepEventMetadata, decision: Decision): string {
  if (m.op === "update" && (m.diffs ?? []).every((key) => bookkeeping.has(key))) {
    return `${decision.reason}; outputs updated to the server's lease, nothing paid`;
  }
  if (m.op === "update" && m.diffs && m.diffs.length > 0) {
    return `changed: ${m.diffs.filter((key) => !bookkeeping.has(key)).join(", ")}; ${decision.reason}`;
  }
  return decision.reason;
}

function reasonOf(m: StepEventMetadata): string {
  if (m.op === "create") return "does not exist yet";
  if (m.op === "delete") return "no longer declared";
  if (m.diffs && m.diffs.length > 0) return `changed: ${m.diffs.join(", ")}`;
  if (m.keys && m.keys.length > 0) return `replaced because of: ${m.keys.join(", ")}`;
  return m.op;
}
