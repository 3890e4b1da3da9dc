import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { createRun402, type Run402 } from "./client.js";
import { DeployFailedError } from "./errors/http.js";
import { RailNotOfferedError } from "./errors/payment.js";
import { deriveKey } from "./pay/idempotency.js";
import * as Journal from "./pay/journal.js";
import type { RailName } from "./pay/rail.js";
import { resolveWallet } from "./wallet.js";

let sb: TestSandbox;
beforeAll(async () => {
  sb = await startTestSandbox();
});
afterAll(async () => {
  await sb?.close();
});

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const policy = { maxPaymentUsd: 25, maxSpendUsd: 60 };

function client(walletIndex: number, rail: RailName, extra: { fetch?: typeof globalThis.fetch } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "r402-it-"));
  const wallet = resolveWallet({ privateKey: sb.wallets[walletIndex]!.privateKey });
  const events: string[] = [];
  const r402 = createRun402({
    apiBase: sb.apiBase,
    wallet,
    rail,
    policy,
    journal: { path: join(dir, "journal.jsonl") },
    rpcUrls: { base: sb.x402.rpcUrl, tempo: sb.mpp.rpcUrl },
    onEvent: (e) => events.push(e.type),
    ...extra,
  });
  return { r402, wallet, events, journalPath: join(dir, "journal.jsonl") };
}

async function balance(rail: RailName, owner: Address): Promise<bigint> {
  const rpc = rail === "x402" ? sb.x402.rpcUrl : sb.mpp.rpcUrl;
  const token = rail === "x402" ? sb.x402.asset : sb.mpp.currency;
  const pc = createPublicClient({ transport: http(rpc) });
  return pc.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [owner] });
}

/**
 * What a payment cost the payer beyond the price: nothing on x402 (the facilitator pays gas), the
 * Tempo transaction fee on mpp (paid in pathUSD by the payer, since the sandbox does not sponsor fees).
 */
async function feeOf(rail: RailName, reference: string | null): Promise<bigint> {
  if (rail === "x402" || !reference) return 0n;
  const pc = createPublicClient({ transport: http(sb.mpp.rpcUrl) });
  const receipt = await pc.getTransactionReceipt({ hash: reference as `0x${string}` });
  // Gas is priced in 18-decimal units; pathUSD has 6, rounded up.
  const wei = receipt.gasUsed * receipt.effectiveGasPrice;
  return (wei + 10n ** 12n - 1n) / 10n ** 12n;
}

async function ledgerFor(payer: string) {
  return (await sb.ledger()).filter((e) => e.payer.toLowerCase() === payer.toLowerCase());
}

