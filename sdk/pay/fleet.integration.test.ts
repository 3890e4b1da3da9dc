/**
 * The journal shared by a fleet, with real payments: real PostgreSQL (test/postgres.ts), the
 * sandbox's real chains and payment verification, payers in separate processes sharing only the
 * database and the wallet. The wallet budget holds across them; a database that goes away stops
 * the run with a clear error, nothing is paid twice, and the next run converges.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startPostgres, type TestPostgres } from "~test/postgres.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { createRun402 } from "../client.js";
import { JournalError } from "../errors/payment.js";
import { resolveWallet } from "../wallet.js";
import * as PgJournal from "./journal-postgres.js";

let sb: TestSandbox;
let pg: TestPostgres;
beforeAll(async () => {
  [sb, pg] = await Promise.all([startTestSandbox(), startPostgres()]);
});
afterAll(async () => {
  await Promise.all([sb?.close(), pg?.stop()]);
});

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

async function usdc(owner: Address): Promise<bigint> {
  const pc = createPublicClient({ transport: http(sb.x402.rpcUrl) });
  return pc.readContract({ address: sb.x402.asset, abi: erc20Abi, functionName: "balanceOf", args: [owner] });
}
const ledgerFor = async (payer: string) =>
  (await sb.ledger()).filter((e) => e.payer.toLowerCase() === payer.toLowerCase());

/** A payer process: buys the prototype tier once per intent, concurrently; prints one JSON line. */
function payerProcess(
  walletKey: string,
  schema: string,
  intents: string[],
  budgetUsd: number,
  announce = false,
) {
  const dir = mkdtempSync(join(tmpdir(), "r402-fleet-"));
  const script = join(dir, "buy.mts");
  writeFileSync(
    script,
    `import { createRun402, resolveWallet } from ${JSON.stringify(`${repo}/sdk/index.js`)};
import { createInterface } from "node:readline";
const [apiBase, url, schema, baseRpc, budget, ...intents] = process.argv.slice(2);
const r402 = createRun402({
  apiBase, wallet: resolveWallet(), rail: "x402", policy: { maxPaymentUsd: 1, maxSpendUsd: 10 },
  journal: { url, schema }, rpcUrls: { base: baseRpc },
  budget: { window: { seconds: 86400, maxUsd: Number(budget) } },
  onEvent: (e) => { if (${announce} && e.type === "payment.signing") process.stdout.write("SIGNING\\n"); },
});
await r402.tiers.quote();
process.stdout.write("READY\\n");
await new Promise((resolve) => { const l = createInterface({ input: process.stdin }); l.once("line", () => { l.close(); process.stdin.destroy(); resolve(); }); });
const results = await Promise.all(intents.map((intent) => r402.tiers.set({ tier: "prototype", intent }).then(
  (out) => ({ intent, paid: out.settlement?.amountAtomic ?? null, replayed: out.replayed }),
  (e) => ({ intent, error: e.code ?? String(e) }))));
process.stdout.write(JSON.stringify(results) + "\\n");
process.exit(0);
`,
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", script, sb.apiBase, pg.url, schema, sb.x402.rpcUrl, String(budgetUsd), ...intents],
    { cwd: repo, env: { ...process.env, RUN402_PRIVATE_KEY: walletKey }, stdio: ["pipe", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("READY\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`payer exited ${code} before READY: ${err}`)));
  });
  const signing = new Promise<void>((resolve) =>
    child.stdout.on("data", () => {
      if (out.includes("SIGNING\n")) resolve();
    }),
  );
  const result = new Promise<{ intent: string; paid?: string | null; replayed?: boolean; error?: string }[]>(
    (resolve, reject) =>
      child.once("exit", (code) => {
        try {
          resolve(JSON.parse(out.trim().split("\n").pop() ?? ""));
        } catch {
          reject(new Error(`payer exited ${code}: ${out}\n${err}`));
        }
      }),
  );
  // A payer killed on purpose never prints its result: only a test that awaits it fails on that.
  result.catch(() => undefined);
  return { child, ready, signing, result };
}

describe("a fleet sharing one PostgreSQL journal", () => {
  test("behavior: two payer processes on one wallet never jointly pass its rolling budget; pending and paid claims count", async () => {
    const w = sb.wallets[0]!;
    const price = 100_000n; // the sandbox's prototype tier, $0.10
    const before = await usdc(w.address);
    const ledgerBefore = (await ledgerFor(w.address)).length;
    // $0.25 a day: two purchases fit, whoever makes them; four are wanted (one intent by both).
    const a = payerProcess(w.privateKey, "fleet_budget", ["a-1", "shared-1"], 0.25);
    const b = payerProcess(w.privateKey, "fleet_budget", ["b-1", "shared-1"], 0.25);
    await Promise.all([a.ready, b.ready]);
    a.child.stdin!.end("go\n");
    b.child.stdin!.end("go\n");
    const results = [...(await a.result), ...(await b.result)];
    const paid = await ledgerFor(w.address);
    expect(paid.length - ledgerBefore).toBe(2);
    expect(before - (await usdc(w.address))).toBe(2n * price);
    // Every refusal names the budget; no other error.
    const errors = results.filter((r) => r.error).map((r) => r.error);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const e of errors) expect(["POLICY_BUDGET_WINDOW", "INTENT_IN_PROGRESS"]).toContain(e);
    expect(errors).toContain("POLICY_BUDGET_WINDOW");
    const journal = PgJournal.open({ url: pg.url, schema: "fleet_budget" });
    const use = await journal.budgetUse({
      wallet: w.address,
      window: { seconds: 86_400, maxAtomic: 250_000n },
    });
    expect(use.windowAtomic).toBe(2n * price);
    await journal.close();
  });

  test("error: a database gone before the claim stops the purchase with JOURNAL_UNAVAILABLE, nothing paid; gone after it, nothing paid twice, and the next run converges", async () => {
    const w = sb.wallets[1]!;
    const wallet = resolveWallet({ privateKey: w.privateKey });
    let haltBeforeDelivery = false;
    const client = () =>
      createRun402({
        apiBase: sb.apiBase,
        wallet,
        rail: "x402",
        policy: { maxPaymentUsd: 1, maxSpendUsd: 10 },
        journal: { url: pg.url, schema: "fleet_down" },
        rpcUrls: { base: sb.x402.rpcUrl },
        // The database goes away while the paid request is on its way (after the claim committed).
        fetch: async (input, init) => {
          const headers = input instanceof Request ? input.headers : new Headers(init?.headers);
          if (haltBeforeDelivery && (headers.has("payment-signature") || headers.has("x-payment"))) {
            haltBeforeDelivery = false;
            await pg.halt();
          }
          return globalThis.fetch(input, init);
        },
      });
    const ledgerBefore = (await ledgerFor(w.address)).length;
    const before = await usdc(w.address);

    // Down before anything: refused, nothing asked of the chain or paid.
    await pg.halt();
    const down = await client()
      .tiers.set({ tier: "prototype", intent: "down-1" })
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(JournalError);
    expect((down as JournalError).code).toBe("JOURNAL_UNAVAILABLE");
    expect((await ledgerFor(w.address)).length).toBe(ledgerBefore);
    await pg.resume();

    // Down after the claim: the server delivers, the journal cannot record it: a clear error.
    haltBeforeDelivery = true;
    const first = client();
    const lost = await first.tiers.set({ tier: "prototype", intent: "down-2" }).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(JournalError);
    expect((lost as JournalError).code).toBe("JOURNAL_UNAVAILABLE");
    expect((await ledgerFor(w.address)).length).toBe(ledgerBefore + 1);
    await pg.resume();

    // The next run, a fresh process's client: the pending claim is resolved by the server's replay,
    // not paid again.
    const again = await client().tiers.set({ tier: "prototype", intent: "down-2" });
    expect(again.replayed).toBe(true);
    expect((await ledgerFor(w.address)).length).toBe(ledgerBefore + 1);
    expect(before - (await usdc(w.address))).toBe(100_000n);
    const journal = PgJournal.open({ url: pg.url, schema: "fleet_down" });
    expect((await journal.unfinished()).length).toBe(0);
    await journal.close();
  });

  test("behavior: a runner SIGKILLed between signing and the paid answer leaves its claim in the database; another runner resolves it without paying again", async () => {
    const w = sb.wallets[2]!;
    const price = 100_000n;
    const before = await usdc(w.address);
    const ledgerBefore = (await ledgerFor(w.address)).length;
    // The unpaid ask passes at once; the paid retry is held 8 s, so the kill lands mid-flight.
    await sb.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 0, count: 1 });
    await sb.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 8000, count: 1 });
    const first = payerProcess(w.privateKey, "fleet_kill", ["kill-1"], 1, true);
    await first.ready;
    first.child.stdin!.end("go\n");
    await first.signing;
    // The claim is committed before the credential leaves: wait for it in the database, then kill.
    const journal = PgJournal.open({ url: pg.url, schema: "fleet_kill" });
    const deadline = Date.now() + 30_000;
    while ((await journal.unfinished()).length === 0) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 50));
    }
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("exit", r));
    expect((await journal.unfinished())[0]).toMatchObject({ state: "pending" });

    // Another runner (another process, its own client), same database and wallet, same intent.
    const second = payerProcess(w.privateKey, "fleet_kill", ["kill-1"], 1);
    await second.ready;
    second.child.stdin!.end("go\n");
    const [result] = await second.result;
    expect(result, JSON.stringify(result)).not.toHaveProperty("error");
    const paid = (await ledgerFor(w.address)).slice(ledgerBefore);
    expect(paid).toHaveLength(1);
    expect(before - (await usdc(w.address))).toBe(price);
    expect(await journal.unfinished()).toEqual([]);
    await journal.close();
  });
});
