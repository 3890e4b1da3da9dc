/**
 * The one description of the resources (provider/shapes.ts) against what was written by hand before it
 * existed: the implementation's Inputs/Outputs, the resources' args and declared outputs, and the
 * outputs and secrets each resource registers. The type assertions are checked by `npm run check`
 * (tsc), the rest by vitest.
 */
import type * as pulumi from "@pulumi/pulumi";
import { describe, expect, expectTypeOf, test } from "vitest";
import type * as deploymentImpl from "./impl/deployment.js";
import type * as projectImpl from "./impl/project.js";
import type * as secretImpl from "./impl/secret.js";
import type * as tierImpl from "./impl/tier.js";
import type { Deployment, DeploymentArgs } from "./resources/deployment.js";
import type { Project, ProjectArgs } from "./resources/project.js";
import type { Secret } from "./resources/secret.js";
import type { Tier, TierArgs } from "./resources/tier.js";
import {
  deploymentShape,
  namedTypes,
  outputKeys,
  projectShape,
  type ReleaseChanges,
  recordQuiet,
  revealQuiet,
  secretKeys,
  secretShape,
  shapes,
  tierShape,
} from "./shapes.js";
import type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "./types.js";

/** An intersection as one object type, to compare with a derived one. */
type Flat<T> = { [K in keyof T]: T[K] };

describe("derived TypeScript types", () => {
  test("the implementation's Inputs and Outputs are the ones written by hand before", () => {
    expectTypeOf<tierImpl.Inputs>().toEqualTypeOf<{
      tier: TierName;
      renewBeforeDays: number;
      autoRenew: boolean;
      resourceKey: string;
      plan: TierDecision | null;
      plannedPayment: PlannedPayment | null;
    }>();
    expectTypeOf<tierImpl.Outputs>().toEqualTypeOf<
      Flat<
        tierImpl.Inputs & {
          wallet: string;
          leaseStartedAt: string | null;
          leaseExpiresAt: string | null;
          lifecycleState: string;
          lastSettlement: SettlementOutput | null;
        }
      >
    >();
    expectTypeOf<projectImpl.Inputs>().toEqualTypeOf<{
      name: string;
      adoptProjectId?: string;
      resourceKey: string;
    }>();
    expectTypeOf<projectImpl.Outputs>().toEqualTypeOf<
      Flat<
        projectImpl.Inputs & {
          projectId: string;
          anonKey: string;
          serviceKey: string;
          restUrl: string;
          siteUrl: string;
          apiOrigin: string | null;
        }
      >
    >();
    expectTypeOf<deploymentImpl.Inputs>().toEqualTypeOf<{
      projectId: string;
      anonKey: string;
      manifest: string | Record<string, unknown>;
      baseDir?: string;
      resourceKey: string;
      manifestDigest: string;
      releaseDigest: string;
      release: string;
      changes: ReleaseChanges;
      files: Record<string, string>;
      migrations: Record<string, string>;
      functions: Record<string, string>;
      routes: Record<string, unknown>;
      i18n: unknown;
    }>();
    expectTypeOf<deploymentImpl.Outputs>().toEqualTypeOf<
      Flat<
        deploymentImpl.Inputs & {
          releaseId: string;
          url: string;
          uploaded: string[];
          apiOrigin: string | null;
        }
      >
    >();
    expectTypeOf<secretImpl.Inputs>().toEqualTypeOf<{
      projectId: string;
      serviceKey: string;
      name: string;
      value: string;
    }>();
    expectTypeOf<secretImpl.Outputs>().toEqualTypeOf<
      Flat<secretImpl.Inputs & { apiOrigin: string | null }>
    >();
    expectTypeOf<ReleaseChanges>().toEqualTypeOf<{
      summary: string;
      site: { added: string[]; removed: string[]; changed: string[] };
      functions: { added: string[]; removed: string[]; changed: string[] };
      migrations: { new: string[] };
      routes: { added: string[]; removed: string[]; changed: string[] };
      secrets: { added: string[]; removed: string[] };
      subdomains: { added: string[]; removed: string[] };
      i18n?: { from: unknown; to: unknown };
      warnings: string[];
    }>();
  });

  test("the resources' args and outputs follow the same description (`changes` no longer drifts)", () => {
    expectTypeOf<TierArgs>().toEqualTypeOf<{
      tier: pulumi.Input<TierName>;
      renewBeforeDays?: pulumi.Input<number>;
      autoRenew?: pulumi.Input<boolean>;
    }>();
    expectTypeOf<ProjectArgs>().toEqualTypeOf<{
      name: pulumi.Input<string>;
      adoptProjectId?: pulumi.Input<string>;
    }>();
    expectTypeOf<DeploymentArgs["manifest"]>().toEqualTypeOf<
      pulumi.Input<string | Record<string, unknown>>
    >();
    expectTypeOf<Tier["lastSettlement"]>().toEqualTypeOf<pulumi.Output<SettlementOutput | null>>();
    expectTypeOf<Tier["plan"]>().toEqualTypeOf<pulumi.Output<TierDecision | null>>();
    expectTypeOf<Project["serviceKey"]>().toEqualTypeOf<pulumi.Output<string>>();
    // The implementation's type, where the resource said Record<string, unknown>.
    expectTypeOf<Deployment["changes"]>().toEqualTypeOf<pulumi.Output<ReleaseChanges>>();
    expectTypeOf<Deployment["uploaded"]>().toEqualTypeOf<pulumi.Output<string[]>>();
    expectTypeOf<Secret["name"]>().toEqualTypeOf<pulumi.Output<string>>();
    // Write-only inputs are not outputs.
    expectTypeOf<Secret>().not.toHaveProperty("value");
    expectTypeOf<Deployment>().not.toHaveProperty("anonKey");
  });
});

