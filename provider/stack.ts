/**
 * One app.json → the resources that make it real: a Tier (when the manifest names one), a Project
 * and a Deployment. The root Pulumi program, the `run402-pulumi` CLI and the examples all build
 * their stacks through this, so a manifest means the same thing everywhere.
 */
import { dirname, relative, resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import type { AppManifest, TierConfig } from "../schema/index.js";
import { loadManifest } from "./manifest/index.js";
import { Deployment, type DeploymentArgs } from "./resources/deployment.js";
import { Project, type ProjectArgs } from "./resources/project.js";
import { Tier, type TierName } from "./resources/tier.js";

/** Options of {@link manifestStack}. */
export interface ManifestStackOptions {
  /** Path to the manifest (or a folder holding run402.json, run402.deploy.json or app.json), absolute or relative to the Pulumi project folder. */
  manifest: string;
  /** Project name when the manifest has no `project.name`. @default the manifest folder's name */
  projectName?: string;
  /** Tier when the manifest has no `tier` block; none means "do not manage the tier". */
  tier?: TierName;
  /** The Pulumi project folder (where the engine starts the provider). @default process.cwd() */
  baseDir?: string;
}

/** The resources of a manifest stack and the outputs worth exporting. */
export interface ManifestStack {
  tier: Tier | undefined;
  project: Project;
  deployment: Deployment;
  outputs: Record<string, pulumi.Output<unknown>>;
}

function tierBlock(manifest: AppManifest, fallback: TierName | undefined): TierConfig | undefined {
  const value = manifest.tier;
  if (typeof value === "string") return { name: value };
  return value ?? (fallback ? { name: fallback } : undefined);
}

/** The project to manage: a `project` block, or an existing id (`project: "prj_…"` / `project_id`). */
function projectBlock(manifest: AppManifest, file: string, fallback: string | undefined): ProjectArgs {
  const value = manifest.project;
  const existing = typeof value === "string" ? value : manifest.project_id;
  const name =
    (typeof value === "object" ? value.name : undefined) ??
    fallback ??
    (dirname(file).split(/[\\/]/).pop() || "app");
  const adopt = (typeof value === "object" ? value.adoptProjectId : undefined) ?? existing;
  return adopt ? { name, adoptProjectId: adopt } : { name };
}

/** Declares Tier, Project and Deployment for one manifest (validated first: bad input fails here). */
export async function manifestStack(options: ManifestStackOptions): Promise<ManifestStack> {
  const baseDir = options.baseDir ?? process.cwd();
  const { manifest, file } = await loadManifest(resolve(baseDir, options.manifest));
  const tierArgs = tierBlock(manifest, options.tier);
  const tier = tierArgs
    ? new Tier("tier", {
        tier: tierArgs.name,
        ...(tierArgs.renewBeforeDays !== undefined ? { renewBeforeDays: tierArgs.renewBeforeDays } : {}),
        ...(tierArgs.autoRenew !== undefined ? { autoRenew: tierArgs.autoRenew } : {}),
      })
    : undefined;
  const project = new Project(
    "project",
    projectBlock(manifest, file, options.projectName),
    // Projects need an active tier: buy it first.
    tier ? { dependsOn: [tier] } : {},
  );
  // Stored relative to the project folder, so state does not depend on where the repo lives.
  const deploymentArgs: DeploymentArgs & { manifestBlocksRead: boolean } = {
    project,
    manifest: relative(baseDir, file) || file,
    baseDir,
    // The tier and project blocks are the Tier and Project above: the Deployment need not warn.
    manifestBlocksRead: true,
  };
  const deployment = new Deployment("deployment", deploymentArgs);
  const outputs: Record<string, pulumi.Output<unknown>> = {
    projectId: project.projectId,
    siteUrl: deployment.url,
    releaseId: deployment.releaseId,
    manifestDigest: deployment.manifestDigest,
    releaseDigest: deployment.releaseDigest,
    changes: deployment.changes,
    files: deployment.files,
  };
  if (tier) {
    outputs.tier = tier.tier;
    outputs.leaseExpiresAt = tier.leaseExpiresAt;
    outputs.lastSettlement = tier.lastSettlement;
    outputs.plannedPayment = tier.plannedPayment;
  }
  return { tier, project, deployment, outputs };
}
