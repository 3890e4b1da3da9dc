/** Secret: write-only project secret values. */
import type * as pulumi from "@pulumi/pulumi";
import type { ImplInputs, ImplOutputs, secretShape } from "../shapes.js";
import { getContext } from "./context.js";
import { isGoneError } from "./errors.js";
import { keysOrigin } from "./origin.js";
import { containsUnknown, recorded } from "./values.js";

/** What check returns and create/update receive (provider/shapes.ts). */
export type Inputs = ImplInputs<typeof secretShape>;

/** What create/update/read record: the inputs and the origin of the key (provider/shapes.ts). */
export type Outputs = ImplOutputs<typeof secretShape>;

/** The origin this secret's service key may go to, checked against this run's API. */
const origin = (apiBase: string, projectId: string, issuedBy?: string | null) =>
  keysOrigin(`The service key of project ${projectId}`, projectId, issuedBy, apiBase);

const namePattern = /^[A-Z_][A-Z0-9_]{0,127}$/;

/** Pulumi handlers for Secret. */
export const secret = {
  async check(
    olds: Partial<Inputs>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult<Inputs>> {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (!containsUnknown(news.name) && (typeof news.name !== "string" || !namePattern.test(news.name))) {
      failures.push({
        property: "name",
        reason: `name must match ${namePattern.source} (upper case, digits and _); got ${JSON.stringify(news.name)}`,
      });
    }
    // `pulumi import` checks the inputs its read reported: Run402 never returns a secret's value
    // (kychee-com/run402 sdk/src/namespaces/secrets.ts @2d17de43: keys only), so an imported secret
    // has none until the program's next up sets it.
    const imported =
      news.value === undefined &&
      olds.value === undefined &&
      olds.projectId !== undefined &&
      olds.projectId === news.projectId &&
      olds.name === news.name;
    if (!imported && !containsUnknown(news.value) && typeof news.value !== "string") {
      failures.push({ property: "value", reason: "value must be a string" });
    }
    if (failures.length > 0) return { failures };
    return { inputs: news as Inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces = [
      olds.projectId !== news.projectId && "projectId",
      olds.name !== news.name && "name",
    ].filter((x): x is string => typeof x === "string");
    const changes = replaces.length > 0 || olds.value !== news.value || olds.serviceKey !== news.serviceKey;
    return { changes, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const ctx = await getContext();
    const apiOrigin = await origin(ctx.config.apiBase, inputs.projectId);
    await ctx.client.secrets.set({
      projectId: inputs.projectId,
      serviceKey: inputs.serviceKey,
      key: inputs.name,
      value: inputs.value,
    });
    return { id: `${inputs.projectId}/${inputs.name}`, outs: { ...inputs, apiOrigin } };
  },

  async update(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    const ctx = await getContext();
    const apiOrigin = await origin(
      ctx.config.apiBase,
      news.projectId,
      olds.projectId === news.projectId ? olds.apiOrigin : undefined,
    );
    await ctx.client.secrets.set({
      projectId: news.projectId,
      serviceKey: news.serviceKey,
      key: news.name,
      value: news.value,
    });
    return { outs: { ...news, apiOrigin } };
  },

  async read(id: string, state?: Outputs): Promise<pulumi.dynamic.ReadResult> {
    const props = recorded(state, id);
    const ctx = await getContext();
    await origin(ctx.config.apiBase, props.projectId, props.apiOrigin);
    let listed: Awaited<ReturnType<typeof ctx.client.secrets.list>>;
    try {
      listed = await ctx.client.secrets.list({ projectId: props.projectId, serviceKey: props.serviceKey });
    } catch (error) {
      // The project (and so its key) is gone: the secret went with it.
      if (isGoneError(error)) return { id: "" };
      throw error;
    }
    if (!listed.secrets.some((s: { key: string }) => s.key === props.name)) return { id: "" };
    return { id, props, inputs: { ...props } };
  },

  async delete(_id: string, props: Outputs): Promise<void> {
    const ctx = await getContext();
    await origin(ctx.config.apiBase, props.projectId, props.apiOrigin);
    try {
      await ctx.client.secrets.delete({
        projectId: props.projectId,
        serviceKey: props.serviceKey,
        key: props.name,
      });
    } catch (error) {
      // Already gone, with its project or on its own.
      if (!isGoneError(error)) throw error;
    }
  },
} satisfies pulumi.dynamic.ResourceProvider<Inputs, Outputs>;
