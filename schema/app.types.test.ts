import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { generateAppTypes } from "../scripts/gen-schema-types.js";

test("app.types.ts is generated from app.schema.json and up to date", () => {
  const committed = readFileSync(new URL("./app.types.ts", import.meta.url), "utf8");
  // On failure: npx tsx scripts/gen-schema-types.ts
  expect(committed).toBe(generateAppTypes());
});
