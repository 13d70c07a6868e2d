#!/usr/bin/env bash
# inspector.sh: drive @modelcontextprotocol/server-everything with the
# Inspector CLI, directly and through mcpguard, over both upstream transports:
#
#   direct-stdio    Inspector launches "node dist/index.js stdio" itself
#   direct-http     Inspector -> server-everything streamableHttp (PORT=3001, /mcp)
#   mcpguard-stdio  Inspector -> mcpguard (HTTP) -> server-everything over stdio
#   mcpguard-http   Inspector -> mcpguard (HTTP) -> server-everything streamableHttp
#   mcpguard-full-stdio, mcpguard-full-http
#                   the same through mcpguard with the full pipeline: an API key
#                   (sent with --header), a policy with argument schemas,
#                   redaction and the durable audit log, which must verify
#
# Each mode runs tools/list, tools/call (echo with a fresh token, get-sum),
# resources/list, resources/read, prompts/list and prompts/get with arguments,
# and asserts on the returned content, not only the exit code. Through
# mcpguard, the tool, resource and prompt lists must also equal the direct
# ones over the same transport (prefix "" means no renaming).
#
# server-everything binds every interface, so this runs inside a private
# network namespace (it re-executes itself with unshare -n). Environment:
#   INTEROP_DIRECT_ONLY=1  run only the direct modes
#   MCPGUARD_BIN           the gateway (default: built into .cache/)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_netns "$0" "$@"
netns_up
require_peers
install_cleanup_trap

EVERYTHING_PORT=3001
GATEWAY_PORT=8080
DIRECT_ONLY=${INTEROP_DIRECT_ONLY:-}
LOGS=$(new_log_dir inspector)
# The Inspector keeps a catalog and secrets under ~/.mcp-inspector: keep them
# out of the real home directory.
export HOME=$LOGS/home
mkdir -p "$HOME"
TOKEN=interop-$$-$RANDOM-$(date +%s)

if [[ -z $DIRECT_ONLY ]]; then
	ensure_gateway
fi

failures=()

# inspector DIR NAME TARGET_ARGS_VAR -- METHOD_ARGS...: one Inspector CLI call;
# the JSON result goes to DIR/NAME.json, diagnostics to DIR/NAME.err.
inspector() {
	local dir=$1 name=$2
	local -n inspector_target=$3
	shift 4
	local rc=0
	run_waitable timeout --kill-after=5 60 "$NODE" "$INSPECTOR_JS" --cli --format json "${inspector_target[@]}" "$@" \
		>"$dir/$name.json" 2>"$dir/$name.err" </dev/null || rc=$?
	if ((rc != 0)); then
		show_log "$dir/$name.err" 30
		show_log "$dir/$name.json" 10
		log "$(basename "$dir") $name: the Inspector CLI exited with $rc"
		return 1
	fi
}

# check DIR NAME EXPR: assert EXPR over DIR/NAME.json.
check() {
	local dir=$1 name=$2 expr=$3
	if ! "$NODE" "$INTEROP_DIR/inspector-check.mjs" assert "$dir/$name.json" "$expr"; then
		log "$(basename "$dir") $name: unexpected result"
		return 1
	fi
}

