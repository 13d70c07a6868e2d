// idp.mjs: a real OpenID provider for the idp interop stage, built on the
// pinned oauth2-mock-server (real RSA keys, real discovery, real JWKS, real
// token endpoint), configured the way a production authorization server is
// configured for an MCP resource server:
//
//   - confidential clients only (client_secret_basic or client_secret_post);
//     an unknown client or a wrong secret gets 401 invalid_client;
//   - the client_credentials grant needs an RFC 8707 "resource" naming one of
//     the registered resources, and the access token's "aud" is that resource
//     (400 invalid_target otherwise);
//   - access tokens carry iss, sub (= the client id), client_id, scope, iat,
//     nbf and exp (5 minutes);
//   - a client registered with "expired": true gets tokens that expired ten
//     minutes ago, signed with the same key, so that a resource server can be
//     shown refusing an expired token the IdP itself issued;
//   - with IDP_OIDC_CLIENT, one more confidential client may use the
//     authorization code grant (operators logging in to mcpguard's admin API):
//     /authorize accepts it only with its registered redirect_uri and PKCE
//     S256 (the mock itself checks the code_verifier at the token endpoint),
//     and its ID token names the user in preferred_username and asserts the
//     configured amr (the mock's own sub is always "johndoe").
//
// Environment:
//   IDP_PORT       loopback port to listen on (required)
//   IDP_CLIENTS    JSON: [{"id":"…","secret":"…","expired":false}, …] (required)
//   IDP_RESOURCES  space-separated resource indicators tokens may be issued for (required)
//   IDP_OIDC_CLIENT  JSON: {"id":"…","secret":"…","redirect_uri":"…","username":"…","amr":["pwd","mfa"]} (optional)
//   INTEROP_NPM_MODULES  where the pinned packages are (default: .cache/peers/npm/node_modules)
//
// It prints "idp: issuer URL" once it listens, one line per token request
// (never the token), and stops on SIGTERM or SIGINT.

import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmModules =
	process.env.INTEROP_NPM_MODULES ?? path.join(here, "..", "..", "..", ".cache", "peers", "npm", "node_modules");

function fail(msg) {
	process.stderr.write(`idp: ${msg}\n`);
	process.exit(2);
}

const port = Number.parseInt(process.env.IDP_PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail(`IDP_PORT=${JSON.stringify(process.env.IDP_PORT)} is not a port`);
let clients;
try {
	clients = JSON.parse(process.env.IDP_CLIENTS ?? "");
} catch (err) {
	fail(`IDP_CLIENTS is not JSON: ${err.message}`);
}
if (!Array.isArray(clients) || clients.length === 0 || !clients.every((c) => typeof c?.id === "string" && typeof c?.secret === "string"))
	fail('IDP_CLIENTS must be a non-empty array of {"id": string, "secret": string, "expired": bool}');
const clientsById = new Map(clients.map((c) => [c.id, c]));
const resources = new Set((process.env.IDP_RESOURCES ?? "").split(/\s+/).filter(Boolean));
if (resources.size === 0) fail("IDP_RESOURCES names no resource");
let oidcClient = null;
if (process.env.IDP_OIDC_CLIENT) {
	try {
		oidcClient = JSON.parse(process.env.IDP_OIDC_CLIENT);
	} catch (err) {
		fail(`IDP_OIDC_CLIENT is not JSON: ${err.message}`);
	}
	const c = oidcClient;
	if (typeof c?.id !== "string" || typeof c.secret !== "string" || typeof c.redirect_uri !== "string" || typeof c.username !== "string" || !Array.isArray(c.amr))
		fail('IDP_OIDC_CLIENT must be {"id": string, "secret": string, "redirect_uri": string, "username": string, "amr": [string]}');
	if (clientsById.has(c.id)) fail(`IDP_OIDC_CLIENT ${c.id} is also in IDP_CLIENTS`);
	clientsById.set(c.id, c);
}

const entry = path.join(npmModules, "oauth2-mock-server", "dist", "index.mjs");
let OAuth2Server, Events;
try {
	({ OAuth2Server, Events } = await import(pathToFileURL(entry).href));
} catch (err) {
	fail(`cannot load oauth2-mock-server from ${entry} (run scripts/interop/install-peers.sh): ${err.message}`);
}

const TOKEN_TTL = 300;
const EXPIRED_BY = 600;
const host = "127.0.0.1";
const issuer = `http://${host}:${port}`;

// clientOf: the client a token request authenticates as, or an error string.
function clientOf(req) {
	const body = req.body ?? {};
	let id, secret;
	const authz = req.headers.authorization ?? "";
	if (authz.startsWith("Basic ")) {
		const decoded = Buffer.from(authz.slice(6), "base64").toString("utf8");
		const i = decoded.indexOf(":");
		if (i < 0) return { error: "malformed Basic credentials" };
		// RFC 6749 section 2.3.1: both parts are form-urlencoded.
		id = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, " "));
		secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, " "));
		if (body.client_secret !== undefined) return { error: "two client authentication methods" };
	} else {
		id = body.client_id;
		secret = body.client_secret;
	}
	if (typeof id !== "string" || typeof secret !== "string") return { error: "no client credentials" };
	const c = clientsById.get(id);
	if (!c || c.secret !== secret) return { error: `unknown client or wrong secret for ${JSON.stringify(id)}` };
	return { client: c };
}

