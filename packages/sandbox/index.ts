/**
 * A local Run402: both payment chains, the dual-rail payment gate, an embedded Postgres, a logical
 * clock for leases, and the Run402 HTTP API over node:http.
 *
 * @example
 * import { startSandbox } from "@pulumi-run402/sandbox";
 * const sandbox = await startSandbox();
 * console.log(sandbox.apiBase);
 * await sandbox.stop();
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { createApi } from "./api/app.js";
import type { Deps } from "./api/context.js";
import type { Controls } from "./api/http.js";
import { startUploadOrigin } from "./api/s3.js";
import { startChains } from "./chains/index.js";
import { createClock } from "./clock.js";
import { openBlobs } from "./db/blobs.js";
import { type Database, openDatabase } from "./db/index.js";
import { createPaymentGate } from "./payments/gate.js";
import { openState } from "./state.js";

// Building blocks, for tests that assemble their own server around real chains and verification
// (pulumi-run402's hostile-server tests) or drive a sandbox's controls.
export type { FaultKind, RequestLogEntry } from "./api/http.js";
export { siwxMessage } from "./api/siwx.js";
export {
  type Chains,
  type StartChainsOptions,
  sandboxTempoChain,
  startChains,
  type Wallet,
} from "./chains/index.js";
export { createPaymentGate } from "./payments/gate.js";
export type { GateOutcome, PaymentGate, Price, Rail, Settlement } from "./payments/types.js";
export type { LedgerEntry } from "./state.js";

/** Options of {@link startSandbox}. */
export interface SandboxOptions {
  /**
   * Port for the API. @default with `stateDir`, the port that folder's sandbox used last (so the
   * API base, and the project URLs a stack records, stay the same across restarts), else any free
   * port
   */
  port?: number;
  /** Folder that keeps chains, Postgres, content, ledger, projects and leases across restarts. @default none (all in memory) */
  stateDir?: string;
  /** How many funded payer wallets. @default 5 */
  walletCount?: number;
  /** The only interface the sandbox binds. @default "127.0.0.1" */
  host?: "127.0.0.1";
  /** Where log lines go. @default stderr */
  log?: (line: string) => void;
  /**
   * Where content plans send bytes. `"presigned"`: presigned S3 URLs on a separate upload origin
   * (`uploadOrigin`), signed with the AWS SDK's presigner and checked as S3 checks them, as Run402
   * does; a client must list that origin among its upload origins (loopback). `"api"`: PUTs to the
   * API's own `/_uploads`. @default "api"
   */
  uploads?: "presigned" | "api";
}

/** A running sandbox. */
export interface Sandbox {
  /** `http://127.0.0.1:<port>`, the Run402 API base. */
  apiBase: string;
  /** The x402 rail: local Base Sepolia chain and its USDC. */
  x402: { rpcUrl: string; chainId: number; asset: Address };
  /** The mpp rail: local Tempo chain and its pathUSD. */
  mpp: { rpcUrl: string; chainId: number; currency: Address };
  /** Funded payer wallets (test keys). */
  wallets: { address: Address; privateKey: Hex }[];
  /** Receives every payment. */
  treasury: Address;
  /** The origin presigned upload URLs point at (`uploads: "presigned"`), else null. */
  uploadOrigin: string | null;
  /**
   * Milliseconds from the call to `startSandbox` until each part was ready: both chains (funded), the
   * API's port, and Postgres (0 while it still loads: it finishes after the sandbox is ready, and
   * the routes that need it wait for it).
   */
  phases: { chains: number; postgres: number; port: number };
  /** Stops the server, Postgres and the chains; with a state directory everything is written first. */
  stop(): Promise<void>;
}

