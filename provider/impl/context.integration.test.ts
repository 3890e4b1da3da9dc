/**
 * Recovery in the provider: a purchase an earlier run left maybe-paid is only reported when the
 * provider builds its context (which also serves check, preview and plan: no request may leave), and
 * is resolved when an apply asks for it, its settlement there for the Tier's `lastSettlement`.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Hostile, honestTier, startHostile } from "~test/hostile.js";
import { createRun402 } from "../../sdk/client.js";
import * as Journal from "../../sdk/pay/journal.js";
import { resolveWallet } from "../../sdk/wallet.js";
import { configure, getContext } from "./context.js";

let h: Hostile;
beforeAll(async () => {
  h = await startHostile({ wallets: 1 });
});
afterAll(async () => {
  await h?.close();
});

test("behavior: the provider reports an earlier run's maybe-paid purchase at start without a request, and resolves it only when an apply asks", async () => {
  const key = h.chains.wallets[0]!.privateKey;
  const wallet = resolveWallet({ privateKey: key });
  const journalPath = join(mkdtempSync(join(tmpdir(), "r402-recover-")), "journal.jsonl");
  const intent = `tier/${wallet.address.toLowerCase()}/subscribe/prototype/none`;

  // The earlier run: the server settled and stored the purchase, then failed before answering.
  const stored = honestTier(h, h.api);
  let failNext = true;
  h.api.handle(async (call) => {
    const reply = await stored(call);
    if (call.headers["payment-signature"] && failNext) {
      failNext = false;
      return { status: 502, body: { code: "BAD_GATEWAY", message: "upstream reset" } };
    }
    return reply;
  });
  const earlier = createRun402({
    apiBase: h.api.url,
    wallet,
    rail: "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
    journal: { path: journalPath },
    rpcUrls: { base: h.chains.base.rpcUrl, tempo: h.chains.tempo.rpcUrl },
  });
  expect(
    await earlier.tiers.set({ tier: "prototype", intent }).catch((e: { status?: number }) => e.status),
  ).toBe(502);
  const [pending] = await Journal.open({ path: journalPath }).unfinished();
  expect(pending?.state).toBe("pending");

  const config: Record<string, string> = {
    "run402:apiBase": h.api.url,
    "run402:privateKey": key,
    "run402:journalPath": journalPath,
    "run402:baseRpcUrl": h.chains.base.rpcUrl,
    "run402:tempoRpcUrl": h.chains.tempo.rpcUrl,
  };
  configure((k) => config[k]);
  const callsBefore = h.api.calls.length;
  const ctx = await getContext();
  // Building the context (what check, preview and plan do) asked the server nothing.
  expect(h.api.calls.length).toBe(callsBefore);
  expect(
    (await Journal.open({ path: journalPath }).get(pending!.apiBase, pending!.idempotencyKey))?.state,
  ).toBe("pending");
  const settlement = await ctx.recoveredSettlement(`tier/${wallet.address.toLowerCase()}/`);
  expect(settlement).toMatchObject({
    rail: "x402",
    amountUsd: "0.10",
    idempotencyKey: pending!.idempotencyKey,
  });
  expect(settlement?.reference).toMatch(/^0x[0-9a-f]{64}$/);
  expect(await ctx.recoveredSettlement("tier/0xsomeone-else/")).toBeNull();
  expect(
    (await Journal.open({ path: journalPath }).get(pending!.apiBase, pending!.idempotencyKey))?.state,
  ).toBe("settled");
});
