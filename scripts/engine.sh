#!/usr/bin/env bash
# Obtains the real Pulumi engine for this project: a `pulumi` 3.x on PATH if there is one,
# otherwise the CLI (and the Node.js language host) built from Pulumi's published Go modules.
# The built binaries are cached per version outside the clone (ENGINE_CACHE), so a fresh clone on
# the same machine links them in seconds. Result: .tools/pulumi/bin holding pulumi,
# pulumi-language-nodejs (when it builds) and pulumi-resource-pulumi-nodejs, its links relative (the
# folder can move). Run from an installed package (a user's project, npx), it also assembles the same
# three in a folder of the user's cache (RUN402_ENGINE_BIN, default ~/.cache/pulumi-run402/bin) that
# survives `npm ci` and npx's cache, and prints that folder and the PATH line that uses it.
set -euo pipefail

VERSION="${PULUMI_ENGINE_VERSION:-v3.276.0}"
# The Go language host module has no tags of its own: it is built only when PULUMI_ENGINE_COMMIT names
# the commit of the engine's tag and the Go module proxy serves it (the one here does not).
COMMIT="${PULUMI_ENGINE_COMMIT:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.tools/pulumi/bin"
CACHE="${ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-run402/engine-$VERSION}"
# The user's engine folder, outside node_modules: only for an installed package (not this repository).
USER_BIN=""
case "$ROOT" in */node_modules/*) USER_BIN="${RUN402_ENGINE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-run402/bin}" ;; esac
start=$(date +%s)
say() { printf 'engine: %s\n' "$*" >&2; }
done_in() { say "$1 in $(( $(date +%s) - start ))s"; }

link_script() {
  # Pulumi's YAML language host, for the native provider's YAML tests (built once per version, cached).
  # Only in this repository: the package does not ship yaml-host.sh (a user's YAML program uses Pulumi's own).
  if [ -z "${RUN402_SKIP_YAML_HOST:-}" ] && [ -f "$ROOT/scripts/yaml-host.sh" ]; then bash "$ROOT/scripts/yaml-host.sh" || say "no pulumi-language-yaml: the YAML tests will fail"; fi
  # The dynamic-provider plugin: our one-process launcher (scripts/pulumi-resource-pulumi-nodejs.cjs)
  # in place of the shell script @pulumi/pulumi ships, which starts two more processes to find and run it.
  # @pulumi/pulumi as Node resolves it from here (in a user's project it sits beside pulumi-run402).
  if ! node -e 'require.resolve("@pulumi/pulumi/cmd/dynamic-provider/index.js", { paths: [process.argv[1]] })' "$ROOT" 2>/dev/null; then
    say "run npm install first: @pulumi/pulumi is missing"; exit 1
  fi
  # Relative links (.tools/pulumi/bin -> scripts/): moving or copying the folder keeps them working.
  rm -f "$OUT/pulumi-resource-pulumi-nodejs"
  ln -s "../../../scripts/pulumi-resource-pulumi-nodejs.cjs" "$OUT/pulumi-resource-pulumi-nodejs"
  # The engine's version, so run402-pulumi knows it without running `pulumi version` (cli/engine/lookup.ts).
  "$OUT/pulumi" version > "$OUT/../version.tmp" && mv "$OUT/../version.tmp" "$OUT/../version"
  # Without Pulumi's Go language host, serve the SDK's own LanguageServer (see the script's header).
  if [ ! -x "$OUT/pulumi-language-nodejs" ] || [ -L "$OUT/pulumi-language-nodejs" ]; then
    ln -sfn "../../../scripts/pulumi-language-nodejs.cjs" "$OUT/pulumi-language-nodejs"
    LANGUAGE_HOST="scripts/pulumi-language-nodejs.cjs (the SDK's LanguageServer)"
  fi
  user_bin
}

# Each file replaced whole (another run may be using the folder): written beside it, then renamed.
put() { # put <how: link|copy|symlink> <source> <target>
  if [ "$1" = link ] && [ "$2" -ef "$3" ]; then return 0; fi # already that file (mv refuses a hard link onto itself)
  local tmp="$3.$$.tmp"; rm -f "$tmp"
  case "$1" in
    link) ln "$2" "$tmp" 2>/dev/null || cp "$2" "$tmp" ;;
    copy) cp "$2" "$tmp"; chmod 755 "$tmp" ;;
    symlink) ln -s "$2" "$tmp" ;;
  esac
  mv -f "$tmp" "$3"
}

# The user's engine folder: the engine (a hard link into the cache, or a link to the pulumi on PATH)
# and copies of the two Node plugins, which find @pulumi/pulumi from the folder the engine starts them
# in (the program's), so they need nothing from this installation once copied.
user_bin() {
  [ -n "$USER_BIN" ] || return 0
  mkdir -p "$USER_BIN"
  if [ -L "$OUT/pulumi" ]; then put symlink "$(readlink "$OUT/pulumi")" "$USER_BIN/pulumi"
  else put link "$OUT/pulumi" "$USER_BIN/pulumi"; fi
  if [ -L "$OUT/pulumi-language-nodejs" ] && [ "$(readlink "$OUT/pulumi-language-nodejs")" != "../../../scripts/pulumi-language-nodejs.cjs" ]; then
    put symlink "$(readlink "$OUT/pulumi-language-nodejs")" "$USER_BIN/pulumi-language-nodejs"
  elif [ -L "$OUT/pulumi-language-nodejs" ]; then put copy "$ROOT/scripts/pulumi-language-nodejs.cjs" "$USER_BIN/pulumi-language-nodejs"
  else put link "$OUT/pulumi-language-nodejs" "$USER_BIN/pulumi-language-nodejs"; fi
  put copy "$ROOT/scripts/pulumi-resource-pulumi-nodejs.cjs" "$USER_BIN/pulumi-resource-pulumi-nodejs"
  cp "$OUT/../version" "$USER_BIN/.version.$$" && mv -f "$USER_BIN/.version.$$" "$USER_BIN/version"
}

# Where the engine is, and the line that puts it on PATH.
where() {
  local dir="${USER_BIN:-$OUT}"
  say "the engine is in $dir; to run pulumi yourself: export PATH=\"$dir:\$PATH\""
}

place() {
  # A hard link keeps plugins "bundled" (found next to the executable, no PATH warnings) without
  # copying 110 MB into every clone; a copy where the cache is on another filesystem.
  rm -f "$2"; ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}
LANGUAGE_HOST="Pulumi's Go pulumi-language-nodejs"

mkdir -p "$OUT"

# 1. A pulumi 3.x already on PATH (outside our own folder) wins.
if [ -z "${PULUMI_ENGINE_BUILD:-}" ] && onpath="$(PATH="${PATH//$OUT:/}" command -v pulumi 2>/dev/null)"; then
  v="$("$onpath" version 2>/dev/null || true)"
  if [[ "$v" == v3.* ]]; then
    ln -sf "$onpath" "$OUT/pulumi"
    d="$(dirname "$onpath")"
    if [ -x "$d/pulumi-language-nodejs" ]; then ln -sf "$d/pulumi-language-nodejs" "$OUT/pulumi-language-nodejs"; fi
    link_script
    say "using $onpath ($v)"; where; done_in "ready"; exit 0
  fi
fi

# 2. Cached build of this version.
if [ -x "$CACHE/bin/pulumi" ] && [ "$("$CACHE/bin/pulumi" version 2>/dev/null)" = "$VERSION" ]; then
  place "$CACHE/bin/pulumi" "$OUT/pulumi"
  if [ -x "$CACHE/bin/pulumi-language-nodejs" ]; then place "$CACHE/bin/pulumi-language-nodejs" "$OUT/pulumi-language-nodejs"; fi
  link_script
  say "cached build $VERSION from $CACHE; language host: $LANGUAGE_HOST"; where; done_in "ready"; exit 0
fi

# 3. Build from Go modules through a throw-away wrapper module (pkg's go.mod has replace
#    directives, so `go install pkg@version` is refused; a wrapper pinning pkg and sdk works).
command -v go >/dev/null || { say "no pulumi 3.x on PATH and no Go toolchain to build one"; exit 1; }
say "building pulumi $VERSION from Go modules (first time only; several minutes)"
work="$CACHE/src"
rm -rf "$work"; mkdir -p "$work" "$CACHE/bin"
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
go mod init pulumi-run402-engine >/dev/null 2>&1
go get "github.com/pulumi/pulumi/pkg/v3@$VERSION" "github.com/pulumi/pulumi/sdk/v3@$VERSION"
LD="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$VERSION"
TAGS="osusergo,grpcnotrace"
go build -trimpath -tags "$TAGS" -ldflags "$LD" -o "$CACHE/bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
mv "$CACHE/bin/pulumi.tmp" "$CACHE/bin/pulumi"
done_in "built pulumi"

# The language host lets `pulumi up` run in a project folder; the Automation API's inline
# programs do without it, so a failure here is reported and tolerated.
lh="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
if [ -n "$COMMIT" ] && go get "$lh@$COMMIT" && go get "github.com/pulumi/pulumi/pkg/v3@$VERSION" "github.com/pulumi/pulumi/sdk/v3@$VERSION" \
   && go build -trimpath -tags "$TAGS" -ldflags "$LD" -o "$CACHE/bin/pulumi-language-nodejs.tmp" "$lh"; then
  mv "$CACHE/bin/pulumi-language-nodejs.tmp" "$CACHE/bin/pulumi-language-nodejs"
  done_in "built pulumi-language-nodejs"
else
  say "no Go pulumi-language-nodejs (${COMMIT:+the Go module proxy refuses $lh@$COMMIT}${COMMIT:-PULUMI_ENGINE_COMMIT unset}); using the fallback"
fi
cd "$ROOT"; rm -rf "$work"
place "$CACHE/bin/pulumi" "$OUT/pulumi"
if [ -x "$CACHE/bin/pulumi-language-nodejs" ]; then place "$CACHE/bin/pulumi-language-nodejs" "$OUT/pulumi-language-nodejs"; fi
link_script
say "pulumi $("$OUT/pulumi" version) ready; language host: $LANGUAGE_HOST; size $(du -shL "$CACHE/bin" | cut -f1)"
where
done_in "ready"
