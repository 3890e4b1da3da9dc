/**
 * The provider through the real Pulumi engine against the sandbox: payments, preview without
 * payment, renewal, content-addressed updates, drift, destroy and bad input; what the user said
 * (autoRenew off, caps flagged in preview) and what the server really holds (a lost response).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { copyQuickstart } from "~test/cli-harness.js";
import { createEngineWorkspace, type EngineWorkspace, inlineStack } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { StepCollector } from "../cli/steps.js";
import { Secret } from "../provider/index.js";
import { manifestStack } from "../provider/stack.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;
const day = 24 * 60 * 60;
const secretValue = "s3cr3t-value-that-must-not-reach-state";

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox({ walletCount: 7 })]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** A private copy of the quickstart app, so a test can edit its files. */
function appCopy(): string {
  return copyQuickstart(mkdtempSync(join(engine.dir, "app-")));
}

async function stackFor(
  name: string,
  app: string,
  rail: "x402" | "mpp",
  wallet: number,
  journal: string = name,
): Promise<Stack> {
  const stack = await inlineStack(engine, {
    projectName: "run402-e2e",
    stackName: name,
    program: async () => {
      const stack = await manifestStack({ manifest: join(app, "app.json") });
      new Secret("token", { project: stack.project, name: "API_TOKEN", value: pulumi.secret(secretValue) });
      // Secret output: the test needs it to delete the project out of band.
      return { ...stack.outputs, serviceKey: stack.project.serviceKey };
    },
  });
  const w = sandbox.wallets[wallet]!;
  await stack.setAllConfig({
    "run402:apiBase": { value: sandbox.apiBase },
    "run402:rail": { value: rail },
    "run402:privateKey": { value: w.privateKey, secret: true },
    "run402:baseRpcUrl": { value: sandbox.x402.rpcUrl },
    "run402:tempoRpcUrl": { value: sandbox.mpp.rpcUrl },
    "run402:allowedRecipients": { value: sandbox.treasury },
    "run402:journalPath": { value: join(engine.dir, `journal-${journal}.json`) },
  });
  return stack;
}

/** Every file of the file backend, concatenated. */
function stateFiles(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
    .join("\n");
}

/** Requests the sandbox saw after `mark` (a request-log length). */
async function requestsSince(mark: number) {
  return (await sandbox.requests()).slice(mark);
}

const writes = <T extends { method: string }>(requests: T[]) =>
  requests.filter((r) => r.method !== "GET" && r.method !== "HEAD");

/** A manifest with a tier block and the quickstart's site. */
function withTier(app: string, tier: Record<string, unknown>): string {
  writeFileSync(join(app, "app.json"), JSON.stringify({ tier, site: { dir: "site" } }));
  return app;
}

/** The recorded outputs of the stack's Tier (what `status` shows), from the state. */
async function tierState(stack: Stack): Promise<Record<string, unknown>> {
  const state = await stack.exportStack();
  const resources = (state.deployment as { resources: { type: string; outputs: Record<string, unknown> }[] })
    .resources;
  return resources.find((r) => r.type.endsWith("run402:Tier"))?.outputs ?? {};
}