/** Starts a sandbox: the chains and the API's port at once, then Postgres, which finishes loading while the API serves. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const {
    stateDir,
    walletCount,
    host = "127.0.0.1",
    log = (line: string) => process.stderr.write(`[run402-sandbox] ${line}\n`),
  } = options;
  const endpoint = stateDir ? pinnedEndpoint(stateDir) : {};
  const pinned = endpoint.port;
  const port = options.port ?? pinned ?? 0;
  const store = openState(stateDir);
  const clock = createClock({
    offsetMs: store.state.clockOffsetMs,
    onChange(offsetMs) {
      store.state.clockOffsetMs = offsetMs;
      store.save();
    },
  });
  const server = createServer();
  const listening = new Promise<number>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" && port !== 0 && options.port === undefined) {
        // Two sandboxes on one folder would corrupt its Postgres and chains: refuse, and say why.
        reject(
          Object.assign(
            new Error(
              `The sandbox in ${stateDir} serves on port ${port}, which is in use: another sandbox on this folder is running (or another program took the port). Stop it, or pass a port explicitly.`,
            ),
            { code: "CONFLICT_SANDBOX_IN_USE" },
          ),
        );
      } else reject(error);
    });
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
  const t0 = Date.now();
  const phases = { chains: 0, postgres: 0, port: 0 };
  const timed = <T>(part: keyof typeof phases, promise: Promise<T>) =>
    promise.then((value) => {
      phases[part] = Date.now() - t0;
      return value;
    });
  const started = await Promise.allSettled([
    timed(
      "chains",
      startChains({
        ...(stateDir ? { stateDir: join(stateDir, "chains") } : {}),
        ...(walletCount === undefined ? {} : { walletCount }),
        // The chains keep their ports too, so a stack's run402:baseRpcUrl / tempoRpcUrl stay valid.
        ports: { base: endpoint.basePort, tempo: endpoint.tempoPort },
      }).catch((error: unknown) => {
        if (endpoint.basePort === undefined && endpoint.tempoPort === undefined) throw error;
        throw Object.assign(
          new Error(
            `The sandbox in ${stateDir} keeps its chains on ports ${endpoint.basePort} (Base) and ${endpoint.tempoPort} (Tempo), and one could not start there: another sandbox on this folder is running, or another program took the port. Stop it (or remove ${join(stateDir ?? "", "endpoint.json")} to pick new ports, then refresh the stack's run402:baseRpcUrl and run402:tempoRpcUrl). ${error instanceof Error ? error.message : String(error)}`,
          ),
          { code: "CONFLICT_SANDBOX_IN_USE" },
        );
      }),
    ),
    timed("port", listening),
  ] as const);
  const [chainsResult, portResult] = started;
  if (chainsResult.status === "rejected" || portResult.status === "rejected") {
    // Stop whatever did start, then report the first failure.
    server.close();
    await Promise.allSettled([chainsResult.status === "fulfilled" ? chainsResult.value.stop() : undefined]);
    throw started.find((r) => r.status === "rejected")?.reason;
  }
  const chains = chainsResult.value;
  // Postgres (PGlite loading its cluster: the longest part of a start, and CPU-bound on this thread,
  // where it would hold up the chains' set-up) starts once the chains are ready and keeps loading
  // while the API already serves: only the routes that use it (projects, deploys) wait for it.
  const opening = timed(
    "postgres",
    // Next turn: its synchronous start (reading the 40 MB template) must not delay the ready answer.
    new Promise((resolve) => setImmediate(resolve)).then(() =>
      openDatabase(stateDir ? { dataDir: join(stateDir, "pg") } : {}),
    ),
  );
  const db = lazyDatabase(opening, log);
  const boundPort = portResult.value;
  if (stateDir) {
    const next: Endpoint = {
      port: boundPort,
      basePort: Number(new URL(chains.base.rpcUrl).port),
      tempoPort: Number(new URL(chains.tempo.rpcUrl).port),
    };
    if (JSON.stringify(next) !== JSON.stringify(endpoint)) pinEndpoint(stateDir, next);
  }
  const apiBase = `http://${host}:${boundPort}`;
  const controls: Controls = { faults: [], requests: [], prices: {} };
  const uploads = options.uploads === "presigned" ? await startUploadOrigin() : undefined;
  const deps: Deps = {
    store,
    db,
    blobs: openBlobs(stateDir ? join(stateDir, "content") : undefined),
    gate: createPaymentGate({ chains, secretKey: store.state.secretKey }),
    clock,
    controls,
    inFlight: new Set(),
    log,
    apiBase: () => apiBase,
    uploads,
  };
  server.on("request", createApi(deps));
  // Requests node's parser rejects (bad Content-Length, garbage) get a plain 400; nothing crashes.
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    if (error.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    const body = JSON.stringify({
      code: "BAD_REQUEST",
      message: "The HTTP request could not be parsed.",
      category: "validation",
      retryable: false,
      safe_to_retry: false,
      next_actions: [],
    });
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  let stopped: Promise<void> | undefined;
  return {
    apiBase,
    x402: { rpcUrl: chains.base.rpcUrl, chainId: chains.base.chainId, asset: chains.base.usdc },
    mpp: { rpcUrl: chains.tempo.rpcUrl, chainId: chains.tempo.chainId, currency: chains.tempo.pathUsd },
    wallets: chains.wallets.map((w) => ({ address: w.address, privateKey: w.privateKey })),
    treasury: chains.treasury,
    uploadOrigin: uploads?.origin ?? null,
    phases,
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        store.save();
        await Promise.allSettled([db.close(), chains.stop(), uploads?.close()]);
      })();
      return stopped;
    },
  };
}

/** The ports a state folder's sandbox used last (`endpoint.json`): the API's and its chains'. */
interface Endpoint {
  port?: number | undefined;
  basePort?: number | undefined;
  tempoPort?: number | undefined;
}

function pinnedEndpoint(stateDir: string): Endpoint {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(join(stateDir, "endpoint.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
  const valid = (value: unknown) =>
    typeof value === "number" && Number.isInteger(value) && value > 0 && value < 65536 ? value : undefined;
  const out: Endpoint = {};
  for (const key of ["port", "basePort", "tempoPort"] as const) {
    const value = valid(parsed[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function pinEndpoint(stateDir: string, endpoint: Endpoint): void {
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, "endpoint.json");
  writeFileSync(`${file}.tmp`, `${JSON.stringify(endpoint)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** A {@link Database} whose calls wait for it to open; a failure to open fails every call, and is logged once. */
function lazyDatabase(opening: Promise<Database>, log: (line: string) => void): Database {
  opening.catch((error: unknown) =>
    log(`Postgres did not start: ${error instanceof Error ? error.message : String(error)}`),
  );
  return {
    createSchema: async (...args) => (await opening).createSchema(...args),
    dropSchema: async (...args) => (await opening).dropSchema(...args),
    migrations: async (...args) => (await opening).migrations(...args),
    migrate: async (...args) => (await opening).migrate(...args),
    query: async <T>(slot: string, sql: string, params?: unknown[]) =>
      (await opening).query<T>(slot, sql, params),
    close: async () => {
      const database = await opening.catch(() => undefined);
      await database?.close();
    },
  };
}
