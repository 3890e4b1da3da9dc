/**
 * Every Run402 resource's inputs and outputs, described once, at run time: names, types, secret flags,
 * descriptions. From this one description come
 *   - the TypeScript resources' args and declared outputs (provider/resources/),
 *   - the implementation's Inputs and Outputs (provider/impl/),
 *   - the native provider's package schema (provider/native/schema.ts),
 * so a property is written here and nowhere else. Like provider/types.ts, both sides import it and
 * it imports neither.
 *
 * A property's `role` says where it lives:
 *   - `input`: given by the program (`required`, or optional; `defaulted` ones are always present
 *     once check has run);
 *   - `planned`: computed by check, so preview shows it; an input of create/update and an output;
 *   - `output`: computed by create/update/read;
 *   - `internal`: set by the resource or the provider for the implementation (e.g. the URN that keys a
 *     create); kept in state, never declared.
 * `hidden` keeps an input out of the declared outputs (a secret value that is only ever written).
 * `quiet` keeps a planned value out of Pulumi's diff display: among the state's inputs it is recorded
 * as `__<name>`, a key the engine never displays, and it is an output under its own name. For a
 * value whose diff against the last plan's misleads (what that plan changed is not what this one
 * changes; a list diffed by position reads as renames).
 */

/** A value's type. */
export type Type =
  | { readonly kind: "string" }
  | { readonly kind: "number" }
  | { readonly kind: "integer" }
  | { readonly kind: "boolean" }
  | { readonly kind: "any" }
  | {
      readonly kind: "enum";
      readonly name: string;
      readonly description: string;
      readonly values: readonly string[];
    }
  | { readonly kind: "array"; readonly items: Type }
  | { readonly kind: "map"; readonly values: Type }
  | {
      readonly kind: "object";
      readonly name: string;
      readonly description: string;
      readonly properties: Fields;
    }
  | { readonly kind: "union"; readonly of: readonly Type[] };

/** The fields of an object type. */
export type Fields = Readonly<Record<string, Field>>;

/** A field of an object type. */
export interface Field {
  readonly type: Type;
  readonly description: string;
  readonly optional?: boolean;
  readonly nullable?: boolean;
}

/** A property of a resource. */
export interface Property {
  readonly type: Type;
  readonly description: string;
  readonly role: "input" | "planned" | "output" | "internal";
  /** For inputs: the program must give it. */
  readonly required?: boolean;
  /** For optional inputs: check fills it in, so the implementation always has it. */
  readonly defaulted?: boolean;
  /** Absent (`null`) when there is nothing to record. */
  readonly nullable?: boolean;
  readonly secret?: boolean;
  /** For inputs: not declared as an output. */
  readonly hidden?: boolean;
  /** For inputs: a change replaces the resource. */
  readonly replaces?: boolean;
  /** For planned values: recorded among the inputs as `__<name>`, which Pulumi does not display. */
  readonly quiet?: boolean;
}

/** A resource kind. */
export interface Shape {
  /** The implementation's name for it (provider/impl.ts `handlers`). */
  readonly kind: "tier" | "project" | "deployment" | "secret";
  /** The type name: `run402:index:<name>`, `pulumi-nodejs:dynamic/run402:<name>`. */
  readonly name: string;
  readonly description: string;
  readonly properties: Readonly<Record<string, Property>>;
}

// Builders: they keep the literal types the TypeScript derivations below read.
export const t = {
  string: { kind: "string" } as const,
  number: { kind: "number" } as const,
  integer: { kind: "integer" } as const,
  boolean: { kind: "boolean" } as const,
  any: { kind: "any" } as const,
  enum: <const V extends readonly string[]>(name: string, description: string, values: V) =>
    ({ kind: "enum", name, description, values }) as const,
  array: <const I extends Type>(items: I) => ({ kind: "array", items }) as const,
  map: <const V extends Type>(values: V) => ({ kind: "map", values }) as const,
  object: <const P extends Fields>(name: string, description: string, properties: P) =>
    ({ kind: "object", name, description, properties }) as const,
  union: <const O extends readonly Type[]>(...of: O) => ({ kind: "union", of }) as const,
};

