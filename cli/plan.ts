/**
 * Saved plans: `plan --save <file>` writes what a preview decided (every resource step, every
 * payment with its amount and rail, the total) with a fingerprint over all of it; `apply --plan
 * <file>` previews again and converges only when the fresh fingerprint is the same.
 *
 * The engine's own update plans (`pulumi preview --save-plan`, `pulumi up --plan`) are not used:
 * with this provider they check each resource only when the update reaches it, so a Tier pays
 * before a changed Deployment is refused, and a plan that matched still fails at the end because
 * the stack outputs recorded in preview (`plannedPayment`) change once paid. test/plans.e2e.test.ts
 * pins both; docs/cli.md says so too.
 */

import { randomUUID } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation/index.js";
import { canonicalizeJson } from "@run402/release";
import { BaseError } from "../core/errors.js";
import { byCodeUnits } from "../core/order.js";
import { unknown as unknownValue } from "../provider/impl/values.js";
import { sha256Hex } from "../schema/release.js";
import { sumUsd } from "../sdk/money.js";
import { shortType, urnName } from "./urn.js";

/** What a plan document says it is. */
export const planKind = "run402-pulumi/plan";
/** The document format; a reader refuses any other. */
export const planVersion = 1;

/** One resource step of the preview. */
export interface PlanStep {
  resource: string;
  /** Short type, e.g. `run402:Tier`. */
  type: string;
  /** The engine's step: create, update, same, delete, replace… */
  op: string;
  /** The inputs the engine found changed (its diff keys), sorted. */
  changed: string[];
  /** What this step does, per type: the tier and its decision, the release digests, names. */
  detail: Record<string, unknown>;
}

/** One payment the plan makes (a Tier's `plannedPayment`). */
export interface PlanPayment {
  resource: string;
  /** subscribe, renew, upgrade, downgrade. */
  action: string;
  tier: string | null;
  amountUsd: string;
  rail: string;
}

/** The saved plan. Everything but `id`, `fingerprint`, `createdAt` and `manifest.file` is fingerprinted. */
export interface PlanDocument {
  kind: typeof planKind;
  version: typeof planVersion;
  /** `plan_` and the fingerprint's first 16 hex digits. */
  id: string;
  /** `sha256:` over the canonical JSON of everything the plan decides. */
  fingerprint: string;
  createdAt: string;
  stack: {
    /** The Pulumi project name. */
    project: string;
    name: string;
    /** The stack instance (stack tag `run402:stack-id`); null when the backend keeps no tags. */
    id: string | null;
  };
  /** The Run402 API the plan was made against. */
  apiBase: string;
  manifest: {
    /** The manifest as given, relative to where the plan was made (not fingerprinted). */
    file: string;
    /** `sha256:` over the manifest's canonical JSON (its content, not its formatting). */
    digest: string;
  };
  steps: PlanStep[];
  payments: PlanPayment[];
  totalUsd: string;
  byRail: Record<string, string>;
}

/** A plan file that cannot be used: unreadable, not a plan, or edited after it was made. */
export class PlanFileError extends BaseError {
  override readonly name = "PlanFileError";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: "CLI_PLAN_INVALID", cause: options.cause });
  }
}

/** `sha256:<hex>` of a value's canonical JSON (`@run402/release`'s: keys sorted at every level). */
export function digestOf(value: unknown): string {
  return `sha256:${sha256Hex(canonicalizeJson(value))}`;
}

/** Whether two JSON values (either possibly absent) are the same value. */
function same(a: unknown, b: unknown): boolean {
  return a === undefined || b === undefined ? a === b : canonicalizeJson(a) === canonicalizeJson(b);
}

/** The part of a plan the fingerprint covers. */
function fingerprinted(doc: Omit<PlanDocument, "id" | "fingerprint" | "createdAt">): unknown {
  return {
    kind: doc.kind,
    version: doc.version,
    stack: doc.stack,
    apiBase: doc.apiBase,
    manifest: { digest: doc.manifest.digest },
    steps: doc.steps,
    payments: doc.payments,
    totalUsd: doc.totalUsd,
    byRail: doc.byRail,
  };
}

const ignoredTypes = /^pulumi:(pulumi:Stack|providers:)/;

function known(value: unknown): unknown {
  return value === unknownValue ? "(known after apply)" : (value ?? null);
}

/** The inputs that say what a step does, per type; never a key or a secret value. */
function detailOf(type: string, inputs: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!inputs) return {};
  switch (type) {
    case "run402:Tier": {
      const plan = inputs.plan as Record<string, unknown> | null | undefined;
      return {
        tier: known(inputs.tier),
        autoRenew: known(inputs.autoRenew),
        renewBeforeDays: known(inputs.renewBeforeDays),
        decision: known(plan?.action),
        leaseExpiresAt: known(plan?.leaseExpiresAt),
      };
    }
    case "run402:Project":
      return { name: known(inputs.name), adoptProjectId: known(inputs.adoptProjectId) };
    case "run402:Deployment":
      return { manifestDigest: known(inputs.manifestDigest), releaseDigest: known(inputs.releaseDigest) };
    case "run402:Secret":
      return { name: known(inputs.name) };
    default:
      return {};
  }
}

