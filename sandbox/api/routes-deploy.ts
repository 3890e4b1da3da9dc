/**
 * The deploy flow: plan → content plan + uploads + content commit → apply commit → operation →
 * active release, and the site server. A release is activated only after its migrations committed.
 */
import { createHash } from "node:crypto";
import type {
  FunctionEntry,
  Plan,
  PlannedMigration,
  Project,
  Release,
  ReleaseBody,
  SiteEntry,
} from "../state.js";
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
import { badRequest, conflict, notFound } from "./errors.js";
import type { Ctx, Reply, Route } from "./http.js";
import { canonicalJson } from "./idempotency.js";
import { SECRET_KEY_RE } from "./routes-projects.js";

const MiB = 1024 * 1024;
const SPEC_KEYS = new Set([
  "project_id",
  "base",
  "database",
  "site",
  "functions",
  "secrets",
  "subdomains",
  "routes",
  "idempotency_key",
]);
const SUBDOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

type Obj = Record<string, unknown>;

const invalid = (message: string) => badRequest("INVALID_SPEC", message);
const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function contentRef(v: unknown, where: string): SiteEntry {
  if (!isObj(v)) throw invalid(`${where} must be a content ref { sha256, size, content_type }.`);
  const { sha256: sha, size, content_type } = v;
  if (typeof sha !== "string" || !/^[0-9a-f]{64}$/.test(sha))
    throw invalid(`${where}.sha256 must be 64 hex characters.`);
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0)
    throw invalid(`${where}.size must be a byte count.`);
  if (content_type !== undefined && typeof content_type !== "string")
    throw invalid(`${where}.content_type must be a string.`);
  return {
    sha256: sha,
    size,
    content_type: (content_type as string | undefined) ?? "application/octet-stream",
  };
}

function sitePath(path: string): string {
  const p = path.replace(/^\/+/, "");
  if (p === "" || p.split("/").some((s) => s === ".." || s === "."))
    throw invalid(`site path "${path}" is not valid.`);
  return p;
}

function fileSet(v: unknown, where: string): Record<string, SiteEntry> {
  if (!isObj(v)) throw invalid(`${where} must be an object of path → content ref.`);
  const out: Record<string, SiteEntry> = {};
  for (const [path, ref] of Object.entries(v)) out[sitePath(path)] = contentRef(ref, `${where}["${path}"]`);
  return out;
}

function functionEntry(v: unknown, where: string): FunctionEntry & { source: SiteEntry } {
  if (!isObj(v)) throw invalid(`${where} must be an object.`);
  const { runtime = "node22", source, config, schedule = null } = v;
  if (typeof runtime !== "string") throw invalid(`${where}.runtime must be a string.`);
  const src = contentRef(source, `${where}.source`);
  const cfg = isObj(config) ? config : {};
  const num = (x: unknown, name: string) => {
    if (x === undefined || x === null) return null;
    if (typeof x !== "number" || x <= 0) throw invalid(`${where}.config.${name} must be a positive number.`);
    return x;
  };
  if (schedule !== null && typeof schedule !== "string")
    throw invalid(`${where}.schedule must be a cron string or null.`);
  return {
    runtime,
    code_hash: src.sha256,
    timeout_seconds: num(cfg["timeout_seconds"], "timeout_seconds"),
    memory_mb: num(cfg["memory_mb"], "memory_mb"),
    schedule: schedule as string | null,
    source: src,
  };
}

function names(v: unknown, where: string, re: RegExp): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string" || !re.test(s))) {
    throw invalid(`${where} must be an array of names matching ${re}.`);
  }
  return [...new Set(v as string[])];
}

interface Resolved {
  target: ReleaseBody;
  migrations: PlannedMigration[];
  migrationsNoop: string[];
  content: SiteEntry[];
  deleteSecrets: string[];
}

