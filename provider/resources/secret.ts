/**
 * Secret: a write-only project secret (functions read it by name; Run402 never returns values).
 *
 * create/update → POST /projects/v1/admin/:id/secrets (service key)
 * read   → GET /projects/v1/admin/:id/secrets (names only: a missing name is drift; a value
 *          changed out of band cannot be seen)
 * delete → DELETE /projects/v1/admin/:id/secrets/:key (404 counts as deleted)
 */
import type * as pulumi from "@pulumi/pulumi";
import { secret } from "@pulumi/pulumi/output.js";
import type { Project } from "./project.js";
import { Run402Resource } from "./stub.js";

/** Arguments of a Secret. */
export interface SecretArgs {
  project: Project;
  /** Name, `^[A-Z_][A-Z0-9_]{0,127}$`. Changing it replaces the secret. */
  name: pulumi.Input<string>;
  /** The value; stored encrypted in Pulumi state, never in outputs. */
  value: pulumi.Input<string>;
}

/** A Run402 project secret. */
export class Secret extends Run402Resource {
  declare readonly projectId: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;

  constructor(name: string, args: SecretArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "secret",
      "Secret",
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
