#!/usr/bin/env bash
# scripts/ci/static.sh: the static gates of .ci/run, from the repository root. Each prints what
# is wrong and how to fix it; the script fails if any gate fails.
#   gofmt        every Go file formatted (fix: gofmt -w FILE)
#   go mod tidy  go.mod and go.sum exactly what the code needs (fix: go mod tidy)
#   staticcheck  honnef.co/go/tools, pinned below
#   ShellCheck   every shell script (the Debian package shellcheck)
#   govulncheck  golang.org/x/vuln, pinned below, when its database is reachable; skipped with
#                the reason printed when it is not (this machine has no route to vuln.go.dev)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

STATICCHECK_VERSION=v0.8.2 # newest the module proxy served on 2026-12-01
GOVULNCHECK_VERSION=v1.9.0
TOOLS=$PWD/.cache/bin
failed=()

gate() { printf '\n--- %s\n' "$1"; }

gate gofmt
unformatted=$(git ls-files -z '*.go' | xargs -0 gofmt -l)
if [[ -n $unformatted ]]; then
	printf 'not gofmt-formatted (run gofmt -w on them):\n%s\n' "$unformatted"
	failed+=(gofmt)
else
	echo "ok"
fi

gate "go mod tidy"
if ! go mod tidy -diff; then
	echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result"
	failed+=("go mod tidy")
else
	echo "ok"
fi

gate staticcheck
if [[ ! -x $TOOLS/staticcheck ]] || ! "$TOOLS/staticcheck" -version | grep -q "${STATICCHECK_VERSION#v}"; then
	GOBIN=$TOOLS go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
if "$TOOLS/staticcheck" ./...; then echo "ok"; else failed+=(staticcheck); fi

gate shellcheck
if ! command -v shellcheck >/dev/null 2>&1; then
	apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }
fi
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
# SC1091: the scripts source lib.sh by a path computed at run time, which shellcheck cannot
# follow; lib.sh is checked on its own as one of the files.
if shellcheck -e SC1091 "${scripts[@]}"; then echo "ok (${#scripts[@]} scripts)"; else failed+=(shellcheck); fi

gate govulncheck
if [[ ! -x $TOOLS/govulncheck ]]; then
	GOBIN=$TOOLS go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi
if out=$("$TOOLS/govulncheck" ./... 2>&1); then
	echo "ok"
elif grep -q "fetching vulnerabilities" <<<"$out"; then
	printf 'SKIPPED: the vulnerability database is not reachable from this machine:\n%s\n' "$(grep "fetching vulnerabilities" <<<"$out" | head -1)"
else
	printf '%s\n' "$out"
	failed+=(govulncheck)
fi

if ((${#failed[@]} > 0)); then
	printf '\nstatic gates failed: %s\n' "${failed[*]}"
	exit 1
fi
printf '\nall static gates passed\n'
