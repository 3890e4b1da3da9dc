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
 */
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createRun402, type RailName, type Run402Event, resolveWallet } from "pulumi-run402/sdk";
import { type Chain, createPublicClient, createWalletClient, defineChain, erc20Abi, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { tempoModerato } from "viem/chains";
import { spawnSandbox } from "./sandbox-process.js";
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

/** One rail's figures. */
export interface RailResult {
  rail: RailName;
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
  rails: RailResult[];
}

interface Marks {
  start: number;
  challenge?: number;
  signing?: number;
  answered?: number;
  end?: number;
}

async function benchRail(
  rail: RailName,
  apiBase: string,
  privateKey: `0x${string}`,
  treasury: string,
  rpcUrls: { base: string; tempo: string },
  journalDir: string,
  calls: number,
  progress: (line: string) => void,
): Promise<Omit<RailResult, "ledgerEntries" | "chainSettle"> & { address: string }> {
  let marks: Marks = { start: 0 };
  const onEvent = (event: Run402Event) => {
    const now = performance.now();
    if (event.type === "request" && event.status === 402 && marks.challenge === undefined)
      marks.challenge = now;
    else if (event.type === "payment.signing") marks.signing = now;
    else if (event.type === "request" && marks.signing !== undefined && marks.answered === undefined)
      marks.answered = now;
  };
  const wallet = resolveWallet({ privateKey });
  const r402 = createRun402({
    apiBase,
    wallet,
    rail,
    policy: {
      maxPaymentUsd: PRICE_USD,
      maxSpendUsd: Number(((calls + 1) * PRICE_USD).toFixed(2)),
      allowedRecipients: [treasury],
    },
    journal: { path: join(journalDir, `${rail}-journal.jsonl`) },
    rpcUrls,
    onEvent,
  });
  const run = process.pid.toString(36) + Date.now().toString(36);

  const paidCall = async (intent: string) => {
    marks = { start: performance.now() };
    const result = await r402.images.generate({ prompt: "a lighthouse at dusk", intent });
    marks.end = performance.now();
    if (result.replayed || !result.settlement || result.settlement.rail !== rail) {
      throw new Error(`${rail}: a fresh intent was not paid on ${rail} (replayed=${result.replayed})`);
    }
    return { ...marks, end: marks.end };
  };
  const replayCall = async (intent: string) => {
    const t0 = performance.now();
    const result = await r402.images.generate({ prompt: "a lighthouse at dusk", intent });
    const elapsed = performance.now() - t0;
    if (!result.replayed) throw new Error(`${rail}: the repeated intent was not replayed`);
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
  progress(`payments ${rail}: first paid call ${Math.round(firstPaidMs)} ms`);
  await replayCall(warmIntent);
  await statusCall();

  const paid: number[] = [];
  const unpaid: number[] = [];
  const status: number[] = [];
  const phases: Record<keyof Phases, number[]> = { challenge: [], policy: [], signAndSettle: [], finish: [] };
  for (let i = 0; i < calls; i++) {
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
  }
  const spent = r402.spentUsd();
  const expected = (calls + 1) * PRICE_USD;
  if (Math.abs(spent - expected) > 1e-9) throw new Error(`${rail}: spent ${spent} USD, expected ${expected}`);
  const median = (xs: number[]) => (xs.length ? summarize(xs).median : Number.NaN);
  return {
    rail,
    address: wallet.address,
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

/** Runs section 2 against one sandbox child; `tmpDir` holds the journals (and PGlite's template). */
export async function benchPayments(
  repo: string,
  tmpDir: string,
  calls: number,
  progress: (line: string) => void,
): Promise<PaymentsResult> {
  const sandbox = await spawnSandbox({ repo, tmpDir, wallets: 2 });
  try {
    const { info } = sandbox;
    const journalDir = mkdtempSync(join(tmpDir, "journals-"));
    const rpcUrls = { base: info.x402.rpcUrl, tempo: info.mpp.rpcUrl };
    const rails: RailResult[] = [];
    for (const [index, rail] of (["x402", "mpp"] as const).entries()) {
      const key = info.wallets[index]?.privateKey;
      if (!key) throw new Error(`the sandbox has no wallet ${index}`);
      const r = await benchRail(rail, info.apiBase, key, info.treasury, rpcUrls, journalDir, calls, progress);
      const ledger = (await (await fetch(`${info.apiBase}/_sandbox/ledger`)).json()) as {
        payments: { rail: string; payer: string }[];
      };
      const ledgerEntries = ledger.payments.filter(
        (p) => p.rail === rail && p.payer.toLowerCase() === r.address.toLowerCase(),
      ).length;
      if (ledgerEntries !== calls + 1) {
        throw new Error(`${rail}: the sandbox ledger holds ${ledgerEntries} payments, expected ${calls + 1}`);
      }
      const { address: _address, ...result } = r;
      const chain = rail === "x402" ? info.x402 : info.mpp;
      const settle = await chainSettle(
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
      });
      rails.push({ ...result, chainSettle: settle, ledgerEntries });
      progress(
        `payments ${rail}: paid median ${Math.round(r.paid.median)} ms, unpaid ${Math.round(r.unpaid.median)} ms`,
      );
    }
    return { calls, rails };
  } finally {
    await sandbox.stop();
  }
}
