/**
 * The provider through the real Pulumi engine against the sandbox: payments, preview without
 * payment, renewal, content-addressed updates, drift, destroy and bad input.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, inlineStack, repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { Secret } from "../provider/index.js";
import { manifestStack } from "../provider/stack.js";

let engine: EngineWorkspace;
let sandbox: TestSandbox;
const day = 24 * 60 * 60;
const secretValue = "s3cr3t-value-that-must-not-reach-state";

beforeAll(async () => {
  [engine, sandbox] = await Promise.all([createEngineWorkspace(), startTestSandbox()]);
});
afterAll(async () => {
  await sandbox?.close();
  engine?.cleanup();
});

/** A private copy of the quickstart app, so a test can edit its files. */
function appCopy(): string {
  const dir = mkdtempSync(join(engine.dir, "app-"));
  cpSync(join(repoRoot, "examples", "quickstart"), dir, {
    recursive: true,
    filter: (src) => !/node_modules|\.run402|Pulumi\./.test(src),
  });
  return dir;
}

async function stackFor(name: string, app: string, rail: "x402" | "mpp", wallet: number): Promise<Stack> {
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
    "run402:journalPath": { value: join(engine.dir, `journal-${name}.json`) },
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

describe("provider through the engine", () => {
  test("behavior: x402 stack: pays once, preview pays nothing, renews in the window, uploads only changes, heals drift, destroys", async () => {
    const app = appCopy();
    const stack = await stackFor("x402", app, "x402", 0);
    const payer = sandbox.wallets[0]!.address.toLowerCase();
    const paidBy = async () => (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);

    // Preview of a new stack: shows the purchase, pays nothing.
    const preview = await stack.preview();
    expect(preview.changeSummary).toMatchObject({ create: 5 });
    expect(await paidBy()).toHaveLength(0);

    const up = await stack.up();
    expect(up.summary.result).toBe("succeeded");
    const ledger = await paidBy();
    expect(ledger).toHaveLength(1);
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

  test("behavior: MPP stack: the tier is paid on mpp and recorded as such", async () => {
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

  test("behavior: two stacks on one wallet renew the shared lease concurrently and pay once", async () => {
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

    const a = await stackFor("shared-a", appCopy(), "x402", wallet);
    const b = await stackFor("shared-b", appCopy(), "x402", wallet);
    await a.up();
    const adopted = await b.up(); // the org already holds an active prototype lease
    expect(adopted.outputs.lastSettlement?.value).toBeNull();
    expect(await paidBy()).toHaveLength(1);

    await sandbox.advanceClock(6 * day);
    const [ra, rb] = await Promise.all([a.up(), b.up()]);
    expect(ra.summary.result).toBe("succeeded");
    expect(rb.summary.result).toBe("succeeded");
    expect(await paidBy()).toHaveLength(2);
    await Promise.all([a.destroy(), b.destroy()]);
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
});
