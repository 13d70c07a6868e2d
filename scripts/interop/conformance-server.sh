#!/usr/bin/env bash
# conformance-server.sh: run the conformance suite's SERVER scenarios against
# the go-sdk everything-server, once directly (the baseline), once through
# mcpguard (the fixture as its only upstream, prefix "") and once through
# mcpguard with the full pipeline (policy with argument schemas, redaction,
# the durable audit log), for each requirement set, and fail if any
# scenario's verdict or any check's status through the gateway differs from
# direct (except the differences listed in expected/server-<set>-differences.txt),
# or if the audit log the full pipeline wrote does not verify.
#
#   2026-07-28: everything-server stateless (its default, -stateless=true)
#   2025-11-25: everything-server -stateless=false (sessions, initialize)
#
# Runs inside a private network namespace (it re-executes itself with
# unshare -n). Environment:
#   INTEROP_DIRECT_ONLY=1      run only the direct baselines
#   INTEROP_UPDATE_EXPECTED=1  rewrite expected/server-<set>.txt and -checks.txt from the direct runs
#   MCPGUARD_BIN               the gateway (default: built into .cache/)
#   INTEROP_SUITE_TIMEOUT      seconds one suite run may take (default 300)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_netns "$0" "$@"
netns_up
require_peers
install_cleanup_trap

FIXTURE_PORT=3101
GATEWAY_PORT=8080
SUITE_TIMEOUT=${INTEROP_SUITE_TIMEOUT:-300}
DIRECT_ONLY=${INTEROP_DIRECT_ONLY:-}
LOGS=$(new_log_dir conformance-server)

if [[ -z $DIRECT_ONLY ]]; then
	ensure_gateway
fi

fixture_flags() {
	case $1 in
	2026-07-28) echo -stateless=true ;;
	2025-11-25) echo -stateless=false ;;
	*) die "no everything-server mode is defined for requirement set $1" ;;
	esac
}

# start_fixture REVISION LOGFILE: everything-server on 127.0.0.1:FIXTURE_PORT.
start_fixture() {
	local flags
	flags=$(fixture_flags "$1")
	printf '# %s -http=127.0.0.1:%s %s\n' "$GO_EVERYTHING_SERVER" "$FIXTURE_PORT" "$flags" >>"$2"
	start_bg "$2" "$GO_EVERYTHING_SERVER" "-http=127.0.0.1:$FIXTURE_PORT" "$flags"
	FIXTURE_PID=$BG_PID
	wait_listen "$FIXTURE_PORT" "$FIXTURE_PID" "$2" "everything-server ($flags)" 30 ||
		die "the everything-server fixture did not start"
}

# run_suite REVISION MODE URL: run the suite's server requirement set against
# URL; leaves $LOGS/REVISION/MODE/verdicts.json.
run_suite() {
	local rev=$1 mode=$2 url=$3
	local dir=$LOGS/$rev/$mode start rc=0
	mkdir -p "$dir"
	log "$rev $mode: conformance server --url $url --requirements $rev"
	start=$SECONDS
	run_waitable timeout --kill-after=10 "$SUITE_TIMEOUT" \
		"$NODE" "$CONFORMANCE_JS" server --url "$url" --requirements "$rev" \
		--timeout 15000 -o "$dir/results" >"$dir/conformance.log" 2>&1 || rc=$?
	local took
	took=$(elapsed "$start")
	printf '%s\n' "$took" >"$dir/seconds"
	if ((rc == 124 || rc == 137)); then
		show_log "$dir/conformance.log"
		log "$rev $mode: the suite did not finish within ${SUITE_TIMEOUT}s; unfinished scenarios count as MISSING"
	fi
	# The suite exits non-zero whenever a scored scenario fails; the verdicts,
	# not its exit code, are what this stage compares.
	log "$rev $mode: finished in ${took}s (suite exit code $rc)"
	if ! results_tool verdicts "$dir/results" server "$dir/conformance.log" >"$dir/verdicts.json"; then
		fail_with_log "$dir/conformance.log" "$rev $mode: cannot read the suite's results in $dir/results"
	fi
}

