/**
 * `pulumi import` for the native provider: the engine's import calls Read with an id and no state
 * (pkg/resource/deploy/step.go, ImportStep), so the state the implementation's read refreshes is
 * built here from what Run402 and the local key store hold.
 *
 * - Project `<project id>`: Run402 returns a project's keys only when it is created, so they come from
 *   the run402 CLI's key store, where `adoptProjectId` finds them (provider/impl/project.ts).
 * - Tier `tier:<wallet address>`: the organization's lease, for the configured wallet only.
 * - Deployment and Secret cannot be imported: a deployment's manifest and a secret's value exist only
 *   in the program; declaring them over an imported Project deploys and sets them (both free).
 */
import { join } from "node:path";
import { BaseError } from "../../core/errors.js";
import { configDir } from "../../sdk/wallet.js";
import { getContext } from "../impl/context.js";
import { storedKeys } from "../impl/project.js";
import type { Shape } from "../shapes.js";

/** An import that cannot be done as asked; says how to provide what is missing. */
export class ImportError extends BaseError {
  override name = "ImportError";
  constructor(message: string, hint: string) {
    super(message, { code: "IMPORT_UNAVAILABLE", metaMessages: [hint] });
  }
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
      if (!/^prj_[A-Za-z0-9_]+$/.test(id)) {
        throw new ImportError(
          `"${id}" is not a project id.`,
          "Import a Project by its id: pulumi import run402:index:Project <name> prj_…",
        );
      }
      const detail = (await ctx.client.projects.get(id)) as { name?: string; site_url?: string | null };
      const keys = await storedKeys(id);
      if (!keys) {
        const store = join(configDir(), "credentials", "project-keys.v1.json");
        throw new ImportError(
          `[IMPORT_KEYS_MISSING] Project ${id} exists, but its keys are not in the run402 key store (${store}); Run402 returns a project's keys only when it is created, so it cannot be imported without them.`,
          `Import it on the machine whose run402 CLI created it, or copy its entry ({"projects": {"${id}": {"anon_key": …, "service_key": …}}}) into ${store} (or point RUN402_CONFIG_DIR at a folder holding credentials/project-keys.v1.json), then import again.`,
        );
      }
      return {
        name: detail.name ?? id,
        resourceKey: urn,
        projectId: id,
        anonKey: keys.anon_key,
        serviceKey: keys.service_key,
        restUrl: `${ctx.config.apiBase}/rest/v1`,
        siteUrl: detail.site_url ?? "",
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
      return {
        tier: "prototype",
        renewBeforeDays: ctx.config.renewBeforeDays,
        autoRenew: true,
        resourceKey: urn,
        plan: null,
        plannedPayment: null,
        wallet: ctx.wallet,
        leaseStartedAt: null,
        leaseExpiresAt: null,
        lifecycleState: "",
        lastSettlement: null,
      };
    }
    default:
      throw new ImportError(
        `A ${kind} cannot be imported: its ${kind === "secret" ? "value" : "manifest"} exists only in the program.`,
        `Import the Project, then declare the ${kind === "secret" ? "Secret" : "Deployment"} on it: the next up ${kind === "secret" ? "sets it" : "deploys it"} (free).`,
      );
  }
}
