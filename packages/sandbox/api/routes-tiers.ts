/** Tier routes, image generation (the other paid route) and the lifecycle purge sweep. */
import type { Org, TierName } from "../state.js";
import { activeRelease, type Deps, iso, orgOf, projectsOf, siteUrl, siwx } from "./context.js";
import { badRequest, conflict } from "./errors.js";
import type { Route } from "./http.js";
import { challenge, paidIdentity, paidRoute } from "./paid.js";
import { renderPng } from "./png.js";
import { actionFor, applyPurchase, isTier, lifecycleOf, quoteOf, TIERS, termsOf } from "./tiers.js";

const MiB = 1024 * 1024;

function usage(deps: Deps, wallet: string): { functions: number; storageBytes: number; projects: number } {
  let functions = 0;
  let storageBytes = 0;
  const projects = projectsOf(deps, wallet);
  for (const p of projects) {
    const r = activeRelease(deps, p);
    if (!r) continue;
    functions += r.state.functions.length;
    for (const f of r.state.site.paths) storageBytes += f.size_bytes ?? 0;
  }
  return { functions, storageBytes, projects: projects.length };
}

/** Projects are dropped once their org reaches `purged`; runs before every request. */
export async function sweep(deps: Deps): Promise<void> {
  const now = deps.clock.now();
  const doomed = Object.values(deps.store.state.projects).filter(
    (p) => p.deletedAt === null && lifecycleOf(deps.store.state.orgs[p.wallet], now).state === "purged",
  );
  if (doomed.length === 0) return;
  for (const p of doomed) p.deletedAt = now;
  deps.store.save();
  for (const p of doomed) await deps.db.dropSchema(p.schemaSlot, p.projectId);
}

/** Routes under /tiers/v1 and /generate-image/v1. */
export function tierRoutes(deps: Deps): Route[] {
  const { store, clock } = deps;
  const paidDeps = {
    gate: deps.gate,
    store,
    now: clock.now,
    inFlight: deps.inFlight,
    log: deps.log,
  };

  return [
    {
      method: "GET",
      pattern: "/tiers/v1",
      handler: async () => ({
        status: 200,
        body: {
          tiers: Object.fromEntries(
            Object.keys(TIERS).map((t) => [t, quoteOf(termsOf(t as TierName, deps.controls.prices))]),
          ),
        },
      }),
    },
    {
      method: "GET",
      pattern: "/tiers/v1/status",
      async handler(ctx) {
        const wallet = await siwx(ctx);
        const org = store.state.orgs[wallet];
        const now = clock.now();
        const life = lifecycleOf(org, now);
        const terms = org?.tier ? TIERS[org.tier] : undefined;
        const use = usage(deps, wallet);
        return {
          status: 200,
          body: {
            wallet,
            tier: org?.tier ?? null,
            lease_started_at: iso(org?.leaseStartedAt),
            lease_expires_at: iso(org?.leaseExpiresAt),
            active: life.state === "active",
            // Both null for a wallet without an organization (kychee-com/run402
            // sdk/src/namespaces/tier.ts TierStatusResult).
            organization_lifecycle_state: life.state,
            lease_perpetual: org ? false : null,
            allowance_remaining_usd_micros: org?.allowanceMicros ?? 0,
            pool_usage: {
              projects: use.projects,
              total_api_calls: 0,
              total_storage_bytes: use.storageBytes,
              api_calls_limit: terms?.api_calls ?? 0,
              storage_bytes_limit: (terms?.storage_mb ?? 0) * MiB,
            },
            projects: projectsOf(deps, wallet).map((p) => ({
              id: p.projectId,
              name: p.name,
              tier: org?.tier ?? null,
              status: life.state,
              effective_status: life.state,
              organization_lifecycle_state: life.state,
              pinned: false,
              org_id: wallet,
              site_url: siteUrl(deps, p.projectId),
              created_at: iso(p.createdAt),
            })),
          },
        };
      },
    },
    {
      method: "POST",
      pattern: "/tiers/v1/:tier",
      paid: true,
      async handler(ctx) {
        const tier = ctx.params["tier"] ?? "";
        if (!isTier(tier)) {
          throw badRequest(
            "UNKNOWN_TIER",
            `Unknown tier "${tier}"; expected one of ${Object.keys(TIERS).join(", ")}.`,
            {
              tiers: Object.keys(TIERS),
            },
          );
        }
        const body = ctx.json();
        const terms = termsOf(tier, deps.controls.prices);
        const price = {
          atomic: BigInt(terms.price_atomic),
          usd: terms.price,
          description: `Run402 ${tier} tier`,
        };
        const who = await paidIdentity(ctx);
        if (!who) return challenge(ctx, paidDeps, price);
        const { wallet } = who;
        return paidRoute(ctx, paidDeps, {
          wallet,
          by: who.by,
          price,
          payload: body,
          preflight() {
            if (actionFor(store.state.orgs[wallet], tier, clock.now()) !== "downgrade") return;
            const use = usage(deps, wallet);
            if (use.functions > terms.max_functions || use.storageBytes > terms.storage_mb * MiB) {
              throw conflict(
                "DOWNGRADE_EXCEEDS_LIMITS",
                `Cannot downgrade: current usage exceeds the ${tier} tier limits.`,
                {
                  details: {
                    usage: use,
                    limits: { max_functions: terms.max_functions, storage_mb: terms.storage_mb },
                  },
                  next_actions: [{ type: "check_usage" }],
                },
              );
            }
          },
          spendAllowance() {
            const org = orgOf(deps, wallet);
            if (BigInt(org.allowanceMicros) < BigInt(terms.price_atomic)) return false;
            store.state.orgs[wallet] = {
              ...org,
              allowanceMicros: org.allowanceMicros - Number(terms.price_atomic),
            };
            return true;
          },
          fulfill() {
            const purchase = applyPurchase(orgOf(deps, wallet), tier as TierName, clock.now());
            const org: Org = purchase.org;
            store.state.orgs[wallet] = org;
            return {
              status: 200,
              body: {
                wallet,
                action: purchase.action,
                tier,
                previous_tier: purchase.previousTier,
                lease_started_at: iso(org.leaseStartedAt),
                lease_expires_at: iso(org.leaseExpiresAt),
                allowance_remaining_usd_micros: org.allowanceMicros,
              },
            };
          },
        });
      },
    },
    {
      method: "POST",
      pattern: "/generate-image/v1",
      paid: true,
      async handler(ctx) {
        const body = ctx.json();
        const { prompt, aspect = "1:1" } = body;
        if (typeof prompt !== "string" || prompt.length === 0 || prompt.length > 4000) {
          throw badRequest("INVALID_PROMPT", "prompt must be a string of 1 to 4000 characters.");
        }
        const sizes: Record<string, [number, number]> = {
          "1:1": [32, 32],
          "16:9": [32, 18],
          "9:16": [18, 32],
        };
        const size = typeof aspect === "string" ? sizes[aspect] : undefined;
        if (!size)
          throw badRequest("INVALID_ASPECT", `aspect must be one of ${Object.keys(sizes).join(", ")}.`);
        const price = { atomic: 30_000n, usd: "0.03", description: "Run402 image generation" };
        const who = await paidIdentity(ctx);
        if (!who) return challenge(ctx, paidDeps, price);
        return paidRoute(ctx, paidDeps, {
          wallet: who.wallet,
          by: who.by,
          price,
          payload: body,
          preflight() {},
          fulfill: () => ({
            status: 200,
            body: { image: renderPng(prompt, ...size).toString("base64"), content_type: "image/png" },
          }),
        });
      },
    },
  ];
}
