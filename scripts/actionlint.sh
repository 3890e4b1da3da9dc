#!/usr/bin/env bash
# Obtains actionlint (the GitHub Actions workflow linter) built from its published Go module, pinned,
# and prints the path of the binary. The build is cached per version outside the clone
# (ACTIONLINT_CACHE), so later runs take no time. Used by examples/github-actions/actionlint.test.ts.
set -euo pipefail

VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
CACHE="${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-run402/actionlint-$VERSION}"
BIN="$CACHE/bin/actionlint"

if [ -x "$BIN" ] && [ "$("$BIN" -version 2>/dev/null | head -n1)" = "$VERSION" ]; then
  echo "$BIN"; exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "actionlint: Go is needed to build actionlint $VERSION (https://go.dev/dl/), or set ACTIONLINT_CACHE to a folder holding bin/actionlint" >&2
  exit 1
fi
mkdir -p "$CACHE/bin"
echo "actionlint: building github.com/rhysd/actionlint/cmd/actionlint@$VERSION into $CACHE/bin" >&2
GOBIN="$CACHE/bin" GOFLAGS="-trimpath" go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" >&2
echo "$BIN"
