import { type ChildProcess, spawn } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { JournalError } from "../errors/payment.js";
import { journalContract, startWorker } from "./journal.contract.js";
import * as Journal from "./journal.js";

const fresh = () => join(mkdtempSync(join(tmpdir(), "r402-journal-")), "journal.jsonl");
const apiBase = "http://127.0.0.1:4021";
const base = {
  apiBase,
  intentId: "i1",
  idempotencyKey: "k1",
  method: "POST",
  url: `${apiBase}/tiers/v1/prototype`,
};

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

/** Another process that takes the journal's lock and holds it until killed; resolves once it holds it. */
async function holdLock(path: string): Promise<ChildProcess> {
  const lockfile = createRequire(import.meta.url).resolve("proper-lockfile");
  const child = spawn(
    process.execPath,
    [
      "-e",
      `require(${JSON.stringify(lockfile)}).lock(${JSON.stringify(path)}, { realpath: false, lockfilePath: ${JSON.stringify(`${path}.lck`)} }).then(() => { process.stdout.write("LOCKED\\n"); setInterval(() => {}, 1000); });`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("LOCKED") && resolve());
    child.once("exit", (code) => reject(new Error(`lock holder exited ${code}`)));
  });
  return child;
}

journalContract("file", () => {
  const path = fresh();
  return { where: { path }, open: () => Journal.open({ path }) };
});

