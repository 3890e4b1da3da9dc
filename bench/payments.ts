/**
 * Section 2: what paying adds to a call, on each rail, against one sandbox (a separate process, as a
 * real client and server would be).
 *
 * Per rail, one wallet and one client; after one warm-up paid call (reported on its own), each of
 * `calls` iterations runs, in this order:
 * - paid: `images.generate` with a fresh intent (402 → policy → journal → sign → paid retry → settle);
 * - unpaid: `images.generate` with the warm-up's intent (same route and response; the server replays
 *   its stored result, nothing is signed or paid);
 * - `tiers.status()`: a SIWX-signed GET, the plain-request reference.
 * Interleaving keeps the three columns under the same conditions (chain height, GC, machine load).
 *
 * With a baseline checkout (BENCH_BEFORE), each side runs its own SDK (its `dist/sdk/index.js`)
 * against its own sandbox (its `packages/sandbox/dist/main.js`), one wallet each, and the two sides'
 * iterations alternate (which goes first alternates too): same machine, same moment.
 */
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { RailName, Run402Event } from "pulumi-run402/sdk";
import { type Chain, createPublicClient, createWalletClient, defineChain, erc20Abi, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { tempoModerato } from "viem/chains";
import type { Side } from "./commands.js";
import { type SandboxChild, spawnSandbox } from "./sandbox-process.js";
import { type Summary, summarize } from "./stats.js";

const PRICE_USD = 0.03;

/** Medians of the phases of a paid call, from the client's events. */
export interface Phases {
  /** call → the 402 answered (journal "begun" + unpaid request). */
  challenge: number;
  /** 402 → about to sign (challenge parsing, policy, recipient pin, journal "signing"). */
  policy: number;
  /** signing → paid retry answered (credential + server verification, on-chain settlement, delivery). */
  signAndSettle: number;
  /** answered → returned (journal "settled", response parsing). */
  finish: number;
}

/** One rail's figures (of one side). */
export interface RailResult {
  rail: RailName;
  /** The build measured: this checkout, or the baseline. */
  side: Side["name"];
  commit: string;
  /**
   * The chain's own settle time: one token transfer of the rail's asset, signed, sent and confirmed on
   * the same local chain (receipt polled every 2 ms), without any payment protocol around it.
   */
  chainSettle: Summary | null;
  firstPaidMs: number;
  paid: Summary;
  unpaid: Summary;
  status: Summary;
  phases: Phases;
  /** Ledger entries the sandbox recorded for this wallet (expected: calls + 1). */
  ledgerEntries: number;
}

/** Result of section 2. */
export interface PaymentsResult {
  calls: number;
  /** Every rail of every side, this checkout's first. */
  rails: RailResult[];
}

/** The SDK entry points a side's build exports (its `dist/sdk/index.js`). */
interface Sdk {
  createRun402(options: Record<string, unknown>): {
    images: {
      generate(args: { prompt: string; intent: string }): Promise<{
        replayed?: boolean;
        settlement?: { rail: string } | null;
      }>;
    };
    tiers: { status(): Promise<unknown> };
    spentUsd(): number;
  };
  resolveWallet(options: { privateKey: string }): { address: string };
}

interface Marks {
  start: number;
  challenge?: number;
  signing?: number;
  answered?: number;
  end?: number;
}

/** One side's client on one rail, measured call by call. */
interface RailRun {
  address: string;
  firstPaidMs: number;
  /** One iteration: a paid call, its replay, a status read. */
  round(i: number): Promise<void>;
  result(): Omit<RailResult, "ledgerEntries" | "chainSettle" | "side" | "commit">;
}

async function openRail(
  sdk: Sdk,
  rail: RailName,
  apiBase: string,
  privateKey: `0x${string}`,
  treasury: string,
  rpcUrls: { base: string; tempo: string },
  journalDir: string,
  calls: number,
  label: string,
  progress: (line: string) => void,
): Promise<RailRun> {
  let marks: Marks = { start: 0 };
  const onEvent = (event: Run402Event) => {
    const now = performance.now();
    if (event.type === "request" && event.status === 402 && marks.challenge === undefined)
      marks.challenge = now;
    else if (event.type === "payment.signing") marks.signing = now;
    else if (event.type === "request" && marks.signing !== undefined && marks.answered === undefined)
      marks.answered = now;
  };
  const wallet = sdk.resolveWallet({ privateKey });
  const r402 = sdk.createRun402({
    apiBase,
    wallet,
    rail,
    policy: {
      maxPaymentUsd: PRICE_USD,
      maxSpendUsd: Number(((calls + 1) * PRICE_USD).toFixed(2)),
      allowedRecipients: [treasury],
    },
    journal: { path: join(journalDir, `${label}-${rail}-journal.jsonl`) },
    rpcUrls,
    onEvent,
  });
  const run = process.pid.toString(36) + Date.now().toString(36);

  const paidCall = async (intent: string) => {
    marks = { start: performance.now() };
    const result = await r402.images.generate({ prompt: "a lighthouse at dusk", intent });
    marks.end = performance.now();
    if (result.replayed || !result.settlement || result.settlement.rail !== rail) {
      throw new Error(
        `${label} ${rail}: a fresh intent was not paid on ${rail} (replayed=${result.replayed})`,
      );
    }
    return { ...marks, end: marks.end };
  };
  const replayCall = async (intent: string) => {
    const t0 = performance.now();
    const result = await r402.images.generate({ prompt: "a lighthouse at dusk", intent });
    const elapsed = performance.now() - t0;
    if (!result.replayed) throw new Error(`${label} ${rail}: the repeated intent was not replayed`);
    return elapsed;
  };
  const statusCall = async () => {
    const t0 = performance.now();
    await r402.tiers.status();
    return performance.now() - t0;
  };

  const warmIntent = `bench-${run}-${rail}-warm-up`;
  const first = await paidCall(warmIntent);
  const firstPaidMs = first.end - first.start;
  progress(`payments ${label} ${rail}: first paid call ${Math.round(firstPaidMs)} ms`);
  await replayCall(warmIntent);
  await statusCall();

  const paid: number[] = [];
  const unpaid: number[] = [];
  const status: number[] = [];
  const phases: Record<keyof Phases, number[]> = { challenge: [], policy: [], signAndSettle: [], finish: [] };
  const median = (xs: number[]) => (xs.length ? summarize(xs).median : Number.NaN);
  return {
    address: wallet.address,
    firstPaidMs,
    async round(i) {
      const m = await paidCall(`bench-${run}-${rail}-${i}`);
      paid.push(m.end - m.start);
      if (m.challenge !== undefined && m.signing !== undefined && m.answered !== undefined) {
        phases.challenge.push(m.challenge - m.start);
        phases.policy.push(m.signing - m.challenge);
        phases.signAndSettle.push(m.answered - m.signing);
        phases.finish.push(m.end - m.answered);
      }
      unpaid.push(await replayCall(warmIntent));
      status.push(await statusCall());
    },
    result() {
      const spent = r402.spentUsd();
      const expected = (calls + 1) * PRICE_USD;
      if (Math.abs(spent - expected) > 1e-9)
        throw new Error(`${label} ${rail}: spent ${spent} USD, expected ${expected}`);
      return {
        rail,
        firstPaidMs,
        paid: summarize(paid),
        unpaid: summarize(unpaid),
        status: summarize(status),
        phases: {
          challenge: median(phases.challenge),
          policy: median(phases.policy),
          signAndSettle: median(phases.signAndSettle),
          finish: median(phases.finish),
        },
      };
    },
  };
}

/** Times `runs` plain token transfers on a chain, each from signing to its receipt. */
async function chainSettle(
  rpcUrl: string,
  chainId: number,
  asset: string,
  privateKey: `0x${string}`,
  to: string,
  runs: number,
  tempoFees: boolean,
): Promise<Summary> {
  // Tempo has no native gas coin: its transactions (viem's Tempo chain) pay fees in a token, here pathUSD.
  const chain = tempoFees
    ? ({ ...tempoModerato, id: chainId, rpcUrls: { default: { http: [rpcUrl] } } } as Chain)
    : defineChain({
        id: chainId,
        name: `local-${chainId}`,
        nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
        rpcUrls: { default: { http: [rpcUrl] } },
      });
  const account = privateKeyToAccount(privateKey);
  const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) });
  const reader = createPublicClient({ chain, transport: http(rpcUrl), pollingInterval: 2 });
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    const hash = await wallet.writeContract({
      address: asset as `0x${string}`,
      abi: erc20Abi,
      functionName: "transfer",
      args: [to as `0x${string}`, 1n],
      ...(tempoFees ? { feeToken: asset as `0x${string}` } : {}),
    } as never);
    const receipt = await reader.waitForTransactionReceipt({ hash, pollingInterval: 2 });
    if (receipt.status !== "success") throw new Error(`transfer ${hash} reverted`);
    // The first transfer warms the clients up (chain id, nonce): not counted.
    if (i > 0) times.push(performance.now() - t0);
  }
  return summarize(times);
}

