#!/usr/bin/env bash
# client-driver.sh: the command the conformance suite's CLIENT mode runs, with
# mcpguard spliced in between the client under test and the scenario server.
#
#   conformance client --command scripts/interop/client-driver.sh ...
#
# The suite appends the scenario server's URL as the only argument and sets
# MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_CONTEXT (JSON, optional) and
# MCP_CONFORMANCE_PROTOCOL_VERSION. This driver starts mcpguard with that URL
# as its only Streamable HTTP upstream (prefix ""), waits for it to listen on
# a free loopback port, runs the go-sdk everything-client against mcpguard's
# URL with those variables passed through unchanged, then stops the gateway
# and exits with the client's exit code.
#
# Scenarios in which the gateway, not the client, holds the upstream's
# credential (auth/client-credentials-basic, auth/client-credentials-jwt): the
# driver configures the upstream with client_credentials from
# MCP_CONFORMANCE_CONTEXT (for the JWT scenario, the private key goes to a 0600
# file in the driver's temporary directory, removed on exit), keeps that
# context from the client, and runs the client as a plain MCP client (its
# generic auth flow, which lists tools and calls test-tool; the gateway never
# asks it for a token, so its own OAuth never starts). What the scenario then
# checks is the gateway's client credentials grant.
#
# Scenarios in which the scenario server's metadata is poisoned and a client
# must stop before asking for a token (auth/resource-mismatch,
# auth/metadata-issuer-mismatch): the gateway holds a credential for the
# upstream as above (a client id and a secret it never gets to send), so it is
# the OAuth client whose refusal the scenario checks, as it checks the client's
# directly.
#
# Set by conformance-client.sh: MCPGUARD_BIN, INTEROP_DRIVER_LOG_DIR (gateway
# logs, one per scenario), INTEROP_DRIVER_PIPELINE (set: the full pipeline, its
# audit log in INTEROP_DRIVER_LOG_DIR/<scenario>.pipeline/), INTEROP_DRIVER_PIDS
# (a file the stage reads to stop any gateway a killed driver left behind) and
# INTEROP_DRIVER_BUDGET (seconds this driver may take in all, default 26). The
# budget matters: when the suite's client timeout fires it signals only the
# shell it ran this command with, and would then wait for this driver to close
# its output; so the driver stops the client itself, just before the suite
# would have.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if (($# != 1)); then
	die "client-driver.sh: want exactly one argument (the scenario server URL), got $#: $*"
fi
upstream_url=$1
scenario=${MCP_CONFORMANCE_SCENARIO:?client-driver.sh: MCP_CONFORMANCE_SCENARIO is not set (run me through conformance client --command)}
[[ -n ${MCPGUARD_BIN:-} ]] || die "client-driver.sh: MCPGUARD_BIN is not set"
log_dir=${INTEROP_DRIVER_LOG_DIR:?client-driver.sh: INTEROP_DRIVER_LOG_DIR is not set}
require_peers

work=$(mktemp -d "${TMPDIR:-/tmp}/mcpguard-driver.XXXXXX")
client_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
driver_cleanup() {
	if [[ -n $client_pid ]]; then
		kill -TERM "$client_pid" 2>/dev/null || true
	fi
	cleanup_children
	rm -rf "$work"
}
trap driver_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

gateway_log=$log_dir/${scenario//\//_}.mcpguard.log
port=$(free_port)
config=$work/mcpguard.yaml
write_gateway_config_http "$config" "127.0.0.1:$port" scenario "$upstream_url"
client_scenario=$scenario
case $scenario in
auth/client-credentials-basic)
	# The http: section is the last of the generated file; its keys are indented six spaces.
	client_id=$("$NODE" -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); if (typeof c.client_id !== "string") process.exit(1); process.stdout.write(c.client_id)') ||
		die "client-driver.sh: $scenario: MCP_CONFORMANCE_CONTEXT has no client_id"
	MCPGUARD_UPSTREAM_CLIENT_SECRET=$("$NODE" -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); if (typeof c.client_secret !== "string") process.exit(1); process.stdout.write(c.client_secret)') ||
		die "client-driver.sh: $scenario: MCP_CONFORMANCE_CONTEXT has no client_secret"
	export MCPGUARD_UPSTREAM_CLIENT_SECRET
	cat >>"$config" <<EOF
      client_credentials:
        client_id: $(yaml_str "$client_id")
        client_secret: env:MCPGUARD_UPSTREAM_CLIENT_SECRET
        auth_method: client_secret_basic
EOF
	client_scenario=auth/metadata-default
	;;
