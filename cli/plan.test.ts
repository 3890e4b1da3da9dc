import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { canonicalizeJson } from "@run402/release";
import { afterAll, describe, expect, test } from "vitest";
import {
  buildPlan,
  type PlanContext,
  type PlanDocument,
  PlanFileError,
  PlanRecorder,
  planChanges,
  readPlan,
  writePlan,
} from "./plan.js";

const tmp = mkdtempSync(join(tmpdir(), "run402-plan-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const prefix = "urn:pulumi:dev::app::";
const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function pre(type: string, name: string, op: string, inputs: Record<string, unknown>, diffs: string[] = []) {
  return {
    resourcePreEvent: {
      metadata: {
        op,
        urn: `${prefix}${type}::${name}`,
        type,
        provider: "",
        diffs,
        new: { type, urn: `${prefix}${type}::${name}`, inputs, outputs: {} },
      },
      planning: true,
    },
  } as unknown as EngineEvent;
}

const tierInputs = (amountUsd = "0.10", rail = "x402") => ({
  tier: "prototype",
  autoRenew: true,
  renewBeforeDays: 2,
  plan: { action: "subscribe", reason: "the organization holds no tier", leaseExpiresAt: null },
  plannedPayment: { action: "subscribe", tier: "prototype", amountUsd, rail, reason: "…" },
});

/** The events of a first preview of the quickstart: stack, provider, tier, project, deployment, secret. */
function events(over: { amountUsd?: string; rail?: string; releaseDigest?: string } = {}): EngineEvent[] {
  return [
    pre("pulumi:pulumi:Stack", "app-dev", "create", {}),
    pre("pulumi:providers:pulumi-nodejs", "default", "create", {}),
    pre("pulumi-nodejs:dynamic/run402:Tier", "tier", "create", tierInputs(over.amountUsd, over.rail)),
    pre("pulumi-nodejs:dynamic/run402:Project", "project", "create", { name: "app", resourceKey: "k" }),
    pre("pulumi-nodejs:dynamic/run402:Deployment", "deployment", "create", {
      projectId: unknown,
      anonKey: unknown,
      manifestDigest: "run402-portable-manifest-v1:aa",
      releaseDigest: over.releaseDigest ?? "run402-materialized-release-v1:bb",
    }),
    pre(
      "pulumi-nodejs:dynamic/run402:Secret",
      "stripe",
      "update",
      { name: "STRIPE_KEY", value: "sk_live_x" },
      ["value"],
    ),
  ];
}

const context: PlanContext = {
  project: "app",
  stack: "dev",
  stackId: "5f0c",
  apiBase: "http://127.0.0.1:4020/",
  manifestFile: "app/app.json",
  manifest: { tier: "prototype", project: { name: "app" }, site: { dir: "site" } },
};

function plan(list: EngineEvent[], ctx: PlanContext = context, now = new Date("2026-01-01T00:00:00Z")) {
  const recorder = new PlanRecorder();
  for (const e of list) recorder.onEvent(e);
  return buildPlan(ctx, recorder.result(), now);
}

describe("plan documents", () => {
  test("behavior: steps are in code-unit order, whatever the locale, as the manifest walk sorts files", () => {
    const recorder = new PlanRecorder();
    for (const name of ["b", "é", "_x", "a", "Z", "B"])
      recorder.onEvent(pre("pulumi-nodejs:dynamic/run402:Secret", name, "create", { name }));
    // localeCompare would say _x, a, b, B, é, Z (and something else in another locale).
    expect(recorder.result().steps.map((s) => s.resource)).toEqual(["B", "Z", "_x", "a", "b", "é"]);
  });

  test("behavior: every resource step and every payment with amount and rail, the total per rail; the stack and provider are not steps; no secret value", () => {
    const doc = plan(events());
    expect(doc).toMatchObject({
      kind: "run402-pulumi/plan",
      version: 1,
      stack: { project: "app", name: "dev", id: "5f0c" },
      apiBase: "http://127.0.0.1:4020",
      manifest: { file: "app/app.json", digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
      payments: [
        { resource: "tier", action: "subscribe", tier: "prototype", amountUsd: "0.10", rail: "x402" },
      ],
      totalUsd: "0.10",
      byRail: { x402: "0.10" },
    });
    expect(doc.steps.map((s) => `${s.op} ${s.type} ${s.resource}`)).toEqual([
      "create run402:Deployment deployment",
      "create run402:Project project",
      "update run402:Secret stripe",
      "create run402:Tier tier",
    ]);
    expect(doc.steps.find((s) => s.resource === "deployment")?.detail).toEqual({
      manifestDigest: "run402-portable-manifest-v1:aa",
      releaseDigest: "run402-materialized-release-v1:bb",
    });
    expect(doc.steps.find((s) => s.resource === "stripe")).toMatchObject({ changed: ["value"] });
    expect(doc.id).toBe(`plan_${doc.fingerprint.slice(7, 23)}`);
    expect(JSON.stringify(doc)).not.toContain("sk_live_x");
  });

  test("behavior: the fingerprint is the plan's content: not when it was made, the engine's event order, the manifest's key order or the path it was given as", () => {
    const a = plan(events());
    const b = plan(
      [...events()].reverse(),
      {
        ...context,
        manifestFile: "/elsewhere/app.json",
        manifest: { site: { dir: "site" }, project: { name: "app" }, tier: "prototype" },
      },
      new Date("2026-02-02T00:00:00Z"),
    );
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(planChanges(a, b)).toEqual([]);
  });

  test("behavior: a changed price, rail, release, manifest, stack instance or API changes the fingerprint, and each is named", () => {
    const base = plan(events());
    const cases: [PlanDocument, RegExp[]][] = [
      [
        plan(events({ amountUsd: "0.20" })),
        [
          /tier: planned payment subscribe prototype \$0\.10 on x402, now subscribe prototype \$0\.20 on x402/,
          /total: planned \$0\.10, now \$0\.20/,
        ],
      ],
      [plan(events({ rail: "mpp" })), [/now subscribe prototype \$0\.10 on mpp/]],
      [
        plan(events({ releaseDigest: "run402-materialized-release-v1:cc" })),
        [/deployment: releaseDigest planned "?run402-materialized-release-v1:bb"?, now/],
      ],
      [
        plan(events(), { ...context, manifest: { ...(context.manifest as object), tier: "hobby" } }),
        [/manifest: its content changed/],
      ],
      [plan(events(), { ...context, stackId: "9e1d" }), [/stack instance: planned 5f0c, now 9e1d/]],
      [
        plan(events(), { ...context, apiBase: "https://api.run402.com" }),
        [/Run402 API: planned http:\/\/127\.0\.0\.1:4020, now https:\/\/api\.run402\.com/],
      ],
      [
        plan(events().filter((e) => !/Secret/.test(e.resourcePreEvent?.metadata.type ?? ""))),
        [/stripe: planned update, now no step/],
      ],
    ];
    for (const [changed, expected] of cases) {
      expect(changed.fingerprint).not.toBe(base.fingerprint);
      const said = planChanges(base, changed);
      for (const pattern of expected) expect(said).toContainEqual(expect.stringMatching(pattern));
    }
  });

  test("behavior: a saved plan reads back as written; one edited after it was made, of another kind or version, or missing is refused with CLI_PLAN_INVALID", () => {
    const doc = plan(events());
    const file = join(tmp, "plan.json");
    writePlan(file, doc);
    expect(readPlan(file)).toEqual(doc);

    const edited = JSON.parse(readFileSync(file, "utf8")) as PlanDocument;
    edited.totalUsd = "100.00";
    (edited.payments[0] as { amountUsd: string }).amountUsd = "100.00";
    writeFileSync(file, JSON.stringify(edited));
    expect(() => readPlan(file)).toThrow(/changed after it was made/);

    const fresh = plan(events());
    writeFileSync(file, canonicalizeJson({ ...fresh, fingerprint: "sha256:00", id: "plan_00" }));
    expect(() => readPlan(file)).toThrow(/does not match its fingerprint/);
    writeFileSync(file, JSON.stringify({ ...fresh, version: 2 }));
    expect(() => readPlan(file)).toThrow(/format version 2/);
    writeFileSync(file, JSON.stringify({ ok: true, command: "plan" }));
    expect(() => readPlan(file)).toThrow(/not a run402-pulumi plan/);
    writeFileSync(file, "{");
    expect(() => readPlan(file)).toThrow(/not JSON/);
    try {
      readPlan(join(tmp, "missing.json"));
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PlanFileError);
      expect((error as PlanFileError).code).toBe("CLI_PLAN_INVALID");
      expect((error as Error).message).toMatch(/does not exist.*plan --save/);
    }
  });
});