failures=()
for rev in "${REQUIREMENT_SETS[@]}"; do
	section "conformance server suite, requirements $rev"
	conformance_list "$rev" server >"$LOGS/$rev.scenarios"
	log "$rev: $(wc -l <"$LOGS/$rev.scenarios") server scenarios ($(grep -c $'\tscored$' "$LOGS/$rev.scenarios") scored)"

	# Baseline: the suite straight against the fixture.
	mkdir -p "$LOGS/$rev/direct"
	start_fixture "$rev" "$LOGS/$rev/direct/fixture.log"
	run_suite "$rev" direct "http://127.0.0.1:$FIXTURE_PORT/mcp"
	stop_bg "$FIXTURE_PID"

	expected=$INTEROP_DIR/expected/server-$rev.txt
	if [[ -n ${INTEROP_UPDATE_EXPECTED:-} ]]; then
		write_expected "$LOGS/$rev/direct/verdicts.json" "$expected" \
			"conformance server --requirements $rev against everything-server $(fixture_flags "$rev"), direct"
		log "$rev: wrote $expected"
	elif ! expect_baseline "$LOGS/$rev/direct/verdicts.json" "$expected"; then
		show_log "$LOGS/$rev/direct/conformance.log" 80
		failures+=("server $rev: the direct baseline against everything-server changed (see above); the peers, not the gateway, behave differently")
	fi
	printf '\nDirect baseline, server requirements %s (%ss):\n' "$rev" "$(cat "$LOGS/$rev/direct/seconds")"
	results_tool table "$LOGS/$rev/direct/verdicts.json" "$LOGS/$rev.scenarios"

	if [[ -n $DIRECT_ONLY ]]; then
		log "$rev: INTEROP_DIRECT_ONLY is set; skipping the run through mcpguard"
		continue
	fi

	# The same suite through the gateway, with a fresh fixture.
	mkdir -p "$LOGS/$rev/gateway"
	start_fixture "$rev" "$LOGS/$rev/gateway/fixture.log"
	config=$LOGS/$rev/gateway/mcpguard.yaml
	write_gateway_config_http "$config" "127.0.0.1:$GATEWAY_PORT" everything "http://127.0.0.1:$FIXTURE_PORT/mcp"
	if ! start_gateway "$config" "$GATEWAY_PORT" "$LOGS/$rev/gateway/mcpguard.log"; then
		failures+=("server $rev: mcpguard did not start with $config")
		stop_bg "$FIXTURE_PID"
		continue
	fi
	run_suite "$rev" gateway "http://127.0.0.1:$GATEWAY_PORT/mcp"
	stop_bg "$GATEWAY_PID"
	stop_bg "$FIXTURE_PID"

	printf '\nServer requirements %s: direct vs through mcpguard (%ss vs %ss):\n' "$rev" \
		"$(cat "$LOGS/$rev/direct/seconds")" "$(cat "$LOGS/$rev/gateway/seconds")"
	if ! results_tool compare direct "$LOGS/$rev/direct/verdicts.json" mcpguard "$LOGS/$rev/gateway/verdicts.json" "$LOGS/$rev.scenarios" "$(differences_file "server-$rev")"; then
		show_log "$LOGS/$rev/gateway/mcpguard.log" 80
		failures+=("server $rev: verdicts or checks through mcpguard differ from direct (table above; logs in $LOGS/$rev/gateway)")
	fi

	# Once more through the full pipeline. The suite cannot send a credential
	# (its server mode has no option for a header or token), so authentication
	# is off and the policy binds the principal anonymous.
	dir=$LOGS/$rev/pipeline
	mkdir -p "$dir"
	setup_full_pipeline "$dir" anonymous
	start_fixture "$rev" "$dir/fixture.log"
	config=$dir/mcpguard.yaml
	write_gateway_config_http "$config" "127.0.0.1:$GATEWAY_PORT" everything "http://127.0.0.1:$FIXTURE_PORT/mcp"
	append_full_pipeline "$config" "$dir"
	check_config "$config" "$dir/config-check.log"
	if ! start_gateway "$config" "$GATEWAY_PORT" "$dir/mcpguard.log"; then
		failures+=("server $rev: mcpguard did not start with the full pipeline ($config)")
		stop_bg "$FIXTURE_PID"
		continue
	fi
	run_suite "$rev" pipeline "http://127.0.0.1:$GATEWAY_PORT/mcp"
	probe_ok=1
	policy_probe "http://127.0.0.1:$GATEWAY_PORT/mcp" test_elicitation || probe_ok=
	stop_bg "$GATEWAY_PID"
	stop_bg "$FIXTURE_PID"

	printf '\nServer requirements %s: direct vs through mcpguard with the full pipeline (%ss vs %ss):\n' "$rev" \
		"$(cat "$LOGS/$rev/direct/seconds")" "$(cat "$dir/seconds")"
	if ! results_tool compare direct "$LOGS/$rev/direct/verdicts.json" mcpguard-full "$dir/verdicts.json" "$LOGS/$rev.scenarios" "$(differences_file "server-$rev")"; then
		show_log "$dir/mcpguard.log" 80
		failures+=("server $rev: verdicts or checks through mcpguard with the full pipeline differ from direct (table above; logs in $dir)")
	fi
	[[ -n $probe_ok ]] || failures+=("server $rev: the full pipeline's policy did not deny a call that breaks its argument schema")
	# At least one allowed call record per tools-call-* scenario, and the denied probe.
	if ! verify_audit "$dir" "$(grep -c '^tools-call-' "$LOGS/$rev.scenarios" || true)" 1; then
		failures+=("server $rev: the full pipeline's audit log does not verify (logs in $dir)")
	fi
done

if ((${#failures[@]})); then
	printf '\n' >&2
	for f in "${failures[@]}"; do
		log "FAILED: $f"
	done
	die "conformance server stage failed; logs under $LOGS"
fi
log "conformance server stage passed; logs under $LOGS"
