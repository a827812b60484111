#!/usr/bin/env bash
# Build the OCI runtime-tools validation programs (runtimetest + validation/*/*.t)
# into a cache directory and print that directory on stdout.
#
#   __test__/oci-validation/build.sh            # build (or reuse) and print the dir
#   RT_VERSION=v0.9.0 __test__/oci-validation/build.sh
#
# Cache: ${LONELY_OCI_CACHE:-/var/cache/lonely-oci}/runtime-tools-<version>
# A finished build is marked by a .built stamp; if present nothing is rebuilt.
#
# Version choice
# --------------
# The newest runtime-tools is the repository head 5e639034dcdc (2025-12-04),
# which carries its own go.mod. The only network access here is the Go module
# proxy, and `go mod download github.com/opencontainers/runtime-tools@5e639034dcdc`
# answers "403 Forbidden: This module version is not available" (so do @master
# and @latest resolves to v0.9.0). The proxy lists exactly one version: v0.9.0
# (2019). So v0.9.0 is what we build. It predates Go modules (it has Godeps/),
# therefore we write a go.mod ourselves, pinning the dependency versions that
# are known to compile with its code (notably satori/go.uuid v1.2.0, where
# NewV4() still returns a single value). Built with `go build` commands that
# mirror `make runtimetest validation-executables`.
#
# To try another version (e.g. once the head is on the proxy) set RT_VERSION;
# if that version ships a go.mod it is used as is.
set -euo pipefail

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION="${RT_VERSION:-v0.9.0}"
CACHE_ROOT="${LONELY_OCI_CACHE:-/var/cache/lonely-oci}"

log() { echo "[oci-build] $*" >&2; }

command -v go >/dev/null || { log "go is not installed"; exit 1; }

# Resolve the version through the proxy (turns a commit prefix into a
# pseudo-version); fails here if the proxy does not have it.
work_mod="$(mktemp -d /tmp/lonely-oci-build.XXXXXX)"
cleanup() { rm -rf "$work_mod"; }
trap cleanup EXIT

# Fast path: a finished build for the literal version name.
out="$CACHE_ROOT/runtime-tools-$RT_VERSION"
if [[ -f "$out/.built" ]]; then
  echo "$out"
  exit 0
fi

log "resolving $RT_MODULE@$RT_VERSION via ${GOPROXY:-$(go env GOPROXY)}"
if ! info="$(cd "$work_mod" && GOFLAGS=-mod=mod go mod download -json "$RT_MODULE@$RT_VERSION")"; then
  log "go mod download failed:"
  echo "$info" >&2
  exit 1
fi
src_dir="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
resolved="$(printf '%s' "$info" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",\{0,1\}$/\1/p')"
[[ -n "$src_dir" && -d "$src_dir" ]] || { log "no module dir in: $info"; exit 1; }
log "resolved to $resolved ($src_dir)"

out="$CACHE_ROOT/runtime-tools-$resolved"
if [[ -f "$out/.built" ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
tmp_out="$(mktemp -d "$CACHE_ROOT/.runtime-tools-$resolved.XXXXXX")"
trap 'cleanup; rm -rf "$tmp_out"' EXIT

# The module cache is read-only: build in a writable copy.
cp -r "$src_dir/." "$tmp_out/"
chmod -R u+w "$tmp_out"
cd "$tmp_out"

if [[ ! -f go.mod ]]; then
  log "no go.mod in $resolved: writing one"
  # runtime-spec, selinux, urfave/cli and gocapability are the pins that are
  # known to work with v0.9.0's code; the rest are the versions `go mod tidy`
  # picked when this was written (pinned so later rebuilds are identical).
  cat > go.mod <<EOF
module $RT_MODULE

go 1.23

require (
	github.com/opencontainers/runtime-spec v1.0.2
	github.com/opencontainers/selinux v1.8.0
	github.com/urfave/cli v1.20.0
	github.com/syndtr/gocapability v0.0.0-20180916011248-d98352740cb2
	github.com/satori/go.uuid v1.2.0
	github.com/blang/semver v3.5.1+incompatible
	github.com/hashicorp/go-multierror v1.1.1
	github.com/mndrix/tap-go v0.0.0-20171203230836-629fa407e90b
	github.com/mrunalp/fileutils v0.5.1
	github.com/sirupsen/logrus v1.10.2
	github.com/stretchr/testify v1.12.1
	github.com/xeipuuv/gojsonschema v1.2.0
	golang.org/x/sys v0.13.0
)
EOF
  rm -rf Godeps vendor
fi

log "go mod tidy"
GOFLAGS=-mod=mod go mod tidy >&2

# Same as `make runtimetest validation-executables`, without needing git:
# the Makefile's ldflags only embed the commit and VERSION.
log "building runtimetest"
CGO_ENABLED=0 go build -installsuffix cgo \
  -ldflags "-X main.version=${resolved#v}" -o runtimetest ./cmd/runtimetest >&2

mapfile -t tests < <(find ./validation -name '*.go' ! -path './validation/util/*' | sort)
log "building ${#tests[@]} validation programs"
for src in "${tests[@]}"; do
  go build -o "${src%.go}.t" "$src" >&2
done

{
  echo "module=$RT_MODULE"
  echo "version=$resolved"
  echo "requested=$RT_VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "tests=${#tests[@]}"
} > .built

rm -rf "$out"
mv "$tmp_out" "$out"
trap cleanup EXIT
log "done"
echo "$out"
