import { BaseError } from "../../core/errors.js";
import { sha256Hex } from "../../schema/release.js";
import { ApiError, DeployFailedError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { deriveKey } from "../pay/idempotency.js";
import { commitContent } from "./commitContent.js";
import { commitPlan } from "./commitPlan.js";
import { getOperation } from "./getOperation.js";
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
import { uploadContent } from "./uploadContent.js";

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
  /** How long to wait for the operation to finish. @default 120000 */
  pollTimeoutMs?: number | undefined;
  /**
   * Longest wait between two reads of a running operation. The first reads come sooner (20 ms,
   * doubling), so a deploy that finishes in a moment is seen at once. @default 250
   */
  pollIntervalMs?: number | undefined;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  for (const contentPlan of plans) {
    for (const missing of contentPlan.missing) {
      const blob = content.get(missing.sha256);
      if (!blob)
        throw new BaseError(`The server asked for content ${missing.sha256} the spec does not name.`, {
          code: "CONTENT_NOT_PROVIDED",
        });
      // One blob in memory at a time: a file is read when its turn comes.
      const data = await bytesOf(blob);
      // The contract leaves byte_end's inclusivity open: if the last part ends at the size, it is exclusive.
      const exclusive = (missing.parts.at(-1)?.byte_end ?? 0) >= data.length;
      for (const part of missing.parts) {
        const bytes = data.subarray(part.byte_start, exclusive ? part.byte_end : part.byte_end + 1);
        await uploadContent(ctx, { url: part.url, bytes, contentType: blob.contentType, anonKey });
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
  const { projectId, anonKey, intent, pollTimeoutMs = 120_000, pollIntervalMs = 250 } = parameters;
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

  // A base-release conflict means someone deployed between our plan and commit: plan again, once.
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
    if (plan.is_noop) {
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
      if (round < 2 && err instanceof ApiError && err.code === "BASE_RELEASE_CONFLICT") continue;
      throw err;
    }
    const deadline = Date.now() + pollTimeoutMs;
    let status = committed.status;
    ctx.transport.emit({ type: "deploy.status", operationId: committed.operation_id, status });
    let releaseId = committed.release_id ?? null;
    let wait = Math.min(20, pollIntervalMs);
    while (status !== "ready") {
      const op = await getOperation(ctx, { anonKey, operationId: committed.operation_id });
      if (op.status !== status)
        ctx.transport.emit({ type: "deploy.status", operationId: committed.operation_id, status: op.status });
      status = op.status;
      releaseId = op.release_id ?? releaseId;
      if (op.status === "failed" || op.status === "rolled_back") {
        throw new DeployFailedError({
          operationId: committed.operation_id,
          status: op.status,
          code: op.error?.code,
          message: op.error?.message,
        });
      }
      if (op.status === "ready") break;
      if (Date.now() > deadline) {
        throw new BaseError(
          `Deploy operation ${committed.operation_id} did not finish within ${pollTimeoutMs} ms.`,
          {
            code: "DEPLOY_TIMEOUT",
            metaMessages: [`Last status: ${op.status}`],
          },
        );
      }
      await sleep(wait);
      wait = Math.min(wait * 2, pollIntervalMs);
    }
    return {
      releaseId,
      operationId: committed.operation_id,
      uploaded,
      manifestRef,
      diff: plan.diff,
      isNoop: false,
    };
  }
}