auth/client-credentials-jwt)
	# The scenario's authorization server wants its issuer as the assertion's
	# audience (it accepts the issuer URL with or without a trailing slash).
	client_id=$("$NODE" -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); if (typeof c.client_id !== "string") process.exit(1); process.stdout.write(c.client_id)') ||
		die "client-driver.sh: $scenario: MCP_CONFORMANCE_CONTEXT has no client_id"
	algorithm=$("$NODE" -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); process.stdout.write(typeof c.signing_algorithm === "string" ? c.signing_algorithm : "")')
	key_file=$work/upstream-client-key.pem
	(umask 077 && "$NODE" -e 'const c = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT || "{}"); if (typeof c.private_key_pem !== "string") process.exit(1); process.stdout.write(c.private_key_pem)' >"$key_file") ||
		die "client-driver.sh: $scenario: MCP_CONFORMANCE_CONTEXT has no private_key_pem"
	cat >>"$config" <<EOF
      client_credentials:
        client_id: $(yaml_str "$client_id")
        auth_method: private_key_jwt
        private_key: $(yaml_str "file:$key_file")
        assertion_audience: issuer
EOF
	if [[ -n $algorithm ]]; then
		printf '        algorithm: %s\n' "$(yaml_str "$algorithm")" >>"$config"
	fi
	client_scenario=auth/metadata-default
	;;
auth/resource-mismatch | auth/metadata-issuer-mismatch)
	# The gateway, not the client, is the scenario server's OAuth client: it holds
	# a credential for the upstream and discovers the authorization server from the
	# upstream's 401. The scenario's metadata is poisoned (a Protected Resource
	# Metadata "resource" that is not the upstream; authorization server metadata
	# whose "issuer" is not the one asked for), and what it checks is that its
	# client reads it and stops before asking for a token, which the gateway must
	# do with its own credential exactly as a client does directly. The secret is
	# never sent: no token is asked for. The upstream then never connects, so the
	# upstream timeout is short: the client's first request is answered after 1 s
	# (without the upstream) instead of holding it until the driver's deadline.
	MCPGUARD_UPSTREAM_CLIENT_SECRET=interop-never-sent
	export MCPGUARD_UPSTREAM_CLIENT_SECRET
	cat >>"$config" <<EOF
      client_credentials:
        client_id: interop-gateway
        client_secret: env:MCPGUARD_UPSTREAM_CLIENT_SECRET
    timeout: 1s
EOF
	client_scenario=auth/metadata-default
	;;
esac
# With INTEROP_DRIVER_PIPELINE=1, the full pipeline (lib.sh): a policy bound to
# the principal anonymous (everything-client presents no credential to the
# gateway), redaction and the audit log, in the scenario's own directory beside
# its gateway log, which conformance-client.sh verifies after the run.
if [[ -n ${INTEROP_DRIVER_PIPELINE:-} ]]; then
	pipeline_dir=$log_dir/${scenario//\//_}.pipeline
	setup_full_pipeline "$pipeline_dir" anonymous
	append_full_pipeline "$config" "$pipeline_dir"
fi
{
	printf '# scenario %s, protocol version %s, upstream %s\n' "$scenario" "${MCP_CONFORMANCE_PROTOCOL_VERSION:-}" "$upstream_url"
} >>"$gateway_log"
start_gateway "$config" "$port" "$gateway_log" 15 || die "client-driver.sh: mcpguard did not start (scenario $scenario)"
if [[ -n ${INTEROP_DRIVER_PIDS:-} ]]; then
	printf '%s\n' "$GATEWAY_PID" >>"$INTEROP_DRIVER_PIDS"
fi

budget=${INTEROP_DRIVER_BUDGET:-26}
remaining=$((budget - SECONDS))
((remaining >= 3)) || die "client-driver.sh: mcpguard took ${SECONDS}s of the ${budget}s budget to start (scenario $scenario)"

# Background plus wait, so a TERM runs the trap at once.
rc=0
if [[ $client_scenario == "$scenario" ]]; then
	timeout --kill-after=2 "$remaining" "$GO_EVERYTHING_CLIENT" "http://127.0.0.1:$port/mcp" </dev/null &
else
	env -u MCP_CONFORMANCE_CONTEXT -u MCPGUARD_UPSTREAM_CLIENT_SECRET MCP_CONFORMANCE_SCENARIO="$client_scenario" \
		timeout --kill-after=2 "$remaining" "$GO_EVERYTHING_CLIENT" "http://127.0.0.1:$port/mcp" </dev/null &
fi
client_pid=$!
wait "$client_pid" || rc=$?
client_pid=

if ((rc == 124 || rc == 137)); then
	printf '[client-driver] everything-client did not finish within %ss through mcpguard (upstream %s); stopped it\n' "$remaining" "$upstream_url" >&2
	show_log "$gateway_log" 40
elif ((rc != 0)); then
	printf '[client-driver] everything-client exited with %d through mcpguard (upstream %s)\n' "$rc" "$upstream_url" >&2
	show_log "$gateway_log" 40
fi
exit "$rc"
