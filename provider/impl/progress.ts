/**
 * Progress of long work in the provider process (payments pending on the server, uploads, deploy
 * polling), reported as ephemeral engine log lines (a settled payment, and what a Tier plans to pay,
 * as lasting ones): `pulumi up` shows them on the resource's row
 * while it works, and the run402-pulumi CLI prints them on stderr (it reads the engine's events).
 *
 * The SDK reports what it does through `onEvent`; {@link publish} receives those events and turns
 * the notable ones into one line each.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";
import type { Run402Event } from "../../sdk/index.js";

/** The URN the running handler works on (for the engine to place the line). */
const currentUrn = new AsyncLocalStorage<string>();

/** Runs `work` with log lines attributed to `urn`. */
export function withUrn<T>(urn: unknown, work: () => Promise<T>): Promise<T> {
  return currentUrn.run(typeof urn === "string" && urn.startsWith("urn:pulumi:") ? urn : "", work);
}

function kb(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} kB`;
}

/** The progress line for an SDK event, or undefined for the ones not worth a line. */
export function progressLine(event: Run402Event): string | undefined {
  switch (event.type) {
    case "payment.signing":
      return `paying $${event.amountUsd} on ${event.rail} (${event.network})…`;
    case "payment.settled":
      return `paid $${event.settlement.amountUsd} on ${event.settlement.rail}${event.settlement.reference ? `, tx ${event.settlement.reference}` : ""}`;
    case "payment.replayed":
      return "the server already holds this payment's result: nothing paid again";
    case "payment.repurchased":
      return `the server sold this purchase again ($${event.settlement.amountUsd} on ${event.settlement.rail}) instead of replaying the earlier payment's result: a second purchase, recorded and counted against the caps`;
    case "payment.pending":
      return `a payment for this purchase is still pending on the server; asking again in ${Math.ceil(event.waitMs / 1000)} s…`;
    case "payment.resolved":
      return event.outcome === "paid"
        ? `an earlier run's payment went through${event.reference ? ` (tx ${event.reference})` : ""}: recorded, not paid again`
        : `an earlier run's payment was never made (${event.how})`;
    case "payment.unfinished":
      return event.state === "paid"
        ? `an earlier run paid${event.amountUsd ? ` $${event.amountUsd}` : ""} for ${event.intentId} and the server has not delivered it: apply asks the server for the stored result and never pays it again`
        : `an earlier run's payment${event.amountUsd ? ` of $${event.amountUsd}` : ""} for ${event.intentId} may have been made: apply asks the chain and the server before paying anything for it`;
    case "payment.cancelling":
      return `cancelling an earlier run's unused payment on ${event.network}, so it can never be paid twice…`;
    case "payment.refused":
      return `payment refused before signing: ${event.message}`;
    case "retry":
      return `${event.method} ${new URL(event.url).pathname} answered ${event.status}; retry ${event.attempt} in ${Math.ceil(event.waitMs / 1000)} s…`;
    case "upload":
      return `uploaded ${event.done} of ${event.total} files (${kb(event.bytesDone)} of ${kb(event.bytesTotal)})`;
    case "deploy.status":
      return `deploy ${event.operationId}: ${event.status}`;
    default:
      return undefined;
  }
}

/** Shortest time between two upload lines: a site of 10,000 files reports a few a second, not 10,000. */
const UPLOAD_LINE_MS = 250;
let lastUploadLine = 0;

/** Receives the SDK's events (the client's `onEvent`). Never throws. */
export function publish(event: Run402Event): void {
  if (event.type === "upload" && event.done < event.total) {
    const now = Date.now();
    // The first and the last upload of a deploy always get their line.
    if (event.done > 1 && now - lastUploadLine < UPLOAD_LINE_MS) return;
    lastUploadLine = now;
  }
  const line = progressLine(event);
  // A settled payment stays on the resource's row (the diagnostics `pulumi up` prints at the end);
  // the rest is progress, shown while it lasts.
  if (line) log(line, { ephemeral: !settles(event) });
}

/** The events that record money moving: kept in the run's output, not only shown while it runs. */
function settles(event: Run402Event): boolean {
  return event.type === "payment.settled" || event.type === "payment.repurchased";
}

interface EngineClient {
  log(request: unknown, callback: (error: unknown) => void): void;
}

let engine: EngineClient | null | undefined;
let logRequest: (() => LogRequest) | undefined;
let warningSeverity = 0;

interface LogRequest {
  setSeverity(s: number): void;
  setMessage(m: string): void;
  setUrn(u: string): void;
  setEphemeral(e: boolean): void;
}
let queue: Promise<void> = Promise.resolve();

/**
 * The engine's log service. The engine starts a provider with its own address as the first
 * argument (`pulumi-resource-pulumi-nodejs <engine>`); anywhere else there is none.
 */
function engineClient(): EngineClient | null {
  if (engine !== undefined) return engine;
  engine = null;
  const address = process.argv[2];
  if (
    !/dynamic-provider|pulumi-resource-run402|native[\\/]main/.test(process.argv[1] ?? "") ||
    !address ||
    !/^[\w.-]+:\d+$/.test(address)
  ) {
    return engine;
  }
  try {
    // Resolved from @pulumi/pulumi itself, so the gRPC stack is the one its generated code uses.
    const require = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi"));
    const grpc = require("@grpc/grpc-js") as { credentials: { createInsecure(): unknown } };
    const { EngineClient } = require("@pulumi/pulumi/proto/engine_grpc_pb") as {
      EngineClient: new (address: string, credentials: unknown) => EngineClient;
    };
    const proto = require("@pulumi/pulumi/proto/engine_pb") as {
      LogRequest: new () => LogRequest;
      LogSeverity: { INFO: number; WARNING: number };
    };
    warningSeverity = proto.LogSeverity.WARNING;
    logRequest = () => {
      const request = new proto.LogRequest();
      request.setSeverity(proto.LogSeverity.INFO);
      return request;
    };
    engine = new EngineClient(address, grpc.credentials.createInsecure());
  } catch {
    engine = null;
  }
  return engine;
}

/**
 * Sends one info line to the engine (in order; a failure drops the line), on the row of the
 * resource being worked on. Ephemeral (the default) lines are progress, shown while the work lasts;
 * the others stay: `pulumi preview` and `pulumi up` print them under "Diagnostics", by resource.
 */
export function log(message: string, options: { ephemeral?: boolean; warning?: boolean } = {}): void {
  const ephemeral = options.ephemeral ?? true;
  const client = engineClient();
  if (!client) return;
  const urn = currentUrn.getStore() ?? "";
  queue = queue.then(
    () =>
      new Promise<void>((done) => {
        try {
          // The module was loaded with the client (engineClient): no module resolution per line.
          const request = (logRequest as () => LogRequest)();
          request.setMessage(message);
          request.setUrn(urn);
          request.setEphemeral(ephemeral);
          if (options.warning) request.setSeverity(warningSeverity);
          client.log(request, () => done());
        } catch {
          done();
        }
      }),
  );
}
