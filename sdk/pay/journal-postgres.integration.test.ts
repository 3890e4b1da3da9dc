import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startPostgres, type TestPostgres } from "~test/postgres.js";
import { JournalError } from "../errors/payment.js";
import { journalContract } from "./journal.contract.js";
import * as PgJournal from "./journal-postgres.js";

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

let schemas = 0;
journalContract("postgres", () => {
  const schema = `t${process.pid}_${schemas++}`;
  return { where: { url: server.url, schema }, open: () => PgJournal.open({ url: server.url, schema }) };
});

const apiBase = "http://127.0.0.1:4021";
const base = { apiBase, intentId: "i1", idempotencyKey: "k1", method: "POST", url: `${apiBase}/x` };

describe("Journal (postgres)", () => {
  test("default: tables in their own schema, created on first use by versioned migrations, once for many first users", async () => {
    const journals = Array.from({ length: 4 }, () => PgJournal.open({ url: server.url, schema: "firstuse" }));
    const results = await Promise.all(journals.map((j, i) => j.pin(apiBase, "x402", `0x${i}`)));
    expect(new Set(results).size).toBe(1);
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    const { rows } = await client.query("SELECT version FROM firstuse.journal_migrations ORDER BY version");
    expect(rows).toEqual([{ version: 1 }]);
    // A schema from a newer version is refused, not written.
    await client.query("INSERT INTO firstuse.journal_migrations (version) VALUES (99)");
    await client.end();
    const newer = PgJournal.open({ url: server.url, schema: "firstuse" });
    const err = await newer.get(apiBase, "k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JournalError);
    expect((err as JournalError).code).toBe("JOURNAL_SCHEMA");
    await Promise.all([...journals, newer].map((j) => j.close()));
  });

  test("behavior: the password comes from PGPASSWORD when the URL has none, and never reaches a message", async () => {
    const url = server.url.replace(`:${server.password}@`, "@");
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = server.password;
    try {
      const j = PgJournal.open({ url, schema: "pgpass" });
      expect((await j.transition({ ...base, state: "begun" }, [undefined])).ok).toBe(true);
      await j.close();
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
    const wrong = PgJournal.open({
      url: server.url.replace(server.password, "not-the-password"),
      schema: "pgpass",
    });
    const err = (await wrong.get(apiBase, "k1").catch((e: unknown) => e)) as JournalError;
    expect(err).toBeInstanceOf(JournalError);
    expect(wrong.location).not.toContain("not-the-password");
    expect(`${err.message} ${JSON.stringify(err)}`).not.toContain("not-the-password");
    await wrong.close();
  });

  test("error: a database that is down fails the claim with JOURNAL_UNAVAILABLE, and the next claim works once it is back", async () => {
    const j = PgJournal.open({ url: server.url, schema: "down", timeoutMs: 3000 });
    expect((await j.transition({ ...base, state: "begun" }, [undefined])).ok).toBe(true);
    await server.halt();
    try {
      const err = (await j
        .transition({ ...base, state: "pending" }, ["begun"])
        .catch((e: unknown) => e)) as JournalError;
      expect(err).toBeInstanceOf(JournalError);
      expect(err.code).toBe("JOURNAL_UNAVAILABLE");
      expect(err.message).toContain("Nothing is paid without a claim");
    } finally {
      await server.resume();
    }
    expect((await j.get(apiBase, "k1"))?.state).toBe("begun");
    expect((await j.transition({ ...base, state: "pending" }, ["begun"])).ok).toBe(true);
    await j.close();
  });
});
