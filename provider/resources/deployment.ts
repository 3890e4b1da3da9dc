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
 *
 * Its arguments and outputs are described in provider/shapes.ts (`deploymentShape`).
 */
import type * as pulumi from "@pulumi/pulumi";
import { createUrn } from "@pulumi/pulumi/resource.js";
import { deploymentShape } from "../shapes.js";
import type { Project } from "./project.js";
import { type DeclaredOutputs, type InputArgs, Run402Resource } from "./stub.js";

/**
 * Arguments of a Deployment: the `project` to deploy to, the `manifest` (a path to a manifest file or
 * to a folder holding one, resolved from `baseDir`, or the manifest object) and `baseDir` (the folder
 * relative manifest paths resolve from: the Pulumi project folder; default `process.cwd()`).
 */
export type DeploymentArgs = Omit<InputArgs<typeof deploymentShape>, "projectId" | "anonKey"> & {
  /** The project to deploy to. */
  project: Project;
};

/** The active release of a Run402 project; its outputs as `deploymentShape` declares them. */
export interface Deployment extends DeclaredOutputs<typeof deploymentShape> {}

/** The active release of a Run402 project. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the outputs Pulumi's CustomResource sets on the instance
export class Deployment extends Run402Resource {
  constructor(name: string, args: DeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      deploymentShape,
      name,
      {
        projectId: args.project.projectId,
        anonKey: args.project.anonKey,
        manifest: args.manifest,
        // Relative manifest paths resolve from the program's folder; the engine may start the
        // provider elsewhere (in `main`'s folder). Not compared by diff.
        baseDir: args.baseDir ?? process.cwd(),
        // The URN: upload and deploy progress is placed on this resource's row. Not compared by diff.
        resourceKey: createUrn(name, "pulumi-nodejs:dynamic/run402:Deployment", opts?.parent),
        // Not in the shape (not an argument users set, not recorded: check leaves it out): run402-pulumi's
        // manifest stack reads the tier and project blocks itself (provider/stack.ts), so this
        // Deployment does not warn that it ignores them.
        ...((args as { manifestBlocksRead?: boolean }).manifestBlocksRead === true
          ? { manifestBlocksRead: true }
          : {}),
      },
      opts,
    );
  }
}