describe("the description at run time", () => {
  test("declared outputs and secrets are the ones the resources registered by hand before", () => {
    expect(outputKeys(tierShape).sort()).toEqual(
      [
        "tier",
        "renewBeforeDays",
        "autoRenew",
        "wallet",
        "leaseStartedAt",
        "leaseExpiresAt",
        "lifecycleState",
        "lastSettlement",
        "plan",
        "plannedPayment",
      ].sort(),
    );
    expect(outputKeys(projectShape).sort()).toEqual(
      [
        "projectId",
        "name",
        "adoptProjectId",
        "anonKey",
        "serviceKey",
        "restUrl",
        "siteUrl",
        "apiOrigin",
      ].sort(),
    );
    expect(outputKeys(deploymentShape).sort()).toEqual(
      [
        "projectId",
        "manifest",
        "releaseId",
        "url",
        "manifestDigest",
        "releaseDigest",
        "release",
        "changes",
        "files",
        "migrations",
        "functions",
        "routes",
        "i18n",
        "uploaded",
        "apiOrigin",
      ].sort(),
    );
    expect(outputKeys(secretShape).sort()).toEqual(["apiOrigin", "name", "projectId"]);
    expect(secretKeys(projectShape).sort()).toEqual(["anonKey", "serviceKey"]);
    expect(secretKeys(deploymentShape)).toEqual(["anonKey"]);
    expect(secretKeys(secretShape).sort()).toEqual(["serviceKey", "value"]);
    expect(secretKeys(tierShape)).toEqual([]);
  });

  test("every property and named type has a description; named types are unique", () => {
    for (const shape of shapes) {
      expect(shape.description.length, shape.name).toBeGreaterThan(20);
      for (const [key, p] of Object.entries(shape.properties))
        expect(p.description, `${shape.name}.${key}`).not.toBe("");
    }
    const names = namedTypes(shapes).map((type) => type.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining(["TierName", "TierDecision", "PlannedPayment", "Settlement", "ReleaseChanges"]),
    );
  });
});

describe("quiet properties", () => {
  test("behavior: a Deployment's `changes` and `release` are recorded under `__` keys (which Pulumi's diff does not display) and read back under their names", () => {
    const inputs = {
      projectId: "prj_1",
      release: "{}",
      changes: { summary: "1 site path added" },
      files: {},
    };
    const recorded = recordQuiet(deploymentShape, inputs);
    expect(Object.keys(recorded).sort()).toEqual(["__changes", "__release", "files", "projectId"]);
    expect(revealQuiet(deploymentShape, recorded)).toEqual(inputs);
    // A state written before they were quiet has them under their names: read as they are.
    expect(revealQuiet(deploymentShape, inputs)).toEqual(inputs);
    // Only the shape's quiet properties move; anything else (and non-objects) passes through.
    expect(recordQuiet(tierShape, { tier: "hobby" })).toEqual({ tier: "hobby" });
    expect(revealQuiet(deploymentShape, "prj_1/deployment")).toBe("prj_1/deployment");
  });
});
