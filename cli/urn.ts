/** Names from the engine's URNs and resource types, as the reports show them. */

/** `pulumi-nodejs:dynamic/run402:Tier` → `run402:Tier`. */
export function shortType(type: string): string {
  return type.replace(/^pulumi-nodejs:dynamic\//, "");
}

/** The resource name at the end of a URN. */
export function urnName(urn: string): string {
  return urn.split("::").pop() ?? urn;
}