async function buyAndCheck(
  r402: Run402,
  rail: RailName,
  payer: Address,
  intent: string,
  tier: "prototype" | "hobby",
) {
  const price = (await r402.tiers.quote()).tiers[tier]!.price.atomic;
  const before = await balance(rail, payer);
  const treasuryBefore = await balance(rail, sb.treasury);
  const ledgerBefore = await ledgerFor(payer);
  const out = await r402.tiers.set({ tier, intent });
  const after = await balance(rail, payer);
  expect((await balance(rail, sb.treasury)) - treasuryBefore).toBe(price);
  expect(before - after).toBe(price + (await feeOf(rail, out.settlement?.reference ?? null)));
  const added = (await ledgerFor(payer)).slice(ledgerBefore.length);
  expect(added).toHaveLength(1);
  const entry = added[0]!;
  expect(out.settlement).not.toBeNull();
  const s = out.settlement!;
  expect({
    rail: s.rail,
    reference: s.reference,
    amount: s.amountAtomic,
    payer: s.payer.toLowerCase(),
  }).toEqual({
    rail: entry.rail,
    reference: entry.reference,
    amount: entry.amount,
    payer: entry.payer.toLowerCase(),
  });
  expect(s.rail).toBe(rail);
  expect(BigInt(s.amountAtomic)).toBe(price);
  expect(s.network).toBe(entry.network);
  expect(s.asset?.toLowerCase()).toBe(entry.asset.toLowerCase());
  expect(s.recipient?.toLowerCase()).toBe(sb.treasury.toLowerCase());
  expect(entry.idempotencyKey).toBe(s.idempotencyKey);
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe.each([
  ["x402", 0],
  ["mpp", 1],
] as const)("Run402 on %s", (rail, walletIndex) => {
  test("buys, renews, provisions, deploys, keeps secrets, generates an image", async () => {
    const { r402, wallet } = client(walletIndex, rail);
    expect((await r402.tiers.status()).active).toBe(false);

    const bought = await buyAndCheck(r402, rail, wallet.address, `${rail}-lease-1`, "prototype");
    expect(bought.result.action).toBe("subscribe");
    expect(bought.replayed).toBe(false);

    // Same intent again: the server replays, nothing is paid.
    const balanceBefore = await balance(rail, wallet.address);
    const again = await r402.tiers.set({ tier: "prototype", intent: `${rail}-lease-1` });
    expect(again.replayed).toBe(true);
    expect(await balance(rail, wallet.address)).toBe(balanceBefore);

    const renewed = await buyAndCheck(r402, rail, wallet.address, `${rail}-lease-2`, "prototype");
    expect(renewed.result.action).toBe("renew");
    expect(Date.parse(renewed.result.lease_expires_at)).toBeGreaterThan(
      Date.parse(bought.result.lease_expires_at),
    );
    expect(r402.payments().map((p) => p.rail)).toEqual([rail, rail]);
    expect(r402.spentUsd()).toBeCloseTo(0.2, 6);

    const project = await r402.projects.create({ name: `app-${rail}`, intent: `${rail}-project` });
    const sameProject = await r402.projects.create({ name: `app-${rail}`, intent: `${rail}-project` });
    expect(sameProject.project_id).toBe(project.project_id);
    expect((await r402.projects.get(project.project_id)).project_id).toBe(project.project_id);
    expect((await r402.projects.list()).projects.map((p) => p.project_id)).toContain(project.project_id);

    const html = new TextEncoder().encode(`<h1>hello ${rail}</h1>`);
    const applied = await r402.deploy.apply({
      projectId: project.project_id,
      anonKey: project.anon_key,
      spec: {
        site: {
          replace: { "index.html": { sha256: sha(html), size: html.length, contentType: "text/html" } },
        },
      },
      content: new Map([[sha(html), { bytes: html, contentType: "text/html" }]]),
      intent: `${rail}-deploy-1`,
    });
    expect(applied.uploaded).toEqual([sha(html)]);
    expect(applied.releaseId).toBeTruthy();
    const active = await r402.deploy.active({ anonKey: project.anon_key });
    expect(active.release_id).toBe(applied.releaseId);
    expect(active.site.paths).toEqual([
      { path: "index.html", content_sha256: sha(html), content_type: "text/html" },
    ]);

    const same = await r402.deploy.apply({
      projectId: project.project_id,
      anonKey: project.anon_key,
      spec: {
        site: {
          replace: { "index.html": { sha256: sha(html), size: html.length, contentType: "text/html" } },
        },
      },
      content: new Map([[sha(html), { bytes: html, contentType: "text/html" }]]),
      intent: `${rail}-deploy-2`,
    });
    expect({ isNoop: same.isNoop, uploaded: same.uploaded }).toEqual({ isNoop: true, uploaded: [] });

    const sql = "SELECT missing_column FROM missing_table";
    const failed = await r402.deploy
      .apply({
        projectId: project.project_id,
        anonKey: project.anon_key,
        spec: {
          database: {
            migrations: [
              { id: "001_bad", checksum: sha(new TextEncoder().encode(sql)), sql, transaction: "required" },
            ],
          },
        },
        content: new Map(),
      })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DeployFailedError);
    expect((failed as DeployFailedError).code).toBe("MIGRATION_FAILED");
    expect((await r402.deploy.active({ anonKey: project.anon_key })).release_id).toBe(applied.releaseId);

    const keys = { projectId: project.project_id, serviceKey: project.service_key };
    await r402.secrets.set({ ...keys, key: "STRIPE_KEY", value: "sk_test_1" });
    expect((await r402.secrets.list(keys)).secrets.map((s) => s.key)).toEqual(["STRIPE_KEY"]);
    await r402.secrets.delete({ ...keys, key: "STRIPE_KEY" });
    expect((await r402.secrets.list(keys)).secrets).toEqual([]);

    const before = await balance(rail, wallet.address);
    const image = await r402.images.generate({ prompt: "a lighthouse", intent: `${rail}-image-1` });
    expect([...image.png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(image.settlement).toMatchObject({ rail, amountAtomic: "30000", amountUsd: "0.03" });
    expect(before - (await balance(rail, wallet.address))).toBe(
      30000n + (await feeOf(rail, image.settlement?.reference ?? null)),
    );

    await r402.projects.delete(keys);
    expect((await r402.projects.list()).projects.map((p) => p.project_id)).not.toContain(project.project_id);
  });
});

test("error: a rail the server does not offer is refused, nothing paid", async () => {
  // A server that offers only x402: the sandbox's 402 with its MPP challenge removed on the way.
  const x402Only: typeof globalThis.fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status !== 402) return res;
    const headers = new Headers(res.headers);
    headers.delete("www-authenticate");
    return new Response(await res.arrayBuffer(), { status: 402, headers });
  };
  const { r402, wallet } = client(2, "mpp", { fetch: x402Only });
  const before = await ledgerFor(wallet.address);
  const err = await r402.tiers.set({ tier: "prototype", intent: "never" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RailNotOfferedError);
  expect((err as RailNotOfferedError).offered).toEqual(["x402"]);
  expect(await ledgerFor(wallet.address)).toEqual(before);
});

test("behavior: a run killed while its payment is in flight is resolved on rerun, paid once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "r402-kill-"));
  const journalPath = join(dir, "journal.jsonl");
  const script = join(dir, "buy.mts");
  writeFileSync(
    script,
    `import { createRun402, resolveWallet } from ${JSON.stringify(`${repo}/sdk/index.js`)};
const [apiBase, journalPath, baseRpc, tempoRpc] = process.argv.slice(2);
const r402 = createRun402({
  apiBase, wallet: resolveWallet(), rail: "x402", policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
  journal: { path: journalPath }, rpcUrls: { base: baseRpc, tempo: tempoRpc },
  // Says when the paid retry (the request carrying the credential) is handed to the network.
  fetch: (request, init) => {
    if (request instanceof Request && (request.headers.has("payment-signature") || request.headers.has("x-payment")))
      process.stdout.write("PAID-SENT\\n");
    return fetch(request, init);
  },
  onEvent: (e) => { if (e.type === "payment.signing") process.stdout.write("SIGNING\\n"); if (e.type === "payment.cancelling") process.stderr.write("CANCELLING\\n"); if (e.type === "payment.pending") process.stderr.write("PENDING\\n"); },
});
const out = await r402.tiers.set({ tier: "prototype", intent: "kill-lease-1" });
process.stdout.write("DONE " + JSON.stringify({ replayed: out.replayed, settlement: out.settlement }) + "\\n");
`,
  );
  const w = sb.wallets[2]!;
  const run = () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", script, sb.apiBase, journalPath, sb.x402.rpcUrl, sb.mpp.rpcUrl],
      {
        cwd: repo,
        env: { ...process.env, RUN402_PRIVATE_KEY: w.privateKey },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const line = (prefix: string) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const found = out.split("\n").find((l) => l.startsWith(prefix));
          if (found) resolve(found);
        };
        child.stdout.on("data", check);
        check();
        exited.then(() => {
          check();
          reject(new Error(`child exited without ${prefix}: ${err}`));
        });
      });
    return { child, exited, line, stderr: () => err };
  };

  const price = 100000n;
  const before = await balance("x402", w.address);
  // The unpaid ask passes at once; the paid retry is held 8 s, so the kill lands mid-flight (once the
  // credential has been handed to the network, which the payer does only after the journal holds the
  // intent as pending) and the rerun asks while the server still knows nothing of that payment.
  await sb.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 0, count: 1 });
  await sb.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 8000, count: 1 });
  const first = run();
  await first.line("SIGNING");
  await first.line("PAID-SENT");
  first.child.kill("SIGKILL");
  expect(await first.exited).toBeNull();

  const key = deriveKey({
    scope: sb.apiBase,
    intent: "kill-lease-1",
    method: "POST",
    route: "/tiers/v1/prototype",
    body: {},
  });
  expect((await Journal.open({ path: journalPath }).get(sb.apiBase, key))?.state).toBe("pending");
  expect(await ledgerFor(w.address)).toEqual([]);

  const second = run();
  const done = await second.line("DONE");
  expect(await second.exited).toBe(0);
  const result = JSON.parse(done.slice("DONE ".length)) as { replayed: boolean };
  // Either the held request reached the server first (the rerun waits while the server reports the
  // payment in flight, then gets it replayed), or the server knew nothing of it and the chain showed
  // the authorization unused (the rerun cancels it on chain, so it can never settle, then pays).
  // Which one depends on timing; both pay once.
  expect(result.replayed ? "PENDING" : "CANCELLING").toBe(
    second.stderr().includes("CANCELLING") ? "CANCELLING" : "PENDING",
  );

  const ledger = await ledgerFor(w.address);
  expect(ledger).toHaveLength(1);
  expect(ledger[0]!.idempotencyKey).toBe(key);
  expect(before - (await balance("x402", w.address))).toBe(price);
  expect((await Journal.open({ path: journalPath }).get(sb.apiBase, key))?.state).toBe("settled");
  expect(readFileSync(journalPath, "utf8")).not.toContain(w.privateKey.slice(2));
});
