/** Project: created once per resource (keyed), adopted by id (only), deleted with its service key. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { BaseError } from "../../core/errors.js";
import { configDir } from "../../sdk/wallet.js";
import type { ImplInputs, ImplOutputs, projectShape } from "../shapes.js";
import { getContext } from "./context.js";
import { ConflictError, isGoneError } from "./errors.js";
import { ApiOriginChangedError, bindOrigin, keyStoreOrigin, keysOrigin, originOf } from "./origin.js";
import { containsUnknown, recorded } from "./values.js";

/** What check returns and create/update receive (provider/shapes.ts). */
export type Inputs = ImplInputs<typeof projectShape>;

/** What create/update/read record (provider/shapes.ts). */
export type Outputs = ImplOutputs<typeof projectShape>;

interface Created {
  project_id: string;
  name?: string;
  anon_key: string;
  service_key: string;
  endpoints?: { rest_url?: string };
  site_url?: string | null;
}

function validate(news: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures: pulumi.dynamic.CheckFailure[] = [];
  const name = news.name;
  if (!containsUnknown(name)) {
    if (typeof name !== "string" || name.trim() === "" || name.length > 200 || /\p{Cc}/u.test(name)) {
      failures.push({
        property: "name",
        reason: "name must be 1 to 200 characters with no control characters",
      });
    }
  }
  const adopt = news.adoptProjectId;
  if (
    adopt !== undefined &&
    !containsUnknown(adopt) &&
    (typeof adopt !== "string" || !/^prj_[A-Za-z0-9_]+$/.test(adopt))
  ) {
    failures.push({
      property: "adoptProjectId",
      reason: `adoptProjectId must look like "prj_…"; got ${JSON.stringify(adopt)}`,
    });
  }
  return failures;
}

/** Keys of a project created by the run402 CLI, from its key store. */
export async function storedKeys(
  projectId: string,
): Promise<{ anon_key: string; service_key: string } | null> {
  const dir = configDir();
  for (const file of [join(dir, "credentials", "project-keys.v1.json"), join(dir, "projects.json")]) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    let parsed: { projects?: Record<string, { anon_key?: string; service_key?: string }> };
    try {
      parsed = JSON.parse(text);
    } catch {
      // JSON.parse quotes the text around the error, and this file holds keys: name the file only.
      throw new BaseError(`The run402 key store ${file} is not valid JSON.`, {
        code: "PROJECT_KEYS_UNREADABLE",
      });
    }
    const keys = parsed.projects?.[projectId];
    if (keys?.anon_key && keys.service_key) return { anon_key: keys.anon_key, service_key: keys.service_key };
  }
  return null;
}

function toOutputs(inputs: Inputs, created: Created, apiBase: string): Outputs {
  return {
    ...inputs,
    projectId: created.project_id,
    anonKey: created.anon_key,
    serviceKey: created.service_key,
    restUrl: created.endpoints?.rest_url ?? `${apiBase}/rest/v1`,
    siteUrl: created.site_url ?? "",
    apiOrigin: originOf(apiBase),
  };
}

/** True when the wallet can no longer see the project: it was deleted (or moved away). */
async function isGone(projectId: string): Promise<boolean> {
  const ctx = await getContext();
  const listed = await ctx.client.projects.list();
  return !listed.projects.some(
    (p: { project_id?: string; id?: string }) => (p.project_id ?? p.id) === projectId,
  );
}

