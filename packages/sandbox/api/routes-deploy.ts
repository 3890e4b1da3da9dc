/**
 * The deploy flow: plan → content plan + uploads + content commit → apply commit → operation →
 * active release, and the site server. Specs are parsed, materialized, digested and diffed by
 * `@run402/release`, the library Run402 itself runs; a release is activated only after its
 * migrations committed.
 */
import { createHash } from "node:crypto";
import {
  type ContentRefHex,
  canonicalizeJson,
  collectContentRefsFromSpec,
  computeReleaseDiff,
  derivePlanMigrations,
  digestApplyRequest,
  digestMaterializedRelease,
  emptyPortableReleaseState,
  materializeRelease,
  type PortableReleaseState,
  parseReleaseSpec,
  ReleaseCoreError,
  type ReleaseSpec,
} from "@run402/release";
import type { AssetEntry, ContentPlan, Plan, PlannedMigration, Project, Release } from "../state.js";
import {
  activeRelease,
  apikeyProject,
  assertWritable,
  type Deps,
  iso,
  ownedProject,
  siteUrl,
  siwx,
} from "./context.js";
import { ApiError, badRequest, conflict, notFound } from "./errors.js";
import type { Ctx, Reply, Route } from "./http.js";
import { MULTIPART_THRESHOLD_BYTES, PART_SIZE_BYTES } from "./s3.js";
import { specFromWire } from "./wire.js";

const MiB = 1024 * 1024;
/** Site paths a release inventory lists by default, and at most (Run402's `site_limit`). */
export const SITE_LIMIT_DEFAULT = 5_000;
export const SITE_LIMIT_MAX = 25_000;
/** `@run402/sdk` sends plan bodies up to 5 MiB inline; the limit leaves room for the envelope. */
export const PLAN_BODY_MAX_BYTES = 6 * MiB;

type Obj = Record<string, unknown>;

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** A content ref on the wire, either spelling. */
function wireRef(v: unknown, where: string): ContentRefHex {
  if (!isObj(v))
    throw badRequest("INVALID_CONTENT", `${where} must be a content ref { sha256, size, content_type }.`);
  const { sha256: sha, size } = v;
  const contentType = v["content_type"] ?? v["contentType"];
  if (typeof sha !== "string" || !/^[0-9a-f]{64}$/.test(sha))
    throw badRequest("INVALID_CONTENT", `${where}.sha256 must be 64 lowercase hex characters.`);
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0)
    throw badRequest("INVALID_CONTENT", `${where}.size must be a byte count.`);
  if (contentType !== undefined && contentType !== null && typeof contentType !== "string")
    throw badRequest("INVALID_CONTENT", `${where}.content_type must be a string.`);
  return { sha256: sha, size, ...(typeof contentType === "string" ? { contentType } : {}) };
}

/** Run402's validator refused the spec: 400 INVALID_SPEC naming the field. */
function invalidSpec(error: ReleaseCoreError | (Error & { code?: string; resource?: string })): ApiError {
  const code = error instanceof ReleaseCoreError ? "INVALID_SPEC" : (error.code ?? "INVALID_SPEC");
  return badRequest(code, error.message, { resource: error.resource ?? null });
}

function releaseCall<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof ReleaseCoreError) throw invalidSpec(error);
    const coded = error as Error & { code?: string; resource?: string };
    if (coded?.name === "StaticManifestError") throw invalidSpec(coded);
    throw error;
  }
}

/** The spec a plan request carries: inline, or the content `manifest_ref` names. */
function wireSpec(deps: Deps, body: Obj): { wire: Obj; manifestRef: ContentRefHex | undefined } {
  const { spec, manifest_ref } = body;
  if (!isObj(spec) || typeof spec["project_id"] !== "string")
    throw badRequest("INVALID_SPEC", "spec.project_id is required.", { resource: "project" });
  if (manifest_ref === undefined) return { wire: spec, manifestRef: undefined };
  const ref = wireRef(manifest_ref, "manifest_ref");
  const bytes = deps.store.state.content[ref.sha256] ? deps.blobs.get(ref.sha256) : undefined;
  if (!bytes) {
    throw conflict("CONTENT_MISSING", "manifest_ref names content that is not uploaded and committed.", {
      details: { missing: [ref.sha256] },
      next_actions: [{ type: "upload_content", method: "POST", path: "/content/v1/plans" }],
    });
  }
  let wire: unknown;
  try {
    wire = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw badRequest("INVALID_SPEC", "manifest_ref content is not JSON.", { resource: "manifest_ref" });
  }
  if (!isObj(wire))
    throw badRequest("INVALID_SPEC", "manifest_ref content is not a JSON object.", {
      resource: "manifest_ref",
    });
  if (wire["project_id"] !== undefined && wire["project_id"] !== spec["project_id"]) {
    throw badRequest("INVALID_SPEC", "manifest_ref names another project than spec.project_id.", {
      resource: "project",
    });
  }
  return { wire: { ...wire, project_id: spec["project_id"] }, manifestRef: ref };
}

