#!/usr/bin/env bash
# conformance-client.sh: run the conformance suite's CLIENT scenarios with the
# go-sdk everything-client as the client under test, directly (the baseline)
# and through mcpguard (client-driver.sh puts the gateway between the client
# and each scenario's server), bare and with the full pipeline, for each
# requirement set, and fail if any scenario's verdict or check through the
# gateway differs from direct.
#
# Per requirement set:
#   1. the whole set, direct (--requirements): the documented baseline, which
#      must match expected/client-<set>.txt;
#   2. every scenario not excluded, one at a time (--scenario, --spec-version),
#      direct: must agree with 1;
#   3. the same scenarios one at a time through mcpguard, twice: with nothing
#      but the upstream ("gateway"), and with the full pipeline ("pipeline":
#      policy with argument schemas, redaction, the audit log; lib.sh). Each
#      must agree with 2, verdict, every check's status and client exit code
#      alike (except the differences listed in
#      expected/client-<set>-differences.txt, if any); every pipeline run's
#      audit log must verify and hold the allowed tools/call its client makes
#      (PIPELINE_CALLS).
# Excluded from 2 and 3: the auth/* scenarios that test the client's own OAuth
# flow with the upstream's authorization server, which a gateway that never
# forwards a client's token upstream deliberately breaks (docs/conformance.md
# lists each with its reason). Two auth/* scenarios are compared all the same
# (GATEWAY_CLIENT_SCENARIOS): they check only that the scenario server's
# client refuses poisoned metadata before asking for a token, and the driver
# makes the gateway, holding a credential for the upstream, that client.
#   4. the scenarios in which the gateway holds the upstream's credential
#      (CREDENTIAL_SCENARIOS: auth/client-credentials-basic and -jwt) through
#      mcpguard, bare and with the full pipeline: everything-client lacks the
#      grant, so they FAIL direct (step 1's expected file says so), and must
#      PASS through the gateway, which runs the grant itself
#      (expected/client-<set>-gateway-credentials.txt).
#
# Runs inside a private network namespace (it re-executes itself with
# unshare -n). Environment:
#   INTEROP_DIRECT_ONLY=1      skip steps 3 and 4
#   INTEROP_UPDATE_EXPECTED=1  rewrite expected/client-*.txt (verdicts and -checks.txt) from steps 1 and 4
#   MCPGUARD_BIN               the gateway (default: built into .cache/)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_netns "$0" "$@"
netns_up
require_peers

DIRECT_ONLY=${INTEROP_DIRECT_ONLY:-}
LOGS=$(new_log_dir conformance-client)
DRIVER=$INTEROP_DIR/client-driver.sh
# The suite's per-scenario client timeout (its default). On a timeout the suite
# signals only the shell it started the command with, so the driver keeps to a
# deadline of its own, a few seconds shorter, and stops itself.
CLIENT_TIMEOUT_SECONDS=30
export INTEROP_DRIVER_BUDGET=$((CLIENT_TIMEOUT_SECONDS - 4))

# The suite splits --command on spaces before handing it to a shell.
case $DRIVER$GO_EVERYTHING_CLIENT in
*[[:space:]]*) die "the conformance suite splits --command on whitespace; use a checkout path without spaces ($REPO_ROOT)" ;;
esac

if [[ -z $DIRECT_ONLY ]]; then
	ensure_gateway
fi

# Gateways started by drivers that the suite killed on a timeout.
export INTEROP_DRIVER_PIDS=$LOGS/driver-gateways.pids
: >"$INTEROP_DRIVER_PIDS"
stage_cleanup() {
	local pid
	while read -r pid; do
		[[ -n $pid ]] && stop_bg "$pid"
	done <"$INTEROP_DRIVER_PIDS"
	cleanup_children
}
trap stage_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# auth/* scenarios that apply through the gateway: the gateway is the scenario
# server's OAuth client (client-driver.sh) and must refuse its poisoned
# metadata as a client does directly.
GATEWAY_CLIENT_SCENARIOS=(auth/resource-mismatch auth/metadata-issuer-mismatch)

