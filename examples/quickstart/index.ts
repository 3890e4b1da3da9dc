/**
 * Quickstart: a Run402 prototype tier, a Postgres project, and a deployment of ./app.json (a small
 * site and one migration).
 *
 *   pulumi config set --secret run402:privateKey 0x…   # or RUN402_PRIVATE_KEY, or the run402 allowance file
 *   pulumi config set run402:rail x402                  # or mpp
 *   pulumi preview                                      # shows the payment it would make; pays nothing
 *   pulumi up
 *
 * Offline, against the local sandbox: `npx run402-sandbox` prints its apiBase, RPC URLs and funded
 * dev wallets; set run402:apiBase, run402:baseRpcUrl, run402:tempoRpcUrl and run402:privateKey
 * from it (or just run `npm start` in the repository root).
 */
import { Deployment, Project, Tier } from "pulumi-run402";

// $0.10 for 7 days; renewed automatically on `pulumi up` within 2 days of expiry.
const tier = new Tier("tier", { tier: "prototype", renewBeforeDays: 2 });

// Projects need an active tier, so this one waits for the purchase.
const project = new Project("quickstart", { name: "quickstart" }, { dependsOn: [tier] });

// Content-addressed: `pulumi preview` names the files and migrations that change.
const site = new Deployment("site", { project, manifest: "app.json" });

export const projectId = project.projectId;
export const siteUrl = site.url;
export const files = site.files;
export const leaseExpiresAt = tier.leaseExpiresAt;
export const settlement = tier.lastSettlement;
