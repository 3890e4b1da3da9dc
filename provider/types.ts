/**
 * Values a resource (provider/resources/, in the program) and its implementation (provider/impl/, in the
 * provider process) share. Both import them from here; neither imports the other (a resource reaches its
 * implementation only through the stub's `require("pulumi-run402/provider/impl")`). They are described
 * once, with every resource's properties, in provider/shapes.ts.
 */
export type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "./shapes.js";