/** Applies the spec's slices over `base` (absent slices carry forward) and validates them. */
async function resolve(deps: Deps, project: Project, spec: Obj, base: ReleaseBody): Promise<Resolved> {
  for (const k of Object.keys(spec))
    if (!SPEC_KEYS.has(k)) throw invalid(`Unknown field "${k}" in the spec.`);
  const target: ReleaseBody = structuredClone(base);
  const content: SiteEntry[] = [];
  const sourceOf: Record<string, SiteEntry> = {};

  const { site, functions, secrets, subdomains, routes, database } = spec;
  if (site !== undefined) {
    if (!isObj(site)) throw invalid("site must be an object.");
    if (site["replace"] !== undefined) target.site = fileSet(site["replace"], "site.replace");
    else if (isObj(site["patch"])) {
      const patch = site["patch"];
      if (patch["put"] !== undefined) Object.assign(target.site, fileSet(patch["put"], "site.patch.put"));
      if (patch["delete"] !== undefined) {
        for (const p of names(patch["delete"], "site.patch.delete", /.+/)) delete target.site[sitePath(p)];
      }
    } else throw invalid("site needs replace or patch.");
  }
  if (site !== undefined) content.push(...Object.values(target.site));

  if (functions !== undefined) {
    if (!isObj(functions)) throw invalid("functions must be an object.");
    const put = (set: unknown, where: string) => {
      if (!isObj(set)) throw invalid(`${where} must be an object of name → function.`);
      for (const [name, fn] of Object.entries(set)) {
        if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) throw invalid(`function name "${name}" is not valid.`);
        const { source, ...entry } = functionEntry(fn, `${where}.${name}`);
        target.functions[name] = entry;
        sourceOf[name] = source;
      }
    };
    if (functions["replace"] !== undefined) {
      target.functions = {};
      put(functions["replace"], "functions.replace");
    } else if (isObj(functions["patch"])) {
      const patch = functions["patch"];
      if (patch["set"] !== undefined) put(patch["set"], "functions.patch.set");
      if (patch["delete"] !== undefined) {
        for (const n of names(patch["delete"], "functions.patch.delete", /.+/)) delete target.functions[n];
      }
    } else throw invalid("functions needs replace or patch.");
    content.push(...Object.values(sourceOf));
  }

  let deleteSecrets: string[] = [];
  if (secrets !== undefined) {
    if (!isObj(secrets)) throw invalid("secrets must be an object.");
    if (secrets["require"] !== undefined)
      target.secrets = names(secrets["require"], "secrets.require", SECRET_KEY_RE);
    if (secrets["delete"] !== undefined) {
      deleteSecrets = names(secrets["delete"], "secrets.delete", SECRET_KEY_RE);
      target.secrets = target.secrets.filter((k) => !deleteSecrets.includes(k));
    }
  }
  const missing = target.secrets.filter((k) => !project.secrets[k]);
  if (missing.length > 0) {
    throw conflict("SECRETS_MISSING", `Required secrets are not set: ${missing.join(", ")}.`, {
      details: { missing },
      next_actions: [{ type: "set_secret", keys: missing }],
    });
  }

  if (subdomains !== undefined) {
    if (!isObj(subdomains)) throw invalid("subdomains must be an object.");
    if (subdomains["set"] !== undefined)
      target.subdomains = names(subdomains["set"], "subdomains.set", SUBDOMAIN_RE);
    if (subdomains["add"] !== undefined) {
      target.subdomains = [
        ...new Set([...target.subdomains, ...names(subdomains["add"], "subdomains.add", SUBDOMAIN_RE)]),
      ];
    }
    if (subdomains["remove"] !== undefined) {
      const gone = names(subdomains["remove"], "subdomains.remove", SUBDOMAIN_RE);
      target.subdomains = target.subdomains.filter((s) => !gone.includes(s));
    }
    for (const name of target.subdomains) {
      const owner = subdomainOwner(deps, name);
      if (owner && owner.projectId !== project.projectId) {
        throw conflict("SUBDOMAIN_TAKEN", `Subdomain ${name} belongs to another project.`);
      }
    }
  }

  if (routes !== undefined && routes !== null) {
    if (!isObj(routes) || !Array.isArray(routes["replace"]))
      throw invalid("routes must be { replace: [...] } or null.");
    target.routes = routes["replace"] as unknown[];
  }

  const migrations: PlannedMigration[] = [];
  const migrationsNoop: string[] = [];
  if (database !== undefined) {
    if (!isObj(database)) throw invalid("database must be an object.");
    const list = database["migrations"] ?? [];
    if (!Array.isArray(list)) throw invalid("database.migrations must be an array.");
    const applied = new Map(
      (await deps.db.migrations(project.projectId)).map((m) => [m.migration_id, m.checksum_hex]),
    );
    const seen = new Set<string>();
    for (const [i, m] of list.entries()) {
      if (!isObj(m)) throw invalid(`database.migrations[${i}] must be an object.`);
      const { id, checksum, sql } = m;
      if (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) {
        throw invalid(`database.migrations[${i}].id is not valid.`);
      }
      if (typeof sql !== "string") throw invalid(`database.migrations[${i}].sql must be a string.`);
      if (seen.has(id)) throw invalid(`migration ${id} appears twice.`);
      seen.add(id);
      const sum = sha256(sql);
      if (checksum !== undefined && checksum !== sum) {
        throw badRequest(
          "MIGRATION_CHECKSUM_INVALID",
          `Migration ${id}: checksum is not the sha256 of its sql.`,
        );
      }
      const prior = applied.get(id);
      if (prior === undefined) migrations.push({ id, checksum: sum, sql });
      else if (prior === sum) migrationsNoop.push(id);
      else
        throw conflict(
          "MIGRATION_CHECKSUM_MISMATCH",
          `Migration ${id} was already applied with different SQL.`,
        );
    }
  }
  return { target, migrations, migrationsNoop, content, deleteSecrets };
}

