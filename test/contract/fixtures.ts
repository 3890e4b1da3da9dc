/** The contract fixtures (test/contract/fixtures/*.json): Run402's answers, written from its types. */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Endpoint } from "./run402-types.js";

/** One fixture: the endpoint, the status and body Run402 answers, and where that was read. */
export interface Fixture {
  name: string;
  endpoint: Endpoint;
  status: number;
  source: { repo: string; commit: string; paths: string[] };
  body: unknown;
}

const dir = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

/** Every fixture, by file name (without `.json`). */
export const fixtures: Record<string, Fixture> = Object.fromEntries(
  readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => {
      const name = f.slice(0, -".json".length);
      return [name, { name, ...JSON.parse(readFileSync(join(dir, f), "utf8")) } as Fixture];
    }),
);

/** A fixture by name; throws on a typo. */
export function fixture(name: string): Fixture {
  const f = fixtures[name];
  if (!f) throw new Error(`No contract fixture ${name}`);
  return f;
}