/** The TypeScript type of a described type. */
export type TypeOf<T> = T extends { kind: "string" }
  ? string
  : T extends { kind: "number" | "integer" }
    ? number
    : T extends { kind: "boolean" }
      ? boolean
      : T extends { kind: "any" }
        ? unknown
        : T extends { kind: "enum"; values: readonly (infer V)[] }
          ? V
          : T extends { kind: "array"; items: infer I }
            ? TypeOf<I>[]
            : T extends { kind: "map"; values: infer V }
              ? Record<string, TypeOf<V>>
              : T extends { kind: "object"; properties: infer P }
                ? ObjectOf<P>
                : T extends { kind: "union"; of: readonly (infer O)[] }
                  ? TypeOf<O>
                  : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<P> = Simplify<
  {
    -readonly [K in keyof P as P[K] extends { optional: true } ? never : K]: FieldType<P[K]>;
  } & {
    -readonly [K in keyof P as P[K] extends { optional: true } ? K : never]?: FieldType<P[K]>;
  }
>;

type FieldType<F> = F extends { type: infer T }
  ? F extends { nullable: true }
    ? TypeOf<T> | null
    : TypeOf<T>
  : never;

type Props<S extends Shape> = S["properties"];
type KeysWhere<P, C> = { [K in keyof P]: P[K] extends C ? K : never }[keyof P] & string;

/** Input keys the implementation always has after check. */
type PresentInputs<P> = KeysWhere<P, { role: "input"; required: true } | { role: "input"; defaulted: true }>;
type InputKeys<P> = KeysWhere<P, { role: "input" }>;

/** The implementation's Inputs: what check returns and create/update receive. */
export type ImplInputs<S extends Shape> = Simplify<
  { -readonly [K in PresentInputs<Props<S>>]: FieldType<Props<S>[K]> } & {
    -readonly [K in Exclude<InputKeys<Props<S>>, PresentInputs<Props<S>>>]?: FieldType<Props<S>[K]>;
  } & {
    -readonly [K in KeysWhere<Props<S>, { role: "planned" | "internal" }>]: FieldType<Props<S>[K]>;
  }
>;

/** The implementation's Outputs: its Inputs and what create/update/read compute. */
export type ImplOutputs<S extends Shape> = Simplify<
  ImplInputs<S> & { -readonly [K in KeysWhere<Props<S>, { role: "output" }>]: FieldType<Props<S>[K]> }
>;

/** Names of the properties a resource declares as outputs. */
export type OutputKeys<S extends Shape> = Exclude<
  KeysWhere<Props<S>, { role: "input" | "planned" | "output" }>,
  KeysWhere<Props<S>, { hidden: true }>
>;

/** The program's arguments, each value wrapped by `wrap` (e.g. pulumi.Input). */
export type ArgsOf<S extends Shape> = Simplify<
  { -readonly [K in KeysWhere<Props<S>, { role: "input"; required: true }>]: TypeOf<Props<S>[K]["type"]> } & {
    -readonly [K in Exclude<InputKeys<Props<S>>, KeysWhere<Props<S>, { required: true }>>]?: TypeOf<
      Props<S>[K]["type"]
    >;
  }
>;

/** The declared outputs' values. */
export type OutputsOf<S extends Shape> = { [K in OutputKeys<S>]: FieldType<Props<S>[K]> };

/** Names of the properties with `role` among `roles`. */
export function keysOf(shape: Shape, ...roles: Property["role"][]): string[] {
  return Object.entries(shape.properties)
    .filter(([, p]) => roles.includes(p.role))
    .map(([k]) => k);
}

