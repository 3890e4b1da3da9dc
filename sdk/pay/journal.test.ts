import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { JournalError } from "../errors/payment.js";
import * as Journal from "./journal.js";

const fresh = () => join(mkdtempSync(join(tmpdir(), "r402-journal-")), "journal.jsonl");
const base = {
  intentId: "i1",
  idempotencyKey: "k1",
  method: "POST",
  url: "http://127.0.0.1/tiers/v1/prototype",
};

describe("Journal", () => {
  test("default: records merge per key and survive reopening", () => {
    const path = fresh();
    const j = Journal.open({ path });
    j.record({ ...base, state: "begun" });
    j.record({ ...base, state: "signing", rail: "x402", amountAtomic: "100000" });
    const again = Journal.open({ path });
    expect(again.intents().get("k1")).toMatchObject({
      state: "signing",
      rail: "x402",
      amountAtomic: "100000",
    });
    expect(again.unfinished().map((r) => r.idempotencyKey)).toEqual(["k1"]);
    again.record({ ...base, state: "settled" });
    expect(Journal.open({ path }).unfinished()).toEqual([]);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("behavior: the first pinned recipient wins", () => {
    const j = Journal.open({ path: fresh() });
    expect(j.pinned("http://a", "x402")).toBeNull();
    expect(j.pin("http://a", "x402", "0xA")).toBe("0xA");
    expect(j.pin("http://a", "x402", "0xB")).toBe("0xA");
    expect(j.pinned("http://a", "mpp")).toBeNull();
  });

  test("behavior: a torn last line (crash mid-append) is skipped, the next append still parses", () => {
    const path = fresh();
    const j = Journal.open({ path });
    j.record({ ...base, state: "signing" });
    appendFileSync(path, '{"type":"intent","idempotencyKey":"k1","sta');
    expect(j.intents().get("k1")?.state).toBe("signing");
    j.record({ ...base, state: "settled" });
    expect(j.intents().get("k1")?.state).toBe("settled");
  });

  test("error: corruption before the last line", () => {
    const path = fresh();
    writeFileSync(
      path,
      'garbage\n{"type":"recipient","apiBase":"a","rail":"x402","recipient":"0x1","at":""}\n',
    );
    const err = (() => {
      try {
        Journal.open({ path }).intents();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(JournalError);
    expect((err as JournalError).code).toBe("JOURNAL_CORRUPT");
  });

  test("error: a lock held by a live process times out", () => {
    const path = fresh();
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.pid, at: Date.now() }));
    const j = Journal.open({ path, waitMs: 100 });
    const err = (() => {
      try {
        j.record({ ...base, state: "begun" });
      } catch (e) {
        return e;
      }
    })() as JournalError;
    expect(err.code).toBe("JOURNAL_LOCKED");
    expect(err.shortMessage).toBe(
      `Payment journal ${path}: locked by process ${process.pid} for over 100 ms.`,
    );
    expect(existsSync(path)).toBe(false);
  });

  test("behavior: a lock left by a dead process is broken", () => {
    const path = fresh();
    // PIDs above the kernel's pid_max (4194304 at most) cannot be alive.
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 4_194_305, at: Date.now() }));
    Journal.open({ path, waitMs: 100 }).record({ ...base, state: "begun" });
    expect(readFileSync(path, "utf8")).toContain('"state":"begun"');
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("behavior: an old lock is broken even if its pid was reused", () => {
    const path = fresh();
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: process.pid, at: Date.now() - 60_000 }));
    Journal.open({ path, waitMs: 100, staleMs: 30_000 }).record({ ...base, state: "begun" });
    expect(Journal.open({ path }).intents().size).toBe(1);
  });
});
