#!/usr/bin/env bash
# run-all.sh: the interop stage. Installs the real MCP peers (idempotent),
# builds the gateway once, then runs every interop stage, each inside its own
# private network namespace, and fails if any stage failed. Stages run to the
# end even after one fails, so one run reports everything.
#
#   bash scripts/interop/run-all.sh                       # baselines and through mcpguard
#   INTEROP_DIRECT_ONLY=1 bash scripts/interop/run-all.sh # baselines only
#   MCPGUARD_BIN=/path/to/mcpguard bash scripts/interop/run-all.sh
#   INTEROP_STAGES="conformance-server inspector" bash scripts/interop/run-all.sh
#
# Logs: .cache/interop-logs/latest/<stage>/ (see docs/conformance.md).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_STAGES=(conformance-server conformance-client inspector idp console ha)
read -r -a stages <<<"${INTEROP_STAGES:-${ALL_STAGES[*]}}"
for s in "${stages[@]}"; do
	[[ -f $INTEROP_DIR/$s.sh ]] || die "unknown interop stage $s (known: ${ALL_STAGES[*]})"
done

# On TERM or INT, stop the running stage (which stops its own children).
trap 'cleanup_children' EXIT
trap 'log "interrupted (TERM); stopping the running stage"; exit 143' TERM
trap 'log "interrupted (INT); stopping the running stage"; exit 130' INT

total_start=$SECONDS
section "interop: install peers"
start=$SECONDS
bash "$INTEROP_DIR/install-peers.sh"
install_seconds=$(elapsed "$start")
require_peers

if [[ -n ${INTEROP_DIRECT_ONLY:-} ]]; then
	log "INTEROP_DIRECT_ONLY is set: running the direct baselines only, not mcpguard"
else
	section "interop: gateway binary"
	ensure_gateway
	log "gateway: $MCPGUARD_BIN"
fi

ensure_run_dir
log "logs: $LOG_ROOT (also $LOGS_BASE/latest)"
results=()
failed=()
for s in "${stages[@]}"; do
	section "interop stage: $s"
	start=$SECONDS
	rc=0
	run_waitable bash "$INTEROP_DIR/$s.sh" || rc=$?
	took=$(elapsed "$start")
	if ((rc == 0)); then
		results+=("$(printf '%-20s passed  %4ss' "$s" "$took")")
	else
		results+=("$(printf '%-20s FAILED  %4ss (exit %s; logs in %s)' "$s" "$took" "$rc" "$LOG_ROOT/$s")")
		failed+=("$s")
	fi
done

section "interop summary"
# Also in the run's summary.txt, which .ci/run's summary prints.
{
	echo "interop summary (stage, result, time):"
	printf '%-20s %-7s %5ss\n' install-peers "done" "$install_seconds"
	printf '%s\n' "${results[@]}"
	printf 'total %ss%s\n' "$(elapsed "$total_start")" "${INTEROP_DIRECT_ONLY:+ (direct baselines only)}"
	printf 'interop: %d passed, %d failed\n' "$((${#stages[@]} - ${#failed[@]}))" "${#failed[@]}"
} | tee "$LOG_ROOT/summary.txt"
if ((${#failed[@]})); then
	die "interop stages failed: ${failed[*]}"
fi