/** Names of the declared outputs. */
export function outputKeys(shape: Shape): string[] {
  return Object.entries(shape.properties)
    .filter(([, p]) => p.role !== "internal" && !p.hidden)
    .map(([k]) => k);
}

/** Each shape's quiet properties as [name, recorded key] pairs, worked out once (handlers map them on every call). */
const quietOf = new WeakMap<Shape, readonly (readonly [string, string])[]>();
function quietPairs(shape: Shape): readonly (readonly [string, string])[] {
  let pairs = quietOf.get(shape);
  if (!pairs) {
    pairs = Object.entries(shape.properties)
      .filter(([, p]) => p.quiet)
      .map(([name]) => [name, `__${name}`] as const);
    quietOf.set(shape, pairs);
  }
  return pairs;
}

/**
 * `value` with each pair's first key renamed to its second (the other way with `back`); `value`
 * itself when it holds none of them.
 */
function renamed<T>(value: T, pairs: readonly (readonly [string, string])[], back = false): T {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const present = pairs
    .map(([name, key]) => (back ? ([key, name] as const) : ([name, key] as const)))
    .filter(([from]) => from in value);
  if (present.length === 0) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [from, to] of present) {
    out[to] = out[from];
    delete out[from];
  }
  return out as T;
}

/**
 * Inputs as the engine records them (check's and read's results): each quiet property under its
 * `__` key. {@link revealQuiet} is the inverse.
 */
export function recordQuiet<T extends Record<string, unknown>>(shape: Shape, inputs: T): T {
  return renamed(inputs, quietPairs(shape));
}

/**
 * Inputs (or outputs) as the implementation reads them: each quiet property under its own name,
 * from its `__` key (a state written before the property was quiet has it under its name already).
 */
export function revealQuiet<T>(shape: Shape, value: T): T {
  return renamed(value, quietPairs(shape), true);
}

/** Names of the secret properties. */
export function secretKeys(shape: Shape): string[] {
  return Object.entries(shape.properties)
    .filter(([, p]) => p.secret)
    .map(([k]) => k);
}

/** The shape's object and enum types, each once, in order of first use. */
export function namedTypes(shapes: readonly Shape[]): Extract<Type, { name: string }>[] {
  const found = new Map<string, Extract<Type, { name: string }>>();
  const visit = (type: Type): void => {
    switch (type.kind) {
      case "enum":
        found.set(type.name, type);
        break;
      case "object":
        if (found.has(type.name)) return;
        found.set(type.name, type);
        for (const field of Object.values(type.properties)) visit(field.type);
        break;
      case "array":
        visit(type.items);
        break;
      case "map":
        visit(type.values);
        break;
      case "union":
        for (const of of type.of) visit(of);
        break;
    }
  };
  for (const shape of shapes) for (const p of Object.values(shape.properties)) visit(p.type);
  return [...found.values()];
}

// ----- The shared value types -----

const tierName = t.enum("TierName", "A Run402 tier.", ["prototype", "hobby", "team"]);
const paymentRail = t.enum("PaymentRail", "A payment rail.", ["x402", "mpp"]);
const tierAction = t.enum("TierAction", "What a plan of the tier decided.", [
  "subscribe",
  "renew",
  "upgrade",
  "downgrade",
  "adopt",
  "none",
]);
const paidAction = t.enum("PaidAction", "A paid tier action.", [
  "subscribe",
  "renew",
  "upgrade",
  "downgrade",
]);

const settlement = t.object("Settlement", "A settled payment as recorded on the resource.", {
  rail: {
    type: t.enum("SettlementRail", "How a payment settled.", ["x402", "mpp", "allowance"]),
    description: "The rail that settled it: x402, mpp, or allowance (prepaid credit, no on-chain payment).",
  },
  reference: {
    type: t.string,
    description: "On-chain transaction hash; null for allowance settlements.",
    nullable: true,
  },
  network: { type: t.string, description: "CAIP-2 network, e.g. eip155:84532.", nullable: true },
  amountUsd: { type: t.string, description: "The amount paid, in USD." },
  payer: { type: t.string, description: "The paying wallet." },
  settledAt: { type: t.string, description: "When it settled (ISO 8601)." },
});