# run_mode MODE TARGET_ARGS...: every call and assertion against one target.
run_mode() {
	local mode=$1
	shift
	local -a target=("$@")
	local dir=$LOGS/$mode start bad=0
	mkdir -p "$dir"
	start=$SECONDS
	log "$mode: Inspector CLI ${target[*]}"

	{ inspector "$dir" tools-list target -- --method tools/list &&
		check "$dir" tools-list 'r.result.tools.some(t => t.name === "echo") && r.result.tools.some(t => t.name === "get-sum")'; } || bad=1

	{ inspector "$dir" tools-call-echo target -- --method tools/call --tool-name echo --tool-arg "message=$TOKEN" &&
		check "$dir" tools-call-echo "r.result.content[0].type === 'text' && r.result.content[0].text === 'Echo: $TOKEN' && !r.result.isError"; } || bad=1

	{ inspector "$dir" tools-call-sum target -- --method tools/call --tool-name get-sum --tool-arg a=19 b=23 &&
		check "$dir" tools-call-sum 'r.result.content[0].text === "The sum of 19 and 23 is 42."'; } || bad=1

	{ inspector "$dir" resources-list target -- --method resources/list &&
		check "$dir" resources-list 'r.result.resources.some(x => x.uri === "demo://resource/static/document/architecture.md")'; } || bad=1

	{ inspector "$dir" resources-read target -- --method resources/read --uri demo://resource/static/document/architecture.md &&
		check "$dir" resources-read 'r.result.contents[0].uri === "demo://resource/static/document/architecture.md" && r.result.contents[0].mimeType === "text/markdown" && r.result.contents[0].text.startsWith("# Everything Server")'; } || bad=1

	{ inspector "$dir" prompts-list target -- --method prompts/list &&
		check "$dir" prompts-list 'r.result.prompts.some(p => p.name === "args-prompt" && p.arguments.some(a => a.name === "city" && a.required))'; } || bad=1

	{ inspector "$dir" prompts-get target -- --method prompts/get --prompt-name args-prompt --prompt-args city=Paris state=TX &&
		check "$dir" prompts-get 'r.result.messages[0].role === "user" && r.result.messages[0].content.text === "What'"'"'s weather in Paris, TX?"'; } || bad=1

	elapsed "$start" >"$dir/seconds"
	if ((bad)); then
		failures+=("inspector $mode: a call or assertion failed (above; outputs in $dir)")
	else
		log "$mode: all 7 calls returned what server-everything serves ($(cat "$dir/seconds")s)"
	fi
}

# CAPABILITY_GATED_TOOLS are the server-everything tools it lists only to clients that declare
# sampling or elicitation. mcpguard shares one upstream connection among its clients and declares
# both there (it relays them to each client that supports them), so these two tools appear through
# mcpguard although the Inspector CLI declares neither. docs/ARCHITECTURE.md explains the choice.
CAPABILITY_GATED_TOOLS=trigger-sampling-request,trigger-elicitation-request

