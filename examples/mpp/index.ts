/**
 * Pays Run402 over MPP (Stripe's Machine Payments Protocol: pathUSD on Tempo) instead of x402.
 *
 *   pulumi config set run402:rail mpp
 *   pulumi config set --secret run402:privateKey 0x…      # or RUN402_PRIVATE_KEY, or the run402 allowance file
 *   pulumi config set run402:maxPaymentUsd 5               # hobby costs $5 per 30 days
 *   pulumi up
 *
 * The tier's `lastSettlement.rail` output records how the purchase settled ("mpp").
 */
import * as pulumi from "@pulumi/pulumi";
import { Project, Secret, Tier } from "pulumi-run402";

const config = new pulumi.Config();
const tier = new Tier("tier", { tier: (config.get("tier") as "prototype" | "hobby" | "team") ?? "hobby" });
const project = new Project("api", { name: "mpp-example" }, { dependsOn: [tier] });
new Secret("webhook-token", { project, name: "WEBHOOK_TOKEN", value: config.requireSecret("webhookToken") });

export const projectId = project.projectId;
export const leaseExpiresAt = tier.leaseExpiresAt;
export const settledOn = tier.lastSettlement.apply((s) => s?.rail ?? "nothing paid (lease adopted)");
