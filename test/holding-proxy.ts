/**
 * A proxy in front of a sandbox for the e2e tests (imported as `~test/holding-proxy.js`): it passes
 * every request on unchanged, and when armed, lets the sandbox settle and store the next paid
 * request and then never answers it: a client that paid and did not hear back.
 */
import { createServer, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { carriedPayment } from "../sdk/pay/rail.js";

export interface HoldingProxy {
  url: string;
  /** Holds the answer to the next paid request the sandbox settles; resolves once it has. */
  holdNextPaid(): Promise<void>;
  /** Resolves when a request matching `METHOD path` arrives (and is passed on). */
  arrival(pattern: RegExp): Promise<void>;
  close(): Promise<void>;
}

/** A proxy to `upstream` that can hold the answer to a settled paid request forever. */
export async function holdingProxy(upstream: string): Promise<HoldingProxy> {
  let armed: (() => void) | undefined;
  const held: ServerResponse[] = [];
  const waiting: { pattern: RegExp; resolve: () => void }[] = [];
  const to = new URL(upstream);
  const server: Server = createServer((req, res) => {
    for (const w of [...waiting]) {
      if (w.pattern.test(`${req.method} ${req.url}`)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
      // The Host header goes through unchanged: SIWX signs the URL the client called.
      const forward = request(
        { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const body: Buffer[] = [];
          answer.on("data", (c: Buffer) => body.push(c));
          answer.on("end", () => {
            const status = answer.statusCode ?? 502;
            if (armed && carriedPayment(headers) && status >= 200 && status < 300) {
              // Settled and stored by the sandbox; the client never hears of it.
              held.push(res);
              const done = armed;
              armed = undefined;
              done();
              return;
            }
            res.writeHead(status, answer.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      forward.on("error", () => res.destroy());
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdNextPaid: () =>
      new Promise<void>((resolve) => {
        armed = resolve;
      }),
    arrival: (pattern) =>
      new Promise<void>((resolve) => {
        waiting.push({ pattern, resolve });
      }),
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
