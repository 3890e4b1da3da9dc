/**
 * Deployment: the live release of a project, described by a manifest (app.json, run402.deploy.json, app.yaml).
 *
 * check  → loads and validates the manifest, hashes every file, maps it to Run402's ReleaseSpec and
 *          materializes the release over the recorded one with @run402/release: `changes` (its release
 *          diff) and the file, migration and function maps are what preview shows
 * create/update → POST /apply/v1/plans, upload only missing content (POST /content/v1/plans, PUT),
 *          POST /apply/v1/plans/:id/commit, poll GET /apply/v1/operations/:id
 * read   → GET /apply/v1/releases/active (another release live = drift)
 * delete → nothing remote: releases go with their project (delete the Project to remove them)
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Project } from "./project.js";
import { Run402Resource } from "./stub.js";

/** Arguments of a Deployment. */
export interface DeploymentArgs {
  /** The project to deploy to. */
  project: Project;
  /**
   * The manifest: a path to a manifest file or to a folder holding one (run402.json, run402.deploy.json,
   * app.json, app.yaml; relative paths resolve from the Pulumi project folder, files inside it from the
   * manifest's folder), or the manifest object itself.
   */
  manifest: pulumi.Input<string | Record<string, unknown>>;
  /** The folder relative manifest paths resolve from: the Pulumi project folder. @default process.cwd() */
  baseDir?: string;
}

/** The active release of a Run402 project. */
export class Deployment extends Run402Resource {
  declare readonly projectId: pulumi.Output<string>;
  declare readonly releaseId: pulumi.Output<string>;
  declare readonly url: pulumi.Output<string>;
  /** @run402/release's portable manifest digest of the spec (`run402-portable-manifest-v1:…`; no project id). */
  declare readonly manifestDigest: pulumi.Output<string>;
  /** @run402/release's digest of the materialized release (`run402-materialized-release-v1:…`). */
  declare readonly releaseDigest: pulumi.Output<string>;
  /**
   * The materialized release (Run402's PortableReleaseState: site paths, static manifest, functions,
   * routes, i18n, …) as canonical JSON text: one value however large the site (`JSON.parse` it).
   */
  declare readonly release: pulumi.Output<string>;
  /** What the last plan changed, as @run402/release's release diff names it (preview shows the planned one). */
  declare readonly changes: pulumi.Output<Record<string, unknown>>;
  /** Site files: path → sha256. */
  declare readonly files: pulumi.Output<Record<string, string>>;
  /** Migrations: id → checksum. */
  declare readonly migrations: pulumi.Output<Record<string, string>>;
  /** Functions: name → sha256 of the source. */
  declare readonly functions: pulumi.Output<Record<string, string>>;
  /** sha256 of the objects the last create/update uploaded (only what the server was missing). */
  declare readonly uploaded: pulumi.Output<string[]>;

  constructor(name: string, args: DeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "deployment",
      "Deployment",
      name,
      {
        projectId: args.project.projectId,
        anonKey: args.project.anonKey,
        manifest: args.manifest,
        // Relative manifest paths resolve from the program's folder; the engine may start the
        // provider elsewhere (in `main`'s folder). Not compared by diff.
        baseDir: args.baseDir ?? process.cwd(),
        manifestDigest: undefined,
        releaseDigest: undefined,
        release: undefined,
        changes: undefined,
        files: undefined,
        migrations: undefined,
        functions: undefined,
        releaseId: undefined,
        url: undefined,
        uploaded: undefined,
      },
      { ...opts, additionalSecretOutputs: ["anonKey", ...(opts?.additionalSecretOutputs ?? [])] },
    );
  }
}
