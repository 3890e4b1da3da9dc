import * as pulumi from "@pulumi/pulumi";
import { afterEach, beforeAll, describe, expect, test } from "vitest";

let Tier: typeof import("../index.js").Tier;
let Project: typeof import("../index.js").Project;
let Deployment: typeof import("../index.js").Deployment;

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
      call: (args) => args.inputs,
    },
    "proj",
    "dev",
    true,
  );
  ({ Tier, Project, Deployment } = await import("../index.js"));
});

const original = Error.prepareStackTrace;
afterEach(() => {
  Error.prepareStackTrace = original;
  delete process.env["PULUMI_DEBUG_PROMISE_LEAKS"];
});

/** A stack formatter (as source-map-support installs one) that records which function each stack it formats starts in. */
function recordingFormatter(): { formatter: typeof Error.prepareStackTrace; formatted: string[] } {
  const formatted: string[] = [];
  const formatter = (error: Error, sites: NodeJS.CallSite[]) => {
    formatted.push(sites[0]?.getFunctionName() ?? "");
    return `${error}\n${sites.map((s) => `    at ${s}`).join("\n")}`;
  };
  return { formatter, formatted };
}

let n = 0;
function declare(): void {
  const i = n++;
  const tier = new Tier(`tier${i}`, { tier: "prototype" });
  const project = new Project(`p${i}`, { name: `p${i}` }, { dependsOn: [tier] });
  new Deployment(`p${i}-site`, { project, manifest: "app.json" });
}

describe("issue 25: declaring a resource does not format the SDK's promise stacks", () => {
  test("behavior: no registration promise's stack is formatted; the source position is, by the formatter in place, which stays", () => {
    const { formatter, formatted } = recordingFormatter();
    Error.prepareStackTrace = formatter;
    declare();
    expect(Error.prepareStackTrace).toBe(formatter);
    expect(formatted.filter((name) => name === "debuggablePromise")).toEqual([]);
    // Resource.callsites, the resource's source position: still formatted, by the formatter in place.
    expect(formatted).toContain("callsites");
  });

  test("behavior: with PULUMI_DEBUG_PROMISE_LEAKS set, the SDK's promise stacks are formatted as before", () => {
    process.env["PULUMI_DEBUG_PROMISE_LEAKS"] = "1";
    const { formatter, formatted } = recordingFormatter();
    Error.prepareStackTrace = formatter;
    declare();
    expect(formatted.filter((name) => name === "debuggablePromise").length).toBeGreaterThan(10);
  });

  test("error: a resource the SDK refuses while registering throws with its whole stack, and the formatter is restored", () => {
    const { formatter } = recordingFormatter();
    Error.prepareStackTrace = formatter;
    let thrown: unknown;
    try {
      new Tier("", { tier: "prototype" });
    } catch (error) {
      thrown = error;
    }
    expect(Error.prepareStackTrace).toBe(formatter);
    expect(String((thrown as Error).stack)).toMatch(/Missing resource name[\s\S]*\n {4}at /);
  });
});