/**
 * Runs section 2: per side (this checkout, and the baseline when `sides` has one), its own sandbox
 * child and SDK; per rail, the sides' iterations interleaved. `tmpDir` holds the journals (and
 * PGlite's template).
 */
export async function benchPayments(
  sides: Side[],
  tmpDir: string,
  calls: number,
  progress: (line: string) => void,
): Promise<PaymentsResult> {
  const running: { side: Side; sdk: Sdk; sandbox: SandboxChild }[] = [];
  try {
    for (const side of sides) {
      const sdk = (await import(pathToFileURL(join(side.repo, "dist", "sdk", "index.js")).href)) as Sdk;
      running.push({ side, sdk, sandbox: await spawnSandbox({ repo: side.repo, tmpDir, wallets: 2 }) });
    }
    const journalDir = mkdtempSync(join(tmpDir, "journals-"));
    const rails: RailResult[] = [];
    for (const [index, rail] of (["x402", "mpp"] as const).entries()) {
      const opened: RailRun[] = [];
      for (const { side, sdk, sandbox } of running) {
        const { info } = sandbox;
        const key = info.wallets[index]?.privateKey;
        if (!key) throw new Error(`${side.name}: the sandbox has no wallet ${index}`);
        const rpcUrls = { base: info.x402.rpcUrl, tempo: info.mpp.rpcUrl };
        opened.push(
          await openRail(
            sdk,
            rail,
            info.apiBase,
            key,
            info.treasury,
            rpcUrls,
            journalDir,
            calls,
            side.name,
            progress,
          ),
        );
      }
      // Interleaved: each iteration runs every side once, the first side alternating.
      for (let i = 0; i < calls; i++) {
        const order = i % 2 === 0 ? opened : [...opened].reverse();
        for (const r of order) await r.round(i);
      }
      for (const [n, r] of opened.entries()) {
        const { side, sandbox } = running[n]!;
        const { info } = sandbox;
        const ledger = (await (await fetch(`${info.apiBase}/_sandbox/ledger`)).json()) as {
          payments: { rail: string; payer: string }[];
        };
        const ledgerEntries = ledger.payments.filter(
          (p) => p.rail === rail && p.payer.toLowerCase() === r.address.toLowerCase(),
        ).length;
        if (ledgerEntries !== calls + 1) {
          throw new Error(
            `${side.name} ${rail}: the sandbox ledger holds ${ledgerEntries} payments, expected ${calls + 1}`,
          );
        }
        const key = info.wallets[index]!.privateKey;
        const chain = rail === "x402" ? info.x402 : info.mpp;
        // The chain's own transfer, once, on this checkout's sandbox (the chains are the same anvil).
        const settle =
          side.name === "after"
            ? await chainSettle(
                chain.rpcUrl,
                chain.chainId,
                rail === "x402" ? info.x402.asset : info.mpp.currency,
                key,
                info.treasury,
                Math.min(calls, 10),
                rail === "mpp",
              ).catch((error: unknown) => {
                progress(`payments ${rail}: the chain's own transfer could not be timed: ${String(error)}`);
                return null;
              })
            : null;
        const result = r.result();
        rails.push({ ...result, side: side.name, commit: side.commit, chainSettle: settle, ledgerEntries });
        progress(
          `payments ${side.name} ${rail}: paid median ${Math.round(result.paid.median)} ms, unpaid ${Math.round(result.unpaid.median)} ms`,
        );
      }
    }
    return { calls, rails };
  } finally {
    for (const { sandbox } of running) await sandbox.stop();
  }
}
