/**
 * `pulumi import` for the native provider: the engine's import calls Read with an id and no state
 * (pkg/resource/deploy/step.go, ImportStep), so the state the implementation's read refreshes is
 * built here from what Run402 and the local key store hold.
 *
 * - Project `<project id>`: Run402 returns a project's keys only when it is created, so they come from
 *   the run402 CLI's key store, where `adoptProjectId` finds them (provider/impl/project.ts).
 * - Tier `tier:<wallet address>`: the organization's lease, for the configured wallet only, judged as an
 *   existing Tier's check judges it (the next up of the same declaration changes nothing).
 * - Deployment `<project id>/deployment` (the id its create gives; `<project id>` alone too): the
 *   project's live release, read with the anon key from the key store (`GET
 *   /apply/v1/releases/active`, an inventory: kychee-com/run402 sdk/src/namespaces/deploy.types.ts
 *   `ReleaseInventoryBase` @2d17de43). The manifest is the program's: the next up deploys it unless
 *   the live release already serves what it plans (provider/impl/deployment.ts `servesPlanned`).
 * - Secret `<project id>/<NAME>`: the key, if the project lists it (`GET
 *   /projects/v1/admin/:id/secrets`, service key). Run402 never returns a value or a hash of it
 *   (kychee-com/run402 sdk/src/namespaces/secrets.ts @2d17de43), so the import adopts the name and
 *   the next up sets the program's value once (an update, free); after that it is converged.
 */
import { join } from "node:path";
import { BaseError } from "../../core/errors.js";
import { configDir } from "../../sdk/wallet.js";
import { getContext } from "../impl/context.js";
import { liveDeployment } from "../impl/deployment.js";
import { ApiOriginChangedError, keyStoreOrigin, keysOrigin, originOf } from "../impl/origin.js";
import { storedKeys } from "../impl/project.js";
import { liveTier } from "../impl/tier.js";
import type { Shape } from "../shapes.js";

/** An import that cannot be done as asked; says how to provide what is missing. */
export class ImportError extends BaseError {
  override name = "ImportError";
  constructor(message: string, hint: string) {
    super(message, { code: "IMPORT_UNAVAILABLE", metaMessages: [hint] });
  }
}

const projectIdPattern = /^prj_[A-Za-z0-9_]+$/;

/** The keys of project `id` from the run402 key store; IMPORT_KEYS_MISSING says how to provide them. */
async function importKeys(id: string): Promise<{ anon_key: string; service_key: string }> {
  const keys = await storedKeys(id);
  if (keys) {
    // The key store belongs to the API its config folder targets: its keys go to no other origin
    // (a stack config naming another run402:apiBase would otherwise receive them).
    const current = originOf((await getContext()).config.apiBase);
    const issued = await keyStoreOrigin();
    if (issued !== current)
      throw new ApiOriginChangedError({ what: `Project ${id} (in the run402 key store)`, issued, current });
    return keys;
  }
  const store = join(configDir(), "credentials", "project-keys.v1.json");
  throw new ImportError(
    `[IMPORT_KEYS_MISSING] Project ${id} exists, but its keys are not in the run402 key store (${store}); Run402 returns a project's keys only when it is created, so it cannot be imported without them.`,
    `Import it on the machine whose run402 CLI created it, or copy its entry ({"projects": {"${id}": {"anon_key": …, "service_key": …}}}) into ${store} (or point RUN402_CONFIG_DIR at a folder holding credentials/project-keys.v1.json), then import again. A project run402-pulumi created keeps its keys in that stack's state: see README, "Importing".`,
  );
}

/** The id a read of an import uses: the one create gives (a Deployment imported by its project id gets `/deployment`). */
export function importId(kind: Shape["kind"], id: string): string {
  return kind === "deployment" && projectIdPattern.test(id) ? `${id}/deployment` : id;
}

/** The state a read of the resource `id` refreshes, for an import. */
export async function importState(
  kind: Shape["kind"],
  id: string,
  urn: string,
): Promise<Record<string, unknown>> {
  const ctx = await getContext();
  switch (kind) {
    case "project": {
      if (!projectIdPattern.test(id)) {
        throw new ImportError(
          `"${id}" is not a project id.`,
          "Import a Project by its id: pulumi import run402:index:Project <name> prj_…",
        );
      }
      const detail = (await ctx.client.projects.get(id)) as { name?: string; site_url?: string | null };
      const keys = await importKeys(id);
      return {
        name: detail.name ?? id,
        resourceKey: urn,
        projectId: id,
        anonKey: keys.anon_key,
        serviceKey: keys.service_key,
        restUrl: `${ctx.config.apiBase}/rest/v1`,
        siteUrl: detail.site_url ?? "",
        apiOrigin: originOf(ctx.config.apiBase),
      };
    }
    case "tier": {
      const wallet = ctx.wallet.toLowerCase();
      if (id.toLowerCase() !== `tier:${wallet}`) {
        throw new ImportError(
          `The configured wallet's tier has the id tier:${wallet}, not ${id}.`,
          `Import the tier of the wallet run402:privateKey names: pulumi import run402:index:Tier <name> tier:${wallet}`,
        );
      }
      const live = await liveTier(urn);
      if (!live) {
        throw new ImportError(
          `The wallet ${ctx.wallet} holds no tier to import.`,
          "Declare the Tier without importing it: the next up subscribes (and pays for) the tier it names.",
        );
      }
      return {
        ...live,
        plannedPayment: null,
        wallet: ctx.wallet,
        leaseStartedAt: null,
        leaseExpiresAt: null,
        lifecycleState: "",
        lastSettlement: null,
      };
    }
    case "deployment": {
      const projectId = id.replace(/\/deployment$/, "");
      if (!projectIdPattern.test(projectId)) {
        throw new ImportError(
          `"${id}" is not a Deployment id.`,
          "Import a Deployment by its project's id: pulumi import run402:index:Deployment <name> prj_…/deployment",
        );
      }
      await ctx.client.projects.get(projectId);
      const keys = await importKeys(projectId);
      const live = await liveDeployment(projectId, keys.anon_key);
      if (!live) {
        throw new ImportError(
          `Project ${projectId} has no live release to import.`,
          "Declare the Deployment without importing it: the next up deploys the program's manifest (free).",
        );
      }
      return live;
    }
    case "secret": {
      const match = /^(prj_[A-Za-z0-9_]+)\/([A-Z_][A-Z0-9_]{0,127})$/.exec(id);
      if (!match) {
        throw new ImportError(
          `"${id}" is not a Secret id.`,
          "Import a Secret by its project's id and its name: pulumi import run402:index:Secret <name> prj_…/STRIPE_KEY",
        );
      }
      const [, projectId, name] = match as unknown as [string, string, string];
      const keys = await importKeys(projectId);
      const apiOrigin = await keysOrigin(
        `The service key of project ${projectId}`,
        projectId,
        undefined,
        ctx.config.apiBase,
      );
      const listed = await ctx.client.secrets.list({ projectId, serviceKey: keys.service_key });
      if (!listed.secrets.some((s: { key: string }) => s.key === name)) {
        throw new ImportError(
          `Project ${projectId} has no secret ${name}.`,
          "Declare the Secret without importing it: the next up sets it (free).",
        );
      }
      // No value: Run402 never returns one; the program's next up sets it.
      return { projectId, serviceKey: keys.service_key, name, apiOrigin };
    }
  }
}
