/**
 * The `run402` package schema (Pulumi's package schema, https://www.pulumi.com/docs/iac/extending-pulumi/schema/),
 * generated from the one description of the resources (provider/shapes.ts) and of the provider's
 * settings (below): what GetSchema returns and what the SDKs are generated from (sdkgen/).
 */
import { createRequire } from "node:module";
import { type ConfigKey, configKeys } from "../settings.js";
import { namedTypes, outputKeys, type Property, type Shape, shapes, type Type } from "../shapes.js";

/** The package name: resource tokens are `run402:index:<Name>`. */
export const packageName = "run402";

/** The token of a resource or type. */
export const token = (name: string): string => `${packageName}:index:${name}`;

/** The provider's settings: every `run402:*` config key, described for the schema. */
export const configDescriptions: Record<
  ConfigKey,
  { description: string; secret?: boolean; money?: boolean }
> = {
  apiBase: { description: "The Run402 API. Default: https://api.run402.com.", money: true },
  rail: {
    description:
      'The payment rail: "x402" (USDC on Base) or "mpp" (Tempo). Default: the wallet\'s, else x402.',
  },
  fallbackRail: { description: "A rail to pay on when the server does not offer `rail`." },
  privateKey: {
    description:
      "The wallet's private key (0x-prefixed hex). Default: RUN402_PRIVATE_KEY, else the run402 CLI's allowance wallet.",
    secret: true,
  },
  maxPaymentUsd: {
    description: 'The most one payment may cost, in USD (e.g. "5"). Default: 5.',
    money: true,
  },
  maxSpendUsd: {
    description: 'The most one run may pay in total, in USD (e.g. "25"). Default: 25.',
    money: true,
  },
  renewBeforeDays: { description: "Renew a tier whose lease expires within this many days. Default: 2." },
  baseRpcUrl: { description: "The Base RPC the x402 rail reads and pays through.", money: true },
  tempoRpcUrl: { description: "The Tempo RPC the mpp rail reads and pays through.", money: true },
  allowedRecipients: {
    description: "Comma-separated addresses payments may go to; any other payee is refused before signing.",
    money: true,
  },
  uploadOrigins: {
    description: "Comma-separated origins (besides the API's) that content may be uploaded to.",
    money: true,
  },
  allowedNetworks: {
    description:
      "Comma-separated chains (eip155:8453 or 8453) payments may be signed on. Default: the configured RPCs' chains, else the testnets.",
    money: true,
  },
  journalPath: {
    description: "The payment journal's file. Default: beside the run402 allowance.",
    money: true,
  },
  journal: {
    description:
      "A PostgreSQL URL for a payment journal shared by a team or fleet; takes precedence over journalPath.",
    secret: true,
    money: true,
  },
  budgetUsd: {
    description: "The most the wallet may pay per budgetPeriod, across every run sharing the journal.",
    money: true,
  },
  budgetPeriod: {
    description: 'The rolling window of budgetUsd: "hour", "day", "week", "<n>h" or "<n>d".',
    money: true,
  },
  allowedActions: {
    description:
      "Comma-separated paid tier actions this run may pay for (subscribe, renew, upgrade, downgrade). Default: all.",
    money: true,
  },
};

type Spec = Record<string, unknown>;

function typeSpec(type: Type): Spec {
  switch (type.kind) {
    case "string":
    case "number":
    case "integer":
    case "boolean":
      return { type: type.kind };
    case "any":
      return { $ref: "pulumi.json#/Any" };
    case "enum":
    case "object":
      return { $ref: `#/types/${token(type.name)}` };
    case "array":
      return { type: "array", items: typeSpec(type.items) };
    case "map":
      return { type: "object", additionalProperties: typeSpec(type.values) };
    case "union": {
      const [first] = type.of;
      if (first === undefined) throw new Error("a union needs at least one type");
      return { ...typeSpec(first), oneOf: type.of.map(typeSpec) };
    }
  }
}

function propertySpec(p: { type: Type; description: string; secret?: boolean }): Spec {
  return { ...typeSpec(p.type), description: p.description, ...(p.secret ? { secret: true } : {}) };
}

function resourceSpec(shape: Shape): Spec {
  const entries = Object.entries(shape.properties) as [string, Property][];
  const declared = new Set(outputKeys(shape));
  const inputs = entries.filter(([, p]) => p.role === "input");
  return {
    description: shape.description,
    properties: Object.fromEntries(
      entries.filter(([k]) => declared.has(k)).map(([k, p]) => [k, propertySpec(p)]),
    ),
    required: entries
      .filter(([k, p]) => declared.has(k) && !p.nullable && (p.role !== "input" || p.required || p.defaulted))
      .map(([k]) => k),
    inputProperties: Object.fromEntries(
      inputs.map(([k, p]) => [k, { ...propertySpec(p), ...(p.replaces ? { replaceOnChanges: true } : {}) }]),
    ),
    requiredInputs: inputs.filter(([, p]) => p.required).map(([k]) => k),
  };
}

function typesSpec(): Record<string, Spec> {
  const out: Record<string, Spec> = {};
  for (const type of namedTypes(shapes)) {
    if (type.kind === "enum") {
      out[token(type.name)] = {
        type: "string",
        description: type.description,
        enum: type.values.map((value) => ({ value })),
      };
    } else if (type.kind === "object") {
      const fields = Object.entries(type.properties);
      out[token(type.name)] = {
        type: "object",
        description: type.description,
        properties: Object.fromEntries(fields.map(([k, f]) => [k, propertySpec(f)])),
        required: fields.filter(([, f]) => !f.optional && !f.nullable).map(([k]) => k),
      };
    }
  }
  return out;
}

/** This package's version: its package.json's, found from this file up (sources and dist/ alike). */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = require(up) as { name?: string; version?: string };
      if (pkg.name === "pulumi-run402" && pkg.version) return pkg.version;
    } catch {
      // not there: one folder up
    }
  }
  throw new Error("pulumi-run402's package.json was not found above provider/native");
}

/** The package schema. */
export function packageSchema(version: string = packageVersion()): Spec {
  const config = Object.fromEntries(
    configKeys.map((key) => {
      const c = configDescriptions[key];
      return [key, { type: "string", description: c.description, ...(c.secret ? { secret: true } : {}) }];
    }),
  );
  return {
    name: packageName,
    displayName: "Run402",
    version,
    description:
      "Run402 infrastructure (tier, projects, deployments, secrets), paid over HTTP 402 on the x402 or MPP rail within the operator's caps.",
    keywords: ["pulumi", "run402", "category/infrastructure", "kind/native"],
    license: "Apache-2.0",
    config: { variables: config },
    provider: {
      description:
        "The run402 provider. Its money settings (the API, RPCs, caps, budgets, allowed actions, recipients, networks and upload origins, the journal) come from the stack's run402:* config; a provider declared in a program may only narrow them.",
      inputProperties: config,
    },
    resources: Object.fromEntries(shapes.map((shape) => [token(shape.name), resourceSpec(shape)])),
    types: typesSpec(),
    language: {
      nodejs: {
        packageName: "@pulumi-run402/run402",
        packageDescription: "Run402 resources for Pulumi (generated from the run402 schema).",
      },
      python: { packageName: "pulumi_run402" },
      go: {
        importBasePath: "github.com/pulumi-run402/pulumi-run402/sdk/go/run402",
        generateResourceContainerTypes: false,
      },
    },
  };
}