/** The base a plan builds on, with every migration the database recorded (the database is authoritative). */
async function baseState(
  deps: Deps,
  project: Project,
  base: Release | undefined,
): Promise<PortableReleaseState> {
  const state = structuredClone(base?.state ?? emptyPortableReleaseState());
  for (const applied of await deps.db.migrations(project.projectId)) {
    if (!state.migrations.some((m) => m.migration_id === applied.migration_id)) {
      state.migrations.push({
        migration_id: applied.migration_id,
        checksum_hex: applied.checksum_hex,
        transaction: "default",
      });
    }
  }
  state.migrations.sort((a, b) =>
    a.migration_id < b.migration_id ? -1 : a.migration_id > b.migration_id ? 1 : 0,
  );
  return state;
}

/** The project's assets after the spec's `assets` slice (put, delete, sync-prune), or null without one. */
function nextAssets(project: Project, spec: ReleaseSpec): Record<string, AssetEntry> | null {
  if (!spec.assets) return null;
  const out: Record<string, AssetEntry> = structuredClone(project.assets ?? {});
  const put = spec.assets.put ?? [];
  for (const entry of put) {
    out[entry.key] = {
      sha256: entry.sha256,
      size_bytes: entry.size_bytes,
      content_type: entry.content_type ?? null,
      visibility: entry.visibility ?? "public",
      immutable: entry.immutable ?? false,
    };
  }
  for (const key of spec.assets.delete ?? []) delete out[key];
  const sync = spec.assets.sync;
  if (sync) {
    const kept = new Set(put.map((e) => e.key));
    for (const key of Object.keys(out)) if (key.startsWith(sync.prefix) && !kept.has(key)) delete out[key];
  }
  return out;
}

function subdomainOwner(deps: Deps, name: string): Project | undefined {
  return Object.values(deps.store.state.projects).find(
    (p) => p.deletedAt === null && activeRelease(deps, p)?.state.subdomains.names.includes(name),
  );
}

