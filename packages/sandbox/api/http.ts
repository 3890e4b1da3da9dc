/**
 * The HTTP layer: routing by `METHOD /pattern/:param`, body limits, the error envelope, the fault
 * knobs and the request log. Handlers return a Reply; they never touch the socket except to drop it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, badRequest } from "./errors.js";

/** What a handler answers. A Buffer body is sent as is; anything else as JSON. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Fault kinds accepted by `POST /_sandbox/faults`. */
export type FaultKind =
  /** A paid route fails before anything is verified or settled, on every rail: no money moves. */
  | "error_before_settlement"
  /** Settled, the result delivered and stored, then the answer is a 500: a replay returns it. */
  | "error_after_settlement"
  /** Settled, the result delivered and stored, then the connection is dropped. */
  | "drop_after_settlement"
  /** Settled (money moved, in the ledger), then a 500 before anything is delivered or stored: a repeat finds nothing to replay. */
  | "settled_not_stored"
  | "delay"
  | "rate_limit";

/** A pending fault. */
export interface Fault {
  route: string;
  kind: FaultKind;
  remaining: number;
  delayMs: number;
  retryAfterSeconds: number;
}

/** One row of `GET /_sandbox/requests`. */
export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  at: string;
  paid: boolean;
}

/** Per-request context handed to handlers. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** Absolute URL as the client called it (Host header based). */
  url: URL;
  params: Record<string, string>;
  body: Buffer;
  /** `METHOD /pattern` of the matched route, as faults name it. */
  route: string;
  /** Set by the paid flow once a payment settled on this request. */
  paid: boolean;
  /** Takes one pending fault of `kind` for this route, if any. */
  takeFault(kind: FaultKind): Fault | undefined;
  /** Parses the body as a JSON object (`{}` when empty); 400 otherwise. */
  json(): Record<string, unknown>;
  header(name: string): string | undefined;
}

/** A route. `paid` routes consume the settlement faults themselves, at the settlement point. */
export interface Route {
  method: string;
  pattern: string;
  handler: (ctx: Ctx) => Promise<Reply | "dropped">;
  paid?: boolean;
  /** Maximum body size in bytes. @default 1 MiB */
  maxBody?: number;
}

/** Faults, the request log and price changes, shared by the server and the `/_sandbox` routes. */
export interface Controls {
  faults: Fault[];
  requests: RequestLogEntry[];
  /** Tier prices set through `POST /_sandbox/prices` (atomic units, 6 decimals), in place of the catalog's. */
  prices: Record<string, bigint>;
}

const MiB = 1024 * 1024;

function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split("/");
  const got = path.split("/");
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === "*") {
      params["*"] = got.slice(i).join("/");
      return params;
    }
    const g = got[i];
    if (g === undefined) return undefined;
    if (w.startsWith(":")) {
      if (g === "") return undefined;
      try {
        params[w.slice(1)] = decodeURIComponent(g);
      } catch {
        return undefined;
      }
    } else if (w !== g) return undefined;
  }
  return want.length === got.length ? params : undefined;
}

/** Sends a reply (JSON unless the body is a Buffer). */
export function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { ...reply.headers };
  let payload: Buffer | undefined;
  if (Buffer.isBuffer(reply.body)) payload = reply.body;
  else if (reply.body !== undefined) {
    payload = Buffer.from(JSON.stringify(reply.body));
    headers["content-type"] ??= "application/json";
  }
  if (payload) headers["content-length"] = String(payload.length);
  res.writeHead(reply.status, headers);
  res.end(payload);
}

