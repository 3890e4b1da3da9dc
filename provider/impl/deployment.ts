/**
 * Deployment: check resolves the manifest into Run402's ReleaseSpec and materializes the release it
 * makes over the recorded one with `@run402/release`, so preview shows Run402's own release diff;
 * create/update apply it and record the release state the server reports.
 */
import { hash as hashOnce } from "node:crypto";
import { resolve } from "node:path";
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from "node:zlib";
import type * as pulumi from "@pulumi/pulumi";
import {
  canonicalizeJson,
  computeReleaseDiff,
  derivePlanMigrations,
  emptyPortableReleaseState,
  MATERIALIZED_RELEASE_DIGEST_IDENTITY,
  materializeRelease,
  normalizePortableReleaseState,
  type PortableReleaseState,
  ReleaseCoreError,
} from "@run402/release";
import { BaseError, reportedCode } from "../../core/errors.js";
import { assertManifest, formatIssue, ManifestValidationError } from "../../schema/index.js";
import { resolveManifestFile } from "../manifest/cache.js";
import { loadManifest, type ResolvedRelease, resolveManifest } from "../manifest/index.js";
import type { deploymentShape, ImplInputs, ImplOutputs, ReleaseChanges } from "../shapes.js";
import { getContext } from "./context.js";
import { ConflictError, isGoneError } from "./errors.js";
import { keysOrigin } from "./origin.js";
import { log } from "./progress.js";
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
 * project's id is unknown) and in the update; `apply` sends the real id. With `cached`, a manifest
 * file comes from provider/manifest/cache.ts while none of the files it read has changed (check:
 * a program's Deployments of one manifest read it once); `apply` reads everything again.
 */
async function resolveRelease(
  manifest: Manifest,
  baseDir: string | undefined,
  onBlocks?: (blocks: string[], where: string) => void,
  cached = false,
): Promise<ResolvedRelease> {
  const projectId = "prj_pending";
  const base = baseDir ?? process.cwd();
  if (typeof manifest === "string" && cached) {
    const loaded = await resolveManifestFile(resolve(base, manifest), { projectId, file: manifest });
    onBlocks?.(unreadBlocks(loaded.manifest), manifest);
    return loaded.resolved;
  }
  if (typeof manifest === "string") {
    const loaded = await loadManifest(resolve(base, manifest));
    onBlocks?.(unreadBlocks(loaded.manifest), manifest);
    return resolveManifest({ manifest: loaded.manifest, dir: loaded.dir, projectId, file: manifest });
  }
  const checked = assertManifest(manifest);
  onBlocks?.(unreadBlocks(checked), "the manifest");
  return resolveManifest({ manifest: checked, dir: base, projectId });
}

/** The manifest's blocks a Deployment does not act on (run402-pulumi's manifest stack does). */
function unreadBlocks(manifest: object): string[] {
  return ["tier", "project", "project_id"].filter((key) => key in manifest);
}

/** What a Deployment says about the blocks it does not read: they buy nothing and create nothing. */
export function unreadBlocksWarning(blocks: string[], where: string): string {
  const pointers = blocks.map((b) => `/${b}`).join(", ");
  return `${where}: ${pointers} ${blocks.length === 1 ? "is" : "are"} not read by a Deployment, which deploys the site, functions and migrations to the Project it is given: nothing is bought or created for ${blocks.length === 1 ? "it" : "them"}. Declare a Tier and a Project in the program (the Project with { dependsOn: [tier] }), or apply the manifest with run402-pulumi, which reads every block; or remove ${blocks.length === 1 ? "it" : "them"} from the manifest.`;
}

/**
 * A recorded release text longer than this is kept compressed: `br64:` and the base64 of its
 * Brotli compression. The text of a 10,000-file site is ~4.4 MB (every file twice: its site path
 * and its static-manifest entry), ~0.8 MB packed; it crosses the engine's gRPC several times per
 * command (check, diff, create/update, each way), and the protobuf code on both sides costs many
 * times a string's size to encode or decode it. Small releases stay readable JSON.
 */
export const RELEASE_PACK_BYTES = 64 * 1024;
const PACKED = "br64:";
/** The most a packed release may unpack to (a 10,000-file release is ~4.4 MB). */
const RELEASE_UNPACKED_MAX_BYTES = 256 * 1024 * 1024;

/** The state {@link Inputs.release} records: text (packed or not), or the object older states hold; undefined when absent. */
export function recordedRelease(value: unknown): PortableReleaseState | undefined {
  if (typeof value === "string") {
    const text = value.startsWith(PACKED)
      ? // Bounded: a state planted with a small bomb must not take the provider's memory.
        brotliDecompressSync(Buffer.from(value.slice(PACKED.length), "base64"), {
          maxOutputLength: RELEASE_UNPACKED_MAX_BYTES,
        }).toString("utf8")
      : value;
    return JSON.parse(text) as PortableReleaseState;
  }
  return value && typeof value === "object" ? (value as PortableReleaseState) : undefined;
}

/**
 * {@link Inputs.release} and {@link Inputs.releaseDigest} of a release, from one canonical text: the
 * digest is `@run402/release`'s `digestMaterializedRelease` (its identity and the sha256 of the
 * canonical JSON of the normalized state; every release here is normalized already: materialized,
 * or read through `normalizePortableReleaseState`), without canonicalizing the release a second time.
 */
export function recordOf(release: PortableReleaseState): { release: string; releaseDigest: string } {
  const text = canonicalizeJson(release);
  const releaseDigest = `${MATERIALIZED_RELEASE_DIGEST_IDENTITY}:${hashOnce("sha256", text, "hex")}`;
  if (text.length <= RELEASE_PACK_BYTES) return { release: text, releaseDigest };
  const packed = brotliCompressSync(text, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: 4,
      // A window as large as the text lets a static-manifest entry refer back to its site path.
      [zlib.BROTLI_PARAM_LGWIN]: 24,
      [zlib.BROTLI_PARAM_SIZE_HINT]: text.length,
    },
  });
  return { release: `${PACKED}${packed.toString("base64")}`, releaseDigest };
}

