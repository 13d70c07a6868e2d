#!/usr/bin/env node
// passthrough-gateway.mjs: a stand-in for mcpguard that tests the interop
// harness itself, not the product. It accepts the same command line
// (serve --config FILE [--listen HOST:PORT]) and the configs scripts/interop
// generates, and forwards every request on the configured path byte for byte
// to the single Streamable HTTP upstream, streaming responses (SSE included).
// It rewrites Host to the upstream's, as any reverse proxy to another address
// must, and changes nothing else. It implements no stdio upstream.
//
//   MCPGUARD_BIN=scripts/interop/selftest/passthrough-gateway.mjs \
//     bash scripts/interop/run-all.sh
//
// The verdicts it produces show what a naive transparent proxy gets wrong,
// which is what mcpguard has to do better (see docs/conformance.md).

import fs from "node:fs";
import http from "node:http";

function die(msg) {
	process.stderr.write(`passthrough-gateway: ${msg}\n`);
	process.exit(2);
}

const argv = process.argv.slice(2);
if (argv[0] !== "serve") die(`usage: passthrough-gateway.mjs serve --config FILE [--listen HOST:PORT]`);
let configFile;
let listenFlag;
for (let i = 1; i < argv.length; i++) {
	if (argv[i] === "--config") configFile = argv[++i];
	else if (argv[i] === "--listen") listenFlag = argv[++i];
	else die(`unknown argument ${argv[i]}`);
}
if (!configFile) die("--config is required");

// The generated configs use one key per line and JSON-quoted strings, so a
// line scan suffices here; mcpguard itself decodes YAML strictly.
const text = fs.readFileSync(configFile, "utf8");
const value = (key) => {
	const m = new RegExp(`^\\s*${key}:\\s*(.+?)\\s*$`, "m").exec(text);
	if (!m) return undefined;
	return m[1].startsWith('"') ? JSON.parse(m[1]) : m[1];
};
if (/^\s*stdio:/m.test(text)) die("stdio upstreams are not implemented by this stand-in");
const listen = listenFlag ?? value("listen");
const mountPath = value("path") ?? "/mcp";
const upstream = new URL(value("url") ?? die("no http upstream url in config"));
const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];

const HOP = new Set([
	"connection",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"host",
]);

// PASSTHROUGH_TRACE=FILE appends one JSON line per exchange: request line,
// headers and the first bytes of the body, response status and headers.
const traceFile = process.env.PASSTHROUGH_TRACE;
function trace(entry) {
	if (traceFile) fs.appendFileSync(traceFile, JSON.stringify(entry) + "\n");
}

const server = http.createServer((req, res) => {
	const url = new URL(req.url, "http://x");
	const entry = {
		time: new Date().toISOString(),
		scenario: process.env.MCP_CONFORMANCE_SCENARIO,
		method: req.method,
		url: req.url,
		headers: req.rawHeaders,
	};
	if (traceFile) {
		let body = "";
		req.on("data", (c) => {
			if (body.length < 2000) body += c.toString("utf8");
		});
		req.on("end", () => (entry.body = body.slice(0, 2000)));
		res.on("close", () => trace(entry));
	}
	if (url.pathname !== mountPath) {
		res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
		return;
	}
	const headers = {};
	for (let i = 0; i < req.rawHeaders.length; i += 2) {
		const name = req.rawHeaders[i];
		if (HOP.has(name.toLowerCase())) continue;
		(headers[name] ??= []).push(req.rawHeaders[i + 1]);
	}
	headers.host = upstream.host;
	const out = http.request(
		{
			host: upstream.hostname,
			port: upstream.port || 80,
			method: req.method,
			path: upstream.pathname + url.search,
			headers,
		},
		(up) => {
			const rh = {};
			for (let i = 0; i < up.rawHeaders.length; i += 2) {
				const name = up.rawHeaders[i];
				if (HOP.has(name.toLowerCase())) continue;
				(rh[name] ??= []).push(up.rawHeaders[i + 1]);
			}
			entry.status = up.statusCode;
			entry.responseHeaders = up.rawHeaders;
			res.writeHead(up.statusCode, rh);
			res.flushHeaders();
			up.on("data", (chunk) => res.write(chunk));
			up.on("end", () => res.end());
			up.on("error", () => res.destroy());
		},
	);
	out.on("error", (err) => {
		process.stderr.write(`upstream ${req.method} failed: ${err.message}\n`);
		if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
		res.end(`upstream error: ${err.message}\n`);
	});
	req.pipe(out);
	res.on("close", () => out.destroy());
});
server.listen(port, host, () => process.stderr.write(`passthrough-gateway: ${listen}${mountPath} -> ${upstream}\n`));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