function paymentOf(resource: string, value: unknown): PlanPayment | undefined {
  const p = value as Partial<PlanPayment> | null | undefined;
  if (!p || typeof p !== "object" || typeof p.amountUsd !== "string" || typeof p.action !== "string")
    return undefined;
  if (typeof p.rail !== "string") return undefined;
  return {
    resource,
    action: p.action,
    tier: typeof p.tier === "string" ? p.tier : null,
    amountUsd: p.amountUsd,
    rail: p.rail,
  };
}

/** Records every resource step of a preview, for {@link buildPlan}. Feed it the engine's events. */
export class PlanRecorder {
  private readonly steps = new Map<string, { step: PlanStep; payment?: PlanPayment }>();

  readonly onEvent = (event: EngineEvent): void => {
    const m = event.resourcePreEvent?.metadata;
    if (m) this.record(m);
  };

  private record(m: StepEventMetadata): void {
    if (ignoredTypes.test(m.type)) return;
    const type = shortType(m.type);
    const resource = urnName(m.urn);
    const inputs = (m.new ?? m.old)?.inputs as Record<string, unknown> | undefined;
    const step: PlanStep = {
      resource,
      type,
      op: m.op,
      changed: [...(m.diffs ?? [])].sort(),
      detail: detailOf(type, inputs),
    };
    const payment = m.op === "delete" ? undefined : paymentOf(resource, m.new?.inputs?.plannedPayment);
    this.steps.set(m.urn, payment ? { step, payment } : { step });
  }

  /**
   * The steps, ordered by resource and type (the engine's order can vary between runs), in UTF-16
   * code-unit order as the manifest walk sorts files: the fingerprint must not depend on the locale.
   */
  result(): { steps: PlanStep[]; payments: PlanPayment[] } {
    const key = (e: { step: PlanStep }) => `${e.step.resource}\u0000${e.step.type}`;
    const entries = [...this.steps.values()].sort((a, b) => byCodeUnits(key(a), key(b)));
    return {
      steps: entries.map((e) => e.step),
      payments: entries.flatMap((e) => (e.payment ? [e.payment] : [])),
    };
  }
}

/** What a plan is made of, besides what the recorder saw. */
export interface PlanContext {
  project: string;
  stack: string;
  stackId: string | undefined;
  apiBase: string;
  manifestFile: string;
  manifest: unknown;
}

/** The plan document for a recorded preview. */
export function buildPlan(
  context: PlanContext,
  recorded: { steps: PlanStep[]; payments: PlanPayment[] },
  now: Date = new Date(),
): PlanDocument {
  const byRail: Record<string, string> = {};
  for (const rail of [...new Set(recorded.payments.map((p) => p.rail))].sort()) {
    byRail[rail] = sumUsd(recorded.payments.filter((p) => p.rail === rail).map((p) => p.amountUsd));
  }
  const body = {
    kind: planKind,
    version: planVersion,
    stack: { project: context.project, name: context.stack, id: context.stackId ?? null },
    apiBase: context.apiBase.replace(/\/+$/, ""),
    manifest: { file: context.manifestFile, digest: digestOf(context.manifest) },
    steps: recorded.steps,
    payments: recorded.payments,
    totalUsd: sumUsd(recorded.payments.map((p) => p.amountUsd)),
    byRail,
  } as const;
  const fingerprint = digestOf(fingerprinted(body));
  return {
    kind: body.kind,
    version: body.version,
    id: planId(fingerprint),
    fingerprint,
    createdAt: now.toISOString(),
    stack: body.stack,
    apiBase: body.apiBase,
    manifest: body.manifest,
    steps: body.steps,
    payments: body.payments,
    totalUsd: body.totalUsd,
    byRail: body.byRail,
  };
}

/** `plan_` and a fingerprint's first 16 hex digits. */
export function planId(fingerprint: string): string {
  return `plan_${fingerprint.replace(/^sha256:/, "").slice(0, 16)}`;
}

function money(p: PlanPayment): string {
  return `${p.action}${p.tier ? ` ${p.tier}` : ""} $${p.amountUsd} on ${p.rail}`;
}