const tierDecision = t.object("TierDecision", "What check decided for the tier, why, and the lease it saw.", {
  action: {
    type: tierAction,
    description: "A paid action, `adopt` (an active lease of this tier, nothing to pay) or `none`.",
  },
  reason: { type: t.string, description: "Why." },
  leaseStartedAt: { type: t.string, description: "The lease's start on the server.", nullable: true },
  leaseExpiresAt: { type: t.string, description: "The lease's expiry on the server.", nullable: true },
  lifecycleState: { type: t.string, description: "The organization's lifecycle state on the server." },
});

const plannedPayment = t.object("PlannedPayment", "The payment convergence needs, as planned in check.", {
  action: { type: paidAction, description: "The paid action." },
  tier: { type: tierName, description: "The tier it buys." },
  amountUsd: { type: t.string, description: "Its price, in USD." },
  rail: { type: paymentRail, description: "The rail it will be paid on." },
  reason: { type: t.string, description: "Why it is due." },
});

const strings = t.array(t.string);
const changeSet = t.object("ReleaseChangeSet", "Paths or names added, removed and changed.", {
  added: { type: strings, description: "Added." },
  removed: { type: strings, description: "Removed." },
  changed: { type: strings, description: "Changed (with the fields that changed, where Run402 names them)." },
});
const addedRemoved = t.object("ReleaseAddedRemoved", "Names added and removed.", {
  added: { type: strings, description: "Added." },
  removed: { type: strings, description: "Removed." },
});

const releaseChanges = t.object(
  "ReleaseChanges",
  "What a plan changes: @run402/release's diff between the recorded release and the planned one.",
  {
    summary: {
      type: t.string,
      description: 'Run402\'s one-line summary, e.g. "1 migration new, 3 site paths added".',
    },
    site: { type: changeSet, description: "Site paths." },
    functions: { type: changeSet, description: "Functions." },
    migrations: {
      type: t.object("ReleaseMigrations", "Migrations a release adds.", {
        new: { type: strings, description: "Ids of the new migrations." },
      }),
      description: "Migrations.",
    },
    routes: { type: changeSet, description: "Routes." },
    secrets: { type: addedRemoved, description: "Secret names." },
    subdomains: { type: addedRemoved, description: "Subdomains." },
    i18n: {
      type: t.object("ReleaseI18nChange", "The materialized i18n before and after.", {
        from: { type: t.any, description: "Before." },
        to: { type: t.any, description: "After." },
      }),
      description:
        "The materialized i18n before and after, when it changes (Run402's diff has no i18n bucket).",
      optional: true,
    },
    warnings: { type: strings, description: "Codes of Run402's plan warnings (`RUN402_CORE_…`)." },
  },
);

// ----- The resources -----

/** The URN of the resource: keys creates and places progress lines; set by the resource or the native provider. */
const resourceKey = {
  type: t.string,
  description: "The resource's URN.",
  role: "internal",
} as const;

