#!/usr/bin/env bash
# idp.sh: mcpguard as an OAuth 2.1 resource server in front of a real identity
# provider. The IdP is the pinned oauth2-mock-server (real RSA keys, OpenID
# discovery, JWKS, token endpoint), configured by idp/idp.mjs; the client is
# idp/main.go, built on the official go-sdk and golang.org/x/oauth2. The
# upstream is mcpguard's own demo server ("finance") over stdio, behind a
# recorder that keeps every message it receives.
#
#   1. without a token: 401 with WWW-Authenticate resource_metadata; the
#      metadata names the IdP; the IdP's metadata is found from there;
#   2. client credentials at the discovered token endpoint, with RFC 8707
#      resource = the gateway's URI, so that aud = the gateway;
#   3. finance.get_stock_analysis {symbol: VNM} through mcpguard with the
#      go-sdk client, protocol 2025-11-25 and 2026-07-28;
#   4. the same tools/call replayed with a token for another audience and with
#      an expired token (both signed by the IdP): 401, the gateway logs
#      wrong_audience and expired, and the demo server never receives them.
#      Everything sent with a refused token comes from 127.0.0.2 (first era) or
#      127.0.0.3 (second), so brute-force detection (on, as by default: 5
#      failures from one address block it) counts those few failures there,
#      never reaches its threshold, and never blocks 127.0.0.1;
#   5. an operator created with `mcpguard operators create` (no TOTP enrolled)
#      logs in to the admin API through the IdP: GET /v1/login/oidc → the
#      IdP's /authorize (PKCE S256, state, nonce) → the callback, which
#      exchanges the code and answers a session token; GET /v1/approvals with
#      it → 200; the replayed callback → 400; the callback without the
#      login's browser cookie → 400.
#
# The stage runs twice, with two gateway configurations: "auth" (the above
# alone) and "full" (the full pipeline: the same, plus a policy with argument
# schemas bound to the client's principal, redaction and the durable audit
# log, which must verify afterwards and hold the calls, made by the
# IdP-authenticated principal). Logs: idp/auth/ and idp/full/.
#
# Runs inside a private network namespace (it re-executes itself with
# unshare -n). MCPGUARD_BIN: the gateway (default: built into .cache/).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
enter_netns "$0" "$@"
netns_up
require_peers
install_cleanup_trap

if [[ -n ${INTEROP_DIRECT_ONLY:-} ]]; then
	log "INTEROP_DIRECT_ONLY is set: the idp stage has no direct baseline (it tests the gateway itself); skipped"
	exit 0
fi

IDP_JS=$INTEROP_DIR/idp/idp.mjs
MOCK_JS=$NPM_MODULES/oauth2-mock-server/dist/index.mjs
[[ -f $MOCK_JS ]] || die "oauth2-mock-server is not installed ($MOCK_JS): rerun scripts/interop/install-peers.sh"
ensure_gateway

stage_start=$SECONDS
if [[ -z ${IDP_PIPELINE:-} ]]; then
	# The client, built once, offline, from the repository's own module graph.
	LOGS=$(new_log_dir idp)
	section "idp: building the client (scripts/interop/idp)"
	if ! (cd "$REPO_ROOT" && GOPROXY=off GOFLAGS=-mod=readonly go build -o "$LOGS/idp-client" ./scripts/interop/idp) >"$LOGS/build.log" 2>&1; then
		fail_with_log "$LOGS/build.log" "go build ./scripts/interop/idp failed"
	fi
	rc=0
	for mode in auth full; do
		section "idp stage, gateway configuration: $mode"
		IDP_PIPELINE=$mode IDP_CLIENT_BIN=$LOGS/idp-client run_waitable bash "$0" "$@" || rc=1
	done
	exit "$rc"
fi
case $IDP_PIPELINE in
auth | full) ;;
*) die "IDP_PIPELINE must be auth or full, not $IDP_PIPELINE" ;;
esac
LOGS=$(new_log_dir "idp/$IDP_PIPELINE")

