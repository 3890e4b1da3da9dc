import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { negativeCases, validDir, validManifests } from "../test/manifests/corpus.js";
import { precompiledValidatorSource } from "./precompile.js";
import { APP_SCHEMA_ID, schemaAjv, schemaDigest } from "./validate.js";

// Inside the package, so the generated code's `require("ajv/dist/runtime/…")` resolves.
const cache = join(import.meta.dirname, "..", "node_modules", ".cache");
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, "run402-precompiled-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function generated(): { validate: (value: unknown) => boolean; schemaDigest: string } {
  const file = join(dir, `validator-${Math.random().toString(36).slice(2)}.cjs`);
  writeFileSync(file, precompiledValidatorSource());
  return createRequire(import.meta.url)(file);
}

describe("the precompiled validator", () => {
  test("behavior: accepts and refuses exactly what the compiled schema does, on the whole corpus", () => {
    const fast = generated();
    const compiled = schemaAjv().getSchema(APP_SCHEMA_ID)!;
    const values: unknown[] = [
      ...validManifests.map((f) => {
        const text = readFileSync(join(validDir, f), "utf8");
        return f.endsWith(".json") ? JSON.parse(text) : parse(text);
      }),
      ...negativeCases().map((c) => c.manifest),
      { site: { dir: 3 } },
      [],
      null,
    ];
    let refused = 0;
    for (const value of values) {
      const expected = compiled(value);
      expect(fast.validate(value), JSON.stringify(value).slice(0, 200)).toBe(expected);
      if (!expected) refused += 1;
    }
    // The comparison means something only if both outcomes occur.
    expect(refused).toBeGreaterThan(3);
    expect(values.length - refused).toBeGreaterThan(3);
  });

  test("behavior: it names the schemas it was generated from", () => {
    expect(generated().schemaDigest).toBe(schemaDigest());
  });
});
