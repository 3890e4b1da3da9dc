import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pause, send, sendOnce, type Transport } from "./http.js";

const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
let base: string;
let arrived: () => void = () => {};
// A server that takes every request and never answers.
const server = createServer((req) => {
  req.resume();
  arrived();
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function transport(signal: AbortSignal): Transport {
  return { apiBase: new URL(base), fetch, timeoutMs: 60_000, account, emit: () => {}, signal };
}

describe("the run's stop", () => {
  test("behavior: a request whose answer never comes ends with RUN_CANCELLED as soon as the signal fires", async () => {
    const stop = new AbortController();
    const came = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const t = transport(stop.signal);
    const sent = sendOnce(t, new Request(`${base}/held`, { method: "POST", body: "{}" }));
    await came;
    const at = Date.now();
    stop.abort();
    await expect(sent).rejects.toMatchObject({ code: "RUN_CANCELLED" });
    expect(Date.now() - at).toBeLessThan(1000);
  });

  test("behavior: a stopped run sends nothing more, and a wait ends at once", async () => {
    const stop = new AbortController();
    stop.abort();
    let reached = false;
    arrived = () => {
      reached = true;
    };
    await expect(
      send(transport(stop.signal), { method: "GET", path: "/x", auth: { kind: "none" } }),
    ).rejects.toMatchObject({ code: "RUN_CANCELLED" });
    expect(reached).toBe(false);
    const live = new AbortController();
    const waiting = pause(60_000, live.signal);
    live.abort();
    await expect(waiting).rejects.toMatchObject({ code: "RUN_CANCELLED" });
  });
});