/** Turns any thrown value into a reply; unexpected errors become a 500 envelope and go to stderr. */
export function errorReply(error: unknown, log: (line: string) => void): Reply {
  if (error instanceof ApiError) {
    return { status: error.status, headers: error.options.headers ?? {}, body: error.envelope() };
  }
  log(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  const internal = new ApiError(500, "INTERNAL_ERROR", "The sandbox failed to handle this request.", {
    category: "internal",
    retryable: true,
    safe_to_retry: false,
  });
  return { status: 500, body: internal.envelope() };
}

/** The 500 a fault produces. */
export function faultReply(kind: FaultKind): Reply {
  const err = new ApiError(500, "SANDBOX_FAULT", `Injected fault: ${kind}.`, {
    category: "internal",
    retryable: true,
    // Before settlement nothing happened, so any repeat is safe; after it, only the keyed repeat is.
    safe_to_retry: kind === "error_before_settlement",
  });
  return { status: 500, body: err.envelope() };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | "too_large"> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      req.resume();
      resolve("too_large");
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on("end", () => resolve(over ? "too_large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Creates the request handler for `routes`. `before` runs first on every request (lifecycle sweep). */
export function createHandler(options: {
  routes: Route[];
  controls: Controls;
  before?: () => Promise<void>;
  log: (line: string) => void;
  /** Host-based routes (sites by subdomain) get the first chance at a request. */
  hostHandler?: (ctx: Ctx) => Promise<Reply | undefined>;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { routes, controls, before, log, hostHandler } = options;

  return (req, res) => {
    const method = (req.method ?? "GET").toUpperCase();
    let url: URL;
    try {
      url = new URL(req.url ?? "/", `http://${req.headers.host ?? "127.0.0.1"}`);
    } catch {
      url = new URL("http://127.0.0.1/");
    }
    const path = url.pathname;
    const logged = !path.startsWith("/_sandbox/");
    const ctx: Ctx = {
      req,
      res,
      method,
      url,
      params: {},
      body: Buffer.alloc(0),
      route: "",
      paid: false,
      takeFault(kind) {
        // The controls themselves never fail, so a "*" fault can always be cleared.
        if (!logged) return undefined;
        const fault = controls.faults.find((f) => f.kind === kind && f.remaining > 0 && faultMatches(f, ctx));
        if (!fault) return undefined;
        fault.remaining -= 1;
        if (fault.remaining <= 0) controls.faults.splice(controls.faults.indexOf(fault), 1);
        return fault;
      },
      json() {
        if (ctx.body.length === 0) return {};
        let value: unknown;
        try {
          value = JSON.parse(ctx.body.toString("utf8"));
        } catch {
          throw badRequest("INVALID_JSON", "The request body is not valid JSON.");
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          throw badRequest("INVALID_BODY", "The request body must be a JSON object.");
        }
        return value as Record<string, unknown>;
      },
      header(name) {
        const v = req.headers[name.toLowerCase()];
        return Array.isArray(v) ? v[0] : v;
      },
    };
    res.on("close", () => {
      if (!logged) return;
      controls.requests.push({
        method,
        path: path + url.search,
        // A dropped socket never got a status; 0 says so.
        status: res.headersSent ? res.statusCode : 0,
        at: new Date().toISOString(),
        paid: ctx.paid,
      });
    });

    const run = async (): Promise<void> => {
      let route: Route | undefined;
      for (const r of routes) {
        if (r.method !== method && !(r.method === "GET" && method === "HEAD")) continue;
        const params = match(r.pattern, path);
        if (params) {
          route = r;
          ctx.params = params;
          break;
        }
      }
      ctx.route = route ? `${route.method} ${route.pattern}` : `${method} ${path}`;
      const body = await readBody(req, route?.maxBody ?? MiB);
      if (body === "too_large") {
        const err = new ApiError(413, "PAYLOAD_TOO_LARGE", "The request body is over this route's limit.", {
          category: "validation",
          details: { limit_bytes: route?.maxBody ?? MiB },
        });
        send(res, { status: 413, headers: { connection: "close" }, body: err.envelope() });
        return;
      }
      ctx.body = body;
      if (logged) await before?.();

      const delay = ctx.takeFault("delay");
      if (delay) await new Promise((r) => setTimeout(r, delay.delayMs));
      const limited = ctx.takeFault("rate_limit");
      if (limited) {
        const err = new ApiError(429, "RATE_LIMITED", "Too many requests (injected).", {
          category: "rate_limit",
          retryable: true,
          safe_to_retry: true,
          extra: { retry_after: limited.retryAfterSeconds },
        });
        send(res, {
          status: 429,
          headers: { "retry-after": String(limited.retryAfterSeconds) },
          body: err.envelope(),
        });
        return;
      }

      if (hostHandler) {
        const hosted = await hostHandler(ctx);
        if (hosted) return send(res, hosted);
      }
      if (!route) {
        const err = new ApiError(404, "ROUTE_NOT_FOUND", `No route ${method} ${path}.`, {
          category: "not_found",
        });
        return send(res, { status: 404, body: err.envelope() });
      }
      if (!route.paid && ctx.takeFault("error_before_settlement"))
        return send(res, faultReply("error_before_settlement"));
      const reply = await route.handler(ctx);
      if (reply === "dropped") return;
      if (!route.paid) {
        // Non-paid routes: "after settlement" means after the handler's effect took place.
        if (reply.status < 400 && ctx.takeFault("error_after_settlement")) {
          return send(res, faultReply("error_after_settlement"));
        }
        if (reply.status < 400 && ctx.takeFault("drop_after_settlement")) {
          res.destroy();
          return;
        }
      }
      send(res, reply);
    };
    run().catch((error: unknown) => send(res, errorReply(error, log)));
  };
}

function faultMatches(fault: Fault, ctx: Ctx): boolean {
  return (
    fault.route === ctx.route || fault.route === `${ctx.method} ${ctx.url.pathname}` || fault.route === "*"
  );
}