/** Pulumi handlers for Project. */
export const project = {
  async check(
    _olds: Partial<Inputs>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult<Inputs>> {
    const failures = validate(news);
    if (failures.length > 0) return { failures };
    const inputs: Inputs = { name: news.name as string, resourceKey: String(news.resourceKey) };
    if (news.adoptProjectId !== undefined) inputs.adoptProjectId = news.adoptProjectId as string;
    return { inputs };
  },

  async diff(id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    // Every run over this project (preview, up) stops here, before a step sends its keys anywhere.
    const ctx = await getContext();
    await keysOrigin(`Project ${id}`, id, olds.apiOrigin, ctx.config.apiBase);
    const replaces: string[] = [];
    if (olds.name !== news.name) replaces.push("name");
    if ((olds.adoptProjectId ?? null) !== (news.adoptProjectId ?? null)) replaces.push("adoptProjectId");
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const ctx = await getContext();
    if (inputs.adoptProjectId) {
      const id = inputs.adoptProjectId;
      // The run402 key store belongs to the API its config folder targets: its keys go nowhere else.
      const storeOrigin = await keyStoreOrigin();
      if (storeOrigin !== originOf(ctx.config.apiBase)) {
        throw new ApiOriginChangedError({
          what: `Project ${id} (adopted from the run402 key store)`,
          issued: storeOrigin,
          current: originOf(ctx.config.apiBase),
        });
      }
      const detail = await ctx.client.projects.get(id);
      const keys = await storedKeys(id);
      if (!keys) {
        throw new BaseError(
          `Project ${id} exists but its keys are not in the run402 key store (${join(configDir(), "credentials", "project-keys.v1.json")}); Run402 returns keys only when a project is created. Adopt it from the machine that created it, or create a new project.`,
          { code: "PROJECT_KEYS_NOT_FOUND" },
        );
      }
      const outs = toOutputs(
        inputs,
        { project_id: id, ...keys, site_url: detail.site_url ?? null },
        ctx.config.apiBase,
      );
      await bindOrigin(id, outs.apiOrigin as string);
      return { id, outs: { ...outs, name: detail.name ?? inputs.name } };
    }
    // The key makes a retried or resumed create return the same project instead of a second one. It
    // names the stack instance (the CLI's stack id, when it runs), the resource's URN and the
    // project name: a stack owns what it creates, so another stack with the same names (in
    // another folder or backend) never replays this one's create and shares its project.
    const intent = ["project", ctx.config.stackId ?? "-", inputs.resourceKey, inputs.name].join("/");
    let created = (await ctx.client.projects.create({ name: inputs.name, intent })) as Created;
    // A replay of a project deleted since (destroy, then up again) needs a new key, and so may that
    // one's (destroy → up → destroy → up): follow the chain until the project is live. Each key is
    // derived from the project it replaces, so a crash-retry of this create walks the same chain.
    for (let step = 0; await isGone(created.project_id); step++) {
      if (step >= 100) {
        throw new ConflictError(
          "PLAN_CHANGED",
          `Creating project "${inputs.name}" keeps returning deleted projects (last ${created.project_id}); nothing was created.`,
        );
      }
      created = (await ctx.client.projects.create({
        name: inputs.name,
        intent: `${intent}/after/${created.project_id}`,
      })) as Created;
    }
    // Run402 Cloud's create answer names no site URL (kychee-com/run402 ProvisionResult): read it.
    if (created.site_url === undefined) {
      const detail = await ctx.client.projects.get(created.project_id);
      created = { ...created, site_url: detail.site_url ?? null };
    }
    const outs = toOutputs(inputs, created, ctx.config.apiBase);
    await bindOrigin(created.project_id, outs.apiOrigin as string);
    return { id: created.project_id, outs };
  },

  async update(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    // Every input change replaces (see diff); nothing remote to do.
    return { outs: { ...olds, ...news } };
  },

  async read(id: string, state?: Outputs): Promise<pulumi.dynamic.ReadResult> {
    const props = recorded(state, id);
    const ctx = await getContext();
    await keysOrigin(`Project ${id}`, id, props.apiOrigin, ctx.config.apiBase);
    // Run402 answers 403 for absent and forbidden alike; the wallet's list tells them apart.
    if (await isGone(id)) return { id: "" };
    const detail = await ctx.client.projects.get(id);
    const outs: Outputs = { ...props, siteUrl: detail.site_url ?? props.siteUrl };
    const inputs: Inputs = { name: props.name, resourceKey: props.resourceKey };
    if (props.adoptProjectId !== undefined) inputs.adoptProjectId = props.adoptProjectId;
    return { id, props: outs, inputs: { ...inputs } };
  },

  async delete(id: string, props: Outputs): Promise<void> {
    const ctx = await getContext();
    await keysOrigin(`Project ${id}`, id, props.apiOrigin, ctx.config.apiBase);
    try {
      await ctx.client.projects.delete({ projectId: id, serviceKey: props.serviceKey });
    } catch (error) {
      // Deleted already (out of band): what destroy wanted.
      if (!isGoneError(error)) throw error;
    }
  },
} satisfies pulumi.dynamic.ResourceProvider<Inputs, Outputs>;
