/** Project and project-secret routes. */
import { randomBytes } from "node:crypto";
import type { Project } from "../state.js";
import {
  activeRelease,
  assertWritable,
  type Deps,
  iso,
  ownedProject,
  projectsOf,
  serviceProject,
  siteUrl,
  siwx,
} from "./context.js";
import { badRequest, notFound } from "./errors.js";
import type { Reply, Route } from "./http.js";
import { claim, complete } from "./idempotency.js";
import { lifecycleOf } from "./tiers.js";

/** Secret names, as Run402 accepts them. */
export const SECRET_KEY_RE = /^[A-Z_][A-Z0-9_]{0,127}$/;

function projectView(deps: Deps, p: Project): Record<string, unknown> {
  const org = deps.store.state.orgs[p.wallet];
  const life = lifecycleOf(org, deps.clock.now());
  const release = activeRelease(deps, p);
  return {
    project_id: p.projectId,
    name: p.name,
    org_id: p.wallet,
    tier: org?.tier ?? null,
    effective_status: p.deletedAt !== null ? "deleted" : life.state,
    organization_lifecycle_state: life.state,
    site_url: siteUrl(deps, p.projectId),
    last_deploy: release ? { release_id: release.releaseId, activated_at: iso(release.activatedAt) } : null,
    created_at: iso(p.createdAt),
  };
}

/** Routes under /projects/v1. */
export function projectRoutes(deps: Deps): Route[] {
  const { store, clock, db } = deps;
  return [
    {
      method: "POST",
      pattern: "/projects/v1",
      async handler(ctx) {
        const body = ctx.json();
        const { name } = body;
        if (
          name !== undefined &&
          (typeof name !== "string" || name.length === 0 || name.length > 200 || /\p{Cc}/u.test(name))
        ) {
          throw badRequest("INVALID_NAME", "name must be 1 to 200 characters without control characters.");
        }
        const wallet = await siwx(ctx);
        const claimed = claim(ctx, store, deps.inFlight, wallet, body);
        if ("replay" in claimed) return claimed.replay;
        assertWritable(deps, wallet);
        const seq = store.nextSeq();
        const now = clock.now();
        const num = String(seq).padStart(4, "0");
        const project: Project = {
          projectId: `prj_${now}_${num}`,
          name: typeof name === "string" ? name : `project-${num}`,
          wallet,
          schemaSlot: `p${num}`,
          anonKey: `anon_${randomBytes(24).toString("hex")}`,
          serviceKey: `svc_${randomBytes(24).toString("hex")}`,
          createdAt: now,
          deletedAt: null,
          activeReleaseId: null,
          secrets: {},
        };
        // Recorded (with its idempotency entry) before the first await, so a concurrent repeat replays.
        store.state.projects[project.projectId] = project;
        // Run402 Cloud's answer: the id, both keys and the schema slot, no endpoints (kychee-com/run402
        // sdk/src/namespaces/projects.types.ts ProvisionResult; the provision fixtures in projects.test.ts).
        const reply: Reply = {
          status: 201,
          body: {
            project_id: project.projectId,
            anon_key: project.anonKey,
            service_key: project.serviceKey,
            schema_slot: project.schemaSlot,
          },
        };
        complete(store, claimed.slot, reply, now);
        store.save();
        await db.createSchema(project.schemaSlot);
        return reply;
      },
    },
    {
      method: "GET",
      pattern: "/projects/v1",
      async handler(ctx) {
        const wallet = await siwx(ctx);
        // Rows are keyed `id` (ProjectSummary in kychee-com/run402 sdk/src/namespaces/projects.types.ts;
        // the list fixtures in projects.test.ts), with the page cursor fields.
        const rows = projectsOf(deps, wallet).map((p) => {
          const { project_id, last_deploy: _d, ...row } = projectView(deps, p);
          return {
            id: project_id,
            ...row,
            status: row["effective_status"],
            deleted_at: null,
            archived_at: null,
          };
        });
        return { status: 200, body: { projects: rows, has_more: false, next_cursor: null } };
      },
    },
    {
      method: "GET",
      pattern: "/projects/v1/:id",
      async handler(ctx) {
        const wallet = await siwx(ctx);
        return { status: 200, body: projectView(deps, ownedProject(deps, wallet, ctx.params["id"]!)) };
      },
    },
    {
      method: "DELETE",
      pattern: "/projects/v1/:id",
      async handler(ctx) {
        const p = serviceProject(deps, ctx, ctx.params["id"]);
        assertWritable(deps, p.wallet);
        p.deletedAt = clock.now();
        store.save();
        await db.dropSchema(p.schemaSlot, p.projectId);
        // Run402's fixture answer (projects.test.ts, delete); its client reads nothing from it.
        return { status: 200, body: { status: "purged" } };
      },
    },
    {
      method: "POST",
      pattern: "/projects/v1/admin/:id/secrets",
      async handler(ctx) {
        const body = ctx.json();
        const p = serviceProject(deps, ctx, ctx.params["id"]);
        const { key, value } = body;
        if (typeof key !== "string" || !SECRET_KEY_RE.test(key)) {
          throw badRequest("INVALID_SECRET_KEY", "key must match ^[A-Z_][A-Z0-9_]{0,127}$.");
        }
        if (typeof value !== "string") throw badRequest("INVALID_SECRET_VALUE", "value must be a string.");
        assertWritable(deps, p.wallet);
        const now = clock.now();
        p.secrets[key] = { value, updatedAt: now };
        store.save();
        return { status: 200, body: { key, updated_at: iso(now) } };
      },
    },
    {
      method: "GET",
      pattern: "/projects/v1/admin/:id/secrets",
      async handler(ctx) {
        const p = serviceProject(deps, ctx, ctx.params["id"]);
        const secrets = Object.entries(p.secrets)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([key, s]) => ({ key, updated_at: iso(s.updatedAt) }));
        return { status: 200, body: { secrets } };
      },
    },
    {
      method: "DELETE",
      pattern: "/projects/v1/admin/:id/secrets/:key",
      async handler(ctx) {
        const p = serviceProject(deps, ctx, ctx.params["id"]);
        assertWritable(deps, p.wallet);
        const key = ctx.params["key"]!;
        if (!p.secrets[key]) throw notFound("SECRET_NOT_FOUND", `Secret ${key} does not exist.`);
        delete p.secrets[key];
        store.save();
        return { status: 200, body: { key, deleted: true } };
      },
    },
  ];
}