describe("Journal", () => {
  test("behavior: a writer whose lock was broken while it stalled cannot make a pending claim vanish", async () => {
    // Issue 20, item 8: a 10 s stall (or a slow clock) lets a second process break the lock while
    // the first still means to write; the last line used to win, and a pending proof vanished.
    const path = fresh();
    const staleMs = 2000;
    const stalled = await startWorker(
      { path },
      { kind: "stalled-claim", apiBase, key: "k1", owner: "A", stallMs: 3 * staleMs, staleMs },
      "LOCKED",
    );
    // A holds the lock and is frozen: B waits, finds the lock stale, breaks it and claims.
    const b = Journal.open({ path, staleMs, waitMs: 30_000 });
    const claimed = await b.transition({ ...base, state: "pending", owner: "B" }, [undefined, "begun"]);
    expect(claimed.ok).toBe(true);
    // A wakes and writes: its write must not take effect, and it must know it.
    expect(await stalled.result).toMatchObject({ ok: false });
    expect(await Journal.open({ path }).get(apiBase, "k1")).toMatchObject({ state: "pending", owner: "B" });
  });

  test("default: transitions are whole records, per API base and key, and survive reopening", async () => {
    const path = fresh();
    const j = Journal.open({ path });
    expect((await j.transition({ ...base, state: "begun" }, [undefined])).ok).toBe(true);
    expect(
      (await j.transition({ ...base, state: "pending", rail: "x402", amountAtomic: "100000" }, ["begun"])).ok,
    ).toBe(true);
    const again = Journal.open({ path });
    expect(await again.get(apiBase, "k1")).toMatchObject({
      state: "pending",
      rail: "x402",
      amountAtomic: "100000",
    });
    expect((await again.unfinished()).map((r) => r.idempotencyKey)).toEqual(["k1"]);
    await again.transition({ ...base, state: "settled", amountAtomic: undefined }, ["pending"]);
    expect(await Journal.open({ path }).get(apiBase, "k1")).not.toHaveProperty("amountAtomic");
    expect(await Journal.open({ path }).unfinished()).toEqual([]);
    expect(existsSync(`${path}.lck`)).toBe(false);
  });

  test("behavior: a transition from another state is refused and reports the current record", async () => {
    const j = Journal.open({ path: fresh() });
    await j.transition({ ...base, state: "begun" }, [undefined]);
    await j.transition({ ...base, state: "pending" }, ["begun"]);
    const refused = await j.transition({ ...base, state: "failed" }, ["begun", "settled"]);
    expect(refused).toMatchObject({ ok: false, current: { state: "pending" } });
    expect((await j.get(apiBase, "k1"))?.state).toBe("pending");
  });

  test("behavior: of many concurrent compare-and-sets from two journal handles, exactly one wins", async () => {
    const path = fresh();
    const [a, b] = [Journal.open({ path }), Journal.open({ path })];
    await a.transition({ ...base, state: "begun" }, [undefined]);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).transition({ ...base, state: "pending", owner: `p${i}` }, ["begun"]),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  test("behavior: the same key under two API bases is two intents", async () => {
    const j = Journal.open({ path: fresh() });
    await j.transition({ ...base, state: "settled" }, [undefined]);
    const other = {
      ...base,
      apiBase: "http://127.0.0.1:5000",
      url: "http://127.0.0.1:5000/tiers/v1/prototype",
    };
    expect((await j.transition({ ...other, state: "begun" }, [undefined])).ok).toBe(true);
    expect((await j.get(apiBase, "k1"))?.state).toBe("settled");
    expect((await j.get(other.apiBase, "k1"))?.state).toBe("begun");
  });

  test("behavior: the first pinned recipient wins", async () => {
    const j = Journal.open({ path: fresh() });
    expect(await j.pinned("http://a", "x402")).toBeNull();
    expect(await j.pin("http://a", "x402", "0xA")).toBe("0xA");
    expect(await j.pin("http://a", "x402", "0xB")).toBe("0xA");
    expect(await j.pinned("http://a", "mpp")).toBeNull();
  });

  test("behavior: torn and unparsable lines anywhere are skipped; the next append still parses", async () => {
    const path = fresh();
    const j = Journal.open({ path });
    await j.transition({ ...base, state: "pending" }, [undefined]);
    appendFileSync(path, '{"type":"intent","apiBase":"http://127.0.0.1:4021","idempotencyKey":"k1","sta');
    expect((await j.get(apiBase, "k1"))?.state).toBe("pending");
    await j.transition({ ...base, state: "settled" }, ["pending"]);
    appendFileSync(path, "garbage\n\u0000\u0000\u0000\n[1,2]\n");
    await j.pin(apiBase, "x402", "0x1");
    expect((await Journal.open({ path }).get(apiBase, "k1"))?.state).toBe("settled");
    expect(await Journal.open({ path }).pinned(apiBase, "x402")).toBe("0x1");
  });

  test("behavior: an older version's partial `signing` lines read as one pending intent", async () => {
    const path = fresh();
    const old = {
      intentId: "i1",
      idempotencyKey: "k1",
      method: "POST",
      url: `${apiBase}/tiers/v1/prototype`,
    };
    writeFileSync(
      path,
      [
        JSON.stringify({ type: "intent", ...old, state: "begun", updatedAt: "" }),
        JSON.stringify({
          type: "intent",
          ...old,
          state: "signing",
          rail: "x402",
          validUntil: "2026-01-01T00:00:00Z",
        }),
      ].join("\n"),
    );
    expect(await Journal.open({ path }).get(apiBase, "k1")).toMatchObject({
      apiBase,
      state: "pending",
      rail: "x402",
      validUntil: "2026-01-01T00:00:00Z",
    });
  });

  test("error: a lock held by another live process times out, and the event loop keeps running meanwhile", async () => {
    const path = fresh();
    await holdLock(path);
    const j = Journal.open({ path, waitMs: 300 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const err = await j.transition({ ...base, state: "begun" }, [undefined]).catch((e: unknown) => e);
    clearInterval(timer);
    expect(err).toBeInstanceOf(JournalError);
    expect((err as JournalError).code).toBe("JOURNAL_LOCKED");
    expect((err as JournalError).shortMessage).toBe(
      `Payment journal ${path}: locked by another process for over 300 ms.`,
    );
    expect(ticks).toBeGreaterThan(5);
    expect(existsSync(path)).toBe(false);
  });

  test("behavior: a lock its holder stopped refreshing (the holder died) is broken", async () => {
    const path = fresh();
    mkdirSync(`${path}.lck`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lck`, old, old);
    await Journal.open({ path, waitMs: 300, staleMs: 10_000 }).transition({ ...base, state: "begun" }, [
      undefined,
    ]);
    expect(readFileSync(path, "utf8")).toContain('"state":"begun"');
    expect(existsSync(`${path}.lck`)).toBe(false);
  });

  test("default: the in-memory journal keeps the same transitions", async () => {
    const j = Journal.memory();
    await j.transition({ ...base, state: "begun" }, [undefined]);
    expect((await j.transition({ ...base, state: "failed" }, ["pending"])).ok).toBe(false);
    expect((await j.get(apiBase, "k1"))?.state).toBe("begun");
    expect(j.path).toBeNull();
  });
});