/** Validates, materializes and diffs a plan request; throws the ApiError Run402 would answer. */
async function makePlan(
  deps: Deps,
  project: Project,
  wallet: string,
  spec: ReleaseSpec,
  manifestRef: ContentRefHex | undefined,
  idempotencyKey: string | null,
): Promise<Plan> {
  const { store, clock } = deps;
  const live = activeRelease(deps, project);
  let baseRelease = live;
  if (spec.base && "release_id" in spec.base) {
    baseRelease = store.state.releases[spec.base.release_id];
    if (!baseRelease || baseRelease.projectId !== project.projectId)
      throw badRequest("INVALID_SPEC", "base.release_id is unknown.", { resource: "base.release_id" });
  } else if (spec.base?.release === "empty") {
    if (live) throw conflict("BASE_RELEASE_CONFLICT", "base is empty but the project has a live release.");
    baseRelease = undefined;
  }
  const base = await baseState(deps, project, baseRelease);

  const applied = new Map(
    (await deps.db.migrations(project.projectId)).map((m) => [m.migration_id, m.checksum_hex]),
  );
  for (const m of spec.database?.migrations ?? []) {
    const prior = applied.get(m.id);
    if (prior !== undefined && prior !== m.checksum.toLowerCase()) {
      throw conflict(
        "MIGRATION_CHECKSUM_MISMATCH",
        `Migration ${m.id} was already applied with different SQL.`,
        {
          details: { migration_id: m.id },
        },
      );
    }
    if (m.sql !== undefined && sha256(m.sql) !== m.checksum.toLowerCase()) {
      throw badRequest(
        "MIGRATION_CHECKSUM_INVALID",
        `Migration ${m.id}: checksum is not the sha256 of its sql.`,
      );
    }
  }

  const target = releaseCall(() => materializeRelease({ spec, concreteBase: base }));
  const missingSecrets = target.secrets.keys.filter((k) => !project.secrets[k]);
  if (missingSecrets.length > 0) {
    throw conflict("SECRETS_MISSING", `Required secrets are not set: ${missingSecrets.join(", ")}.`, {
      details: { missing: missingSecrets },
      next_actions: [{ type: "set_secret", keys: missingSecrets }],
    });
  }
  if (spec.subdomains) {
    for (const name of target.subdomains.names) {
      const owner = subdomainOwner(deps, name);
      if (owner && owner.projectId !== project.projectId)
        throw conflict("SUBDOMAIN_TAKEN", `Subdomain ${name} belongs to another project.`);
    }
  }

  const planMigrations = derivePlanMigrations(base, spec);
  const fresh = new Set(planMigrations.new.map((m) => m.id));
  const migrations: PlannedMigration[] = (spec.database?.migrations ?? [])
    .filter((m) => fresh.has(m.id))
    .map((m) => ({
      id: m.id,
      checksum: m.checksum.toLowerCase(),
      ...(m.sql !== undefined ? { sql: m.sql } : { sqlRef: m.sql_ref?.sha256 as string }),
    }));
  const envelope = releaseCall(() =>
    computeReleaseDiff(base, target, { plan_migrations: planMigrations, include_core_warnings: true, spec }),
  );
  const expose = spec.database?.expose !== undefined ? spec.database.expose : (baseRelease?.expose ?? null);
  const assets = nextAssets(project, spec);
  const releaseDigest = digestMaterializedRelease(target);
  // A project's first deploy activates a release even when it is empty, so it always has one after.
  const isNoop =
    live !== undefined &&
    baseRelease === live &&
    releaseDigest === digestMaterializedRelease(base) &&
    JSON.stringify(expose) === JSON.stringify(live?.expose ?? null) &&
    (assets === null || JSON.stringify(assets) === JSON.stringify(project.assets ?? {}));

  const refs = collectContentRefsFromSpec(spec, manifestRef);
  const { idempotency_key: _key, ...digestable } = spec;
  const seq = String(store.nextSeq()).padStart(4, "0");
  const now = clock.now();
  const planId = `pln_${now}_${seq}`;
  const operationId = `op_${now}_${seq}`;
  const manifestDigest = digestApplyRequest(digestable);
  const response: Obj = {
    kind: "plan_response",
    plan_id: planId,
    operation_id: operationId,
    base_release_id: baseRelease?.releaseId ?? null,
    manifest_digest: manifestDigest,
    release_digest: releaseDigest,
    ...envelope,
    is_noop: isNoop,
    missing_content: refs.map((r) => ({
      sha256: r.sha256,
      size: r.size,
      content_type: r.contentType ?? null,
      present: !!store.state.content[r.sha256],
    })),
  };
  return {
    planId,
    operationId,
    projectId: project.projectId,
    wallet,
    baseReleaseId: baseRelease?.releaseId ?? null,
    manifestDigest,
    target,
    releaseDigest,
    expose,
    migrations,
    deleteSecrets: spec.secrets?.delete ?? [],
    assets,
    content: refs.map((r) => r.sha256),
    isNoop,
    idempotencyKey,
    response,
    createdAt: now,
    committed: false,
  };
}

/** The plan response as stored, with content presence as it is now. */
function planResponse(deps: Deps, plan: Plan): Obj {
  const missing = (plan.response["missing_content"] as Obj[]).map((c) => ({
    ...c,
    present: !!deps.store.state.content[c["sha256"] as string],
  }));
  return { ...plan.response, missing_content: missing };
}

/** How many releases of its project were activated up to and including `r`. */
function releaseGeneration(r: Release): number {
  return r.generation ?? 1;
}

function operationView(deps: Deps, opId: string): Obj {
  const op = deps.store.state.operations[opId]!;
  return {
    operation_id: op.operationId,
    project_id: op.projectId,
    plan_id: op.planId,
    status: op.status,
    base_release_id: deps.store.state.plans[op.planId]?.baseReleaseId ?? null,
    target_release_id: op.releaseId,
    release_id: op.releaseId,
    payment_required: null,
    error: op.error,
    activate_attempts: op.status === "ready" ? 1 : 0,
    last_activate_attempt_at: op.status === "ready" ? iso(op.updatedAt) : null,
    urls: op.status === "ready" ? { site: siteUrl(deps, op.projectId) } : null,
    created_at: iso(op.createdAt),
    updated_at: iso(op.updatedAt),
  };
}