const server = new OAuth2Server();
await server.issuer.keys.generate("RS256");
// The mock would name itself http://localhost:PORT; pin the address it listens on.
server.issuer.url = issuer;

server.service.on(Events.BeforeWellKnownOpenIdConfiguration, (res) => {
	res.body.token_endpoint_auth_methods_supported = ["client_secret_basic", "client_secret_post"];
});

// Per token request: who asked, for which resource, and whether to refuse.
const verdicts = new WeakMap();
function verdict(req) {
	let v = verdicts.get(req);
	if (v) return v;
	const body = req.body ?? {};
	const who = clientOf(req);
	if (who.error) {
		v = { status: 401, error: "invalid_client", why: who.error };
	} else if (who.client === oidcClient) {
		if (body.grant_type !== "authorization_code") {
			v = { status: 400, error: "unauthorized_client", why: `${oidcClient.id} may use the authorization code grant only` };
		} else if (body.redirect_uri !== oidcClient.redirect_uri) {
			v = { status: 400, error: "invalid_grant", why: `redirect_uri ${JSON.stringify(body.redirect_uri)} is not the registered one` };
		} else if (typeof body.code_verifier !== "string") {
			v = { status: 400, error: "invalid_grant", why: "no code_verifier: PKCE is required" };
		} else {
			v = { status: 200, client: who.client, oidc: true };
		}
	} else if (body.grant_type !== "client_credentials") {
		v = { status: 400, error: "unsupported_grant_type", why: `grant_type ${JSON.stringify(body.grant_type)}` };
	} else if (typeof body.resource !== "string" || !resources.has(body.resource)) {
		v = { status: 400, error: "invalid_target", why: `resource ${JSON.stringify(body.resource)} is not registered` };
	} else {
		v = { status: 200, client: who.client, resource: body.resource };
	}
	verdicts.set(req, v);
	return v;
}

// The authorization code grant is the OIDC client's only: with its registered redirect_uri and
// PKCE S256, or the browser is sent back with an error.
server.service.on(Events.BeforeAuthorizeRedirect, (redirect, req) => {
	const q = req.query ?? {};
	let error;
	if (!oidcClient || q.client_id !== oidcClient.id) error = "unauthorized_client";
	else if (q.redirect_uri !== oidcClient.redirect_uri) error = "invalid_request";
	else if (q.code_challenge_method !== "S256" || typeof q.code_challenge !== "string") error = "invalid_request";
	else if (typeof q.nonce !== "string" || !String(q.scope ?? "").split(" ").includes("openid")) error = "invalid_request";
	if (error) {
		redirect.url.searchParams.delete("code");
		redirect.url.searchParams.set("error", error);
		console.log(`idp: authorization refused: ${error} (client ${JSON.stringify(q.client_id)})`);
		return;
	}
	console.log(`idp: authorization code issued to ${oidcClient.id} for ${oidcClient.username} (PKCE S256, nonce, scope ${q.scope})`);
});

server.service.on(Events.BeforeTokenSigning, (token, req) => {
	const v = verdict(req);
	if (v.status !== 200) return; // the response is replaced below; this token is never sent
	if (v.oidc) {
		// Only the ID token carries the nonce of the authorization request.
		if ("nonce" in token.payload) {
			token.payload.preferred_username = oidcClient.username;
			token.payload.amr = oidcClient.amr;
			v.idToken = true;
		}
		return;
	}
	const now = Math.floor(Date.now() / 1000);
	const p = token.payload;
	p.aud = v.resource;
	p.sub = v.client.id;
	p.client_id = v.client.id;
	if (p.scope === undefined) delete p.scope;
	if (v.client.expired) {
		p.iat = now - EXPIRED_BY - TOKEN_TTL;
		p.nbf = p.iat;
		p.exp = now - EXPIRED_BY;
	} else {
		p.iat = now;
		p.nbf = now;
		p.exp = now + TOKEN_TTL;
	}
	v.exp = p.exp;
});

server.service.on(Events.BeforeResponse, (res, req) => {
	const v = verdict(req);
	if (v.status !== 200) {
		res.statusCode = v.status;
		res.body = { error: v.error, error_description: v.why };
		console.log(`idp: token request refused: ${v.status} ${v.error} (${v.why})`);
		return;
	}
	delete res.body.refresh_token;
	if (v.oidc) {
		if (!v.idToken) {
			res.statusCode = 400;
			res.body = { error: "invalid_grant", error_description: "the authorization request had no nonce" };
		}
		console.log(`idp: issued an ID token to ${v.client.id}: preferred_username=${oidcClient.username} amr=${oidcClient.amr.join(",")}${v.idToken ? "" : " (refused: no nonce)"}`);
		return;
	}
	res.body.expires_in = v.exp - Math.floor(Date.now() / 1000);
	delete res.body.id_token;
	console.log(`idp: issued an access token to ${v.client.id}: aud=${v.resource} exp=${v.exp}${v.client.expired ? " (already expired)" : ""}`);
});

await server.start(port, host);
console.log(`idp: issuer ${server.issuer.url}`);

let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"]) {
	process.on(sig, async () => {
		if (stopping) return;
		stopping = true;
		await server.stop();
		process.exit(0);
	});
}
