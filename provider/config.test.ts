import { describe, expect, test } from "vitest";
import { ConfigError, checkLocalRpcs, readConfig, runSettings, runSettingsEnv } from "./config.js";

const stack: Record<string, string> = {
  "run402:apiBase": "http://127.0.0.1:1111",
  "run402:maxSpendUsd": "2",
  "run402:rail": "mpp",
};
const get = (key: string) => stack[key];

describe("run settings", () => {
  test("default", () => {
    const config = readConfig(get, {});
    expect(config).toMatchObject({ apiBase: "http://127.0.0.1:1111", maxSpendUsd: 2, rail: "mpp" });
    expect(config.allowedActions).toEqual(["subscribe", "renew", "upgrade", "downgrade"]);
    expect(config.stackId).toBeUndefined();
  });

  test("behavior: this run's settings take precedence over the stack config, for this run only", () => {
    const env = {
      [runSettingsEnv]: JSON.stringify({
        apiBase: "http://127.0.0.1:2222",
        maxSpendUsd: "0.10",
        allowedActions: "renew",
        stackId: "b6a1",
      }),
    };
    expect(readConfig(get, env)).toMatchObject({
      apiBase: "http://127.0.0.1:2222",
      maxSpendUsd: 0.1,
      rail: "mpp",
      allowedActions: ["renew"],
      stackId: "b6a1",
    });
    // The stack's own config is untouched: without the variable, the stack's values again.
    expect(readConfig(get, {}).apiBase).toBe("http://127.0.0.1:1111");
  });

  test("error: bad run settings name the variable and never echo a key", () => {
    const key = `0x${"ab".repeat(32)}`;
    for (const text of [
      "not json",
      "[]",
      JSON.stringify({ privateKey: 1 }),
      JSON.stringify({ colour: key }),
    ]) {
      const failure = (() => {
        try {
          runSettings({ [runSettingsEnv]: text });
        } catch (error) {
          return error as Error & { code: string };
        }
        return undefined;
      })();
      expect(failure?.code).toBe("CONFIG_INVALID");
      expect(failure?.message).toMatch(/RUN402_RUN_SETTINGS/);
      expect(failure?.message).not.toContain(key);
    }
    expect(() =>
      readConfig(get, { [runSettingsEnv]: JSON.stringify({ allowedActions: "renew,steal" }) }),
    ).toThrow(/run402:allowedActions holds "steal"/);
  });
});

describe("run402:uploadOrigins", () => {
  test("default: none; a list of origins is kept as origins", () => {
    expect(readConfig(get, {}).uploadOrigins).toBeUndefined();
    const config = readConfig(
      (key) => (key === "run402:uploadOrigins" ? "https://a.example, https://b.example:8443/" : get(key)),
      {},
    );
    expect(config.uploadOrigins).toEqual(["https://a.example", "https://b.example:8443"]);
  });

  test("error: a URL with a path, or not a URL, names the key", () => {
    for (const bad of ["https://a.example/uploads", "a.example", "ftp://a.example"]) {
      expect(() => readConfig((key) => (key === "run402:uploadOrigins" ? bad : get(key)), {})).toThrow(
        /run402:uploadOrigins/,
      );
    }
  });
});

describe("the shared journal and the wallet budget", () => {
  test("default: no shared journal, no rolling budget, a one-day period", () => {
    const config = readConfig(get, {});
    expect(config.journal).toBeUndefined();
    expect(config.budgetUsd).toBeUndefined();
    expect(config.budgetPeriod).toBe(86_400);
  });

  test("behavior: a PostgreSQL URL, a budget and its period; the run id comes only from the run's settings", () => {
    const config = readConfig(
      (key) =>
        ({
          "run402:journal": "postgres://fleet@db.example.com:5432/run402?sslmode=require",
          "run402:budgetUsd": "20",
          "run402:budgetPeriod": "week",
        })[key],
      { [runSettingsEnv]: JSON.stringify({ runId: "r-1" }) },
    );
    expect(config).toMatchObject({
      journal: "postgres://fleet@db.example.com:5432/run402?sslmode=require",
      budgetUsd: 20,
      budgetPeriod: 604_800,
      runId: "r-1",
    });
    expect(readConfig((key) => (key === "run402:budgetPeriod" ? "12h" : undefined), {}).budgetPeriod).toBe(
      43_200,
    );
  });

  test("error: a journal that is not a PostgreSQL URL is refused without echoing it; bad budgets name the key", () => {
    const bad = (values: Record<string, string>) => {
      try {
        readConfig((key) => values[key], {});
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    const message = bad({ "run402:journal": "mysql://root:hunter2@db/x" });
    expect(message).toContain("run402:journal must be a PostgreSQL URL");
    expect(message).not.toContain("hunter2");
    expect(bad({ "run402:budgetUsd": "-1" })).toContain("run402:budgetUsd must be a USD amount");
    expect(bad({ "run402:budgetPeriod": "month" })).toContain("run402:budgetPeriod must be");
    expect(bad({ "run402:budgetPeriod": "0h" })).toContain("run402:budgetPeriod must be");
  });
});

describe("checkLocalRpcs", () => {
  const local = (extra: Record<string, string>) =>
    readConfig((key) => ({ "run402:apiBase": "http://127.0.0.1:4020", ...extra })[key], {});

  test("error: an MPP rail against a local API without run402:tempoRpcUrl names the key", () => {
    let thrown: unknown;
    try {
      checkLocalRpcs(local({ "run402:rail": "mpp", "run402:baseRpcUrl": "http://127.0.0.1:1" }), "mpp");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).issues.map((i) => i.key)).toEqual(["run402:tempoRpcUrl"]);
    expect((thrown as Error).message).toContain("npx run402-sandbox --pulumi-config");
  });

  test("error: the fallback rail needs its RPC too", () => {
    const config = local({ "run402:fallbackRail": "mpp", "run402:baseRpcUrl": "http://127.0.0.1:1" });
    expect(() => checkLocalRpcs(config, "x402")).toThrow(/run402:tempoRpcUrl is not set/);
  });

  test("behavior: a remote API may use the public RPCs; a local one with its RPCs set passes", () => {
    const remote = readConfig((key) => ({ "run402:rail": "mpp" })[key], {});
    expect(() => checkLocalRpcs(remote, "mpp")).not.toThrow();
    const set = local({ "run402:rail": "mpp", "run402:tempoRpcUrl": "http://127.0.0.1:2" });
    expect(() => checkLocalRpcs(set, "mpp")).not.toThrow();
    for (const host of ["localhost", "[::1]", "127.0.0.2", "api.localhost"]) {
      const config = readConfig((key) => ({ "run402:apiBase": `http://${host}:4020` })[key], {});
      expect(() => checkLocalRpcs(config, "x402"), host).toThrow(/run402:baseRpcUrl is not set/);
    }
  });
});