# on_failure MESSAGE: show every log that may explain it, then fail.
on_failure() {
	show_log "$LOGS/client.log" 40
	show_log "$LOGS/mcpguard.log" 40
	show_log "$LOGS/idp.log" 20
	show_log "$LOGS/upstream.jsonl" 10
	die "idp stage: $* (logs under $LOGS)"
}

IDP_PORT=$(free_port)
GATEWAY_PORT=$(free_port)
while [[ $GATEWAY_PORT == "$IDP_PORT" ]]; do GATEWAY_PORT=$(free_port); done
ADMIN_PORT=$(free_port)
while [[ $ADMIN_PORT == "$IDP_PORT" || $ADMIN_PORT == "$GATEWAY_PORT" ]]; do ADMIN_PORT=$(free_port); done
ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
ISSUER=http://127.0.0.1:$IDP_PORT
RESOURCE=http://127.0.0.1:$GATEWAY_PORT/mcp
# Another API registered at the same IdP: its tokens must not work at the gateway.
OTHER_RESOURCE=http://127.0.0.1:$GATEWAY_PORT/other-api
secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
CLIENT_ID=mcp-agent
CLIENT_SECRET=$(secret)
EXPIRED_CLIENT_ID=mcp-agent-expired
EXPIRED_CLIENT_SECRET=$(secret)
# The admin API's client at the IdP, for operators logging in with OpenID
# Connect; the IdP's user is the operator account OPERATOR.
OIDC_CLIENT_ID=mcpguard-admin
OIDC_CLIENT_SECRET=$(secret)
OIDC_REDIRECT=$ADMIN_URL/v1/login/oidc/callback
OPERATOR=ops.alice
OPERATOR_PASSWORD=$(secret)

section "idp: oauth2-mock-server on $ISSUER"
start_bg "$LOGS/idp.log" env \
	IDP_PORT="$IDP_PORT" \
	IDP_RESOURCES="$RESOURCE $OTHER_RESOURCE" \
	IDP_CLIENTS="[{\"id\":\"$CLIENT_ID\",\"secret\":\"$CLIENT_SECRET\"},{\"id\":\"$EXPIRED_CLIENT_ID\",\"secret\":\"$EXPIRED_CLIENT_SECRET\",\"expired\":true}]" \
	IDP_OIDC_CLIENT="{\"id\":\"$OIDC_CLIENT_ID\",\"secret\":\"$OIDC_CLIENT_SECRET\",\"redirect_uri\":\"$OIDC_REDIRECT\",\"username\":\"$OPERATOR\",\"amr\":[\"pwd\",\"mfa\"]}" \
	INTEROP_NPM_MODULES="$NPM_MODULES" \
	"$NODE" "$IDP_JS"
IDP_PID=$BG_PID
wait_listen "$IDP_PORT" "$IDP_PID" "$LOGS/idp.log" "oauth2-mock-server" 30 || on_failure "the IdP did not start"
grep -qxF "idp: issuer $ISSUER" "$LOGS/idp.log" || on_failure "the IdP does not name itself $ISSUER"

section "idp: mcpguard on $RESOURCE (auth: issuer $ISSUER, keys by discovery)"
# The demo server, behind a recorder: every message mcpguard sends it is
# appended to upstream.jsonl before it reaches the demo server.
: >"$LOGS/upstream.jsonl"
config=$LOGS/mcpguard.yaml
(umask 077 && printf '%s' "$OIDC_CLIENT_SECRET" >"$LOGS/oidc-client-secret")
cat >"$config" <<EOF
# generated by scripts/interop/idp.sh for one interop run
listen: $(yaml_str "127.0.0.1:$GATEWAY_PORT")
path: /mcp
auth:
  resource: $(yaml_str "$RESOURCE")
  issuer: $(yaml_str "$ISSUER")