export const tierShape = {
  kind: "tier",
  name: "Tier",
  description:
    "The Run402 tier (and lease) of the wallet's organization: one lease covers every project. Creating it subscribes (paid) or adopts an active lease of the same tier; it renews inside the renewal window; deleting it pays and cancels nothing (the lease lapses at its expiry).",
  properties: {
    tier: {
      type: tierName,
      role: "input",
      required: true,
      description:
        "The tier to hold: prototype ($0.10 / 7 days), hobby ($5 / 30 days) or team ($20 / 30 days).",
    },
    renewBeforeDays: {
      type: t.number,
      role: "input",
      defaulted: true,
      description:
        "Renew when the lease expires within this many days. Default: run402:renewBeforeDays, else 2.",
    },
    autoRenew: {
      type: t.boolean,
      role: "input",
      defaulted: true,
      description:
        "Renew the lease when it enters the renewal window, and buy it back once it lapsed. With false, an existing Tier never pays to extend or restart its lease (creating one still buys the tier it declares, and changing `tier` still pays the upgrade or downgrade). Default: true.",
    },
    resourceKey,
    plan: {
      type: tierDecision,
      role: "planned",
      nullable: true,
      description: "What the last check or update decided and why (e.g. why nothing was paid).",
    },
    plannedPayment: {
      type: plannedPayment,
      role: "planned",
      nullable: true,
      description:
        "The payment planned and not yet made (what preview shows); null once paid or when none is due.",
    },
    wallet: {
      type: t.string,
      role: "output",
      description: "The wallet (organization owner) holding the lease.",
    },
    leaseStartedAt: {
      type: t.string,
      role: "output",
      nullable: true,
      description: "When the lease started.",
    },
    leaseExpiresAt: {
      type: t.string,
      role: "output",
      nullable: true,
      description: "When the lease expires.",
    },
    lifecycleState: {
      type: t.string,
      role: "output",
      description: "active, past_due, frozen, dormant or purged.",
    },
    lastSettlement: {
      type: settlement,
      role: "output",
      nullable: true,
      description:
        "How the most recent payment of this resource settled; null when nothing was paid (adopted).",
    },
  },
} as const satisfies Shape;

export const projectShape = {
  kind: "project",
  name: "Project",
  description:
    "A Run402 project: Postgres, REST API, site and functions. Free to create while a tier is active; deleting it deletes the project.",
  properties: {
    name: {
      type: t.string,
      role: "input",
      required: true,
      replaces: true,
      description:
        "The project's name. Changing it replaces the project (Run402's rename is not modelled yet).",
    },
    adoptProjectId: {
      type: t.string,
      role: "input",
      replaces: true,
      description:
        "Adopt this existing project instead of creating one. Its keys are read from the run402 CLI's key store (`~/.config/run402/credentials/project-keys.v1.json`). Deleting the resource deletes the adopted project: add `retainOnDelete: true` to keep it.",
    },
    resourceKey,
    projectId: { type: t.string, role: "output", description: "The project's id (`prj_…`)." },
    anonKey: { type: t.string, role: "output", secret: true, description: "Public (anon) key; secret." },
    serviceKey: {
      type: t.string,
      role: "output",
      secret: true,
      description: "Service key (full access); secret.",
    },
    restUrl: { type: t.string, role: "output", description: "The project's REST API." },
    siteUrl: { type: t.string, role: "output", description: "The project's site." },
    apiOrigin: {
      type: t.string,
      role: "output",
      nullable: true,
      description:
        "The API origin that issued the project's keys: the only origin it is ever sent to (absent in states written before it was recorded).",
    },
  },
} as const satisfies Shape;

const manifest = t.union(t.string, t.map(t.any));

