/**
 * The journal's state machine, as one suite that every implementation must pass: the file journal
 * (journal.test.ts) and the PostgreSQL journal (journal-postgres.test.ts). Multi-process cases run
 * real processes (test/journal-worker.ts) sharing the journal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "vitest";
import type * as Journal from "./journal.js";

/** Where a fresh journal lives (what a worker process opens) and how this process opens it. */
export type JournalSite = {
  where: { path: string } | { url: string; schema: string };
  open(): Journal.Journal;
};

const apiBase = "http://127.0.0.1:4021";
const base = {
  apiBase,
  intentId: "i1",
  idempotencyKey: "k1",
  method: "POST",
  url: `${apiBase}/tiers/v1/prototype`,
};
const claim = (key: string, amountAtomic: string, extra: Partial<Journal.IntentRecord> = {}) => ({
  ...base,
  intentId: key,
  idempotencyKey: key,
  state: "pending" as const,
  amountAtomic,
  wallet: "0xAbC0000000000000000000000000000000000001",
  ...extra,
});

const worker = fileURLToPath(new URL("../../test/journal-worker.ts", import.meta.url));
const tsx = createRequire(import.meta.url).resolve("tsx/cli");
const children: ChildProcess[] = [];

/** Starts a worker process; resolves with it once it printed `READY` (or `LOCKED`). */
export async function startWorker(
  where: JournalSite["where"],
  task: unknown,
  until: "READY" | "LOCKED" = "READY",
): Promise<{ child: ChildProcess; result: Promise<Record<string, unknown>> }> {
  const child = spawn(process.execPath, [tsx, worker, JSON.stringify({ journal: where, task })], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`worker exited ${code}: ${out}\n${err}`));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(`${until}\n`)) resolve();
    });
    result.catch(reject);
  });
  return { child, result };
}

