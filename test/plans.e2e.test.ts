/**
 * Saved plans through the built CLI and the real engine, against a sandbox: `plan --save` then
 * `apply --plan` pays exactly what the plan showed; the same plan after the lease price or the
 * manifest changed, or edited by hand, is refused and pays nothing; the provider holds the run to
 * the plan's total even when the world changes after the CLI's check.
 *
 * And what the engine's own update plans do with this provider (why cli/plan.ts does not use them):
 * `pulumi up --plan` pays the Tier before it refuses a Deployment that changed since the preview,
 * and fails even when nothing changed, after paying, because the stack outputs it recorded in
 * preview (`plannedPayment`) change once paid.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { appCopy, assertBuilt, report, runCli, startCli, why } from "~test/cli-harness.js";
import { repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { PlanDocument } from "../cli/plan.js";

const day = 24 * 60 * 60;
let sandbox: TestSandbox;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-plans-"));
  sandbox = await startTestSandbox({ walletCount: 8 });
});
afterEach(async () => {
  await fetch(`${sandbox.apiBase}/_sandbox/faults`, { method: "DELETE" });
  await fetch(`${sandbox.apiBase}/_sandbox/prices`, { method: "DELETE" });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// The shared harness (test/cli-harness.ts), in this file's temp folder.
const cli = (args: string[], env: Record<string, string> = {}) => runCli(tmp, args, env);
const start = (args: string[], env: Record<string, string>) => startCli(tmp, args, env);

function settings(name: string): Record<string, string> {
  return {
    apiBase: sandbox.apiBase,
    baseRpcUrl: sandbox.x402.rpcUrl,
    tempoRpcUrl: sandbox.mpp.rpcUrl,
    allowedRecipients: sandbox.treasury,
    journalPath: join(tmp, `journal-${name}.json`),
  };
}

function target(wallet: number, name: string): { flags: string[]; env: Record<string, string> } {
  const flags = Object.entries(settings(name)).flatMap(([k, v]) => ["-c", `run402:${k}=${v}`]);
  return { flags: [...flags, "--json"], env: { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey } };
}

async function paidBy(wallet: number) {
  const payer = sandbox.wallets[wallet]!.address.toLowerCase();
  return (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
}

describe("run402-pulumi plan --save / apply --plan", () => {
  test("behavior: a saved plan applies: the run pays exactly the plan's payment, on its rail", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(0, "applies");
    const file = join(tmp, "applies.plan.json");
    const plan = await cli(["plan", "--manifest", manifest, "--rail", "mpp", "--save", file, ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    const doc = JSON.parse(readFileSync(file, "utf8")) as PlanDocument;
    expect(doc).toMatchObject({
      kind: "run402-pulumi/plan",
      stack: { project: "quickstart", name: "dev", id: expect.any(String) },
      apiBase: sandbox.apiBase,
      payments: [
        { resource: "tier", action: "subscribe", tier: "prototype", amountUsd: "0.10", rail: "mpp" },
      ],
      totalUsd: "0.10",
      byRail: { mpp: "0.10" },
    });
    expect(doc.steps.map((s) => `${s.op} ${s.resource}`)).toEqual([
      "create deployment",
      "create project",
      "create tier",
    ]);
    expect(report(plan).savedPlan).toEqual({
      id: doc.id,
      fingerprint: doc.fingerprint,
      file,
      totalUsd: "0.10",
    });
    expect(await paidBy(0)).toEqual([]);

    // No --yes: the reviewed plan is the confirmation.
    const apply = await cli(
      ["apply", "--manifest", manifest, "--rail", "mpp", "--plan", file, ...flags],
      env,
    );
    expect(apply.code, why(apply)).toBe(0);
    const ledger = await paidBy(0);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ rail: "mpp" });
    expect(report(apply)).toMatchObject({
      ok: true,
      savedPlan: { id: doc.id, fingerprint: doc.fingerprint },
      payments: [{ rail: "mpp", reference: ledger[0]!.reference, amountUsd: "0.10" }],
      totalPaidUsd: "0.10",
    });
    expect(apply.stderr).toMatch(
      new RegExp(`the stack still makes plan ${doc.id}: applying it, paying at most \\$0\\.10`),
    );

    // Applied once, the plan no longer matches (the stack exists now): a second apply pays nothing.
    const again = await cli(
      ["apply", "--manifest", manifest, "--rail", "mpp", "--plan", file, ...flags],
      env,
    );
    expect(again.code, why(again)).toBe(6);
    expect(report(again).errors[0]?.code).toBe("CONFLICT_PLAN_STALE");
    expect(await paidBy(0)).toHaveLength(1);
  });

  test("error: the same plan after the lease price changed is refused: exit 6, CONFLICT_PLAN_STALE naming the price, nothing paid", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(1, "price");
    const file = join(tmp, "price.plan.json");
    const plan = await cli(["plan", "--manifest", manifest, "--save", file, ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    await sandbox.setPrice("prototype", "0.20");

    const apply = await cli(["apply", "--manifest", manifest, "--plan", file, ...flags], env);
    expect(apply.code, why(apply)).toBe(6);
    const doc = report(apply);
    expect(doc.ok).toBe(false);
    expect(doc.errors).toEqual([
      {
        code: "CONFLICT_PLAN_STALE",
        message: expect.stringMatching(
          /^The saved plan plan_[0-9a-f]{16} no longer matches the stack: .*tier: planned payment subscribe prototype \$0\.10 on x402, now subscribe prototype \$0\.20 on x402.*Nothing was changed or paid\./,
        ),
      },
    ]);
    expect(doc.savedPlan?.changed).toContain("total: planned $0.10, now $0.20");
    expect(doc.payments).toEqual([]);
    expect(doc.resources.filter((r) => r.op !== "same")).toEqual([]);
    expect(await paidBy(1)).toEqual([]);
  });

  test("error: the same plan after the manifest changed is refused: exit 6, what changed, nothing paid or deployed", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(2, "manifest");
    const file = join(tmp, "manifest.plan.json");
    const plan = await cli(["plan", "--manifest", manifest, "--save", file, ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    writeFileSync(join(manifest, "..", "site", "style.css"), "body { color: crimson; }\n");

    const apply = await cli(["apply", "--manifest", manifest, "--plan", file, ...flags], env);
    expect(apply.code, why(apply)).toBe(6);
    const doc = report(apply);
    expect(doc.errors[0]?.code).toBe("CONFLICT_PLAN_STALE");
    expect(doc.savedPlan?.changed).toContainEqual(
      expect.stringMatching(/^deployment: releaseDigest planned /),
    );
    expect(await paidBy(2)).toEqual([]);
    const status = await cli(["status", "--manifest", manifest, "--json"]);
    expect(report(status).resources).toEqual([]);
  });

  test("error: a plan file edited after it was made, or made for another stack, is refused before the engine runs (exit 2)", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(3, "edited");
    const file = join(tmp, "edited.plan.json");
    const plan = await cli(["plan", "--manifest", manifest, "--save", file, ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    const other = await cli(
      ["apply", "--manifest", manifest, "--stack", "prod", "--plan", file, ...flags],
      env,
    );
    expect(other.code, why(other)).toBe(2);
    expect(report(other).errors[0]).toMatchObject({
      code: "CLI_PLAN_INVALID",
      message: expect.stringMatching(/made for stack dev of project quickstart; this run is for stack prod/),
    });

    const doc = JSON.parse(readFileSync(file, "utf8")) as PlanDocument;
    doc.totalUsd = "5.00";
    writeFileSync(file, JSON.stringify(doc));
    const apply = await cli(["apply", "--manifest", manifest, "--plan", file, ...flags], env);
    expect(apply.code, why(apply)).toBe(2);
    expect(report(apply).errors[0]).toMatchObject({
      code: "CLI_PLAN_INVALID",
      message: expect.stringMatching(/changed after it was made/),
    });
    expect(await paidBy(3)).toEqual([]);
  });

  test("behavior: the provider holds the run to the plan: a renewal that falls due after the check is refused by the run's cap (exit 3), not paid", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(4, "cap");
    const first = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(first.code, why(first)).toBe(0);
    expect(await paidBy(4)).toHaveLength(1);

    // A plan that pays nothing: the stack is converged and the lease is not due.
    const file = join(tmp, "cap.plan.json");
    const plan = await cli(["plan", "--manifest", manifest, "--save", file, ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    expect(report(plan).savedPlan?.totalUsd).toBe("0.00");

    // The CLI's check passes; the lease enters its renewal window before the update's own check
    // (the update starts a new engine and provider first, seconds after this line).
    const running = start(["apply", "--manifest", manifest, "--plan", file, ...flags], env);
    await running.seen(/the stack still makes plan plan_[0-9a-f]+: applying it/);
    await sandbox.advanceClock(6 * day);
    const apply = await running.done;
    expect(apply.code, why(apply)).toBe(3);
    expect(report(apply).errors[0]?.code).toBe("POLICY_MAX_SPEND");
    expect(report(apply).payments).toEqual([]);
    expect(await paidBy(4)).toHaveLength(1);
  });
});

describe("the engine's own update plans with this provider (not used; see cli/plan.ts)", () => {
  async function engineStack(wallet: number, name: string) {
    // The built driver: it runs the engine under dist/cli/supervise.js, beside its folder.
    const { findPulumi, openStack, packageRoot, workspacePaths } = (await import(
      join(repoRoot, "dist", "cli", "engine", "index.js")
    )) as typeof import("../cli/engine/index.js");
    const manifestFile = appCopy(tmp);
    const dir = join(manifestFile, "..");
    const root = packageRoot();
    const paths = workspacePaths(dir, false);
    // This process runs the engine itself here (the Automation API passes its environment on).
    process.env.PULUMI_HOME = join(tmp, "pulumi-home");
    const stack = await openStack({
      manifestFile,
      projectName: `engine-${name}`,
      stackName: "dev",
      paths,
      backend: undefined,
      engine: await findPulumi(root),
      packageRoot: root,
      create: true,
    });
    if (!stack) throw new Error("no stack");
    stack.workspace.envVars.RUN402_RUN_SETTINGS = JSON.stringify({
      ...settings(name),
      privateKey: sandbox.wallets[wallet]!.privateKey,
      stackId: name,
    });
    return { stack, dir, plan: join(tmp, `${name}.engine-plan.json`) };
  }

  test("behavior: pulumi up --plan pays the Tier, then refuses the Deployment that changed since the preview", {
    timeout: 300_000,
  }, async () => {
    const { stack, dir, plan } = await engineStack(5, "changed");
    await stack.preview({ plan });
    writeFileSync(join(dir, "site", "style.css"), "body { color: olive; }\n");
    const errors: string[] = [];
    await expect(
      stack.up({
        plan,
        onEvent: (e) => {
          if (e.diagnosticEvent?.severity === "error") errors.push(e.diagnosticEvent.message);
        },
      }),
    ).rejects.toThrow();
    expect(errors.join("\n")).toMatch(/Deployment::deployment violates plan: properties changed/);
    expect(await paidBy(5)).toHaveLength(1);
  });

  test("behavior: pulumi up --plan with nothing changed pays, creates everything, and still reports the update failed", {
    timeout: 300_000,
  }, async () => {
    const { stack, plan } = await engineStack(6, "unchanged");
    await stack.preview({ plan });
    let result: string | undefined;
    await expect(
      stack.up({
        plan,
        onEvent: (e) => {
          if (e.summaryEvent) result = (e.summaryEvent as { result?: string }).result;
        },
      }),
    ).rejects.toThrow();
    expect(result).toBe("failed");
    expect(await paidBy(6)).toHaveLength(1);
    const state = (await stack.exportStack()).deployment as { resources?: { type: string }[] };
    expect(state.resources?.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/")).length).toBe(3);
  });
});