export const deploymentShape = {
  kind: "deployment",
  name: "Deployment",
  description:
    "The active release of a Run402 project, described by a manifest (app.json, run402.deploy.json, app.yaml). Deleting it changes nothing remote: releases go with their project.",
  properties: {
    projectId: {
      type: t.string,
      role: "input",
      required: true,
      replaces: true,
      description: "The project to deploy to.",
    },
    anonKey: {
      type: t.string,
      role: "input",
      required: true,
      secret: true,
      hidden: true,
      description: "The project's anon key.",
    },
    manifest: {
      type: manifest,
      role: "input",
      required: true,
      description:
        "The manifest: a path to a manifest file or to a folder holding one (run402.json, run402.deploy.json, app.json, app.yaml; relative paths resolve from the Pulumi project folder, files inside it from the manifest's folder), or the manifest object itself.",
    },
    baseDir: {
      type: t.string,
      role: "input",
      hidden: true,
      description:
        "The folder relative manifest paths resolve from: the Pulumi project folder. Default: the provider's working directory.",
    },
    resourceKey,
    manifestDigest: {
      type: t.string,
      role: "planned",
      description:
        "@run402/release's portable manifest digest of the spec (`run402-portable-manifest-v1:…`; no project id).",
    },
    releaseDigest: {
      type: t.string,
      role: "planned",
      description:
        "@run402/release's digest of the materialized release (`run402-materialized-release-v1:…`).",
    },
    release: {
      type: t.string,
      role: "planned",
      quiet: true,
      description:
        "The materialized release (Run402's PortableReleaseState: site paths, static manifest, functions, routes, i18n, …) as canonical JSON text: one value however large the site. Over 64 KiB the text is kept compressed: `br64:` and the base64 of its Brotli compression.",
    },
    changes: {
      type: releaseChanges,
      role: "planned",
      quiet: true,
      description:
        "What the last plan changed, as @run402/release's release diff names it (the run402-pulumi CLI's plan shows the planned one; Pulumi's --diff shows `files` instead).",
    },
    files: {
      type: t.map(t.string),
      role: "planned",
      description:
        "Site files: path → sha256, for a site of at most 1,000 files (a larger site's is empty: `release` holds every file, `releaseDigest` covers them, `changes` names what changed).",
    },
    migrations: { type: t.map(t.string), role: "planned", description: "Migrations: id → checksum." },
    functions: {
      type: t.map(t.string),
      role: "planned",
      description: "Functions: name → sha256 of the source.",
    },
    routes: {
      type: t.map(t.any),
      role: "planned",
      description:
        "Routes: pattern (with its methods, when it names some) → the route as the release materializes it (kind, target, pricing).",
    },
    i18n: {
      type: t.any,
      role: "planned",
      nullable: true,
      description: "The release's i18n (default locale, locales, detection, unknown-locale policy), or null.",
    },
    releaseId: { type: t.string, role: "output", description: "The live release." },
    url: { type: t.string, role: "output", description: "The project's site." },
    uploaded: {
      type: strings,
      role: "output",
      description:
        "sha256 of the objects the last create/update uploaded (only what the server was missing), the first 1,000 of them: every later command reads this state back.",
    },
    apiOrigin: {
      type: t.string,
      role: "output",
      nullable: true,
      description:
        "The API origin that issued the anon key: the only origin it is ever sent to (absent in states written before it was recorded).",
    },
  },
} as const satisfies Shape;

export const secretShape = {
  kind: "secret",
  name: "Secret",
  description:
    "A write-only project secret: functions read it by name; Run402 never returns values, so a value changed out of band cannot be seen.",
  properties: {
    projectId: { type: t.string, role: "input", required: true, replaces: true, description: "The project." },
    serviceKey: {
      type: t.string,
      role: "input",
      required: true,
      secret: true,
      hidden: true,
      description: "The project's service key.",
    },
    name: {
      type: t.string,
      role: "input",
      required: true,
      replaces: true,
      description: "Name, `^[A-Z_][A-Z0-9_]{0,127}$`. Changing it replaces the secret.",
    },
    value: {
      type: t.string,
      role: "input",
      required: true,
      secret: true,
      hidden: true,
      description: "The value; stored encrypted in Pulumi state, never in outputs.",
    },
    apiOrigin: {
      type: t.string,
      role: "output",
      nullable: true,
      description:
        "The API origin that issued the service key: the only origin it is ever sent to (absent in states written before it was recorded).",
    },
  },
} as const satisfies Shape;

/** Every resource, in the order the schema lists them. */
export const shapes = [tierShape, projectShape, deploymentShape, secretShape] as const;

/** The value types shared by the implementation and the resources. */
export type TierName = TypeOf<typeof tierName>;
export type SettlementOutput = TypeOf<typeof settlement>;
export type TierDecision = TypeOf<typeof tierDecision>;
export type PlannedPayment = TypeOf<typeof plannedPayment>;
export type ReleaseChanges = TypeOf<typeof releaseChanges>;
