/**
 * The native provider's own logic, without the engine: the schema derived from provider/shapes.ts,
 * secrets unwrapped and wrapped again, and the operator's money settings that an explicit provider may
 * only narrow. (Through the engine: test/native.e2e.test.ts.)
 */
import { describe, expect, test } from "vitest";
import { configKeys } from "../settings.js";
import { shapes } from "../shapes.js";
import { packageSchema } from "./schema.js";
import { conceal, narrowingFailures, operatorConfig, reveal } from "./server.js";

const sig = "4dabf18193072939515e22adb298388d";
const secret = (value: string | number) => ({ [sig]: "1b47061264138c4ac30d75fd1eb44270", value });

describe("package schema", () => {
  const schema = packageSchema("1.2.3") as {
    version: string;
    config: { variables: Record<string, { secret?: boolean }> };
    resources: Record<
      string,
      {
        properties: Record<string, { secret?: boolean }>;
        inputProperties: Record<string, { secret?: boolean }>;
        requiredInputs: string[];
      }
    >;
    types: Record<string, unknown>;
  };

  test("behavior: every resource, input and output of the description, with its secret flag", () => {
    expect(Object.keys(schema.resources).sort()).toEqual(
      ["run402:index:Deployment", "run402:index:Project", "run402:index:Secret", "run402:index:Tier"].sort(),
    );
    expect(schema.resources["run402:index:Project"]?.properties.serviceKey?.secret).toBe(true);
    expect(schema.resources["run402:index:Project"]?.properties.anonKey?.secret).toBe(true);
    expect(schema.resources["run402:index:Secret"]?.inputProperties.value?.secret).toBe(true);
    // A write-only value is an input, never an output.
    expect(schema.resources["run402:index:Secret"]?.properties.value).toBeUndefined();
    expect(schema.resources["run402:index:Tier"]?.requiredInputs).toEqual(["tier"]);
    // Internal properties (the URN that keys a create) are not part of the package.
    for (const shape of shapes) {
      expect(schema.resources[`run402:index:${shape.name}`]?.inputProperties.resourceKey).toBeUndefined();
    }
    expect(schema.types["run402:index:ReleaseChanges"]).toBeDefined();
    expect(schema.version).toBe("1.2.3");
  });

  test("behavior: every run402:* setting is provider configuration; the key is secret", () => {
    expect(Object.keys(schema.config.variables).sort()).toEqual([...configKeys].sort());
    expect(schema.config.variables.privateKey?.secret).toBe(true);
  });
});

describe("secrets", () => {
  test("behavior: unwrapped for the implementation, wrapped again on the way out", () => {
    const given = { name: "A", value: secret("s3cr3t"), nested: { list: [secret(1)] } };
    expect(reveal(given)).toEqual({ name: "A", value: "s3cr3t", nested: { list: [1] } });
    const out = conceal({ name: "A", value: "s3cr3t", serviceKey: "svc", none: null }, [
      "value",
      "serviceKey",
      "none",
    ]);
    expect(out).toEqual({ name: "A", value: secret("s3cr3t"), serviceKey: secret("svc"), none: null });
    // Never wrapped twice.
    expect(conceal(out, ["value"]).value).toEqual(secret("s3cr3t"));
  });
});

describe("the operator's money settings", () => {
  const env = (config: Record<string, string>, run?: Record<string, string>): NodeJS.ProcessEnv => ({
    PULUMI_CONFIG: JSON.stringify(config),
    ...(run ? { RUN402_RUN_SETTINGS: JSON.stringify(run) } : {}),
  });

  test("behavior: the stack config the engine passes every plugin is the operator's", () => {
    expect(operatorConfig(env({ maxSpendUsd: "3", "run402:rail": "mpp" }))).toEqual({
      maxSpendUsd: "3",
      rail: "mpp",
    });
    expect(operatorConfig({})).toEqual({});
  });

  test("behavior: a provider may lower a cap and drop actions or recipients", () => {
    const operator = env({ maxSpendUsd: "3", allowedRecipients: `0x${"1".repeat(40)},0x${"2".repeat(40)}` });
    expect(
      narrowingFailures(
        {
          maxSpendUsd: "1",
          maxPaymentUsd: "0.5",
          allowedActions: "subscribe",
          allowedRecipients: `0x${"1".repeat(40)}`,
        },
        operator,
      ),
    ).toEqual([]);
    // Leaving a setting out keeps the operator's.
    expect(narrowingFailures({}, operator)).toEqual([]);
  });

  test("behavior: a higher cap, an extra action or recipient is refused, naming the setting", () => {
    const operator = env({
      maxSpendUsd: "3",
      maxPaymentUsd: "1",
      allowedActions: "subscribe",
      allowedRecipients: `0x${"1".repeat(40)}`,
    });
    const failures = narrowingFailures(
      {
        maxSpendUsd: "4",
        maxPaymentUsd: "2",
        allowedActions: "subscribe,renew",
        allowedRecipients: `0x${"9".repeat(40)}`,
      },
      operator,
    );
    expect(failures.map((f) => f.property)).toEqual([
      "maxPaymentUsd",
      "maxSpendUsd",
      "allowedActions",
      "allowedRecipients",
    ]);
    expect(failures[1]?.reason).toMatch(
      /^\[POLICY_PROVIDER_WIDENS\] maxSpendUsd 4 is above the operator's 3/,
    );
  });

  test("behavior: without a stack cap the defaults are the operator's, and this run's settings bind both", () => {
    expect(narrowingFailures({ maxSpendUsd: "26" }, env({})).map((f) => f.property)).toEqual(["maxSpendUsd"]);
    // The run's --max-spend (RUN402_RUN_SETTINGS) wins over both sides: nothing to widen.
    expect(narrowingFailures({ maxSpendUsd: "26" }, env({}, { maxSpendUsd: "2" }))).toEqual([]);
  });

  test("error: where money and keys go is the operator's: another API, RPC, journal, rail, upload origin, or a list where the operator relies on the narrow default", () => {
    const operator = env({ apiBase: "https://api.run402.com", budgetUsd: "5" });
    const failures = narrowingFailures(
      {
        apiBase: "https://evil.example",
        baseRpcUrl: "https://rpc.example",
        journalPath: "/tmp/fresh.jsonl",
        rail: "mpp",
        uploadOrigins: "http://127.0.0.1:9",
        allowedNetworks: "8453",
        allowedRecipients: `0x${"9".repeat(40)}`,
        budgetUsd: "50",
      },
      operator,
    );
    expect(failures.map((f) => f.property).sort()).toEqual(
      [
        "allowedNetworks",
        "allowedRecipients",
        "apiBase",
        "baseRpcUrl",
        "budgetUsd",
        "journalPath",
        "rail",
        "uploadOrigins",
      ].sort(),
    );
    // The same values as the operator's are no widening.
    expect(narrowingFailures({ apiBase: "https://api.run402.com", budgetUsd: "5" }, operator)).toEqual([]);
  });
});
