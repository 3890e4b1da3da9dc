/** Deployment: hashes the manifest's content in check so preview names what changes; applies in create/update. */
import { resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { assertManifest } from "../../schema/index.js";
import type { ReleaseSpec } from "../../sdk/index.js";
import { loadManifest, type ResolvedRelease, resolveManifest } from "../manifest/index.js";
import { getContext } from "./context.js";
import { ConflictError, isGoneError } from "./errors.js";
import { containsUnknown } from "./values.js";

type Manifest = string | Record<string, unknown>;

export interface Inputs {
  projectId: string;
  anonKey: string;
  manifest: Manifest;
  /** The program's folder, which relative manifest paths resolve from. */
  baseDir?: string;
  manifestDigest: string;
  files: Record<string, string>;
  migrations: Record<string, string>;
  functions: Record<string, string>;
}

export interface Outputs extends Inputs {
  releaseId: string;
  url: string;
  uploaded: string[];
}

/**
 * Loads and resolves the manifest from the Pulumi project folder (the provider's cwd). The project
 * id is a placeholder: the digest and maps describe content only, so they are the same in preview
 * (when a new project's id is unknown) and in the update; `apply` sets the real id on the spec.
 */
async function resolveRelease(manifest: Manifest, baseDir: string | undefined): Promise<ResolvedRelease> {
  const projectId = "prj_pending";
  const base = baseDir ?? process.cwd();
  if (typeof manifest === "string") {
    const loaded = await loadManifest(resolve(base, manifest));
    return resolveManifest({ manifest: loaded.manifest, dir: loaded.dir, projectId });
  }
  return resolveManifest({ manifest: assertManifest(manifest), dir: base, projectId });
}

function maps(release: ResolvedRelease): Pick<Inputs, "files" | "migrations" | "functions"> {
  return {
    files: Object.fromEntries(release.summary.files.map((f) => [f.path, f.sha256])),
    migrations: Object.fromEntries(release.summary.migrations.map((m) => [m.id, m.checksum])),
    functions: Object.fromEntries(release.summary.functions.map((f) => [f.name, f.sha256])),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Pulumi handlers for Deployment. */
export const deployment = {
  async check(_olds: Partial<Inputs>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
    const manifest = news.manifest as Manifest;
    const baseDir = typeof news.baseDir === "string" ? news.baseDir : undefined;
    if (containsUnknown(manifest)) return { inputs: news };
    if (typeof manifest !== "string" && (manifest === null || typeof manifest !== "object")) {
      return {
        failures: [
          {
            property: "manifest",
            reason: "manifest must be a path to app.json / app.yaml or a manifest object",
          },
        ],
      };
    }
    let release: ResolvedRelease;
    try {
      release = await resolveRelease(manifest, baseDir);
    } catch (error) {
      return { failures: [{ property: "manifest", reason: `[MANIFEST_INVALID] ${describe(error)}` }] };
    }
    const inputs: Inputs = {
      projectId: news.projectId as string,
      anonKey: news.anonKey as string,
      manifest,
      ...(baseDir ? { baseDir } : {}),
      manifestDigest: release.digest,
      ...maps(release),
    };
    return { inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces = olds.projectId !== news.projectId ? ["projectId"] : [];
    const changes = replaces.length > 0 || olds.manifestDigest !== news.manifestDigest;
    return { changes, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
    const outs = await apply(inputs);
    return { id: `${inputs.projectId}/deployment`, outs };
  },

  async update(_id: string, _olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await apply(news) };
  },

  async read(id: string, props: Outputs): Promise<pulumi.dynamic.ReadResult> {
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
    const drifted: Outputs = {
      ...props,
      releaseId: active.release_id,
      manifestDigest: `live:${active.manifest_digest ?? active.release_id}`,
      files: Object.fromEntries((active.site?.paths ?? []).map((p) => [p.path, p.content_sha256])),
    };
    return { id, props: drifted, inputs: inputsOf(drifted) };
  },

  async delete(): Promise<void> {
    // Run402 has no endpoint to remove a release; deleting the project removes them all.
  },
};

function inputsOf(outs: Outputs): Inputs {
  const { releaseId: _r, url: _u, uploaded: _up, ...inputs } = outs;
  return inputs;
}

async function apply(inputs: Inputs): Promise<Outputs> {
  const ctx = await getContext();
  const release = await resolveRelease(inputs.manifest, inputs.baseDir);
  if (release.digest !== inputs.manifestDigest) {
    throw new ConflictError(
      "MANIFEST_CHANGED",
      "The manifest's files changed between preview and update (digest mismatch); nothing was deployed. Run the update again.",
    );
  }
  const content = new Map(
    [...release.content].map(([sha, c]) => [sha, { bytes: c.bytes, contentType: c.contentType }] as const),
  );
  const result = await ctx.client.deploy.apply({
    projectId: inputs.projectId,
    anonKey: inputs.anonKey,
    // TODO(sdk): ReleaseSpec's `base` lacks the `{ release_id }` form the manifest allows.
    spec: { ...release.spec, project_id: inputs.projectId } as ReleaseSpec,
    content,
    // No intent: a key made of project and digest would replay an earlier plan of the same content
    // (a rollback A → B → A, or a retry after a failed migration) instead of deploying it. Deploys
    // cost nothing, and a crash-retry of one that went live plans as a no-op (same digest).
  });
  const project = await ctx.client.projects.get(inputs.projectId);
  // A no-op apply creates no release: the live one is already this content.
  const releaseId =
    result.releaseId ?? (await ctx.client.deploy.active({ anonKey: inputs.anonKey })).release_id;
  if (!releaseId) throw new Error(`Project ${inputs.projectId} has no live release after the deploy.`);
  return {
    ...inputs,
    releaseId,
    url: project.site_url ?? "",
    uploaded: result.uploaded,
  };
}
