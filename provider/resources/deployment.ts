/**
 * Deployment: the live release of a project, described by an app.json / app.yaml manifest.
 *
 * check  → loads and validates the manifest, hashes every file (sha256): the file, migration and
 *          function maps it returns are what preview diffs, so it names exactly what changes
 * create/update → POST /apply/v1/plans, upload only missing content (POST /content/v1/plans, PUT),
 *          POST /apply/v1/plans/:id/commit, poll GET /apply/v1/operations/:id
 * read   → GET /apply/v1/releases/active (another release live = drift)
 * delete → nothing remote: releases go with their project (delete the Project to remove them)
 */
import * as pulumi from "@pulumi/pulumi";
import type { Project } from "./project.js";
import { stubProvider } from "./stub.js";

/** Arguments of a Deployment. */
export interface DeploymentArgs {
  /** The project to deploy to. */
  project: Project;
  /**
   * The manifest: a path to app.json / app.yaml (relative paths resolve from the Pulumi project
   * folder; files inside it resolve from the manifest's folder), or the manifest object itself.
   */
  manifest: pulumi.Input<string | Record<string, unknown>>;
}

const provider = stubProvider("deployment");

/** The active release of a Run402 project. */
export class Deployment extends pulumi.dynamic.Resource {
  declare readonly projectId: pulumi.Output<string>;
  declare readonly releaseId: pulumi.Output<string>;
  declare readonly url: pulumi.Output<string>;
  /** sha256 of the resolved release spec (content-addressed: same files, same digest). */
  declare readonly manifestDigest: pulumi.Output<string>;
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
      provider,
      name,
      {
        projectId: args.project.projectId,
        anonKey: args.project.anonKey,
        manifest: args.manifest,
        // Relative manifest paths resolve from the program's folder; the engine may start the
        // provider elsewhere (in `main`'s folder). Not compared by diff.
        baseDir: process.cwd(),
        manifestDigest: undefined,
        files: undefined,
        migrations: undefined,
        functions: undefined,
        releaseId: undefined,
        url: undefined,
        uploaded: undefined,
      },
      { ...opts, additionalSecretOutputs: ["anonKey", ...(opts?.additionalSecretOutputs ?? [])] },
      "run402",
      "Deployment",
    );
  }
}