/** The commit answer: Run402 names the release and its URLs once the operation is ready. */
function commitView(deps: Deps, opId: string): Obj {
  const op = deps.store.state.operations[opId]!;
  return {
    operation_id: op.operationId,
    status: op.status,
    release_id: op.releaseId,
    urls: op.status === "ready" ? { site: siteUrl(deps, op.projectId) } : null,
    ...(op.error ? { error: op.error } : {}),
  };
}

/**
 * One upload session of a content plan (Run402's `MissingContent`): a presigned PUT of the whole
 * object, or presigned part PUTs of a multipart upload, on the upload origin; without one, a PUT to
 * the API's own `/_uploads`.
 */
async function uploadSession(
  deps: Deps,
  planId: string,
  item: ContentPlan["items"][number],
  expiresAt: number,
): Promise<Obj> {
  const common = { sha256: item.sha256, expires_at: iso(expiresAt) };
  const lifetime = Math.max(1, Math.round((expiresAt - Date.now()) / 1000));
  const origin = deps.uploads;
  if (!origin) {
    return {
      ...common,
      mode: "single",
      parts: [
        {
          part_number: 1,
          url: `${deps.apiBase()}/_uploads/${planId}/${item.sha256}`,
          byte_start: 0,
          byte_end: Math.max(0, item.size - 1),
        },
      ],
      part_size_bytes: item.size,
      part_count: 1,
      upload_id: "",
      staging_key: `${planId}/${item.sha256}`,
    };
  }
  const key = `staging/${planId}/${item.sha256}`;
  item.stagingKey = key;
  if (item.size <= MULTIPART_THRESHOLD_BYTES) {
    return {
      ...common,
      mode: "single",
      parts: [
        {
          part_number: 1,
          url: await origin.presignPut(key, item.size, item.sha256, lifetime),
          byte_start: 0,
          byte_end: Math.max(0, item.size - 1),
        },
      ],
      part_size_bytes: item.size,
      part_count: 1,
      upload_id: "",
      staging_key: key,
    };
  }
  const uploadId = origin.createMultipart(key);
  const count = Math.ceil(item.size / PART_SIZE_BYTES);
  item.uploadId = uploadId;
  item.partCount = count;
  const parts: Obj[] = [];
  for (let n = 1; n <= count; n++) {
    const start = (n - 1) * PART_SIZE_BYTES;
    const end = Math.min(item.size, start + PART_SIZE_BYTES) - 1;
    parts.push({
      part_number: n,
      url: await origin.presignPart(key, uploadId, n, end - start + 1, lifetime),
      byte_start: start,
      byte_end: end,
    });
  }
  return {
    ...common,
    mode: "multipart",
    parts,
    part_size_bytes: PART_SIZE_BYTES,
    part_count: count,
    upload_id: uploadId,
    staging_key: key,
  };
}

/** Runs an operation: migrations in one transaction, then activation. Never throws. */
async function runOperation(deps: Deps, plan: Plan): Promise<void> {
  const { store, clock } = deps;
  const op = store.state.operations[plan.operationId]!;
  const project = store.state.projects[plan.projectId]!;
  const step = (status: typeof op.status, error: typeof op.error = null) => {
    op.status = status;
    op.error = error;
    op.updatedAt = clock.now();
    store.save();
  };
  // Run402's phases in order (kychee-com/run402 sdk/src/namespaces/deploy.ts, the phase map of
  // pollSnapshotUntilReady): each is saved, and the event loop turns between them, so a poll sees them.
  const phase = async (status: typeof op.status) => {
    step(status);
    await new Promise((r) => setImmediate(r));
  };
  try {
    await phase("staging");
    await phase("gating");
    if (plan.migrations.length > 0) {
      await phase("migrating");
      try {
        // Migrations sent as `sql_ref` run the SQL uploaded as content (checked against its sha256 on upload).
        const runnable = plan.migrations.map((m) => ({
          id: m.id,
          checksum: m.checksum,
          sql: m.sql ?? (deps.blobs.get(m.sqlRef as string)?.toString("utf8") as string),
        }));
        await deps.db.migrate(project.schemaSlot, project.projectId, runnable);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        step("failed", { code: "MIGRATION_FAILED", message, phase: "migrate", retryable: false });
        return;
      }
      await phase("schema_settling");
    }
    await phase("activating");
    if (project.deletedAt !== null)
      return step("failed", { code: "PROJECT_DELETED", message: "The project was deleted." });
    const release: Release = {
      releaseId: `rel_${clock.now()}_${String(store.nextSeq()).padStart(4, "0")}`,
      projectId: project.projectId,
      manifestDigest: plan.manifestDigest,
      releaseDigest: plan.releaseDigest,
      state: structuredClone(plan.target),
      expose: structuredClone(plan.expose),
      activatedAt: clock.now(),
      operationId: op.operationId,
      generation:
        Object.values(store.state.releases).filter((x) => x.projectId === project.projectId).length + 1,
    };
    store.state.releases[release.releaseId] = release;
    project.activeReleaseId = release.releaseId;
    for (const k of plan.deleteSecrets) delete project.secrets[k];
    if (plan.assets) project.assets = structuredClone(plan.assets);
    op.releaseId = release.releaseId;
    step("ready");
  } catch (error) {
    deps.log(`operation ${op.operationId} failed: ${error instanceof Error ? error.message : String(error)}`);
    step("failed", { code: "INTERNAL_ERROR", message: "The sandbox failed to run this operation." });
  }
}

