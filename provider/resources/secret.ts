/**
 * Secret: a write-only project secret (functions read it by name; Run402 never returns values).
 *
 * create/update → POST /projects/v1/admin/:id/secrets (service key)
 * read   → GET /projects/v1/admin/:id/secrets (names only: a missing name is drift; a value
 *          changed out of band cannot be seen)
 * delete → DELETE /projects/v1/admin/:id/secrets/:key (404 counts as deleted)
 *
 * Its arguments and outputs are described in provider/shapes.ts (`secretShape`).
 */
import type * as pulumi from "@pulumi/pulumi";
import { secret } from "@pulumi/pulumi/output.js";
import { secretShape } from "../shapes.js";
import type { Project } from "./project.js";
import { type DeclaredOutputs, type InputArgs, Run402Resource } from "./stub.js";

/**
 * Arguments of a Secret: the `project`, its `name` (`^[A-Z_][A-Z0-9_]{0,127}$`; changing it replaces
 * the secret) and its `value` (stored encrypted in Pulumi state, never in outputs).
 */
export type SecretArgs = Omit<InputArgs<typeof secretShape>, "projectId" | "serviceKey"> & {
  /** The project. */
  project: Project;
};

/** A Run402 project secret; its outputs as `secretShape` declares them. */
export interface Secret extends DeclaredOutputs<typeof secretShape> {}

/** A Run402 project secret. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the outputs Pulumi's CustomResource sets on the instance
export class Secret extends Run402Resource {
  constructor(name: string, args: SecretArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      secretShape,
      name,
      {
        projectId: args.project.projectId,
        serviceKey: args.project.serviceKey,
        name: args.name,
        // Secret in state; the engine keeps the same-named output encrypted too.
        value: secret(args.value),
      },
      opts,
    );
  }
}