# excluded SCENARIO: true for scenarios that cannot apply through the gateway.
excluded() {
	[[ $1 == auth/* && " ${GATEWAY_CLIENT_SCENARIOS[*]} " != *" $1 "* ]]
}

# Scenarios whose upstream credential the gateway holds (client-driver.sh
# configures client_credentials for them); run through mcpguard in step 4.
CREDENTIAL_SCENARIOS=(auth/client-credentials-basic auth/client-credentials-jwt)

# run_one REVISION MODE SCENARIO COMMAND: one scenario at the revision's wire
# version; appends "<scenario> <suite exit code>" to MODE/exit-codes.
run_one() {
	local rev=$1 mode=$2 scenario=$3 command=$4
	local dir=$LOGS/$rev/$mode rc=0
	local out=$dir/scenario-logs/${scenario//\//_}.log force=()
	mkdir -p "$dir/scenario-logs"
	# Extension scenarios are off the spec timeline: --spec-version alone skips them.
	if [[ " ${CREDENTIAL_SCENARIOS[*]} " == *" $scenario "* ]]; then
		force=(--force)
	fi
	run_waitable timeout --kill-after=10 120 \
		"$NODE" "$CONFORMANCE_JS" client --command "$command" --scenario "$scenario" "${force[@]}" \
		--spec-version "$rev" --timeout $((CLIENT_TIMEOUT_SECONDS * 1000)) \
		-o "$dir/results" >"$out" 2>&1 || rc=$?
	if grep -q '^SKIPPED:' "$out"; then
		fail_with_log "$out" "$rev: the suite skipped $scenario at --spec-version $rev; this script's assumption that a requirement set's scenarios apply at its own version is wrong"
	fi
	printf '%s %s\n' "$scenario" "$rc" >>"$dir/exit-codes"
	if ((rc == 124 || rc == 137)); then
		log "$rev $mode: $scenario: the suite itself did not finish within 120s (log $out); the scenario counts as MISSING"
	elif ((rc == 0)); then
		log "$rev $mode: $scenario passed"
	else
		log "$rev $mode: $scenario failed (suite exit code $rc; log $out)"
	fi
}

# run_each REVISION MODE COMMAND [LIST]: run_one for every scenario of LIST
# (default: the compared ones), then derive MODE/verdicts.json.
run_each() {
	local rev=$1 mode=$2 command=$3 list=${4:-$LOGS/$1.compared} scenario start
	local dir=$LOGS/$rev/$mode
	mkdir -p "$dir"
	: >"$dir/exit-codes"
	start=$SECONDS
	while read -r scenario; do
		run_one "$rev" "$mode" "$scenario" "$command"
	done <"$list"
	elapsed "$start" >"$dir/seconds"
	if ! results_tool verdicts "$dir/results" client >"$dir/verdicts.json"; then
		die "$rev $mode: cannot read the suite's results in $dir/results"
	fi
}

# compare_exit_codes REVISION A B: the suite's exit code per scenario (which
# also reflects the client process failing or timing out) must agree.
compare_exit_codes() {
	local rev=$1 a=$2 b=$3 diff
	diff=$(join <(sort "$LOGS/$rev/$a/exit-codes") <(sort "$LOGS/$rev/$b/exit-codes") | awk '$2 != $3 {printf "  %s: %s exit %s, %s exit %s\n", $1, A, $2, B, $3}' A="$a" B="$b")
	if [[ -n $diff ]]; then
		printf 'suite exit codes differ between %s and %s:\n%s\n' "$a" "$b" "$diff"
		return 1
	fi
}

# The tools/call each scenario's client makes through the gateway, as observed
# with the pinned peers (scenario servers do not log the requests they receive
# in checks.json): the least number of allowed tools/call records its full
# pipeline's audit log must hold, so that a log the calls never reached cannot
# pass. Scenarios not named make none (request-metadata, initialize and
# json-schema-ref-no-deref only discover or list; the two poisoned-metadata
# auth/* scenarios never reach their server).
declare -A PIPELINE_CALLS=(
	[tools_call]=1
	[sep-2322-client-request-state]=6
	[http-standard-headers]=1
	[http-custom-headers]=2
	[http-invalid-tool-headers]=1
	[json-schema-2020-12-preservation]=1
	[elicitation-sep1034-client-defaults]=2
	[sse-retry]=1
	[auth/client-credentials-basic]=1
	[auth/client-credentials-jwt]=1
)

# verify_pipeline_audits REVISION MODE LIST: every scenario of LIST run in MODE
# with the full pipeline left an audit log that mcpguard audit verify accepts,
# holding at least PIPELINE_CALLS[scenario] allowed tools/call records.
verify_pipeline_audits() {
	local rev=$1 mode=$2 list=$3 scenario dir rc=0
	while read -r scenario; do
		dir=$LOGS/$rev/$mode/mcpguard-logs/${scenario//\//_}.pipeline
		if [[ ! -f $dir/audit.db ]] || ! verify_audit "$dir" "${PIPELINE_CALLS[$scenario]:-0}"; then
			log "ERROR: $rev $mode: $scenario: the full pipeline's audit log in $dir does not verify or misses calls"
			rc=1
		fi
	done <"$list"
	return "$rc"
}

failures=()
for rev in "${REQUIREMENT_SETS[@]}"; do
	section "conformance client suite, requirements $rev"
	conformance_list "$rev" client >"$LOGS/$rev.scenarios"
	: >"$LOGS/$rev.compared"
	: >"$LOGS/$rev.excluded"
	while IFS=$'\t' read -r scenario _; do
		if excluded "$scenario"; then
			printf '%s\n' "$scenario" >>"$LOGS/$rev.excluded"
		else
			printf '%s\n' "$scenario" >>"$LOGS/$rev.compared"
		fi
	done <"$LOGS/$rev.scenarios"
	log "$rev: $(wc -l <"$LOGS/$rev.scenarios") client scenarios; $(wc -l <"$LOGS/$rev.compared") compared through mcpguard, $(wc -l <"$LOGS/$rev.excluded") excluded (auth/* that test the client's own OAuth flow)"

	# 1. The whole requirement set, direct.
	dir=$LOGS/$rev/requirements
	mkdir -p "$dir"
	log "$rev requirements: conformance client --command everything-client --requirements $rev"
	start=$SECONDS
	rc=0
	run_waitable timeout --kill-after=10 600 \
		"$NODE" "$CONFORMANCE_JS" client --command "$GO_EVERYTHING_CLIENT" --requirements "$rev" \
		--timeout $((CLIENT_TIMEOUT_SECONDS * 1000)) -o "$dir/results" >"$dir/conformance.log" 2>&1 || rc=$?
	elapsed "$start" >"$dir/seconds"
	log "$rev requirements: finished in $(cat "$dir/seconds")s (suite exit code $rc)"
	if ! results_tool verdicts "$dir/results" client "$dir/conformance.log" >"$dir/verdicts.json"; then
		fail_with_log "$dir/conformance.log" "$rev: cannot read the suite's results in $dir/results"
	fi
	expected=$INTEROP_DIR/expected/client-$rev.txt
	if [[ -n ${INTEROP_UPDATE_EXPECTED:-} ]]; then
		write_expected "$dir/verdicts.json" "$expected" \
			"conformance client --requirements $rev with the go-sdk everything-client, direct"
		log "$rev: wrote $expected"
	elif ! expect_baseline "$dir/verdicts.json" "$expected"; then
		show_log "$dir/conformance.log" 80
		failures+=("client $rev: the direct baseline of everything-client changed (see above); the peers, not the gateway, behave differently")
	fi
	printf '\nDirect baseline, client requirements %s (%ss):\n' "$rev" "$(cat "$dir/seconds")"
	results_tool table "$dir/verdicts.json" "$LOGS/$rev.scenarios"

	# 2. The compared scenarios one at a time, direct.
	run_each "$rev" direct "$GO_EVERYTHING_CLIENT"
	printf '\nClient requirements %s: whole set vs one scenario at a time, both direct (%ss):\n' "$rev" "$(cat "$LOGS/$rev/direct/seconds")"
	if ! results_tool compare requirements "$dir/verdicts.json" one-at-a-time "$LOGS/$rev/direct/verdicts.json" "$LOGS/$rev.compared"; then
		failures+=("client $rev: running scenarios one at a time changes their direct verdicts or checks; the comparison below would be meaningless")
		continue
	fi

	if [[ -n $DIRECT_ONLY ]]; then
		log "$rev: INTEROP_DIRECT_ONLY is set; skipping the runs through mcpguard"
		continue
	fi

	# 3. The same, through the gateway: bare, then with the full pipeline.
	for mode in gateway pipeline; do
		export INTEROP_DRIVER_LOG_DIR=$LOGS/$rev/$mode/mcpguard-logs
		export INTEROP_DRIVER_PIPELINE=
		label=mcpguard
		if [[ $mode == pipeline ]]; then
			INTEROP_DRIVER_PIPELINE=1
			label=mcpguard-full
		fi
		mkdir -p "$INTEROP_DRIVER_LOG_DIR"
		run_each "$rev" "$mode" "$DRIVER"
		printf '\nClient requirements %s: direct vs through %s (%ss vs %ss):\n' "$rev" "$label" \
			"$(cat "$LOGS/$rev/direct/seconds")" "$(cat "$LOGS/$rev/$mode/seconds")"
		ok=1
		results_tool compare direct "$LOGS/$rev/direct/verdicts.json" "$label" "$LOGS/$rev/$mode/verdicts.json" "$LOGS/$rev.compared" "$(differences_file "client-$rev")" || ok=
		compare_exit_codes "$rev" direct "$mode" || ok=
		if [[ -z $ok ]]; then
			failures+=("client $rev: results through $label differ from direct (above; per-scenario logs in $LOGS/$rev/$mode)")
		fi
		if [[ $mode == pipeline ]] && ! verify_pipeline_audits "$rev" pipeline "$LOGS/$rev.compared"; then
			failures+=("client $rev: an audit log of the full pipeline does not verify or misses calls (logs in $LOGS/$rev/pipeline)")
		fi
	done

	# 4. The gateway holds the upstream's credential: FAIL direct (step 1), PASS
	# through mcpguard, bare and with the full pipeline.
	cut -f1 "$LOGS/$rev.scenarios" | grep -Fx -f <(printf '%s\n' "${CREDENTIAL_SCENARIOS[@]}") >"$LOGS/$rev.credentials" || true
	[[ -s $LOGS/$rev.credentials ]] || continue
	expected=$INTEROP_DIR/expected/client-$rev-gateway-credentials.txt
	for mode in credentials credentials-pipeline; do
		export INTEROP_DRIVER_LOG_DIR=$LOGS/$rev/$mode/mcpguard-logs
		export INTEROP_DRIVER_PIPELINE=
		label="through mcpguard"
		if [[ $mode == credentials-pipeline ]]; then
			INTEROP_DRIVER_PIPELINE=1
			label="through mcpguard with the full pipeline"
		fi
		mkdir -p "$INTEROP_DRIVER_LOG_DIR"
		run_each "$rev" "$mode" "$DRIVER" "$LOGS/$rev.credentials"
		printf '\nClient requirements %s: the gateway holding the upstream credential (client_credentials), %s (%ss):\n' "$rev" "$label" "$(cat "$LOGS/$rev/$mode/seconds")"
		results_tool table "$LOGS/$rev/$mode/verdicts.json" "$LOGS/$rev.credentials"
		ok=1
		if [[ -n ${INTEROP_UPDATE_EXPECTED:-} && $mode == credentials ]]; then
			results_tool baseline "$LOGS/$rev/$mode/verdicts.json" "$expected" "$(checks_file "$expected")" \
				"the client scenarios in which the gateway holds the upstream's credential, through mcpguard (client_credentials configured by client-driver.sh; direct, everything-client FAILs them: client-$rev.txt)"
			log "$rev: wrote $expected"
		fi
		expect_baseline "$LOGS/$rev/$mode/verdicts.json" "$expected" || ok=
		if awk '$2 != 0 { bad = 1 } END { exit !bad }' "$LOGS/$rev/$mode/exit-codes"; then
			printf 'suite exit codes %s that are not 0:\n' "$label" >&2
			cat "$LOGS/$rev/$mode/exit-codes" >&2
			ok=
		fi
		if [[ $mode == credentials-pipeline ]] && ! verify_pipeline_audits "$rev" "$mode" "$LOGS/$rev.credentials"; then
			ok=
		fi
		if [[ -z $ok ]]; then
			failures+=("client $rev: a scenario in which the gateway holds the upstream credential did not pass $label (logs in $LOGS/$rev/$mode)")
		fi
	done
done

if ((${#failures[@]})); then
	printf '\n' >&2
	for f in "${failures[@]}"; do
		log "FAILED: $f"
	done
	die "conformance client stage failed; logs under $LOGS"
fi
log "conformance client stage passed; logs under $LOGS"