/**
 * Serves a release as its static manifest (built by @run402/release) describes it: exact public paths
 * (implicit file paths, explicit `public_paths`, static route aliases), then the SPA fallback for paths
 * without an extension.
 */
function serveSite(deps: Deps, project: Project | undefined, path: string): Reply {
  const release = project && project.deletedAt === null ? activeRelease(deps, project) : undefined;
  const manifest = release?.state.static_manifest;
  const publicPath = `/${path.replace(/^\/+/, "")}`;
  let entry = manifest?.files[publicPath];
  if (!entry && publicPath.endsWith("/")) entry = manifest?.files[`${publicPath}index.html`];
  if (!entry && manifest?.spa_fallback && !/\.[^/]+$/.test(publicPath))
    entry = manifest.files[manifest.spa_fallback];
  const bytes = entry ? deps.blobs.get(entry.sha256) : undefined;
  if (entry && bytes) return { status: 200, headers: { "content-type": entry.content_type }, body: bytes };
  return { status: 404, headers: { "content-type": "text/plain" }, body: Buffer.from("Not found\n") };
}

/** Serves `<subdomain>.sites.localhost` hosts. */
export function siteHostHandler(deps: Deps): (ctx: Ctx) => Promise<Reply | undefined> {
  return async (ctx) => {
    const host = (ctx.header("host") ?? "").replace(/:\d+$/, "");
    const m = host.match(/^([a-z0-9-]+)\.sites\.localhost$/);
    if (!m || (ctx.method !== "GET" && ctx.method !== "HEAD")) return undefined;
    return serveSite(deps, subdomainOwner(deps, m[1]!), ctx.url.pathname);
  };
}

/** `handler` with its errors in Run402's deploy-error form (nested, see ApiErrorOptions.nested). */
function nestedErrors(handler: Route["handler"]): Route["handler"] {
  return async (ctx) => {
    try {
      return await handler(ctx);
    } catch (error) {
      if (error instanceof ApiError) error.options.nested = true;
      throw error;
    }
  };
}

/** Routes under /apply/v1, /content/v1, the upload URLs and /_site. */
export function deployRoutes(deps: Deps): Route[] {
  return applyRoutes(deps).map((r) =>
    r.pattern.startsWith("/apply/v1/plans") ? { ...r, handler: nestedErrors(r.handler) } : r,
  );
}