describe("provider through the engine", () => {
  test("behavior: x402 stack: pays once, preview pays nothing, renews in the window, uploads only changes, heals drift, destroys", {
    timeout: 300_000,
  }, async () => {
    const app = appCopy();
    const stack = await stackFor("x402", app, "x402", 0);
    const payer = sandbox.wallets[0]!.address.toLowerCase();
    const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);

    // Preview of a new stack: shows the purchase, pays nothing.
    const preview = await stack.preview();
    expect(preview.changeSummary).toMatchObject({ create: 5 });
    expect(await paidBy()).toHaveLength(0);

    const events: EngineEvent[] = [];
    const up = await stack.up({ onEvent: (event) => events.push(event) });
    expect(up.summary.result).toBe("succeeded");
    const ledger = await paidBy();
    expect(ledger).toHaveLength(1);
    // Paid: no payment is planned any more.
    expect(up.outputs.plannedPayment?.value).toBeNull();
    // The provider reported its work as it happened: ephemeral engine lines on the tier's row.
    const progress = events
      .map((e) => e.diagnosticEvent)
      .filter((d) => d?.ephemeral === true && d.severity === "info")
      .map((d) => ({ urn: d?.urn, message: d?.message.trim() }));
    expect(progress).toContainEqual(
      expect.objectContaining({
        urn: expect.stringMatching(/::tier$/),
        message: expect.stringMatching(/^paying \$0\.10 on x402 \(eip155:84532\)/),
      }),
    );
    // Every upload is reported, up to the last one (site files, and the migration's SQL).
    expect(progress.map((d) => d.message)).toContainEqual(
      expect.stringMatching(/^uploaded (\d+) of \1 files \(([\d.]+ k?B) of \2\)$/),
    );
    expect(progress.map((d) => d.message)).toContainEqual(expect.stringMatching(/^deploy op_\w+: ready$/));
    // The CLI's collector reads this real stream: the payment, the priced action, the progress lines.
    const lines: string[] = [];
    const collector = new StepCollector((line) => lines.push(line));
    for (const event of events) collector.onEvent(event);
    expect(collector.payments()).toEqual([
      { rail: "x402", reference: ledger[0]!.reference, amountUsd: "0.10", network: ledger[0]!.network },
    ]);
    expect(collector.actions()).toContainEqual(
      expect.objectContaining({ resource: "tier", action: "subscribe", amountUsd: "0.10", rail: "x402" }),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}\[tier\] paid \$0\.10 on x402, tx 0x/));
    expect(collector.unfinished()).toEqual([]);
    const settlement = up.outputs.lastSettlement?.value as {
      rail: string;
      reference: string;
      amountUsd: string;
    };
    expect(settlement.rail).toBe("x402");
    expect(settlement.reference).toBe(ledger[0]!.reference);
    expect(ledger[0]!.rail).toBe("x402");
    expect(settlement.amountUsd).toBe("0.10");

    // The site is really served.
    const siteUrl = up.outputs.siteUrl?.value as string;
    expect((await fetch(siteUrl)).status).toBe(200);

    // The secret reached Run402; no key or secret value reached the state in plain text.
    const serviceKey = up.outputs.serviceKey?.value as string;
    const listed = await fetch(
      `${sandbox.apiBase}/projects/v1/admin/${up.outputs.projectId?.value}/secrets`,
      {
        headers: { authorization: `Bearer ${serviceKey}` },
      },
    );
    expect(((await listed.json()) as { secrets: { key: string }[] }).secrets.map((x) => x.key)).toEqual([
      "API_TOKEN",
    ]);
    // What is on disk (the file backend), not exportStack(), which decrypts secrets for the caller.
    const state = stateFiles(join(engine.dir, "state"));
    expect(state).toContain("API_TOKEN");
    for (const plain of [secretValue, serviceKey, sandbox.wallets[0]!.privateKey.slice(2)]) {
      expect(state).not.toContain(plain);
    }

    // Second up: no changes, no payment, no write request.
    let mark = (await sandbox.requests()).length;
    const again = await stack.up();
    expect(again.summary.resourceChanges).toEqual({ same: 5 });
    expect(await paidBy()).toHaveLength(1);
    expect(writes(await requestsSince(mark))).toEqual([]);

    // Into the renewal window (prototype: 7 days; renew 2 days before).
    const before = up.outputs.leaseExpiresAt?.value as string;
    await sandbox.advanceClock(6 * day);
    mark = (await sandbox.requests()).length;
    const renewal = await stack.preview({ diff: true });
    expect(renewal.changeSummary).toMatchObject({ update: 1 });
    // Preview shows the renewal, its price and its rail.
    expect(renewal.stdout).toMatch(/action\s*: "renew"/);
    expect(renewal.stdout).toMatch(/amountUsd\s*: "0\.10"/);
    expect(renewal.stdout).toMatch(/rail\s*: "x402"/);
    expect(await paidBy()).toHaveLength(1);
    expect(writes(await requestsSince(mark))).toEqual([]);
    const renewed = await stack.up();
    expect(await paidBy()).toHaveLength(2);
    const after = renewed.outputs.leaseExpiresAt?.value as string;
    expect(Date.parse(after) - Date.parse(before)).toBe(7 * day * 1000);

    // One site file changes: preview names it, up uploads only that object.
    writeFileSync(join(app, "site", "style.css"), "body { color: rebeccapurple; }\n");
    const filePreview = await stack.preview({ diff: true });
    expect(filePreview.changeSummary).toMatchObject({ update: 1 });
    // The engine's diff marks exactly the changed file (`~ style.css : old => new`).
    expect(filePreview.stdout).toMatch(/~ style\.css\s*: "[0-9a-f]{64}" => "[0-9a-f]{64}"/);
    expect(filePreview.stdout).not.toMatch(/~ index\.html/);
    mark = (await sandbox.requests()).length;
    const fileUp = await stack.up();
    expect(fileUp.summary.resourceChanges).toMatchObject({ update: 1 });
    const uploads = (await requestsSince(mark)).filter((r) => r.method === "PUT");
    expect(uploads).toHaveLength(1);
    expect(await paidBy()).toHaveLength(2);

    // The project is deleted out of band: refresh sees it, up recreates it (no payment).
    const outputs = await stack.outputs();
    const projectId = outputs.projectId?.value as string;
    expect(outputs.serviceKey?.secret).toBe(true);
    expect(projectId).toMatch(/^prj_/);
    const deleted = await fetch(`${sandbox.apiBase}/projects/v1/${projectId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${outputs.serviceKey?.value as string}` },
    });
    expect(deleted.status).toBe(200);
    const refresh = await stack.refresh();
    expect(refresh.summary.resourceChanges).toMatchObject({ delete: 3 });
    const healed = await stack.up();
    expect(healed.summary.resourceChanges).toMatchObject({ create: 3 });
    expect(healed.outputs.projectId?.value).not.toBe(projectId);
    expect(await paidBy()).toHaveLength(2);

    // Destroy removes the project and pays nothing.
    const newProject = healed.outputs.projectId?.value as string;
    mark = (await sandbox.requests()).length;
    const destroyed = await stack.destroy();
    expect(destroyed.summary.result).toBe("succeeded");
    expect(await paidBy()).toHaveLength(2);
    const deletes = writes(await requestsSince(mark));
    expect(deletes.map((r) => `${r.method} ${r.path}`)).toEqual([
      `DELETE /projects/v1/admin/${newProject}/secrets/API_TOKEN`,
      `DELETE /projects/v1/${newProject}`,
    ]);
  });

  test("behavior: MPP stack: the tier is paid on mpp and recorded as such", {
    timeout: 300_000,
  }, async () => {
    const stack = await stackFor("mpp", appCopy(), "mpp", 1);
    const up = await stack.up();
    const payer = sandbox.wallets[1]!.address.toLowerCase();
    const ledger = (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.rail).toBe("mpp");
    const settlement = up.outputs.lastSettlement?.value as { rail: string; reference: string };
    expect(settlement.rail).toBe("mpp");
    expect(settlement.reference).toBe(ledger[0]!.reference);
    await stack.destroy();
  });

  test("behavior: two stacks on one wallet renew the shared lease concurrently and pay once", {
    timeout: 300_000,
  }, async () => {
    const wallet = 2;
    const payer = sandbox.wallets[wallet]!.address.toLowerCase();
    const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);

    // A renewal window as long as the lease would renew on every run: refused in preview.
    const greedy = appCopy();
    writeFileSync(
      join(greedy, "app.json"),
      JSON.stringify({ tier: { name: "prototype", renewBeforeDays: 7 }, site: { dir: "site" } }),
    );
    await expect((await stackFor("greedy", greedy, "x402", wallet)).preview()).rejects.toThrow(
      /renewBeforeDays \(7\) must be less than the prototype lease of 7 days/,
    );

    // Two stacks of one machine share its payment journal (the default is one per user).
    const a = await stackFor("shared-a", appCopy(), "x402", wallet, "shared");
    const b = await stackFor("shared-b", appCopy(), "x402", wallet, "shared");
    await a.up();
    const events: EngineEvent[] = [];
    const adopted = await b.up({ onEvent: (event) => events.push(event) }); // the org holds an active lease
    expect(adopted.outputs.lastSettlement?.value).toBeNull();
    // It says why nothing was paid.
    const collector = new StepCollector();
    for (const event of events) collector.onEvent(event);
    expect(collector.actions()).toContainEqual({
      resource: "tier",
      action: "adopt",
      amountUsd: "0",
      rail: null,
      reason: expect.stringMatching(
        /already holds an active prototype lease until .*: adopted, nothing to pay/,
      ),
    });
    expect(await paidBy()).toHaveLength(1);

    // Both stacks must plan the renewal before either pays: the first purchase request to reach
    // the server is held back long enough for the other stack to plan and send its own.
    await sandbox.advanceClock(6 * day);
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 20_000, count: 1 });
    const mark = (await sandbox.requests()).length;
    const [ra, rb] = await Promise.all([a.up(), b.up()]);
    expect(ra.summary.result).toBe("succeeded");
    expect(rb.summary.result).toBe("succeeded");
    // They overlapped: both sent the purchase (one paid, one answered from the stored result).
    const purchases = (await requestsSince(mark)).filter(
      (r) => r.method === "POST" && r.path.startsWith("/tiers/"),
    );
    expect(purchases.filter((r) => r.status === 200)).toHaveLength(2);
    // And paid once.
    expect(await paidBy()).toHaveLength(2);
    const [ta, tb] = [await tierState(a), await tierState(b)];
    expect(ta.leaseExpiresAt).toBe(tb.leaseExpiresAt);
    await Promise.all([a.destroy(), b.destroy()]);
  });

  test("behavior: autoRenew false never extends or buys back the lease; the plan says so", {
    timeout: 300_000,
  }, async () => {
    const wallet = 3;
    const stack = await stackFor(
      "no-renew",
      withTier(appCopy(), { name: "prototype", autoRenew: false }),
      "x402",
      wallet,
    );
    const payer = sandbox.wallets[wallet]!.address.toLowerCase();
    const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
    await stack.up(); // creating the Tier buys what it declares
    expect(await paidBy()).toHaveLength(1);
    const expiry = (await tierState(stack)).leaseExpiresAt as string;

    await sandbox.advanceClock(6 * day); // inside the renewal window
    await stack.up();
    expect(await paidBy()).toHaveLength(1);
    expect((await tierState(stack)).plan).toMatchObject({
      action: "none",
      reason: expect.stringMatching(/autoRenew is off, so it is not renewed/),
    });

    await sandbox.advanceClock(2 * day); // lapsed
    const mark = (await sandbox.requests()).length;
    const lapsed = await stack.up();
    expect(lapsed.summary.result).toBe("succeeded");
    expect(await paidBy()).toHaveLength(1);
    expect(
      (await requestsSince(mark)).filter((r) => r.path.startsWith("/tiers/v1/") && r.method === "POST"),
    ).toEqual([]);
    // The outputs tell the truth: the same lease, now lapsed, and why nothing was paid.
    expect(await tierState(stack)).toMatchObject({
      leaseExpiresAt: expiry,
      lifecycleState: "past_due",
      plannedPayment: null,
      plan: {
        action: "none",
        reason: expect.stringMatching(
          /^the prototype lease lapsed at .*; autoRenew is off, so nothing is paid$/,
        ),
      },
    });
    await stack.destroy();
  });

  test("behavior: a renewal whose response was lost: the next up records the server's lease and settlement, paying nothing", {
    timeout: 300_000,
  }, async () => {
    const wallet = 4;
    const stack = await stackFor("lost-response", appCopy(), "x402", wallet);
    const payer = sandbox.wallets[wallet]!.address.toLowerCase();
    const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
    await stack.up();
    const before = (await tierState(stack)).leaseExpiresAt as string;

    // Renewal due; the server settles it and the response never arrives.
    await sandbox.advanceClock(6 * day);
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "drop_after_settlement", count: 1 });
    await expect(stack.up()).rejects.toThrow();
    const ledger = await paidBy();
    expect(ledger).toHaveLength(2);
    expect((await tierState(stack)).leaseExpiresAt).toBe(before); // the state is behind the server

    const mark = (await sandbox.requests()).length;
    const healed = await stack.up();
    expect(healed.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(await paidBy()).toHaveLength(2);
    expect((await requestsSince(mark)).filter((r) => r.paid)).toEqual([]);
    expect(Date.parse(healed.outputs.leaseExpiresAt?.value as string) - Date.parse(before)).toBe(
      7 * day * 1000,
    );
    expect(healed.outputs.lastSettlement?.value).toMatchObject({
      rail: "x402",
      reference: ledger[1]!.reference,
      amountUsd: "0.10",
    });
    // Converged now: nothing more to do.
    expect((await stack.preview()).changeSummary).not.toHaveProperty("update");
    await stack.destroy();
  });

  test("behavior: destroy → up → destroy → up never records a deleted project", {
    timeout: 300_000,
  }, async () => {
    const wallet = 5;
    const stack = await stackFor("cycle", appCopy(), "x402", wallet);
    const seen: string[] = [];
    for (let round = 0; round < 3; round++) {
      const up = await stack.up();
      const projectId = up.outputs.projectId?.value as string;
      expect(seen).not.toContain(projectId);
      expect(await sandbox.projectsOf(wallet)).toContain(projectId);
      expect((await fetch(up.outputs.siteUrl?.value as string)).status).toBe(200);
      seen.push(projectId);
      await stack.destroy();
      expect(await sandbox.projectsOf(wallet)).not.toContain(projectId);
    }
  });

  test("error: a bad app.json fails preview with the pointer and sends nothing", async () => {
    const app = appCopy();
    writeFileSync(join(app, "app.json"), JSON.stringify({ tier: "prototype", sitee: { dir: "site" } }));
    const stack = await stackFor("bad-manifest", app, "x402", 2);
    const mark = (await sandbox.requests()).length;
    await expect(stack.preview()).rejects.toThrow(/\/sitee/);
    expect(await requestsSince(mark)).toEqual([]);
  });

  test("error: bad config fails preview naming the key and sends nothing", async () => {
    const stack = await stackFor("bad-config", appCopy(), "x402", 2);
    await stack.setConfig("run402:maxPaymentUsd", { value: "five dollars" });
    const mark = (await sandbox.requests()).length;
    await expect(stack.preview()).rejects.toThrow(/run402:maxPaymentUsd/);
    expect(await requestsSince(mark)).toEqual([]);
  });

  test("error: a maxPaymentUsd below the price is flagged by preview, before any up", async () => {
    const stack = await stackFor("low-cap", withTier(appCopy(), { name: "hobby" }), "x402", 6);
    await stack.setConfig("run402:maxPaymentUsd", { value: "1" });
    const mark = (await sandbox.requests()).length;
    await expect(stack.preview()).rejects.toThrow(
      /\[POLICY_MAX_PAYMENT\] The hobby tier's subscribe costs \$5\.00, above run402:maxPaymentUsd \(\$1\)/,
    );
    expect(writes(await requestsSince(mark))).toEqual([]);
  });
});
