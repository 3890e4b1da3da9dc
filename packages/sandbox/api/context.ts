/** What every handler module shares: state, database, blobs, payments, clock, and common checks. */
import type { Clock } from "../clock.js";
import type { BlobStore } from "../db/blobs.js";
import type { Database } from "../db/index.js";
import type { PaymentGate } from "../payments/types.js";
import type { Org, Project, Release, StateStore } from "../state.js";
import { ApiError, authRequired, notAuthorized, notFound } from "./errors.js";
import type { Controls, Ctx } from "./http.js";
import type { UploadOrigin } from "./s3.js";
import { verifySiwx } from "./siwx.js";
import { lifecycleOf } from "./tiers.js";

/** The sandbox's parts, as handlers see them. */
export interface Deps {
  store: StateStore;
  db: Database;
  blobs: BlobStore;
  /** The presigned-URL upload origin, when the sandbox runs one; else uploads go to the API's `/_uploads`. */
  uploads?: UploadOrigin | undefined;
  gate: PaymentGate;
  clock: Clock;
  controls: Controls;
  inFlight: Set<string>;
  log(line: string): void;
  /** `http://127.0.0.1:<port>`, known once the server listens. */
  apiBase(): string;
}

/** The SIWX wallet of the request (401 without or with a bad header). Validity uses wall-clock time. */
export function siwx(ctx: Ctx): Promise<string> {
  return verifySiwx(ctx.header("sign-in-with-x"), ctx.url);
}

/** The org of `wallet`, or a fresh one (not stored until something is bought). */
export function orgOf(deps: Deps, wallet: string): Org {
  return (
    deps.store.state.orgs[wallet] ?? {
      wallet,
      tier: null,
      leaseStartedAt: null,
      leaseExpiresAt: null,
      allowanceMicros: 0,
    }
  );
}

/** Live (not deleted) projects of `wallet`. */
export function projectsOf(deps: Deps, wallet: string): Project[] {
  return Object.values(deps.store.state.projects).filter((p) => p.wallet === wallet && p.deletedAt === null);
}

/** The active release of a project, if any. */
export function activeRelease(deps: Deps, project: Project): Release | undefined {
  return project.activeReleaseId ? deps.store.state.releases[project.activeReleaseId] : undefined;
}

/** The project's site URL. */
export function siteUrl(deps: Deps, projectId: string): string {
  return `${deps.apiBase()}/_site/${projectId}/`;
}

/** A live project owned by `wallet`; 403 for absent and foreign alike (authorize before reveal). */
export function ownedProject(deps: Deps, wallet: string, projectId: string): Project {
  const p = deps.store.state.projects[projectId];
  if (!p || p.deletedAt !== null || p.wallet !== wallet) throw notAuthorized();
  return p;
}

function keyProject(deps: Deps, key: string, kind: "service" | "any"): Project | undefined {
  return Object.values(deps.store.state.projects).find(
    (p) => p.serviceKey === key || (kind === "any" && p.anonKey === key),
  );
}

/** The project whose service key is the Bearer token; checks it is `projectId` when given. */
export function serviceProject(deps: Deps, ctx: Ctx, projectId?: string): Project {
  const auth = ctx.header("authorization");
  const token = auth?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  if (!token) throw authRequired("service_key");
  const p = keyProject(deps, token, "service");
  if (!p) throw new ApiError(401, "INVALID_KEY", "The service key is not valid.", { category: "auth" });
  if (projectId !== undefined && p.projectId !== projectId) throw notAuthorized();
  if (p.deletedAt !== null) throw notFound("PROJECT_NOT_FOUND", `Project ${p.projectId} was deleted.`);
  return p;
}

/** The project whose anon (or service) key is in the `apikey` header. */
export function apikeyProject(deps: Deps, ctx: Ctx): Project {
  const key = ctx.header("apikey")?.trim();
  if (!key) throw authRequired("anon_key");
  const p = keyProject(deps, key, "any");
  if (!p) throw new ApiError(401, "INVALID_KEY", "The apikey is not valid.", { category: "auth" });
  if (p.deletedAt !== null) throw notFound("PROJECT_NOT_FOUND", `Project ${p.projectId} was deleted.`);
  return p;
}

/**
 * Refuses control-plane writes for an org that never bought a tier (TIER_REQUIRED) or that is
 * frozen, dormant or purged (PROJECT_<STATE>, with the lifecycle timestamps).
 */
export function assertWritable(deps: Deps, wallet: string): void {
  const life = lifecycleOf(deps.store.state.orgs[wallet], deps.clock.now());
  if (life.state === null) {
    throw new ApiError(403, "TIER_REQUIRED", "This wallet has no tier; buy one with POST /tiers/v1/:tier.", {
      category: "lifecycle",
      next_actions: [{ type: "renew_tier", method: "POST", path: "/tiers/v1/prototype" }],
    });
  }
  if (life.state === "active" || life.state === "past_due") return;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  throw new ApiError(
    403,
    `PROJECT_${life.state.toUpperCase()}`,
    `The organization is ${life.state}; renew the tier to write again.`,
    {
      category: "lifecycle",
      next_actions: [{ type: "renew_tier", method: "POST", path: "/tiers/v1/:tier" }],
      extra: {
        lifecycle_state: life.state,
        entered_state_at: iso(life.enteredAt),
        next_transition_at: iso(life.nextTransitionAt),
      },
    },
  );
}

/** ISO string or null. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