function show(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

/** What differs between a saved plan and a fresh one, one sentence each (empty when the same). */
export function planChanges(saved: PlanDocument, fresh: PlanDocument): string[] {
  const changes: string[] = [];
  const a = saved.stack;
  const b = fresh.stack;
  if (a.project !== b.project || a.name !== b.name) {
    changes.push(`stack: planned ${a.project}/${a.name}, now ${b.project}/${b.name}`);
  } else if (a.id !== b.id) {
    changes.push(
      `stack instance: planned ${a.id ?? "none"}, now ${b.id ?? "none"} (another backend or a new stack)`,
    );
  }
  if (saved.apiBase !== fresh.apiBase)
    changes.push(`Run402 API: planned ${saved.apiBase}, now ${fresh.apiBase}`);
  if (saved.manifest.digest !== fresh.manifest.digest) {
    changes.push(
      `manifest: its content changed (${saved.manifest.digest.slice(0, 19)}… → ${fresh.manifest.digest.slice(0, 19)}…)`,
    );
  }
  const key = (s: PlanStep) => `${s.type} ${s.resource}`;
  const before = new Map(saved.steps.map((s) => [key(s), s]));
  const after = new Map(fresh.steps.map((s) => [key(s), s]));
  for (const [k, s] of before) {
    const t = after.get(k);
    if (!t) {
      changes.push(`${s.resource}: planned ${s.op}, now no step`);
      continue;
    }
    if (s.op !== t.op) changes.push(`${s.resource}: planned ${s.op}, now ${t.op}`);
    else if (!same(s.changed, t.changed)) {
      changes.push(
        `${s.resource}: planned changes to ${s.changed.join(", ") || "nothing"}, now ${t.changed.join(", ") || "nothing"}`,
      );
    }
    for (const field of new Set([...Object.keys(s.detail), ...Object.keys(t.detail)])) {
      if (!same(s.detail[field], t.detail[field])) {
        changes.push(
          `${s.resource}: ${field} planned ${show(s.detail[field])}, now ${show(t.detail[field])}`,
        );
      }
    }
  }
  for (const [k, t] of after) if (!before.has(k)) changes.push(`${t.resource}: not planned, now ${t.op}`);
  const paid = (d: PlanDocument) => new Map(d.payments.map((p) => [p.resource, p]));
  const [was, now] = [paid(saved), paid(fresh)];
  for (const resource of new Set([...was.keys(), ...now.keys()])) {
    const p = was.get(resource);
    const q = now.get(resource);
    if (p && q && same(p, q)) continue;
    changes.push(`${resource}: planned payment ${p ? money(p) : "none"}, now ${q ? money(q) : "none"}`);
  }
  if (saved.totalUsd !== fresh.totalUsd)
    changes.push(`total: planned $${saved.totalUsd}, now $${fresh.totalUsd}`);
  if (changes.length === 0 && saved.fingerprint !== fresh.fingerprint) {
    changes.push("the plan's content differs");
  }
  return changes;
}

/** Writes a plan document (whole or not at all). */
export function writePlan(file: string, doc: PlanDocument): void {
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    writeFileSync(temp, `${JSON.stringify(doc, null, 2)}\n`);
    renameSync(temp, file);
  } catch (error) {
    throw new PlanFileError(
      `Could not write the plan to ${file}: ${error instanceof Error ? error.message : String(error)}.`,
      { cause: error },
    );
  }
}

/** Reads a plan document and checks it: its kind, version, shape, and that its fingerprint is its content's. */
export function readPlan(file: string): PlanDocument {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "it does not exist" : String(error);
    throw new PlanFileError(
      `Cannot read the plan file ${file}: ${reason}. Make one with \`plan --save ${file}\`.`,
    );
  }
  let doc: Partial<PlanDocument>;
  try {
    doc = JSON.parse(text) as Partial<PlanDocument>;
  } catch {
    throw new PlanFileError(`The plan file ${file} is not JSON. Make one with \`plan --save ${file}\`.`);
  }
  if (!doc || typeof doc !== "object" || doc.kind !== planKind) {
    throw new PlanFileError(`${file} is not a run402-pulumi plan (its "kind" is not "${planKind}").`);
  }
  if (doc.version !== planVersion) {
    throw new PlanFileError(
      `${file} is a plan of format version ${String(doc.version)}; this run402-pulumi reads version ${planVersion}. Make the plan again with this version.`,
    );
  }
  const shaped =
    typeof doc.fingerprint === "string" &&
    typeof doc.id === "string" &&
    typeof doc.stack?.project === "string" &&
    typeof doc.stack?.name === "string" &&
    typeof doc.apiBase === "string" &&
    typeof doc.manifest?.digest === "string" &&
    Array.isArray(doc.steps) &&
    Array.isArray(doc.payments) &&
    typeof doc.totalUsd === "string" &&
    doc.byRail !== null &&
    typeof doc.byRail === "object";
  if (!shaped)
    throw new PlanFileError(`The plan file ${file} is incomplete: a field is missing or of the wrong type.`);
  const plan = doc as PlanDocument;
  const expected = digestOf(fingerprinted(plan));
  if (expected !== plan.fingerprint || planId(expected) !== plan.id) {
    throw new PlanFileError(
      `The plan file ${file} was changed after it was made: its content does not match its fingerprint. Make the plan again.`,
    );
  }
  return plan;
}