function applyRoutes(deps: Deps): Route[] {
  const { store, clock, blobs } = deps;
  return [
    {
      method: "POST",
      pattern: "/apply/v1/plans",
      maxBody: PLAN_BODY_MAX_BYTES,
      async handler(ctx) {
        const body = ctx.json();
        const { spec: inline, idempotency_key } = body;
        if (!isObj(inline) || typeof inline["project_id"] !== "string")
          throw badRequest("INVALID_SPEC", "spec.project_id is required.", { resource: "project" });
        const wallet = await siwx(ctx);
        const project = ownedProject(deps, wallet, inline["project_id"]);
        assertWritable(deps, wallet);
        const { wire, manifestRef } = wireSpec(deps, body);
        const spec = releaseCall(() => parseReleaseSpec(specFromWire(wire)));
        const key = typeof idempotency_key === "string" ? idempotency_key : spec.idempotency_key;
        if (typeof key === "string") {
          const prior = Object.values(store.state.plans).find(
            (p) => p.projectId === project.projectId && p.idempotencyKey === key,
          );
          if (prior) {
            const { idempotency_key: _k, ...digestable } = spec;
            if (prior.manifestDigest !== digestApplyRequest(digestable)) {
              throw conflict("IDEMPOTENCY_KEY_REUSED", "This idempotency_key was used for a different spec.");
            }
            return { status: 201, body: planResponse(deps, prior) };
          }
        }
        const plan = await makePlan(
          deps,
          project,
          wallet,
          spec,
          manifestRef,
          typeof key === "string" ? key : null,
        );
        store.state.plans[plan.planId] = plan;
        store.save();
        return { status: 201, body: planResponse(deps, plan) };
      },
    },
    {
      method: "POST",
      pattern: "/apply/v1/plans/:plan_id/commit",
      async handler(ctx) {
        ctx.json();
        const wallet = await siwx(ctx);
        const plan = store.state.plans[ctx.params["plan_id"]!];
        if (!plan || plan.wallet !== wallet)
          throw notFound("PLAN_NOT_FOUND", "No such plan for this wallet.");
        const project = ownedProject(deps, wallet, plan.projectId);
        const existing = store.state.operations[plan.operationId];
        if (existing) return { status: 200, body: commitView(deps, existing.operationId) };
        assertWritable(deps, wallet);
        const missing = plan.content.filter((sha) => !store.state.content[sha]);
        if (missing.length > 0) {
          throw conflict(
            "CONTENT_MISSING",
            `${missing.length} content object(s) are not uploaded and committed.`,
            {
              details: { missing },
              next_actions: [{ type: "upload_content", method: "POST", path: "/content/v1/plans" }],
            },
          );
        }
        if (project.activeReleaseId !== plan.baseReleaseId) {
          // Run402 answers a moved base as a 200 commit whose operation failed, the reason nested in
          // `error` (kychee-com/run402 sdk/src/namespaces/deploy.types.ts CommitResponse; deploy.ts
          // retries BASE_RELEASE_CONFLICT as safe). The operation is recorded failed, so a repeat of
          // this commit answers the same.
          const now = clock.now();
          store.state.operations[plan.operationId] = {
            operationId: plan.operationId,
            projectId: plan.projectId,
            planId: plan.planId,
            status: "failed",
            releaseId: null,
            error: {
              code: "BASE_RELEASE_CONFLICT",
              message: "The live release moved since this plan was made; plan again.",
              phase: "commit",
              retryable: true,
              safe_to_retry: true,
              details: { base_release_id: plan.baseReleaseId, active_release_id: project.activeReleaseId },
            },
            createdAt: now,
            updatedAt: now,
          };
          plan.committed = true;
          store.save();
          return { status: 200, body: commitView(deps, plan.operationId) };
        }
        const running = Object.values(store.state.operations).find(
          (o) =>
            o.projectId === project.projectId &&
            !["ready", "failed", "rolled_back", "needs_repair"].includes(o.status),
        );
        if (running) {
          throw conflict(
            "OPERATION_IN_PROGRESS",
            `Operation ${running.operationId} is still running for this project.`,
            {
              retryable: true,
              safe_to_retry: true,
              headers: { "retry-after": "1" },
            },
          );
        }
        const now = clock.now();
        const noop = plan.isNoop && project.activeReleaseId === plan.baseReleaseId;
        store.state.operations[plan.operationId] = {
          operationId: plan.operationId,
          projectId: plan.projectId,
          planId: plan.planId,
          status: noop ? "ready" : "running",
          releaseId: noop ? project.activeReleaseId : null,
          error: null,
          createdAt: now,
          updatedAt: now,
        };
        plan.committed = true;
        store.save();
        if (!noop) setImmediate(() => void runOperation(deps, plan));
        return { status: 200, body: commitView(deps, plan.operationId) };
      },
    },
    {
      method: "GET",
      pattern: "/apply/v1/operations/:id",
      async handler(ctx) {
        const project = apikeyProject(deps, ctx);
        const op = store.state.operations[ctx.params["id"]!];
        if (!op || op.projectId !== project.projectId)
          throw notFound("OPERATION_NOT_FOUND", "No such operation.");
        return { status: 200, body: operationView(deps, op.operationId) };
      },
    },
    {
      method: "GET",
      pattern: "/apply/v1/releases/active",
      async handler(ctx) {
        const project = apikeyProject(deps, ctx);
        const r = activeRelease(deps, project);
        const applied = await deps.db.migrations(project.projectId);
        // Run402 lists site paths up to `site_limit` (default 5,000, at most 25,000) and counts them
        // all in `site.totals.paths` (kychee-com/run402 sdk/src/namespaces/deploy.types.ts
        // ReleaseInventoryOptions).
        const rawLimit = ctx.url.searchParams.get("site_limit");
        const limit = rawLimit === null ? SITE_LIMIT_DEFAULT : Number(rawLimit);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > SITE_LIMIT_MAX)
          throw badRequest("BAD_FIELD", `site_limit must be an integer from 1 to ${SITE_LIMIT_MAX}.`);
        const state = r?.state ?? emptyPortableReleaseState();
        const plan = r?.operationId
          ? Object.values(store.state.plans).find((p) => p.operationId === r.operationId)
          : undefined;
        return {
          status: 200,
          body: {
            kind: "release_inventory",
            schema_version: "agent-deploy-observability.v1",
            release_id: r?.releaseId ?? null,
            project_id: project.projectId,
            parent_id: null,
            status: r ? "active" : null,
            manifest_digest: r?.manifestDigest ?? null,
            created_at: iso(r?.activatedAt),
            created_by: null,
            actor: null,
            activated_at: iso(r?.activatedAt),
            superseded_at: null,
            operation_id: plan?.operationId ?? null,
            plan_id: plan?.planId ?? null,
            events_url: null,
            effective: true,
            state_kind: "current_live",
            release_generation: r ? releaseGeneration(r) : null,
            static_manifest_sha256: state.static_manifest
              ? sha256(canonicalizeJson(state.static_manifest))
              : null,
            static_manifest_metadata: null,
            site: {
              paths: state.site.paths.slice(0, limit).map((p) => ({
                path: p.path,
                content_sha256: p.content_sha256,
                content_type: p.content_type,
              })),
              totals: { paths: state.site.paths.length },
            },
            // Run402 lists functions without their deps and auth gates.
            functions: state.functions.map((f) => ({
              name: f.name,
              code_hash: f.code_hash,
              runtime: f.runtime,
              timeout_seconds: f.timeout_seconds,
              memory_mb: f.memory_mb,
              schedule: f.schedule,
              ...(f.triggers ? { triggers: f.triggers } : {}),
            })),
            secrets: state.secrets,
            subdomains: state.subdomains,
            routes: state.routes,
            migrations_applied: applied,
            i18n: state.i18n,
          },
        };
      },
    },
    {
      // The sandbox's own view of a release (not Run402's): the full materialized state, its digest,
      // and what the sandbox keeps beside it (`database.expose`, the project's assets), for tests
      // that check what the server made. Run402's inventory above reports less.
      method: "GET",
      pattern: "/_sandbox/releases/:release_id",
      async handler(ctx) {
        const r = store.state.releases[ctx.params["release_id"]!];
        if (!r) throw notFound("RELEASE_NOT_FOUND", "No such release.");
        const project = store.state.projects[r.projectId];
        return {
          status: 200,
          body: {
            release_id: r.releaseId,
            project_id: r.projectId,
            manifest_digest: r.manifestDigest,
            release_digest: r.releaseDigest,
            state: r.state,
            database: { expose: r.expose ?? null },
            assets: {
              entries: Object.entries(project?.assets ?? {})
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([key, a]) => ({ key, ...a })),
            },
          },
        };
      },
    },
    {
      method: "POST",
      pattern: "/content/v1/plans",
      async handler(ctx) {
        const body = ctx.json();
        const project = apikeyProject(deps, ctx);
        const list = body["content"];
        if (!Array.isArray(list))
          throw badRequest("INVALID_CONTENT", "content must be an array of content refs.");
        const items = list.map((c, i) => {
          const ref = wireRef(c, `content[${i}]`);
          return {
            sha256: ref.sha256,
            size: ref.size,
            content_type: ref.contentType ?? "application/octet-stream",
          };
        });
        const now = clock.now();
        const planId = `cpl_${now}_${String(store.nextSeq()).padStart(4, "0")}`;
        // Upload URLs work on wall-clock time like presigned URLs; the sandbox clock is for leases.
        const expiresAt = Date.now() + 3_600_000;
        const fresh = items.filter(
          (c, i) => items.findIndex((x) => x.sha256 === c.sha256) === i && !store.state.content[c.sha256],
        );
        const planned: ContentPlan["items"] = items.map((c) => ({ ...c }));
        const missing: Obj[] = [];
        for (const c of fresh) {
          const item = planned.find((x) => x.sha256 === c.sha256)!;
          missing.push(await uploadSession(deps, planId, item, expiresAt));
        }
        store.state.contentPlans[planId] = {
          planId,
          projectId: project.projectId,
          expiresAt,
          items: planned,
        };
        store.save();
        // kychee-com/run402 sdk/src/namespaces/deploy.types.ts ContentPlanResponse.
        return {
          status: 200,
          body: {
            plan_id: planId,
            expires_at: iso(expiresAt),
            missing,
            entries: planned.map((c) => ({ sha256: c.sha256, missing: !store.state.content[c.sha256] })),
          },
        };
      },
    },
    {
      method: "PUT",
      pattern: "/_uploads/:plan_id/:sha256",
      maxBody: 64 * MiB,
      async handler(ctx) {
        const plan = store.state.contentPlans[ctx.params["plan_id"]!];
        if (!plan || plan.expiresAt < Date.now())
          throw notFound("UPLOAD_NOT_FOUND", "This upload URL is unknown or expired.");
        const item = plan.items.find((c) => c.sha256 === ctx.params["sha256"]);
        if (!item) throw notFound("UPLOAD_NOT_FOUND", "This object is not part of the content plan.");
        if (ctx.body.length !== item.size || sha256(ctx.body) !== item.sha256) {
          throw badRequest(
            "CONTENT_HASH_MISMATCH",
            "The uploaded bytes do not match the planned sha256 and size.",
          );
        }
        blobs.put(item.sha256, ctx.body);
        return { status: 200, body: { sha256: item.sha256, size: item.size } };
      },
    },
    {
      method: "POST",
      pattern: "/content/v1/plans/:plan_id/commit",
      async handler(ctx) {
        ctx.json();
        const project = apikeyProject(deps, ctx);
        const plan = store.state.contentPlans[ctx.params["plan_id"]!];
        if (!plan || plan.projectId !== project.projectId)
          throw notFound("CONTENT_PLAN_NOT_FOUND", "No such content plan.");
        // Completes each upload from the upload origin (a whole object, or its parts in order), as
        // Run402 promotes staged content, and keeps it only when its bytes hash to what was planned.
        if (deps.uploads) {
          for (const c of plan.items) {
            if (store.state.content[c.sha256] || blobs.has(c.sha256) || !c.stagingKey) continue;
            const bytes = c.uploadId
              ? deps.uploads.complete(c.uploadId, c.partCount ?? 0)
              : deps.uploads.object(c.stagingKey);
            if (!bytes) continue;
            if (bytes.length !== c.size || sha256(bytes) !== c.sha256) {
              deps.uploads.forget(c.stagingKey, c.uploadId);
              throw badRequest(
                "CONTENT_HASH_MISMATCH",
                `The bytes uploaded for ${c.sha256} do not match its sha256 and size.`,
              );
            }
            blobs.put(c.sha256, bytes);
            deps.uploads.forget(c.stagingKey, c.uploadId);
          }
        }
        const missing = plan.items.filter((c) => !store.state.content[c.sha256] && !blobs.has(c.sha256));
        if (missing.length > 0) {
          throw conflict("CONTENT_MISSING", `${missing.length} object(s) were not uploaded.`, {
            details: { missing: missing.map((c) => c.sha256) },
          });
        }
        for (const c of plan.items)
          store.state.content[c.sha256] ??= { size: c.size, content_type: c.content_type };
        store.save();
        // Run402's client reads nothing from this answer; its fixtures answer {} (kychee-com/run402
        // sdk/src/namespaces/deploy.ts, the plan-level commit; deploy.test.ts).
        return { status: 200, body: {} };
      },
    },
    {
      method: "GET",
      pattern: "/_site/:project_id/*",
      async handler(ctx) {
        return serveSite(deps, store.state.projects[ctx.params["project_id"]!], ctx.params["*"] ?? "");
      },
    },
    {
      method: "GET",
      pattern: "/_site/:project_id",
      async handler(ctx) {
        return { status: 301, headers: { location: `${ctx.url.pathname}/` } };
      },
    },
  ];
}