function subdomainOwner(deps: Deps, name: string): Project | undefined {
  return Object.values(deps.store.state.projects).find(
    (p) => p.deletedAt === null && activeRelease(deps, p)?.subdomains.includes(name),
  );
}

const EMPTY: ReleaseBody = { site: {}, functions: {}, secrets: [], subdomains: [], routes: [] };

function bodyOf(r: Release | undefined): ReleaseBody {
  if (!r) return structuredClone(EMPTY);
  return structuredClone({
    site: r.site,
    functions: r.functions,
    secrets: r.secrets,
    subdomains: r.subdomains,
    routes: r.routes,
  });
}

function listDiff(from: string[], to: string[]) {
  return { added: to.filter((x) => !from.includes(x)), removed: from.filter((x) => !to.includes(x)) };
}

function diffOf(base: ReleaseBody, r: Resolved) {
  const t = r.target;
  const site = {
    added: Object.entries(t.site)
      .filter(([p]) => !base.site[p])
      .map(([path, e]) => ({ path, sha256: e.sha256, content_type: e.content_type })),
    removed: Object.keys(base.site).filter((p) => !t.site[p]),
    changed: Object.entries(t.site)
      .filter(([p, e]) => base.site[p] && canonicalJson(base.site[p]) !== canonicalJson(e))
      .map(([path, e]) => ({ path, sha256_old: base.site[path]!.sha256, sha256_new: e.sha256 })),
  };
  const fnChanged = Object.entries(t.functions)
    .filter(([n]) => base.functions[n])
    .map(([name, f]) => ({
      name,
      fields_changed: (Object.keys(f) as (keyof FunctionEntry)[]).filter(
        (k) => base.functions[name]![k] !== f[k],
      ),
    }))
    .filter((c) => c.fields_changed.length > 0);
  const baseRoutes = base.routes.map(canonicalJson);
  const toRoutes = t.routes.map(canonicalJson);
  return {
    migrations: { new: r.migrations.map((m) => m.id), noop: r.migrationsNoop },
    site,
    functions: { ...listDiff(Object.keys(base.functions), Object.keys(t.functions)), changed: fnChanged },
    secrets: listDiff(base.secrets, t.secrets),
    subdomains: listDiff(base.subdomains, t.subdomains),
    routes: {
      added: t.routes.filter((_, i) => !baseRoutes.includes(toRoutes[i]!)),
      removed: base.routes.filter((_, i) => !toRoutes.includes(baseRoutes[i]!)),
      changed: [],
    },
  };
}

function planResponse(deps: Deps, plan: Plan, diff: unknown): Obj {
  const missing = plan.content
    .filter((sha, i, all) => all.indexOf(sha) === i && !deps.store.state.content[sha])
    .map((sha) => {
      const meta = plan.contentMeta[sha]!;
      return { sha256: sha, size: meta.size, content_type: meta.content_type };
    });
  return {
    kind: "plan_response",
    plan_id: plan.planId,
    operation_id: plan.operationId,
    base_release_id: plan.baseReleaseId,
    manifest_digest: plan.manifestDigest,
    is_noop: plan.isNoop,
    missing_content: missing,
    diff,
  };
}