api_keys_database: $(yaml_str "$LOGS/identities.db")
admin:
  listen: $(yaml_str "127.0.0.1:$ADMIN_PORT")
  oidc:
    issuer: $(yaml_str "$ISSUER")
    client_id: $(yaml_str "$OIDC_CLIENT_ID")
    client_secret: $(yaml_str "file:$LOGS/oidc-client-secret")
    redirect_url: $(yaml_str "$OIDC_REDIRECT")
    required_amr: [mfa]
upstreams:
  - name: finance
    stdio:
      command: /bin/sh
      args: ["-c", 'tee -a "\$0" | exec "\$1" demo-server', $(yaml_str "$LOGS/upstream.jsonl"), $(yaml_str "$MCPGUARD_BIN")]
      env: {}
EOF
if [[ $IDP_PIPELINE == full ]]; then
	# The token's sub is the client id: the policy binds it.
	setup_full_pipeline "$LOGS" "$CLIENT_ID"
	append_full_pipeline "$config" "$LOGS"
	check_config "$config" "$LOGS/config-check.log"
fi
# The operator: a password (which this login never uses) and no TOTP enrolled.
printf '%s\n' "$OPERATOR_PASSWORD" |
	"$MCPGUARD_BIN" operators create --config "$config" "$OPERATOR" --roles Desk --password-stdin >"$LOGS/operators.log" 2>&1 ||
	fail_with_log "$LOGS/operators.log" "mcpguard operators create $OPERATOR failed"
start_gateway "$config" "$GATEWAY_PORT" "$LOGS/mcpguard.log" || on_failure "mcpguard did not start"
wait_listen "$ADMIN_PORT" "$GATEWAY_PID" "$LOGS/mcpguard.log" "the admin API" 10 || on_failure "the admin API did not start"

section "idp: go-sdk client"
client_start=$SECONDS
rc=0
IDP_CLIENT_SECRET=$CLIENT_SECRET IDP_EXPIRED_CLIENT_SECRET=$EXPIRED_CLIENT_SECRET \
	run_waitable timeout --kill-after=5 50 "$IDP_CLIENT_BIN" \
	-mcp "$RESOURCE" -issuer "$ISSUER" \
	-client "$CLIENT_ID" -expired-client "$EXPIRED_CLIENT_ID" \
	-other-resource "$OTHER_RESOURCE" \
	-tool finance.get_stock_analysis -symbol VNM \
	-eras 2025-11-25,2026-07-28 \
	-admin "$ADMIN_URL" -operator "$OPERATOR" -operator-client "$OIDC_CLIENT_ID" \
	>"$LOGS/client.log" 2>&1 || rc=$?
client_seconds=$(elapsed "$client_start")
sed 's/^/  /' "$LOGS/client.log" >&2
((rc == 0)) || on_failure "the client exited with $rc"
grep -qx 'ok: all checks passed' "$LOGS/client.log" || on_failure "the client did not report every check passed"

# What reached the demo server, what the gateway logged, what the IdP issued.
stop_bg "$GATEWAY_PID"
count() { grep -c -- "$1" "$2" || true; }
problems=()
# One tools/call per era from the go-sdk client, one control replay per era.
n=$(count '"symbol":"VNM"' "$LOGS/upstream.jsonl")
((n == 2)) || problems+=("the demo server received $n tools/call for VNM, want 2 (one per era)")
n=$(count '"symbol":"CONTROL"' "$LOGS/upstream.jsonl")
((n == 2)) || problems+=("the demo server received $n control replays, want 2 (one per era)")
for marker in WRONGAUD EXPIRED; do
	n=$(count "$marker" "$LOGS/upstream.jsonl")
	((n == 0)) || problems+=("the demo server received $n message(s) sent with the $marker token")