/** Registers the state-machine suite for one implementation. */
export function journalContract(name: string, fresh: () => Promise<JournalSite> | JournalSite): void {
  afterEach(() => {
    for (const child of children.splice(0)) child.kill("SIGKILL");
  });

  describe(`Journal state machine (${name})`, () => {
    test("default: transitions are whole records, per API base and key, and survive reopening", async () => {
      const site = await fresh();
      const j = site.open();
      expect((await j.transition({ ...base, state: "begun" }, [undefined])).ok).toBe(true);
      expect(
        (await j.transition({ ...base, state: "pending", rail: "x402", amountAtomic: "100000" }, ["begun"]))
          .ok,
      ).toBe(true);
      const again = site.open();
      expect(await again.get(apiBase, "k1")).toMatchObject({
        state: "pending",
        rail: "x402",
        amountAtomic: "100000",
      });
      expect((await again.unfinished()).map((r) => r.idempotencyKey)).toEqual(["k1"]);
      expect(await again.unfinished("http://elsewhere")).toEqual([]);
      await again.transition({ ...base, state: "settled", amountAtomic: undefined }, ["pending"]);
      const third = site.open();
      expect(await third.get(apiBase, "k1")).not.toHaveProperty("amountAtomic");
      expect(await third.unfinished()).toEqual([]);
      expect([...(await third.intents()).keys()]).toEqual([`${apiBase} k1`]);
      await Promise.all([j.close(), again.close(), third.close()]);
    });

    test("behavior: a transition from another state is refused and reports the current record", async () => {
      const j = (await fresh()).open();
      expect((await j.transition({ ...base, state: "pending" }, ["begun"])).ok).toBe(false);
      await j.transition({ ...base, state: "begun" }, [undefined]);
      await j.transition({ ...base, state: "pending" }, ["begun"]);
      const refused = await j.transition({ ...base, state: "failed" }, ["begun", "settled"]);
      expect(refused).toMatchObject({ ok: false, current: { state: "pending" } });
      expect((await j.get(apiBase, "k1"))?.state).toBe("pending");
      await j.close();
    });

    test("behavior: the claim is stamped on the journal's clock, and kept through later states", async () => {
      const j = (await fresh()).open();
      const before = Date.now() - 5_000;
      const claimed = await j.transition(claim("k1", "5"), [undefined]);
      expect(claimed.ok).toBe(true);
      const at = Date.parse((await j.get(apiBase, "k1"))!.claimedAt!);
      expect(at).toBeGreaterThan(before);
      await j.transition({ ...claim("k1", "5"), state: "settled" }, ["pending"]);
      expect((await j.get(apiBase, "k1"))!.claimedAt).toBe(new Date(at).toISOString());
      await j.close();
    });

    test("behavior: of many concurrent compare-and-sets from two handles, exactly one wins", async () => {
      const site = await fresh();
      const [a, b] = [site.open(), site.open()];
      await a.transition({ ...base, state: "begun" }, [undefined]);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).transition({ ...base, state: "pending", owner: `p${i}` }, ["begun"]),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      // From no record at all, too (the first insert).
      const firsts = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? a : b).transition({ ...base, idempotencyKey: "k2", state: "pending", owner: `p${i}` }, [
            undefined,
          ]),
        ),
      );
      expect(firsts.filter((r) => r.ok)).toHaveLength(1);
      await Promise.all([a.close(), b.close()]);
    });

    test("behavior: the same key under two API bases is two intents", async () => {
      const j = (await fresh()).open();
      await j.transition({ ...base, state: "settled" }, [undefined]);
      const other = {
        ...base,
        apiBase: "http://127.0.0.1:5000",
        url: "http://127.0.0.1:5000/tiers/v1/prototype",
      };
      expect((await j.transition({ ...other, state: "begun" }, [undefined])).ok).toBe(true);
      expect((await j.get(apiBase, "k1"))?.state).toBe("settled");
      expect((await j.get(other.apiBase, "k1"))?.state).toBe("begun");
      await j.close();
    });

    test("behavior: the first pinned recipient wins, also when two pin at once", async () => {
      const site = await fresh();
      const [j, k] = [site.open(), site.open()];
      expect(await j.pinned("http://a", "x402")).toBeNull();
      const [first, second] = await Promise.all([
        j.pin("http://a", "x402", "0xA"),
        k.pin("http://a", "x402", "0xB"),
      ]);
      expect(first).toBe(second);
      expect(await j.pin("http://a", "x402", "0xC")).toBe(first);
      expect(await k.pinned("http://a", "mpp")).toBeNull();
      await Promise.all([j.close(), k.close()]);
    });

    test("behavior: the run budget counts pending, paid and settled claims of its run, not failed ones nor other runs", async () => {
      const j = (await fresh()).open();
      const budget: Journal.Budget = {
        wallet: claim("x", "0").wallet.toLowerCase(),
        run: { id: "run-1", maxAtomic: 100n },
      };
      const inRun = { runId: "run-1" };
      expect((await j.transition(claim("a", "40", inRun), [undefined], { budget })).ok).toBe(true);
      expect((await j.transition(claim("b", "40", inRun), [undefined], { budget })).ok).toBe(true);
      const over = await j.transition(claim("c", "40", inRun), [undefined], { budget });
      expect(over).toMatchObject({
        ok: false,
        overBudget: { limit: "run", usedAtomic: 80n, maxAtomic: 100n, askedAtomic: 40n },
      });
      expect(await j.get(apiBase, "c")).toBeUndefined();
      // `a` turns out unpaid: its amount is free again.
      await j.transition({ ...claim("a", "40", inRun), state: "failed" }, ["pending"]);
      expect((await j.transition(claim("c", "40", inRun), [undefined], { budget })).ok).toBe(true);
      // `b` paid and delivered: still counted.
      await j.transition({ ...claim("b", "40", inRun), state: "settled" }, ["pending"]);
      expect(await j.budgetUse(budget)).toEqual({ runAtomic: 80n, windowAtomic: 0n });
      // Another run, or a claim recorded without a budget (a credential that may have left), is not this run's.
      const other = { wallet: budget.wallet, run: { id: "run-2", maxAtomic: 40n } };
      expect(
        (await j.transition(claim("d", "40", { runId: "run-2" }), [undefined], { budget: other })).ok,
      ).toBe(true);
      expect((await j.budgetUse(budget)).runAtomic).toBe(80n);
      await j.close();
    });

    test("behavior: a budget read can leave out one intent's own claim, and only that intent's, under its API base", async () => {
      const site = await fresh();
      const [j, k] = [site.open(), site.open()];
      const wallet = claim("x", "0").wallet;
      const budget: Journal.Budget = { wallet, window: { seconds: 600, maxAtomic: 100n } };
      // Another runner claimed intent `a`; `b` is another intent of the wallet.
      expect((await k.transition(claim("a", "60"), [undefined], { budget })).ok).toBe(true);
      expect((await k.transition(claim("b", "30"), [undefined], { budget })).ok).toBe(true);
      expect((await j.budgetUse(budget)).windowAtomic).toBe(90n);
      expect((await j.budgetUse(budget, { apiBase, idempotencyKey: "a" })).windowAtomic).toBe(30n);
      // The same key under another API base is another intent: still counted.
      expect(
        (await j.budgetUse(budget, { apiBase: "http://127.0.0.1:5000", idempotencyKey: "a" })).windowAtomic,
      ).toBe(90n);
      await Promise.all([j.close(), k.close()]);
    });

    test("behavior: the rolling window counts the wallet's claims of its last seconds, from every run, and frees them after", async () => {
      const j = (await fresh()).open();
      const wallet = claim("x", "0").wallet;
      const budget: Journal.Budget = { wallet, window: { seconds: 2, maxAtomic: 50n } };
      expect((await j.transition(claim("a", "30", { runId: "r1" }), [undefined], { budget })).ok).toBe(true);
      expect(await j.transition(claim("b", "30", { runId: "r2" }), [undefined], { budget })).toMatchObject({
        ok: false,
        overBudget: { limit: "window", usedAtomic: 30n },
      });
      // Another wallet has its own budget.
      const otherWallet = "0x00000000000000000000000000000000000000B2";
      expect(
        (
          await j.transition(claim("c", "30", { wallet: otherWallet }), [undefined], {
            budget: { ...budget, wallet: otherWallet },
          })
        ).ok,
      ).toBe(true);
      // The claim leaves the window once it is older than it (the journal's clock decides).
      const deadline = Date.now() + 30_000;
      while ((await j.budgetUse(budget)).windowAtomic > 0n) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await j.transition(claim("b", "30", { runId: "r2" }), [undefined], { budget })).ok).toBe(true);
      await j.close();
    });

    test("behavior: two processes claiming on one wallet at once never jointly pass its budget, and never both hold one intent", async () => {
      const site = await fresh();
      const wallet = "0x00000000000000000000000000000000000000C3";
      const task = (owner: string, keys: string[]) => ({
        kind: "claims",
        apiBase,
        keys,
        amountAtomic: "10",
        wallet,
        budget: { windowSeconds: 3600, windowMaxAtomic: "75" },
        owner,
      });
      // Both want k0…k9 (the same intents) and their own 5 more: 15 intents wanted, budget for 7.
      const shared = Array.from({ length: 10 }, (_, i) => `k${i}`);
      const workers = await Promise.all([
        startWorker(site.where, task("A", [...shared, "a0", "a1", "a2", "a3", "a4"])),
        startWorker(site.where, task("B", [...shared, "b0", "b1", "b2", "b3", "b4"])),
      ]);
      for (const w of workers) w.child.stdin!.end("go\n");
      const [a, b] = (await Promise.all(workers.map((w) => w.result))) as {
        won: string[];
        refused: string[];
      }[];
      expect(a!.won.length + b!.won.length).toBe(7);
      expect(a!.won.filter((k) => b!.won.includes(k))).toEqual([]);
      const j = site.open();
      const held = [...(await j.intents()).values()].filter((r) => r.state === "pending");
      expect(held).toHaveLength(7);
      for (const r of held) expect((r.owner === "A" ? a : b)!.won).toContain(r.idempotencyKey);
      expect((await j.budgetUse({ wallet, window: { seconds: 3600, maxAtomic: 75n } })).windowAtomic).toBe(
        70n,
      );
      await j.close();
    });
  });
}
