#!/usr/bin/env bash
# scripts/ci/static.sh: the static gates of .ci/run, from the repository root. Each prints what
# is wrong and how to fix it; the script fails if any gate fails.
#   gofmt        every Go file formatted (fix: gofmt -w FILE)
#   go mod tidy  go.mod and go.sum exactly what the code needs (fix: go mod tidy)
#   staticcheck  honnef.co/go/tools, pinned below
#   ShellCheck   every shell script (the Debian package shellcheck)
#   govulncheck  golang.org/x/vuln, pinned below, against the vulnerability database built from
#                the newest golang.org/x/vulndb the Go module proxy serves (this machine has no
#                route to vuln.go.dev); skipped with the reason printed when the proxy does not
#                serve it. A vulnerability the code calls in a module fails the gate; one in the
#                standard library is listed as a warning, here and in the CI summary (its fix is
#                a newer toolchain), unless GOVULNCHECK_STDLIB=fail
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

STATICCHECK_VERSION=v0.8.2 # newest the module proxy served on 2026-12-01
GOVULNCHECK_VERSION=v1.9.0
VULNDB_INDEXDB_VERSION=v0.0.0-20261105234957-e22db6528018 # the database's newest on 2026-12-06
GOVULNCHECK_STDLIB=${GOVULNCHECK_STDLIB:-warn} # fail: a standard-library finding fails the gate
TOOLS=$PWD/.cache/bin
# One line (or a few) per gate that passed with something to say, for .ci/run's summary.
mkdir -p .cache/ci
NOTES=.cache/ci/static-notes.txt
: >"$NOTES"
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
if [[ ! -x $TOOLS/staticcheck ]] || ! "$TOOLS/staticcheck" -version | grep -F "${STATICCHECK_VERSION#v}" >/dev/null; then
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
# The database: vuln.go.dev is not reachable from this machine, but the Go module proxy serves
# golang.org/x/vulndb, the database's source, whose data/osv/ holds every report as OSV JSON.
# Its newest version (resolved at each run, so new reports count at once) is indexed by the
# repository's own cmd/indexdb, pinned here, into the v1 layout govulncheck reads with -db file://.
if [[ ! -x $TOOLS/govulncheck ]]; then
	GOBIN=$TOOLS go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi
vulndb_skip=
# Outside this module (an empty directory), so that go.mod and go.sum stay as they are.
empty=$(mktemp -d)
if ! vulndb_json=$(cd "$empty" && go mod download -json golang.org/x/vulndb@latest 2>&1); then
	vulndb_skip="the module proxy did not serve golang.org/x/vulndb: $(grep -m1 '"Error"' <<<"$vulndb_json" || tail -1 <<<"$vulndb_json")"
fi
rmdir "$empty"
if [[ -n $vulndb_skip ]]; then
	printf 'SKIPPED: %s
' "$vulndb_skip"
	printf 'govulncheck: SKIPPED (%s)\n' "$vulndb_skip" >"$NOTES"
else
	vulndb_version=$(sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p' <<<"$vulndb_json")
	vulndb_src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$vulndb_json")
	db=$PWD/.cache/vulndb/$vulndb_version
	if [[ ! -f $db/index/db.json ]]; then
		if [[ ! -x $TOOLS/indexdb-$VULNDB_INDEXDB_VERSION ]]; then
			GOBIN=$TOOLS go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_INDEXDB_VERSION"
			mv "$TOOLS/indexdb" "$TOOLS/indexdb-$VULNDB_INDEXDB_VERSION"
		fi
		rm -rf "$db.tmp" && "$TOOLS/indexdb-$VULNDB_INDEXDB_VERSION" -vulns "$vulndb_src/data/osv" -out "$db.tmp" && mv "$db.tmp" "$db"
	fi
	echo "database: golang.org/x/vulndb@$vulndb_version ($(find "$db/ID" -name '*.json' | wc -l) reports), toolchain $(go env GOVERSION)"
	rc=0
	out=$("$TOOLS/govulncheck" -db "file://$db" ./... 2>&1) || rc=$?
	# Exit code 3: vulnerabilities the code calls. Each is "Found in: PKG@VERSION", where the
	# standard library's version is the toolchain's (goX.Y.Z).
	found=$(grep -E '^[[:space:]]+Found in: ' <<<"$out" || true)
	in_modules=$(grep -v '@go[0-9]' <<<"$found" || true)
	if ((rc == 0)); then
		echo "ok"
		echo "govulncheck: no vulnerability the code calls (golang.org/x/vulndb@$vulndb_version)" >"$NOTES"
	elif ((rc == 3)) && [[ -n $found && -z $in_modules && $GOVULNCHECK_STDLIB != fail ]]; then
		# Only the standard library: the fix is a newer toolchain, not a change to this
		# repository's code or go.mod requirements. Listed here and in the CI summary; with
		# GOVULNCHECK_STDLIB=fail they fail the gate.
		summary=$(awk '/^Vulnerability #/ {id = $3} /Found in:/ {found = $3} /Fixed in:/ {print "  " id " " found " (fixed in " $3 ")"}' <<<"$out")
		n=$(awk '{print $1}' <<<"$summary" | sort -u | wc -l)
		printf 'WARNING: the toolchain %s has %d vulnerabilities that the code calls, all fixed in a newer Go release (upgrade the toolchain; GOVULNCHECK_STDLIB=fail makes this fail):\n%s\n' "$(go env GOVERSION)" "$n" "$summary"
		printf 'govulncheck: WARNING, toolchain %s: %d standard-library vulnerabilities the code calls, fixed in a newer Go release:\n%s\n' "$(go env GOVERSION)" "$n" "$summary" >"$NOTES"
	else
		printf '%s\n' "$out"
		failed+=(govulncheck)
	fi
fi

if ((${#failed[@]} > 0)); then
	printf '\nstatic gates failed: %s\n' "${failed[*]}"
	exit 1
fi
printf '\nall static gates passed\n'
