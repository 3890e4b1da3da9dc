/**
 * Project: a Run402 Postgres project (schema, REST API, site, functions).
 *
 * create → POST /projects/v1 (free while a tier is active; Idempotency-Key from the stack, the
 *          resource's URN and the name, so another stack never gets this one's project), or adopt
 *          an existing project by id (`adoptProjectId`, the `pulumi import` workaround; adopting is
 *          only ever explicit)
 * read   → GET /projects/v1/:id, and GET /projects/v1 to tell "deleted" from "forbidden"
 * update → nothing remote: every input change replaces
 * delete → DELETE /projects/v1/:id with the service key (404 counts as deleted)
 *
 * Its arguments and outputs are described in provider/shapes.ts (`projectShape`).
 */
import type * as pulumi from "@pulumi/pulumi";
import { createUrn } from "@pulumi/pulumi/resource.js";
import { projectShape } from "../shapes.js";
import { type DeclaredOutputs, type InputArgs, Run402Resource } from "./stub.js";

/**
 * Arguments of a Project: `name` (changing it replaces the project) and `adoptProjectId` (adopt this
 * existing project instead of creating one, with its keys from the run402 CLI's key store; deleting
 * the resource deletes the adopted project: add `retainOnDelete: true` to keep it).
 */
export type ProjectArgs = InputArgs<typeof projectShape>;

/** A Run402 project; its outputs as `projectShape` declares them (`anonKey` and `serviceKey` secret). */
export interface Project extends DeclaredOutputs<typeof projectShape> {}

/** A Run402 project. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the outputs Pulumi's CustomResource sets on the instance
export class Project extends Run402Resource {
  constructor(name: string, args: ProjectArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      projectShape,
      name,
      {
        ...args,
        // The URN: with the stack's identity, it keys the create (see impl/project.ts).
        resourceKey: createUrn(name, "pulumi-nodejs:dynamic/run402:Project", opts?.parent),
      },
      opts,
    );
  }
}
