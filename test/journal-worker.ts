/**
 * A second (third, …) process sharing a payment journal, for the journal's multi-process tests.
 * Argument: JSON `{ journal: { path } | { url }, task }`. Prints `READY` when it is about to act (the
 * parent releases all workers at once by writing a line to their stdin), `LOCKED` when a stalled
 * writer holds the file lock, and one line of JSON with its results at the end.
 */
import { createInterface } from "node:readline";
import * as Journal from "../sdk/pay/journal.js";
import * as PgJournal from "../sdk/pay/journal-postgres.js";

type Task =
  | {
      /** Claims each intent (from no record) under the budget; reports which claims held. */
      kind: "claims";
      apiBase: string;
      keys: string[];
      amountAtomic: string;
      wallet: string;
      budget: { runId?: string; runMaxAtomic?: string; windowSeconds?: number; windowMaxAtomic?: string };
      owner: string;
    }
  | {
      /** One claim that stalls, under the file lock, right before it writes, for `stallMs`. */
      kind: "stalled-claim";
      apiBase: string;
      key: string;
      owner: string;
      stallMs: number;
      staleMs: number;
    };

const { journal: where, task } = JSON.parse(process.argv[2]!) as {
  journal: { path: string } | { url: string; schema?: string };
  task: Task;
};

async function main() {
  if (task.kind === "stalled-claim") {
    const path = (where as { path: string }).path;
    const j = Journal.open({
      path,
      staleMs: task.staleMs,
      beforeWrite: () => {
        process.stdout.write("LOCKED\n");
        // A stall the lock's refresh timer cannot interrupt (a blocked event loop, a paused VM).
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, task.stallMs);
      },
    });
    const result = await j
      .transition(
        {
          apiBase: task.apiBase,
          intentId: task.key,
          idempotencyKey: task.key,
          method: "POST",
          url: `${task.apiBase}/x`,
          state: "pending",
          owner: task.owner,
        },
        [undefined, "begun"],
      )
      .then(
        (r) => ({ ok: r.ok }),
        (e: { code?: string }) => ({ ok: false, error: e.code ?? String(e) }),
      );
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const j =
    "url" in where
      ? PgJournal.open({ url: where.url, schema: where.schema })
      : Journal.open({ path: where.path, waitMs: 60_000 });
  // Connect (and migrate) before the start line, so the race is between claims.
  await j.get(task.apiBase, "warm-up");
  process.stdout.write("READY\n");
  await new Promise<void>((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", () => {
      lines.close();
      process.stdin.destroy();
      resolve();
    });
  });
  const budget: Journal.Budget = {
    wallet: task.wallet,
    ...(task.budget.runId
      ? { run: { id: task.budget.runId, maxAtomic: BigInt(task.budget.runMaxAtomic!) } }
      : {}),
    ...(task.budget.windowSeconds
      ? { window: { seconds: task.budget.windowSeconds, maxAtomic: BigInt(task.budget.windowMaxAtomic!) } }
      : {}),
  };
  const won: string[] = [];
  const refused: string[] = [];
  await Promise.all(
    task.keys.map(async (key) => {
      const r = await j.transition(
        {
          apiBase: task.apiBase,
          intentId: key,
          idempotencyKey: key,
          method: "POST",
          url: `${task.apiBase}/x`,
          state: "pending",
          amountAtomic: task.amountAtomic,
          wallet: task.wallet,
          ...(task.budget.runId ? { runId: task.budget.runId } : {}),
          owner: task.owner,
        },
        [undefined, "begun"],
        { budget },
      );
      (r.ok ? won : refused).push(key);
    }),
  );
  await j.close();
  process.stdout.write(`${JSON.stringify({ won, refused })}\n`);
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`);
  process.exitCode = 1;
});