done
n=$(count 'eyJ' "$LOGS/upstream.jsonl")
((n == 0)) || problems+=("a JWT reached the demo server ($n line(s) of upstream.jsonl)")
n=$(count 'eyJ' "$LOGS/mcpguard.log")
((n == 0)) || problems+=("the gateway log holds a JWT ($n line(s))")
# Each refused token: one replay and one go-sdk connect per era.
n=$(grep 'authentication refused' "$LOGS/mcpguard.log" | grep -c 'reason=wrong_audience' || true)
((n >= 4)) || problems+=("the gateway logged $n wrong_audience refusals, want at least 4")
n=$(grep 'authentication refused' "$LOGS/mcpguard.log" | grep -c 'reason=expired' || true)
((n >= 4)) || problems+=("the gateway logged $n expired refusals, want at least 4")
# The refused tokens came from 127.0.0.2 and 127.0.0.3 (one address per era), so
# brute-force detection, on by default, counted them there and never reached its
# threshold of 5 for one address: nothing was blocked (containment: docs/containment.md).
n=$(grep 'authentication refused' "$LOGS/mcpguard.log" | grep -E 'reason=(wrong_audience|expired)' | grep -cvE 'remote=127\.0\.0\.[23]:' || true)
((n == 0)) || problems+=("$n refused token(s) came from an address other than 127.0.0.2 and 127.0.0.3")
grep -qF "idp: issued an access token to $CLIENT_ID: aud=$RESOURCE " "$LOGS/idp.log" ||
	problems+=("the IdP log shows no token issued to $CLIENT_ID for $RESOURCE")
# The operator login: one code and one ID token at the IdP, one session at the
# gateway, the replay refused; no secret of it in the gateway's log.
n=$(count "idp: issued an ID token to $OIDC_CLIENT_ID: preferred_username=$OPERATOR amr=pwd,mfa" "$LOGS/idp.log")
((n == 1)) || problems+=("the IdP issued $n ID tokens to $OIDC_CLIENT_ID, want 1")
n=$(grep 'operator logged in with OIDC' "$LOGS/mcpguard.log" | grep -c "operator=$OPERATOR" || true)
((n == 1)) || problems+=("the gateway logged $n OIDC logins of $OPERATOR, want 1")
n=$(grep 'operator OIDC login refused' "$LOGS/mcpguard.log" | grep -c 'reason=login_state' || true)
((n == 1)) || problems+=("the gateway logged $n refused replays (reason=login_state), want 1")
for needle in "$OIDC_CLIENT_SECRET" "$OPERATOR_PASSWORD" mcps_; do
	n=$(count "$needle" "$LOGS/mcpguard.log")
	((n == 0)) || problems+=("the gateway log holds a secret of the operator login (${needle:0:5}…, $n line(s))")
done
if [[ $IDP_PIPELINE == full ]]; then
	# The two VNM calls and two CONTROL replays were allowed, each recorded with
	# the principal the IdP's token named.
	if verify_audit "$LOGS" 4; then
		n=$(grep '"kind":"call"' "$LOGS/records.jsonl" | grep '"method":"tools/call"' | grep "\"principal\":\"$CLIENT_ID\"" | grep -c '"auth_method":"jwt"' || true)
		((n >= 4)) || problems+=("the audit log holds $n tools/call records of $CLIENT_ID authenticated by jwt, want at least 4")
		n=$(count '"kind":"auth_failure"' "$LOGS/records.jsonl")
		((n >= 8)) || problems+=("the audit log holds $n auth_failure records, want at least 8 (the refused tokens)")
		n=$(count 'eyJ' "$LOGS/records.jsonl")
		((n == 0)) || problems+=("the audit log holds a JWT ($n record(s))")
		n=$(count '"kind":"block"' "$LOGS/records.jsonl")
		((n == 0)) || problems+=("the audit log holds $n block record(s): brute-force detection blocked an address")
	else
		problems+=("the audit log does not verify or misses the calls")
	fi
fi
if ((${#problems[@]})); then
	for p in "${problems[@]}"; do
		log "FAILED: $p"
	done
	on_failure "${#problems[@]} check(s) on the logs failed"
fi
stop_bg "$IDP_PID"

log "demo server received: $(count '"method":"tools/call"' "$LOGS/upstream.jsonl") tools/call (2 VNM, 2 CONTROL), none with a refused token"
log "idp stage passed in $(elapsed "$stage_start")s (client ${client_seconds}s); logs under $LOGS"
