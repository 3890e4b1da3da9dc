import { createRequire } from "node:module";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";

// A key that must never reach state: set in the environment and config the program can see.
const key = `0x${"ab".repeat(32)}`;
process.env.RUN402_PRIVATE_KEY = key;

interface Registered {
  type: string;
  name: string;
  provider: string;
}

async function registerAll(): Promise<Registered[]> {
  const registered: Registered[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered.push({ type: args.type, name: args.name, provider: String(args.inputs.__provider) });
        return {
          id: `${args.name}-id`,
          state: { ...args.inputs, projectId: "prj_1", anonKey: "anon", serviceKey: "svc" },
        };
      },
      call: (args) => args.inputs,
    },
    "proj",
    "dev",
    true,
  );
  pulumi.runtime.setAllConfig({ "run402:privateKey": key }, ["run402:privateKey"]);
  const { Deployment, Project, Secret, Tier } = await import("../index.js");
  const tier = new Tier("tier", { tier: "prototype" });
  const project = new Project("app", { name: "app" }, { dependsOn: [tier] });
  new Deployment("site", { project, manifest: "examples/quickstart/app.json" });
  new Secret("stripe", { project, name: "STRIPE_KEY", value: "sk_test_value" });
  // Registration is asynchronous: wait for the mock monitor to see all four.
  for (let i = 0; i < 200 && registered.length < 4; i++) await new Promise((r) => setTimeout(r, 25));
  return registered;
}

describe("serialized provider", () => {
  test("behavior: every resource carries a small stub that holds no key material", async () => {
    const registered = await registerAll();
    expect(registered.map((r) => r.type).sort()).toEqual([
      "pulumi-nodejs:dynamic/run402:Deployment",
      "pulumi-nodejs:dynamic/run402:Project",
      "pulumi-nodejs:dynamic/run402:Secret",
      "pulumi-nodejs:dynamic/run402:Tier",
    ]);
    for (const r of registered) {
      expect(r.provider.length, r.type).toBeLessThan(4096);
      expect(r.provider).toContain('require("pulumi-run402/provider/impl")');
      expect(r.provider).not.toContain(key.slice(2));
      expect(r.provider).not.toMatch(/0x[0-9a-fA-F]{64}/);
      expect(r.provider).not.toContain("sk_test_value");
      expect(r.provider).not.toMatch(/viem|mppx|@x402/);
    }
  });

  test("behavior: the stub, loaded as the provider process loads it, reaches the implementation", async () => {
    const registered = await registerAll();
    const tier = registered.find((r) => r.type.endsWith(":Tier"));
    // The loader Pulumi's provider process uses for `__provider` text.
    const requireFromString = createRequire(import.meta.url)("require-from-string") as (
      code: string,
      file?: string,
    ) => { handler: () => pulumi.dynamic.ResourceProvider };
    const provider = requireFromString(tier!.provider, "").handler();
    // An invalid tier is refused by the real implementation's check, with no network call.
    const result = await provider.check!({}, { tier: "gold", resourceKey: "proj/dev/tier" });
    expect(result.failures).toEqual([
      { property: "tier", reason: 'tier must be one of prototype, hobby, team; got "gold"' },
    ]);
  });
});
