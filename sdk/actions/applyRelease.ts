import { createHash } from "node:crypto";
import { BaseError } from "../../core/errors.js";
import { sha256Hex } from "../../schema/release.js";
import { ApiError, DeployFailedError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { pause } from "../internal/http.js";
import { deriveKey } from "../pay/idempotency.js";
import { commitContent } from "./commitContent.js";
import { commitPlan } from "./commitPlan.js";
import { getOperation, TERMINAL_OPERATION_STATUSES } from "./getOperation.js";
import { planContent } from "./planContent.js";
import {
  type ContentRef,
  type DeploySpec,
  MANIFEST_CONTENT_TYPE,
  PLAN_BODY_LIMIT_BYTES,
  type PlanReleaseReturnType,
  planBody,
  planRelease,
  type ReleaseSpec,
  SQL_CONTENT_TYPE,
  sqlRefOf,
  toWireSpec,
} from "./planRelease.js";
import { resolveUploadTarget, uploadContent } from "./uploadContent.js";

/**
 * One content hash named in the spec: its bytes, or its size and a reader (a file on disk, read only
 * when the server lacks it, so a large site is never held in memory whole).
 */
export type ContentBlob = { contentType: string } & (
  | { bytes: Uint8Array }
  | { size: number; read(): Promise<Uint8Array> }
);

/** Most refs one content plan lists. */
export const CONTENT_PLAN_REFS = 2000;

const sizeOf = (blob: ContentBlob) => ("bytes" in blob ? blob.bytes.byteLength : blob.size);
const bytesOf = async (blob: ContentBlob) => ("bytes" in blob ? blob.bytes : blob.read());

/** Parameters of `applyRelease`. */
export type ApplyReleaseParameters = {
  projectId: string;
  anonKey: string;
  spec: DeploySpec;
  /** Every blob the spec names, keyed by sha256 hex; only those the server lacks are uploaded. */
  content: Map<string, ContentBlob>;
  /** Stable id of this deploy; keys derived from it are sent as `idempotency_key` on plan and commit. */
  intent?: string | undefined;
  /** An `idempotency_key` chosen by the caller (a manifest's own), sent as is on plan and commit. */
  idempotencyKey?: string | undefined;
  /**
   * How long to wait for the operation to finish, as Run402's own client does (kychee-com/run402
   * sdk/src/namespaces/deploy.ts `COMMIT_POLL_TIMEOUT_MS`). Past it the server carries on; the error
   * names the operation. @default 600000
   */
  pollTimeoutMs?: number | undefined;
  /**
   * Longest wait between two reads of a running operation. Reads come at once, then after 100 ms,
   * doubling to 1 s, every second for the first 30 s, then 1.5 times longer each time up to this
   * (Run402's client: 1 s, then ×1.5 after 30 s, at most 30 s). @default 30000
   */
  pollIntervalMs?: number | undefined;
  /** Stops waiting for the operation (not the operation itself: the server carries on). */
  signal?: AbortSignal | undefined;
};
/** What `applyRelease` resolves to. */
export type ApplyReleaseReturnType = {
  releaseId: string | null;
  operationId: string | null;
  /** sha256 of every blob uploaded by this call. */
  uploaded: string[];
  /** The ref the spec travelled as when it was over {@link PLAN_BODY_LIMIT_BYTES} (`manifest_ref`). */
  manifestRef: ContentRef | undefined;
  diff: PlanReleaseReturnType["diff"];
  isNoop: boolean;
};
/** Errors `applyRelease` can throw. */
export type ApplyReleaseErrorType = ApiError | DeployFailedError | BaseError;

/** Codes of an `activation_pending` error that will not clear by waiting (deploy.ts `STATIC_ACTIVATION_FAILURE_CODES`). */
const STATIC_ACTIVATION_FAILURES = new Set([
  "BAD_FIELD",
  "INVALID_SPEC",
  "FUNCTION_ACTIVATE_FAILED",
  "FUNCTION_CONFIG_INVALID",
  "FUNCTION_TIMEOUT_EXCEEDS_TIER",
  "FUNCTION_MEMORY_EXCEEDS_TIER",
  "FUNCTION_SCHEDULE_EXCEEDS_TIER",
  "FUNCTION_SCHEDULE_INTERVAL_TOO_SHORT",
  "FUNCTION_SCHEDULE_LIMIT_EXCEEDED",
  "TIER_LIMIT_EXCEEDED",
]);

type OperationError =
  | {
      code: string;
      message?: string | undefined;
      retryable?: boolean | undefined;
      safe_to_retry?: boolean | undefined;
    }
  | null
  | undefined;

/** True when an operation in `status` with `error` will never become ready. */
export function operationFinished(status: string, error: OperationError): boolean {
  if (TERMINAL_OPERATION_STATUSES.includes(status)) return true;
  if (status !== "activation_pending" || !error?.code) return false;
  return (
    error.retryable === false ||
    error.safe_to_retry === false ||
    STATIC_ACTIVATION_FAILURES.has(error.code.toUpperCase())
  );
}

/**
 * The wait before the next read of a running operation, `elapsed` ms after the commit: 100 ms doubling
 * to 1 s, 1 s for the first 30 s, then 1.5 times the last wait, at most `max`.
 */
export function nextPollWait(last: number, elapsed: number, max: number): number {
  if (last < 1000) return Math.min(last * 2, 1000, max);
  if (elapsed <= 30_000) return Math.min(1000, max);
  return Math.min(Math.floor(last * 1.5), max);
}

/** Rounds of plan and commit when the live release moves under us (Run402's client retries twice). */
const CONFLICT_ROUNDS = 3;

/** Adds the bytes of every inline migration SQL to `content`: they travel as `sql_ref` content (see toWireSpec). */
export function addSqlContent(spec: DeploySpec, content: Map<string, ContentBlob>): void {
  for (const m of spec.database?.migrations ?? []) {
    if (m.sql === undefined) continue;
    const ref = sqlRefOf(m);
    if (!content.has(ref.sha256))
      content.set(ref.sha256, {
        bytes: new Uint8Array(Buffer.from(m.sql, "utf8")),
        contentType: SQL_CONTENT_TYPE,
      });
  }
}

/** Uploads blobs the server lacks: content plan, PUT each part, commit. Returns their sha256. */
async function upload(
  ctx: ActionContext,
  anonKey: string,
  wanted: { sha256: string; size: number; content_type?: string | null | undefined }[],
  content: Map<string, ContentBlob>,
): Promise<string[]> {
  if (wanted.length === 0) return [];
  const absent = wanted.filter((c) => !content.has(c.sha256));
  if (absent.length) {
    throw new BaseError(
      `The spec names content that was not provided: ${absent.map((c) => c.sha256).join(", ")}.`,
      { code: "CONTENT_NOT_PROVIDED" },
    );
  }
  const refs = wanted.map((c) => ({
    sha256: c.sha256,
    size: c.size,
    content_type: c.content_type ?? content.get(c.sha256)?.contentType,
  }));
  // A content plan lists at most CONTENT_PLAN_REFS refs, so its body stays far below a server's body
  // limit (10,000 refs are over 1 MiB): a large site takes several plans, each committed once its
  // bytes are up.
  const plans: Awaited<ReturnType<typeof planContent>>[] = [];
  for (let at = 0; at < refs.length; at += CONTENT_PLAN_REFS)
    plans.push(await planContent(ctx, { anonKey, content: refs.slice(at, at + CONTENT_PLAN_REFS) }));
  const uploaded: string[] = [];
  const total = plans.reduce((n, p) => n + p.missing.length, 0);
  const bytesTotal = plans.reduce(
    (n, p) =>
      n +
      p.missing.reduce((m, missing) => {
        const blob = content.get(missing.sha256);
        return m + (blob ? sizeOf(blob) : 0);
      }, 0),
    0,
  );
  let bytesDone = 0;
  // Every upload URL of every plan is checked (and its host resolved) before the first byte goes.
  const { apiBase, uploadOrigins } = ctx.transport;
  for (const contentPlan of plans)
    for (const missing of contentPlan.missing)
      for (const part of missing.parts) await resolveUploadTarget(apiBase, part.url, uploadOrigins);
  for (const contentPlan of plans) {
    for (const missing of contentPlan.missing) {
      const blob = content.get(missing.sha256);
      if (!blob)
        throw new BaseError(`The server asked for content ${missing.sha256} the spec does not name.`, {
          code: "CONTENT_NOT_PROVIDED",
        });
      // One blob in memory at a time: a file is read when its turn comes.
      const data = await bytesOf(blob);
      // Run402's byte_end is inclusive; a last part ending at the size is read as exclusive.
      const exclusive = (missing.parts.at(-1)?.byte_end ?? 0) >= data.length;
      const multipart = missing.mode === "multipart";
      for (const part of missing.parts) {
        const bytes = data.subarray(part.byte_start, exclusive ? part.byte_end : part.byte_end + 1);
        // A single upload carries the object's sha256; a part its own (Run402's client does the same).
        const checksumBase64 = multipart
          ? createHash("sha256").update(bytes).digest("base64")
          : Buffer.from(missing.sha256, "hex").toString("base64");
        const { etag } = await uploadContent(ctx, { url: part.url, bytes, checksumBase64 });
        if (multipart && !etag)
          throw new BaseError(
            `The upload host accepted part ${part.part_number} of ${missing.sha256} without an ETag.`,
            { code: "HTTP_UPLOAD_FAILED" },
          );
      }
      uploaded.push(missing.sha256);
      bytesDone += data.length;
      ctx.transport.emit({
        type: "upload",
        sha256: missing.sha256,
        done: uploaded.length,
        total,
        bytesDone,
        bytesTotal,
      });
    }
    await commitContent(ctx, { anonKey, planId: contentPlan.plan_id });
  }
  return uploaded;
}

/**
 * Plans, uploads missing content, commits and waits for the release to go live. A spec whose plan body
 * would exceed 5 MiB is uploaded as content first and planned by `manifest_ref`, as `@run402/sdk` does.
 */
export async function applyRelease(
  ctx: ActionContext,
  parameters: ApplyReleaseParameters,
): Promise<ApplyReleaseReturnType> {
  const { projectId, anonKey, intent, signal, pollTimeoutMs = 600_000, pollIntervalMs = 30_000 } = parameters;
  const content = new Map(parameters.content);
  const spec: ReleaseSpec = { ...parameters.spec, project: projectId };
  addSqlContent(spec, content);
  const uploaded: string[] = [];

  let manifestRef: ContentRef | undefined;
  const inline = JSON.stringify(
    planBody({ projectId, spec, idempotencyKey: parameters.idempotencyKey ?? intent }),
  );
  if (Buffer.byteLength(inline) > PLAN_BODY_LIMIT_BYTES) {
    const bytes = new Uint8Array(Buffer.from(JSON.stringify(toWireSpec(spec)), "utf8"));
    manifestRef = { sha256: sha256Hex(bytes), size: bytes.byteLength, content_type: MANIFEST_CONTENT_TYPE };
    content.set(manifestRef.sha256, { bytes, contentType: MANIFEST_CONTENT_TYPE });
    uploaded.push(...(await upload(ctx, anonKey, [manifestRef], content)));
  }

  // A base-release conflict means someone deployed between our plan and commit: plan again (twice at most).
  for (let round = 1; ; round++) {
    const planKey =
      parameters.idempotencyKey ??
      (intent
        ? deriveKey({
            intent: `${intent}#${round}`,
            method: "POST",
            route: "/apply/v1/plans",
            body: toWireSpec(spec),
          })
        : undefined);
    const plan = await planRelease(ctx, { projectId, spec, idempotencyKey: planKey, manifestRef });
    uploaded.push(...(await upload(ctx, anonKey, plan.missing, content)));
    if (plan.is_noop === true) {
      return {
        releaseId: plan.base_release_id ?? null,
        operationId: plan.operation_id ?? null,
        uploaded,
        manifestRef,
        diff: plan.diff,
        isNoop: true,
      };
    }
    let committed: Awaited<ReturnType<typeof commitPlan>>;
    try {
      committed = await commitPlan(ctx, { planId: plan.plan_id, idempotencyKey: planKey });
    } catch (err) {
      if (round < CONFLICT_ROUNDS && err instanceof ApiError && err.code === "BASE_RELEASE_CONFLICT")
        continue;
      throw err;
    }
    const operationId = committed.operation_id;
    let status = committed.status;
    let error: OperationError = committed.error;
    let releaseId = committed.release_id ?? null;
    ctx.transport.emit({ type: "deploy.status", operationId, status });
    const started = Date.now();
    let wait = 50;
    // A commit answers running, ready, or failed (with its reason); anything else is polled.
    while (status !== "ready" && !operationFinished(status, error)) {
      if (Date.now() - started > pollTimeoutMs) {
        throw new BaseError(
          `Deploy operation ${operationId} did not finish within ${pollTimeoutMs} ms; the server carries on with it.`,
          {
            code: "DEPLOY_TIMEOUT",
            metaMessages: [
              `Last status: ${status}`,
              `Read it with GET /apply/v1/operations/${operationId}; run the update again once it is ready.`,
            ],
          },
        );
      }
      wait = nextPollWait(wait, Date.now() - started, pollIntervalMs);
      await pause(
        wait,
        signal ?? ctx.transport.signal,
        `waiting for deploy operation ${operationId} (last status ${status}; the server carries on with it)`,
      );
      const op = await getOperation(ctx, { anonKey, operationId });
      if (op.status !== status) ctx.transport.emit({ type: "deploy.status", operationId, status: op.status });
      status = op.status;
      error = op.error;
      releaseId = op.release_id ?? releaseId;
    }
    if (status !== "ready") {
      // The live release moved between plan and commit: Run402 reports it on the commit (a 200 with
      // status failed) or on the operation. Plan again over the new base.
      if (round < CONFLICT_ROUNDS && error?.code === "BASE_RELEASE_CONFLICT") continue;
      throw new DeployFailedError({ operationId, status, code: error?.code, message: error?.message });
    }
    return {
      releaseId,
      operationId,
      uploaded,
      manifestRef,
      diff: plan.diff,
      isNoop: false,
    };
  }
}
