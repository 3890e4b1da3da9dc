#!/usr/bin/env bash
# Packs the run402 provider plugin for Pulumi's plugin cache:
#   bash node_modules/pulumi-run402/scripts/plugin-archive.sh run402-plugin.tar.gz
#   pulumi plugin install resource run402 <version> --file run402-plugin.tar.gz
# The archive holds one executable, pulumi-resource-run402, that runs this installation's built
# provider (dist/provider/native/main.js) with node: the plugin cache then finds the provider
# without PATH or `plugins.providers`. Reinstall the archive when this package moves.
set -euo pipefail
OUT="${1:?usage: plugin-archive.sh <out.tar.gz>}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN="$ROOT/dist/provider/native/main.js"
[ -f "$MAIN" ] || { echo "plugin-archive: $MAIN is missing; run npm run build in $ROOT" >&2; exit 1; }
NODE="$(command -v node)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$NODE" "$MAIN" > "$work/pulumi-resource-run402"
chmod +x "$work/pulumi-resource-run402"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
tar -czf "$OUT" -C "$work" pulumi-resource-run402
echo "$OUT"