function operationView(deps: Deps, opId: string): Obj {
  const op = deps.store.state.operations[opId]!;
  return {
    operation_id: op.operationId,
    project_id: op.projectId,
    plan_id: op.planId,
    status: op.status,
    release_id: op.releaseId,
    error: op.error,
    urls: op.status === "ready" ? { site: siteUrl(deps, op.projectId) } : null,
    created_at: iso(op.createdAt),
    updated_at: iso(op.updatedAt),
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
  try {
    if (plan.migrations.length > 0) {
      step("migrating");
      try {
        await deps.db.migrate(project.schemaSlot, project.projectId, plan.migrations);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        step("failed", { code: "MIGRATION_FAILED", message });
        return;
      }
    }
    step("activating");
    if (project.deletedAt !== null)
      return step("failed", { code: "PROJECT_DELETED", message: "The project was deleted." });
    const release: Release = {
      ...structuredClone(plan.target),
      releaseId: `rel_${clock.now()}_${String(store.nextSeq()).padStart(4, "0")}`,
      projectId: project.projectId,
      manifestDigest: plan.manifestDigest,
      activatedAt: clock.now(),
    };
    store.state.releases[release.releaseId] = release;
    project.activeReleaseId = release.releaseId;
    for (const k of plan.deleteSecrets) delete project.secrets[k];
    op.releaseId = release.releaseId;
    step("ready");
  } catch (error) {
    deps.log(`operation ${op.operationId} failed: ${error instanceof Error ? error.message : String(error)}`);
    step("failed", { code: "INTERNAL_ERROR", message: "The sandbox failed to run this operation." });
  }
}

function serveSite(deps: Deps, project: Project | undefined, path: string): Reply {
  const release = project && project.deletedAt === null ? activeRelease(deps, project) : undefined;
  const clean = path.replace(/^\/+/, "");
  const candidates =
    clean === "" || clean.endsWith("/") ? [`${clean}index.html`] : [clean, `${clean}/index.html`];
  for (const c of candidates) {
    const entry = release?.site[c];
    const bytes = entry ? deps.blobs.get(entry.sha256) : undefined;
    if (entry && bytes) return { status: 200, headers: { "content-type": entry.content_type }, body: bytes };
  }
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

/** Routes under /apply/v1, /content/v1, the upload URLs and /_site. */
export function deployRoutes(deps: Deps): Route[] {
  const { store, clock, blobs } = deps;
  return [
    {
      method: "POST",
      pattern: "/apply/v1/plans",
      async handler(ctx) {
        const body = ctx.json();
        const { spec, idempotency_key } = body;
        if (!isObj(spec) || typeof spec["project_id"] !== "string")
          throw invalid("spec.project_id is required.");
        const wallet = await siwx(ctx);
        const project = ownedProject(deps, wallet, spec["project_id"]);
        assertWritable(deps, wallet);
        const live = activeRelease(deps, project);
        let baseRelease = live;
        const base = spec["base"];
        if (base !== undefined) {
          if (!isObj(base)) throw invalid("base must be an object.");
          if (typeof base["release_id"] === "string") {
            baseRelease = store.state.releases[base["release_id"]];
            if (!baseRelease || baseRelease.projectId !== project.projectId)
              throw invalid("base.release_id is unknown.");
          } else if (base["release"] === "empty") {
            if (live)
              throw conflict("BASE_RELEASE_CONFLICT", "base is empty but the project has a live release.");
            baseRelease = undefined;
          } else if (base["release"] !== "current")
            throw invalid('base.release must be "current" or "empty".');
        }
        const { idempotency_key: _inSpec, ...digestable } = spec;
        const digest = `sha256:${sha256(canonicalJson(digestable))}`;
        const key = typeof idempotency_key === "string" ? idempotency_key : spec["idempotency_key"];
        if (typeof key === "string") {
          const prior = Object.values(store.state.plans).find(
            (p) => p.projectId === project.projectId && p.idempotencyKey === key,
          );
          if (prior && prior.manifestDigest !== digest) {
            throw conflict("IDEMPOTENCY_KEY_REUSED", "This idempotency_key was used for a different spec.");
          }
          if (prior) return { status: 201, body: planResponse(deps, prior, prior.diff) };
        }
        const baseBody = bodyOf(baseRelease);
        const resolved = await resolve(deps, project, spec, baseBody);
        const diff = diffOf(baseBody, resolved);
        const seq = String(store.nextSeq()).padStart(4, "0");
        const now = clock.now();
        const contentMeta: Plan["contentMeta"] = {};
        for (const c of resolved.content)
          contentMeta[c.sha256] = { size: c.size, content_type: c.content_type };
        const plan: Plan = {
          planId: `pln_${now}_${seq}`,
          operationId: `op_${now}_${seq}`,
          projectId: project.projectId,
          wallet,
          baseReleaseId: baseRelease?.releaseId ?? null,
          manifestDigest: digest,
          target: resolved.target,
          migrations: resolved.migrations,
          deleteSecrets: resolved.deleteSecrets,
          content: Object.keys(contentMeta),
          contentMeta,
          isNoop:
            resolved.migrations.length === 0 &&
            resolved.deleteSecrets.length === 0 &&
            canonicalJson(resolved.target) === canonicalJson(bodyOf(live)) &&
            baseRelease === live,
          idempotencyKey: typeof key === "string" ? key : null,
          diff,
          createdAt: now,
          committed: false,
        };
        store.state.plans[plan.planId] = plan;
        store.save();
        return { status: 201, body: planResponse(deps, plan, diff) };
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
        if (existing) {
          return {
            status: 200,
            body: {
              operation_id: existing.operationId,
              status: existing.status,
              release_id: existing.releaseId,
            },
          };
        }
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
          throw conflict(
            "BASE_RELEASE_CONFLICT",
            "The live release moved since this plan was made; plan again.",
            {
              retryable: true,
              safe_to_retry: true,
              details: { base_release_id: plan.baseReleaseId, active_release_id: project.activeReleaseId },
              next_actions: [{ type: "replan", method: "POST", path: "/apply/v1/plans" }],
            },
          );
        }
        const running = Object.values(store.state.operations).find(
          (o) => o.projectId === project.projectId && !["ready", "failed", "rolled_back"].includes(o.status),
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
        const op = store.state.operations[plan.operationId]!;
        return {
          status: 200,
          body: { operation_id: op.operationId, status: op.status, release_id: op.releaseId },
        };
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
        return {
          status: 200,
          body: {
            release_id: r?.releaseId ?? null,
            state_kind: "current_live",
            manifest_digest: r?.manifestDigest ?? null,
            activated_at: iso(r?.activatedAt),
            site: {
              paths: Object.entries(r?.site ?? {})
                .sort(([a], [b]) => (a < b ? -1 : 1))
                .map(([path, e]) => ({ path, content_sha256: e.sha256, content_type: e.content_type })),
            },
            functions: Object.entries(r?.functions ?? {}).map(([name, f]) => ({ name, ...f })),
            secrets: { keys: r?.secrets ?? [] },
            subdomains: { names: r?.subdomains ?? [] },
            routes: { entries: r?.routes ?? [] },
            migrations_applied: applied,
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
        const items = list.map((c, i) => contentRef(c, `content[${i}]`));
        const now = clock.now();
        const planId = `cpl_${now}_${String(store.nextSeq()).padStart(4, "0")}`;
        // Upload URLs work on wall-clock time like presigned URLs; the sandbox clock is for leases.
        const expiresAt = Date.now() + 3_600_000;
        store.state.contentPlans[planId] = { planId, projectId: project.projectId, expiresAt, items };
        store.save();
        const missing = items
          .filter(
            (c, i) => items.findIndex((x) => x.sha256 === c.sha256) === i && !store.state.content[c.sha256],
          )
          .map((c) => ({
            sha256: c.sha256,
            mode: "single",
            parts: [
              {
                part_number: 1,
                url: `${deps.apiBase()}/_uploads/${planId}/${c.sha256}`,
                byte_start: 0,
                byte_end: Math.max(0, c.size - 1),
              },
            ],
          }));
        return { status: 200, body: { plan_id: planId, expires_at: iso(expiresAt), missing } };
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
        const missing = plan.items.filter((c) => !store.state.content[c.sha256] && !blobs.has(c.sha256));
        if (missing.length > 0) {
          throw conflict("CONTENT_MISSING", `${missing.length} object(s) were not uploaded.`, {
            details: { missing: missing.map((c) => c.sha256) },
          });
        }
        for (const c of plan.items)
          store.state.content[c.sha256] ??= { size: c.size, content_type: c.content_type };
        store.save();
        return {
          status: 200,
          body: { plan_id: plan.planId, committed: [...new Set(plan.items.map((c) => c.sha256))] },
        };
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