# same_lists DIRECT_MODE GATEWAY_MODE: list results through mcpguard must equal direct.
same_lists() {
	local a=$LOGS/$1 b=$LOGS/$2 pair extra
	for pair in tools-list:tools resources-list:resources prompts-list:prompts; do
		[[ -s $a/${pair%%:*}.json && -s $b/${pair%%:*}.json ]] || continue
		extra=""
		[[ ${pair##*:} == tools ]] && extra=$CAPABILITY_GATED_TOOLS
		if ! "$NODE" "$INTEROP_DIR/inspector-check.mjs" same "$a/${pair%%:*}.json" "$b/${pair%%:*}.json" "${pair##*:}" $extra; then
			failures+=("inspector $2: ${pair##*:} through mcpguard differ from $1")
		fi
	done
}

# run_full MODE DIRECT_MODE CONFIG: through mcpguard with CONFIG (one
# upstream, written by the caller) plus the full pipeline and an API key: the
# same calls, with the key; lists equal to DIRECT_MODE's; a request without the
# key refused (401); a call that breaks the policy's argument schema denied;
# then the audit log must verify and hold the calls.
run_full() {
	local mode=$1 direct=$2 config=$3 dir
	dir=$(dirname "$config")
	setup_full_pipeline "$dir" interop-agent
	append_full_pipeline "$config" "$dir"
	append_api_keys "$config" "$dir" interop-agent
	check_config "$config" "$dir/config-check.log"
	if ! start_gateway "$config" "$GATEWAY_PORT" "$dir/mcpguard.log"; then
		failures+=("inspector $mode: mcpguard did not start with $config")
		return
	fi
	run_mode "$mode" "$gateway_url" --transport http --header "Authorization: Bearer $INTEROP_API_KEY"
	unauthenticated_probe "$gateway_url" || failures+=("inspector $mode: a request without the API key was not refused")
	policy_probe "$gateway_url" echo "$INTEROP_API_KEY" || failures+=("inspector $mode: the policy did not deny a call that breaks its argument schema")
	stop_bg "$GATEWAY_PID"
	same_lists "$direct" "$mode"
	# echo and get-sum were allowed, the probe denied.
	verify_audit "$dir" 2 1 || failures+=("inspector $mode: the audit log does not verify or misses calls (logs in $dir)")
}

# start_everything_http LOGFILE: server-everything streamableHttp on EVERYTHING_PORT.
start_everything_http() {
	printf '# PORT=%s %s %s streamableHttp\n' "$EVERYTHING_PORT" "$NODE" "$EVERYTHING_JS" >>"$1"
	start_bg "$1" env PORT="$EVERYTHING_PORT" "$NODE" "$EVERYTHING_JS" streamableHttp
	EVERYTHING_PID=$BG_PID
	wait_listen "$EVERYTHING_PORT" "$EVERYTHING_PID" "$1" "server-everything streamableHttp" 30 ||
		die "server-everything did not start"
}

gateway_url=http://127.0.0.1:$GATEWAY_PORT/mcp

section "Inspector CLI, server-everything over stdio"
run_mode direct-stdio "$NODE" "$EVERYTHING_JS" stdio
if [[ -z $DIRECT_ONLY ]]; then
	mkdir -p "$LOGS/mcpguard-stdio"
	config=$LOGS/mcpguard-stdio/mcpguard.yaml
	write_gateway_config_stdio "$config" "127.0.0.1:$GATEWAY_PORT" everything "$NODE" "$EVERYTHING_JS" stdio
	if start_gateway "$config" "$GATEWAY_PORT" "$LOGS/mcpguard-stdio/mcpguard.log"; then
		run_mode mcpguard-stdio "$gateway_url" --transport http
		stop_bg "$GATEWAY_PID"
		same_lists direct-stdio mcpguard-stdio
	else
		failures+=("inspector mcpguard-stdio: mcpguard did not start with $config")
	fi
	mkdir -p "$LOGS/mcpguard-full-stdio"
	config=$LOGS/mcpguard-full-stdio/mcpguard.yaml
	write_gateway_config_stdio "$config" "127.0.0.1:$GATEWAY_PORT" everything "$NODE" "$EVERYTHING_JS" stdio
	run_full mcpguard-full-stdio direct-stdio "$config"
fi

section "Inspector CLI, server-everything over Streamable HTTP"
mkdir -p "$LOGS/direct-http"
start_everything_http "$LOGS/direct-http/server-everything.log"
run_mode direct-http "http://127.0.0.1:$EVERYTHING_PORT/mcp" --transport http
if [[ -z $DIRECT_ONLY ]]; then
	mkdir -p "$LOGS/mcpguard-http"
	config=$LOGS/mcpguard-http/mcpguard.yaml
	write_gateway_config_http "$config" "127.0.0.1:$GATEWAY_PORT" everything "http://127.0.0.1:$EVERYTHING_PORT/mcp"
	if start_gateway "$config" "$GATEWAY_PORT" "$LOGS/mcpguard-http/mcpguard.log"; then
		run_mode mcpguard-http "$gateway_url" --transport http
		stop_bg "$GATEWAY_PID"
		same_lists direct-http mcpguard-http
	else
		failures+=("inspector mcpguard-http: mcpguard did not start with $config")
	fi
	mkdir -p "$LOGS/mcpguard-full-http"
	config=$LOGS/mcpguard-full-http/mcpguard.yaml
	write_gateway_config_http "$config" "127.0.0.1:$GATEWAY_PORT" everything "http://127.0.0.1:$EVERYTHING_PORT/mcp"
	run_full mcpguard-full-http direct-http "$config"
fi
stop_bg "$EVERYTHING_PID"

if ((${#failures[@]})); then
	printf '\n' >&2
	for f in "${failures[@]}"; do
		log "FAILED: $f"
	done
	for mode in mcpguard-stdio mcpguard-http mcpguard-full-stdio mcpguard-full-http; do
		[[ -f $LOGS/$mode/mcpguard.log ]] && show_log "$LOGS/$mode/mcpguard.log" 40
	done
	die "Inspector stage failed; logs under $LOGS"
fi
log "Inspector stage passed; logs under $LOGS"
