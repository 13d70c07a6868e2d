#!/usr/bin/env bash
# scripts/ci/fuzz.sh: run every fuzz target beyond its seeds for a bounded time, from the
# repository root. FUZZTIME (default 3s) is per target. A failure leaves the input that broke
# the target in that package's testdata/fuzz/<Target>/: commit it with the fix, so it stays in
# the corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

FUZZTIME=${FUZZTIME:-3s}
targets=0
failed=()
while IFS= read -r file; do
	pkg=./$(dirname "$file")
	while IFS= read -r name; do
		targets=$((targets + 1))
		printf '%-28s %s\n' "$name" "$pkg"
		fuzz() { go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1; }
		if ! out=$(fuzz); then
			# Go's fuzzing engine sometimes reports its own deadline ("context deadline
			# exceeded", no failing input) when a worker is slow to stop on a loaded machine:
			# that run is repeated once. A real failure names the input it wrote.
			if ! grep -q "Failing input written" <<<"$out" && grep -q "context deadline exceeded" <<<"$out" && out=$(fuzz); then
				continue
			fi
			printf '%s\n' "$out" | tail -30
			failed+=("$name ($pkg)")
		fi
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | sort)

printf '\n%d fuzz targets, %s each\n' "$targets" "$FUZZTIME"
if ((${#failed[@]} > 0)); then
	printf 'failed: %s\n' "${failed[@]}"
	exit 1
fi
