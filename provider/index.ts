/** Pulumi resources for Run402. */
export { Deployment, type DeploymentArgs } from "./resources/deployment.js";
export { Project, type ProjectArgs } from "./resources/project.js";
export { Secret, type SecretArgs } from "./resources/secret.js";
export {
  type PlannedPayment,
  type SettlementOutput,
  Tier,
  type TierArgs,
  type TierName,
} from "./resources/tier.js";
