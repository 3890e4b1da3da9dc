#!/usr/bin/env bash
# Generates the run402 package's SDKs (Node.js, Python, Go) from its schema with Pulumi's own code
# generators: sdkgen/ (a small Go program over github.com/pulumi/pulumi/pkg/v3/codegen) is built once
# per source version and cached outside the clone (SDKGEN_CACHE), the schema is the provider's own
# GetSchema answer (dist/provider/native/schema.js, so run npm run build first).
#   bash scripts/sdk-gen.sh <out-dir> [nodejs|python|go ...]
set -euo pipefail
OUT="${1:?usage: sdk-gen.sh <out-dir> [nodejs|python|go ...]}"; shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hash="$(cat "$ROOT/sdkgen/go.mod" "$ROOT/sdkgen/go.sum" "$ROOT/sdkgen/main.go" | sha256sum | cut -c1-16)"
CACHE="${SDKGEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-run402/sdkgen-$hash}"
say() { printf 'sdk-gen: %s\n' "$*" >&2; }
start=$(date +%s)
if [ ! -x "$CACHE/sdkgen" ]; then
  command -v go >/dev/null || { say "no Go toolchain to build sdkgen"; exit 1; }
  say "building sdkgen (Pulumi's codegen; first time only)"
  mkdir -p "$CACHE"
  (cd "$ROOT/sdkgen" && GOFLAGS=-mod=mod GOTOOLCHAIN=local go build -trimpath -o "$CACHE/sdkgen.tmp" .)
  mv "$CACHE/sdkgen.tmp" "$CACHE/sdkgen"
  say "built sdkgen in $(( $(date +%s) - start ))s"
fi
mkdir -p "$OUT"
node --input-type=module -e '
  const { packageSchema } = await import(process.argv[1]);
  process.stdout.write(JSON.stringify(packageSchema(), null, 2));
' "$ROOT/dist/provider/native/schema.js" > "$OUT/schema.json"
"$CACHE/sdkgen" "$OUT/schema.json" "$OUT" "$@"
# The generators leave the version to a release step: give the packages the schema's.
version="$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$OUT/schema.json")"
if [ -f "$OUT/nodejs/package.json" ]; then sed -i "s/\${VERSION}/$version/" "$OUT/nodejs/package.json"; fi
if [ -f "$OUT/python/setup.py" ]; then sed -i "s/^VERSION = \"0.0.0\"/VERSION = \"$version\"/" "$OUT/python/setup.py"; fi
