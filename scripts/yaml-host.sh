#!/usr/bin/env bash
# Obtains Pulumi's YAML language host, pulumi-language-yaml, for the YAML end-to-end tests: built from
# the Go module github.com/pulumi/pulumi-yaml (served by the Go module proxy) the way engine.sh builds
# the engine, and cached per version outside the clone (YAML_HOST_CACHE), so a fresh clone on the same
# machine links it in seconds. Result: .tools/pulumi/bin/pulumi-language-yaml next to the engine.
set -euo pipefail

VERSION="${PULUMI_YAML_VERSION:-v1.25.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.tools/pulumi/bin"
CACHE="${YAML_HOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-run402/yaml-$VERSION}"
start=$(date +%s)
say() { printf 'yaml-host: %s\n' "$*" >&2; }
place() { rm -f "$2"; ln "$1" "$2" 2>/dev/null || cp "$1" "$2"; }
mkdir -p "$OUT"

# 1. A pulumi-language-yaml already on PATH (outside our own folder) wins.
if [ -z "${PULUMI_YAML_BUILD:-}" ] && onpath="$(PATH="${PATH//$OUT:/}" command -v pulumi-language-yaml 2>/dev/null)"; then
  ln -sf "$onpath" "$OUT/pulumi-language-yaml"; say "using $onpath"; exit 0
fi

# 2. Cached build of this version (the version file is written only after a whole build).
if [ -x "$CACHE/bin/pulumi-language-yaml" ] && [ "$(cat "$CACHE/version" 2>/dev/null)" = "$VERSION" ]; then
  place "$CACHE/bin/pulumi-language-yaml" "$OUT/pulumi-language-yaml"
  say "cached build $VERSION from $CACHE in $(( $(date +%s) - start ))s"; exit 0
fi

# 3. Build. pulumi-yaml's go.mod has no replace directives, so `go install module@version` builds it
#    with exactly the dependencies its release pinned.
command -v go >/dev/null || { say "no pulumi-language-yaml on PATH and no Go toolchain to build one"; exit 1; }
say "building pulumi-language-yaml $VERSION from Go modules (first time only; several minutes)"
mkdir -p "$CACHE/bin"
rm -f "$CACHE/version" "$CACHE/bin/pulumi-language-yaml"
GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN="$CACHE/bin" go install -trimpath -tags osusergo,grpcnotrace \
  -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=${VERSION#v}" \
  "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@$VERSION"
echo "$VERSION" > "$CACHE/version"
place "$CACHE/bin/pulumi-language-yaml" "$OUT/pulumi-language-yaml"
say "built pulumi-language-yaml $VERSION in $(( $(date +%s) - start ))s ($(du -sh "$CACHE/bin" | cut -f1))"
