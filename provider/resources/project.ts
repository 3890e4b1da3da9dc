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
 */
import type * as pulumi from "@pulumi/pulumi";
import { createUrn } from "@pulumi/pulumi/resource.js";
import { Run402Resource } from "./stub.js";

interface Inputs {
  name: string;
  adoptProjectId?: string;
}

/** Arguments of a Project. */
export interface ProjectArgs {
  /** The project's name. Changing it replaces the project (Run402's rename is not modelled yet). */
  name: pulumi.Input<Inputs["name"]>;
  /**
   * Adopt this existing project instead of creating one. Its keys are read from the run402 CLI's
   * key store (`~/.config/run402/credentials/project-keys.v1.json`). Deleting the resource deletes
   * the adopted project: add `retainOnDelete: true` to keep it.
   */
  adoptProjectId?: pulumi.Input<string>;
}

/** A Run402 project. */
export class Project extends Run402Resource {
  declare readonly projectId: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  /** Public (anon) key; secret. */
  declare readonly anonKey: pulumi.Output<string>;
  /** Service key (full access); secret. */
  declare readonly serviceKey: pulumi.Output<string>;
  declare readonly restUrl: pulumi.Output<string>;
  declare readonly siteUrl: pulumi.Output<string>;

  constructor(name: string, args: ProjectArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "project",
      "Project",
      name,
      {
        ...args,
        // The URN: with the stack's identity, it keys the create (see impl/project.ts).
        resourceKey: createUrn(name, "pulumi-nodejs:dynamic/run402:Project", opts?.parent),
        projectId: undefined,
        anonKey: undefined,
        serviceKey: undefined,
        restUrl: undefined,
        siteUrl: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: ["anonKey", "serviceKey", ...(opts?.additionalSecretOutputs ?? [])],
      },
    );
  }
}