/**
 * Most site files {@link Inputs.files} lists (and most hashes `uploaded` records). A larger site's map is left empty: 10,000 entries cost
 * the provider ~50 MB of allocation and seconds of CPU each time they cross the engine's gRPC (check,
 * diff, create/update, both ways), and the engine as much again. Nothing depends on the map: change
 * detection compares `manifestDigest` and `releaseDigest` (which covers every file), `release` holds
 * every file, and `changes` names what a plan changes.
 */
export const FILES_LISTED = 1000;

/**
 * The release as the engine's own diff display reads it: name → value maps (and the i18n), so
 * `pulumi preview --diff` shows each file, migration, function and route added, changed or removed
 * as such (the release's lists would diff by position). Small: `files` lists at most 1,000.
 */
function maps(
  release: PortableReleaseState,
): Pick<Inputs, "files" | "migrations" | "functions" | "routes" | "i18n"> {
  const { paths } = release.site;
  return {
    files:
      paths.length <= FILES_LISTED ? Object.fromEntries(paths.map((p) => [p.path, p.content_sha256])) : {},
    migrations: Object.fromEntries(release.migrations.map((m) => [m.migration_id, m.checksum_hex])),
    functions: Object.fromEntries(release.functions.map((f) => [f.name, f.code_hash])),
    routes: Object.fromEntries(
      release.routes.entries.map(({ pattern, methods, ...route }) => [
        methods && methods.length > 0 ? `${pattern} ${[...methods].sort().join(",")}` : pattern,
        route,
      ]),
    ),
    i18n: release.i18n ?? null,
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

/** What check records of a plan: the release's text and digest, its changes and its maps. */
type Planned = {
  record: ReturnType<typeof recordOf>;
  changes: ReleaseChanges;
  maps: ReturnType<typeof maps>;
};

/**
 * Plans of a resolution, by the recorded release text they were planned over ("" for none). A
 * resolution from provider/manifest/cache.ts is the same object while its files stay as they were,
 * so the Deployments of one manifest over one recorded release (a no-op update of many) plan once.
 */
const plans = new WeakMap<ResolvedRelease, Map<string, Planned>>();
const PLANS_KEPT = 8;

/** {@link planRelease} over the recorded release `base` (its text, or the object older states hold), with its record. */
function plannedOver(resolved: ResolvedRelease, base: unknown): Planned {
  const key = base === undefined ? "" : typeof base === "string" ? base : undefined;
  let kept = plans.get(resolved);
  const hit = key !== undefined ? kept?.get(key) : undefined;
  if (hit) return hit;
  const { release, changes } = planRelease(resolved, recordedRelease(base));
  const planned = { record: recordOf(release), changes, maps: maps(release) };
  if (key !== undefined) {
    if (!kept) {
      kept = new Map();
      plans.set(resolved, kept);
    }
    if (kept.size >= PLANS_KEPT) kept.delete(kept.keys().next().value as string);
    kept.set(key, planned);
  }
  return planned;
}

type Inventory = Record<string, unknown> & {
  site?: { paths?: PortableReleaseState["site"]["paths"]; totals?: { paths?: number } };
};
const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/**
 * The release state a live-release inventory describes, as far as it describes it. Run402 reports an
 * inventory (kychee-com/run402 sdk/src/namespaces/deploy.types.ts `ReleaseInventoryBase`): functions
 * without deps or auth gates (read here as none), the static manifest by its sha256 only (read as
 * none unless the full manifest is sent), applied migrations instead of the release's. Used for a
 * release this stack did not make: its digest differs from any planned one, so the next update
 * deploys the manifest again.
 */
export function stateOf(active: Inventory): PortableReleaseState {
  const empty = emptyPortableReleaseState();
  const routes = obj(active["routes"]);
  const migrations = Array.isArray(active["migrations"])
    ? list<PortableReleaseState["migrations"][number]>(active["migrations"])
    : list<{ migration_id: string; checksum_hex: string }>(active["migrations_applied"]).map((m) => ({
        migration_id: m.migration_id,
        checksum_hex: m.checksum_hex,
        transaction: "default" as const,
      }));
  return normalizePortableReleaseState({
    state_version: empty.state_version,
    site: {
      paths: list<PortableReleaseState["site"]["paths"][number]>(active.site?.paths).map((p) => ({
        path: p.path,
        content_sha256: p.content_sha256,
        content_type: p.content_type,
        ...(p.size_bytes !== undefined ? { size_bytes: p.size_bytes } : {}),
      })),
    },
    static_manifest: (active["static_manifest"] ?? null) as PortableReleaseState["static_manifest"],
    functions: list<Record<string, unknown>>(active["functions"]).map(
      (fn) =>
        ({
          ...fn,
          deps: list<string>(fn["deps"]),
          require_auth: fn["require_auth"] === true,
          require_role: (fn["require_role"] ??
            null) as PortableReleaseState["functions"][number]["require_role"],
        }) as PortableReleaseState["functions"][number],
    ),
    secrets: { keys: list<string>(obj(active["secrets"])["keys"]) },
    subdomains: { names: list<string>(obj(active["subdomains"])["names"]) },
    routes: {
      manifest_sha256: (routes["manifest_sha256"] ?? null) as string | null,
      entries: list(routes["entries"]),
    },
    migrations,
    i18n: (active["i18n"] ?? null) as PortableReleaseState["i18n"],
  });
}

/**
 * Why the live inventory is not the planned release, or null when it reports that release: every
 * field the inventory carries is compared (site paths with their hash and type, up to the listed
 * limit and by count beyond it; functions; secrets; subdomains; routes; migrations applied; the
 * static manifest when sent in full).
 */
export function mismatch(planned: PortableReleaseState, active: Inventory): string | null {
  const live = stateOf(active);
  const listed = live.site.paths;
  const total = active.site?.totals?.paths ?? listed.length;
  if (total !== planned.site.paths.length)
    return `the live site has ${total} paths, the planned ${planned.site.paths.length}`;
  const want = new Map(planned.site.paths.map((p) => [p.path, p]));
  for (const p of listed) {
    const w = want.get(p.path);
    if (!w || w.content_sha256 !== p.content_sha256 || w.content_type !== p.content_type)
      return `site path ${p.path} differs`;
  }
  const fns = new Map(planned.functions.map((f) => [f.name, f]));
  if (live.functions.length !== fns.size) return "the functions differ";
  for (const f of live.functions) {
    const w = fns.get(f.name);
    if (!w || w.code_hash !== f.code_hash || w.runtime !== f.runtime) return `function ${f.name} differs`;
    for (const key of ["timeout_seconds", "memory_mb", "schedule"] as const)
      if (f[key] !== undefined && f[key] !== null && f[key] !== w[key])
        return `function ${f.name}'s ${key} differs`;
  }
  const same = (a: string[], b: string[]) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
  if (!same(live.secrets.keys, planned.secrets.keys)) return "the secrets differ";
  if (!same(live.subdomains.names, planned.subdomains.names)) return "the subdomains differ";
  if ((live.routes.manifest_sha256 ?? null) !== (planned.routes.manifest_sha256 ?? null))
    return "the routes differ";
  const applied = new Map(live.migrations.map((m) => [m.migration_id, m.checksum_hex]));
  for (const m of planned.migrations)
    if (applied.get(m.migration_id) !== m.checksum_hex) return `migration ${m.migration_id} is not applied`;
  if (active["static_manifest"] !== undefined && live.static_manifest !== null) {
    if (canonicalizeJson(live.static_manifest) !== canonicalizeJson(planned.static_manifest))
      return "the static manifest differs";
  }
  return null;
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
    // `pulumi import` checks the inputs its read reported: the live release, with no manifest (that
    // is the program's). The next up's check gets the program's manifest.
    if (manifest === undefined && isLive(news.manifestDigest)) return { inputs: news as Inputs };
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
    let planned: Planned;
    try {
      resolved = await resolveRelease(
        manifest,
        baseDir,
        (blocks, where) => {
          if (blocks.length > 0 && (news as { manifestBlocksRead?: unknown }).manifestBlocksRead !== true)
            log(unreadBlocksWarning(blocks, where), { ephemeral: false, warning: true });
        },
        true,
      );
      // The recorded release is the base while the project stays; a new project starts empty.
      const base =
        olds.projectId !== undefined && olds.projectId === news.projectId ? olds.release : undefined;
      planned = plannedOver(resolved, base);
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
        return {
          failures: [{ property: "manifest", reason: `[${reportedCode(error)}] ${error.shortMessage}` }],
        };
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
      resourceKey: String(news.resourceKey),
      manifestDigest: resolved.digest,
      ...planned.record,
      changes: planned.changes,
      ...planned.maps,
    };
    return { inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces = olds.projectId !== news.projectId ? ["projectId"] : [];
    const changes =
      replaces.length > 0 ||
      ((olds.manifestDigest !== news.manifestDigest || olds.releaseDigest !== news.releaseDigest) &&
        !servesPlanned(olds, news));
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const outs = await apply(inputs);
    return { id: `${inputs.projectId}/deployment`, outs };
  },

  async update(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    return { outs: await apply(news, olds.projectId === news.projectId ? olds.apiOrigin : undefined) };
  },

  async read(id: string, state?: Outputs): Promise<pulumi.dynamic.ReadResult> {
    const props = recorded(state, id);
    const ctx = await getContext();
    await keysOrigin(
      `The anon key of project ${props.projectId}`,
      props.projectId,
      props.apiOrigin,
      ctx.config.apiBase,
    );
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
      ...recordOf(release),
      ...maps(release),
    };
    return { id, props: drifted, inputs: inputsOf(drifted) };
  },

  async delete(): Promise<void> {
    // Run402 has no endpoint to remove a release; deleting the project removes them all.
  },
} satisfies pulumi.dynamic.ResourceProvider<Inputs, Outputs>;

/** True for the manifest digest of a release read from Run402 (an import, or another live release). */
function isLive(digest: unknown): boolean {
  return typeof digest === "string" && digest.startsWith("live:");
}

/**
 * True when the recorded state is a release read from Run402 (imported, or found live by a refresh)
 * and that release serves exactly what the program's manifest plans, compared as a deploy compares
 * the live inventory with its plan ({@link mismatch}): deploying it again would change nothing.
 */
function servesPlanned(olds: Outputs, news: Inputs): boolean {
  if (!isLive(olds.manifestDigest) || containsUnknown(news.release)) return false;
  const live = recordedRelease(olds.release);
  const planned = recordedRelease(news.release);
  if (live === undefined || planned === undefined) return false;
  if (mismatch(planned, live as unknown as Inventory) !== null) return false;
  // What a deploy's own comparison leaves to the server, an import must not assume: each function's
  // gates, dependencies and limits, and the i18n settings, equal as recorded (a field the inventory
  // did not report reads as its default, so a program that sets it deploys: free, never stale).
  const gates = (f: PortableReleaseState["functions"][number]) =>
    canonicalizeJson({
      deps: [...(f.deps ?? [])].sort(),
      require_auth: f.require_auth === true,
      require_role: f.require_role ?? null,
      timeout_seconds: f.timeout_seconds ?? null,
      memory_mb: f.memory_mb ?? null,
      schedule: f.schedule ?? null,
    });
  const liveFunctions = new Map(live.functions.map((f) => [f.name, gates(f)]));
  if (planned.functions.some((f) => liveFunctions.get(f.name) !== gates(f))) return false;
  return canonicalizeJson(planned.i18n ?? null) === canonicalizeJson(live.i18n ?? null);
}

/**
 * The state of the Deployment of project `projectId` as Run402 serves it (`pulumi import`,
 * provider/native/imports.ts): the live release, read from its inventory, recorded as a release
 * another party made (`manifestDigest` "live:…"), so the next up deploys the program's manifest
 * unless the live release already serves what it plans.
 */
export async function liveDeployment(
  projectId: string,
  anonKey: string,
): Promise<(Outputs & { releaseId: string }) | undefined> {
  const ctx = await getContext();
  const apiOrigin = await keysOrigin(
    `The anon key of project ${projectId}`,
    projectId,
    undefined,
    ctx.config.apiBase,
  );
  const active = await ctx.client.deploy.active({ anonKey });
  if (!active.release_id) return undefined;
  const project = await ctx.client.projects.get(projectId);
  const release = stateOf(active);
  // No manifest: that is the program's.
  return {
    projectId,
    anonKey,
    manifestDigest: `live:${active.manifest_digest ?? active.release_id}`,
    ...recordOf(release),
    ...maps(release),
    releaseId: active.release_id,
    url: project.site_url ?? "",
    apiOrigin,
  } as unknown as Outputs & { releaseId: string };
}

function inputsOf(outs: Outputs): Inputs {
  const { releaseId: _r, url: _u, uploaded: _up, apiOrigin: _o, ...inputs } = outs;
  return inputs;
}

async function apply(inputs: Inputs, recordedOrigin?: string | null): Promise<Outputs> {
  const ctx = await getContext();
  const apiOrigin = await keysOrigin(
    `The anon key of project ${inputs.projectId}`,
    inputs.projectId,
    recordedOrigin,
    ctx.config.apiBase,
  );
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
  // Run402 reports an inventory, not the release: when it reports the release planned in check, that
  // release is recorded (so the digest the plan showed is the one recorded, and the next update with
  // the same manifest changes nothing); otherwise what is live, as far as the inventory tells.
  // The planned release's record (text, digest, maps) is the one check made: kept as it is.
  const planned = recordedRelease(inputs.release);
  const recorded =
    planned && mismatch(planned, active) === null
      ? {}
      : (() => {
          const live = stateOf(active);
          return { ...recordOf(live), ...maps(live) };
        })();
  return {
    ...inputs,
    ...recorded,
    releaseId,
    url: project.site_url ?? "",
    // Bounded like `files`: this state crosses the engine's gRPC on every later command.
    uploaded: result.uploaded.slice(0, FILES_LISTED),
    apiOrigin,
  };
}
