/**
 * Deployment: check resolves the manifest into Run402's ReleaseSpec and materializes the release it
 * makes over the recorded one with `@run402/release`, so preview shows Run402's own release diff;
 * create/update apply it and record the release state the server reports.
 */
import { resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import {
  canonicalizeJson,
  computeReleaseDiff,
  derivePlanMigrations,
  digestMaterializedRelease,
  emptyPortableReleaseState,
  materializeRelease,
  normalizePortableReleaseState,
  type PortableReleaseState,
  ReleaseCoreError,
} from "@run402/release";
import { BaseError } from "../../core/errors.js";
import { assertManifest, formatIssue, ManifestValidationError } from "../../schema/index.js";
import { loadManifest, type ResolvedRelease, resolveManifest } from "../manifest/index.js";
import type { deploymentShape, ImplInputs, ImplOutputs, ReleaseChanges } from "../shapes.js";
import { getContext } from "./context.js";
import { ConflictError, isGoneError } from "./errors.js";
import { containsUnknown, recorded } from "./values.js";

type Manifest = Inputs["manifest"];

/** What preview shows: `@run402/release`'s diff between the recorded release and the planned one (provider/shapes.ts). */
export type { ReleaseChanges } from "../shapes.js";

/**
 * What check returns and create/update receive (provider/shapes.ts). `release` is the release the
 * manifest makes (planned in check; as the server reports it once applied), as canonical JSON text of
 * its PortableReleaseState ({@link recordedRelease} reads it). One string, not a tree: a site of
 * 10,000 files makes a state of ~150,000 values, and every one of them would go through the engine's
 * diff, events and checkpoint on every command.
 */
export type Inputs = ImplInputs<typeof deploymentShape>;

/** What create/update/read record (provider/shapes.ts). */
export type Outputs = ImplOutputs<typeof deploymentShape>;

/**
 * Loads and resolves the manifest from the Pulumi project folder (the provider's cwd). The project
 * id is a placeholder: the spec's digest leaves it out, so it is the same in preview (when a new
 * project's id is unknown) and in the update; `apply` sends the real id.
 */
async function resolveRelease(manifest: Manifest, baseDir: string | undefined): Promise<ResolvedRelease> {
  const projectId = "prj_pending";
  const base = baseDir ?? process.cwd();
  if (typeof manifest === "string") {
    const loaded = await loadManifest(resolve(base, manifest));
    return resolveManifest({ manifest: loaded.manifest, dir: loaded.dir, projectId, file: manifest });
  }
  return resolveManifest({ manifest: assertManifest(manifest), dir: base, projectId });
}

/** The state {@link Inputs.release} records: text, or the object older states hold; undefined when absent. */
export function recordedRelease(value: unknown): PortableReleaseState | undefined {
  if (typeof value === "string") return JSON.parse(value) as PortableReleaseState;
  return value && typeof value === "object" ? (value as PortableReleaseState) : undefined;
}

/** {@link Inputs.release} of a state. */
const releaseText = (release: PortableReleaseState): string => canonicalizeJson(release);

/** Name → value maps of a release, small enough for the engine's own diff display. */
function maps(release: PortableReleaseState): Pick<Inputs, "files" | "migrations" | "functions"> {
  return {
    files: Object.fromEntries(release.site.paths.map((p) => [p.path, p.content_sha256])),
    migrations: Object.fromEntries(release.migrations.map((m) => [m.migration_id, m.checksum_hex])),
    functions: Object.fromEntries(release.functions.map((f) => [f.name, f.code_hash])),
  };
}

/** Plans the release over `base` and names what changes, both with `@run402/release`. */
export function planRelease(
  resolved: ResolvedRelease,
  recorded: PortableReleaseState | undefined,
): { release: PortableReleaseState; changes: ReleaseChanges } {
  const { spec } = resolved;
  const base =
    spec.base && "release" in spec.base && spec.base.release === "empty"
      ? emptyPortableReleaseState()
      : normalizePortableReleaseState(recorded ?? emptyPortableReleaseState());
  const release = materializeRelease({ spec, concreteBase: base });
  const diff = computeReleaseDiff(base, release, {
    plan_migrations: derivePlanMigrations(base, spec),
    include_core_warnings: true,
    spec,
  });
  const migrations = diff.migrations as { new?: { id: string }[] };
  const changes: ReleaseChanges = {
    summary: diff.summary,
    site: {
      added: diff.site.added.map((f) => f.path),
      removed: [...diff.site.removed],
      changed: diff.site.changed.map((f) => f.path),
    },
    functions: {
      added: [...diff.functions.added],
      removed: [...diff.functions.removed],
      changed: diff.functions.changed.map((f) => `${f.name} (${f.fields_changed.join(", ")})`),
    },
    migrations: { new: (migrations.new ?? []).map((m) => m.id) },
    routes: {
      added: diff.routes.added.map((r) => r.pattern),
      removed: [...diff.routes.removed],
      changed: diff.routes.changed.map((r) => `${r.pattern} (${r.fields_changed.join(", ")})`),
    },
    secrets: { added: [...diff.secrets.added], removed: [...diff.secrets.removed] },
    subdomains: { added: [...diff.subdomains.added], removed: [...diff.subdomains.removed] },
    warnings: diff.warnings.map((w) => w.code),
  };
  if (JSON.stringify(base.i18n) !== JSON.stringify(release.i18n))
    changes.i18n = { from: base.i18n, to: release.i18n };
  return { release, changes };
}

/** The materialized state in an active-release answer (Run402 reports it field for field). */
export function stateOf(active: Record<string, unknown>): PortableReleaseState {
  const empty = emptyPortableReleaseState();
  const pick = <K extends keyof PortableReleaseState>(key: K) =>
    (active[key] ?? empty[key]) as PortableReleaseState[K];
  return normalizePortableReleaseState({
    state_version: empty.state_version,
    site: { paths: pick("site").paths ?? [] },
    static_manifest: pick("static_manifest"),
    functions: pick("functions"),
    secrets: pick("secrets"),
    subdomains: pick("subdomains"),
    routes: {
      manifest_sha256: pick("routes").manifest_sha256 ?? null,
      entries: pick("routes").entries ?? [],
    },
    migrations: pick("migrations"),
    i18n: pick("i18n"),
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Pulumi handlers for Deployment. */
export const deployment = {
  async check(
    olds: Partial<Inputs>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult<Inputs>> {
    const manifest = news.manifest as Manifest;
    const baseDir = typeof news.baseDir === "string" ? news.baseDir : undefined;
    if (containsUnknown(manifest)) return { inputs: news as Inputs };
    if (typeof manifest !== "string" && (manifest === null || typeof manifest !== "object")) {
      return {
        failures: [
          {
            property: "manifest",
            reason:
              "manifest must be a path to a manifest (app.json, run402.deploy.json, app.yaml) or a manifest object",
          },
        ],
      };
    }
    let resolved: ResolvedRelease;
    let planned: ReturnType<typeof planRelease>;
    try {
      resolved = await resolveRelease(manifest, baseDir);
      // The recorded release is the base while the project stays; a new project starts empty.
      const recorded =
        olds.projectId !== undefined && olds.projectId === news.projectId
          ? recordedRelease(olds.release)
          : undefined;
      planned = planRelease(resolved, recorded);
    } catch (error) {
      // One failure per problem, each on one line with its code, file and pointer: the engine shows
      // them all, and the CLI reads each one back.
      if (error instanceof ManifestValidationError) {
        return {
          failures: error.issues.map((issue) => ({
            property: "manifest",
            reason: `[MANIFEST_INVALID] ${error.file ?? "manifest"} ${formatIssue(issue)}`.replaceAll(
              "\n",
              " ",
            ),
          })),
        };
      }
      if (error instanceof BaseError)
        return { failures: [{ property: "manifest", reason: `[${error.code}] ${error.shortMessage}` }] };
      const where = error instanceof ReleaseCoreError ? ` (at ${error.resource})` : "";
      return {
        failures: [{ property: "manifest", reason: `[MANIFEST_INVALID] ${describe(error)}${where}` }],
      };
    }
    const inputs: Inputs = {
      projectId: news.projectId as string,
      anonKey: news.anonKey as string,
      manifest,
      ...(baseDir ? { baseDir } : {}),
      manifestDigest: resolved.digest,
      releaseDigest: digestMaterializedRelease(planned.release),
      release: releaseText(planned.release),
      changes: planned.changes,
      ...maps(planned.release),
    };
    return { inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces = olds.projectId !== news.projectId ? ["projectId"] : [];
    const changes =
      replaces.length > 0 ||
      olds.manifestDigest !== news.manifestDigest ||
      olds.releaseDigest !== news.releaseDigest;
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const outs = await apply(inputs);
    return { id: `${inputs.projectId}/deployment`, outs };
  },

  async update(_id: string, _olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    return { outs: await apply(news) };
  },

  async read(id: string, state?: Outputs): Promise<pulumi.dynamic.ReadResult> {
    const props = recorded(state, id);
    const ctx = await getContext();
    let active: Awaited<ReturnType<typeof ctx.client.deploy.active>>;
    try {
      active = await ctx.client.deploy.active({ anonKey: props.anonKey });
    } catch (error) {
      if (isGoneError(error)) return { id: "" };
      throw error;
    }
    if (!active.release_id) return { id: "" };
    if (active.release_id === props.releaseId) return { id, props, inputs: inputsOf(props) };
    // Another release is live: record what is actually served, so the next diff redeploys.
    const release = stateOf(active);
    const drifted: Outputs = {
      ...props,
      releaseId: active.release_id,
      manifestDigest: `live:${active.manifest_digest ?? active.release_id}`,
      releaseDigest: digestMaterializedRelease(release),
      release: releaseText(release),
      ...maps(release),
    };
    return { id, props: drifted, inputs: inputsOf(drifted) };
  },

  async delete(): Promise<void> {
    // Run402 has no endpoint to remove a release; deleting the project removes them all.
  },
} satisfies pulumi.dynamic.ResourceProvider<Inputs, Outputs>;

function inputsOf(outs: Outputs): Inputs {
  const { releaseId: _r, url: _u, uploaded: _up, ...inputs } = outs;
  return inputs;
}

async function apply(inputs: Inputs): Promise<Outputs> {
  const ctx = await getContext();
  const resolved = await resolveRelease(inputs.manifest, inputs.baseDir);
  if (resolved.digest !== inputs.manifestDigest) {
    throw new ConflictError(
      "MANIFEST_CHANGED",
      "The manifest's files changed between preview and update (digest mismatch); nothing was deployed. Run the update again.",
    );
  }
  const result = await ctx.client.deploy.apply({
    projectId: inputs.projectId,
    anonKey: inputs.anonKey,
    spec: resolved.spec,
    content: resolved.content,
    idempotencyKey: resolved.idempotencyKey,
    // No intent: a key made of project and digest would replay an earlier plan of the same content
    // (a rollback A → B → A, or a retry after a failed migration) instead of deploying it. Deploys
    // cost nothing, and a crash-retry of one that went live plans as a no-op (same digest).
  });
  const project = await ctx.client.projects.get(inputs.projectId);
  // Record the release as the server materialized it (a no-op apply creates none: the live one is it).
  const active = await ctx.client.deploy.active({ anonKey: inputs.anonKey });
  const releaseId = result.releaseId ?? active.release_id;
  if (!releaseId) throw new Error(`Project ${inputs.projectId} has no live release after the deploy.`);
  const release = stateOf(active);
  return {
    ...inputs,
    releaseDigest: digestMaterializedRelease(release),
    release: releaseText(release),
    ...maps(release),
    releaseId,
    url: project.site_url ?? "",
    uploaded: result.uploaded,
  };
}
