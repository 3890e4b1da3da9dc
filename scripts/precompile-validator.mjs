// Run by `npm run build` after tsc: writes dist/schema/app.validator.cjs, the manifest validator
// precompiled from the schemas (see schema/precompile.ts).
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const { precompiledValidatorSource } = await import("../dist/schema/precompile.js");
const out = fileURLToPath(new URL("../dist/schema/app.validator.cjs", import.meta.url));
writeFileSync(out, precompiledValidatorSource());
