// console-check.mjs: the console stage's driver (scripts/interop/console.sh). Node 22, no
// dependency but playwright-core, which drives Debian's /usr/bin/chromium.
//
//   node console-check.mjs enroll
//       drive `mcpguard operators enroll-mfa NAME --password-stdin`: answer the password, read
//       the secret it shows, answer a current TOTP code; keep the secret (0600) and the used
//       time step. Env: CONSOLE_MCPGUARD, CONSOLE_CONFIG, CONSOLE_OPERATOR,
//       CONSOLE_PASSWORD_FILE, CONSOLE_SECRET_FILE, CONSOLE_STEP_FILE
//   node console-check.mjs totp SECRET_FILE STEP_FILE
//       print a TOTP code the gateway has not seen used yet (RFC 6238: HMAC-SHA1, 30 s,
//       6 digits), waiting for the next time step if every acceptable one is spent
//   node console-check.mjs call URL TOOL ARGUMENTS_JSON
//       one stateless (2026-07-28) tools/call with the bearer in CONSOLE_BEARER; prints
//       {"http": status, "result": …, "error": …} as one JSON line
//   node console-check.mjs list URL
//       tools/list the same way; prints {"http": status, "tools": [{name, description}]}
//   node console-check.mjs browser
//       the browser scenario (see browser() below); env documented there
//
// Every wait polls with a deadline; nothing sleeps a fixed time to let something happen.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";

const TOTP_PERIOD = 30;
const PROTOCOL = "2026-07-28";

function env(name) {
	const v = process.env[name];
	if (!v) fail(`${name} is not set`);
	return v;
}

function fail(message) {
	process.stderr.write(`console-check: FAIL: ${message}\n`);
	process.exit(1);
}

// ---------------------------------------------------------------------------
// TOTP (RFC 6238 over RFC 4226)

function base32Decode(s) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	const clean = s.toUpperCase().replace(/=+$/, "");
	let bits = 0;
	let value = 0;
	const out = [];
	for (const c of clean) {
		const i = alphabet.indexOf(c);
		if (i < 0) throw new Error(`the TOTP secret is not base32 (character ${JSON.stringify(c)})`);
		value = (value << 5) | i;
		bits += 5;
		if (bits >= 8) {
			out.push((value >>> (bits - 8)) & 0xff);
			bits -= 8;
		}
	}
	return Buffer.from(out);
}

function hotp(key, counter) {
	const msg = Buffer.alloc(8);
	msg.writeBigUInt64BE(BigInt(counter));
	const mac = crypto.createHmac("sha1", key).update(msg).digest();
	const offset = mac[mac.length - 1] & 0x0f;
	const bin = mac.readUInt32BE(offset) & 0x7fffffff;
	return String(bin % 1_000_000).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 1000 / TOTP_PERIOD);

// freshCode returns the code of a step the gateway accepts now (it allows one step either
// side) and has not seen used: after the step in stepFile. It waits, with a deadline, when
// every acceptable step is spent, and records the step it hands out.
async function freshCode(secretFile, stepFile) {
	const key = base32Decode(fs.readFileSync(secretFile, "utf8").trim());
	const last = fs.existsSync(stepFile) ? Number(fs.readFileSync(stepFile, "utf8")) : -Infinity;
	const deadline = Date.now() + 2 * TOTP_PERIOD * 1000;
	for (;;) {
		const now = currentStep();
		const step = Math.max(now, last + 1);
		if (step <= now + 1) {
			fs.writeFileSync(stepFile, String(step), { mode: 0o600 });
			return hotp(key, step);
		}
		if (Date.now() > deadline) throw new Error(`no unused TOTP step became acceptable after step ${last}`);
		await delay(250);
	}
}

// wrongCode returns six digits that are not the code of any step the gateway accepts now.
function wrongCode(secretFile) {
	const key = base32Decode(fs.readFileSync(secretFile, "utf8").trim());
	const now = currentStep();
	const valid = new Set([hotp(key, now - 1), hotp(key, now), hotp(key, now + 1)]);
	let n = Number(hotp(key, now));
	let code;
	do {
		n = (n + 1) % 1_000_000;
		code = String(n).padStart(6, "0");
	} while (valid.has(code));
	return code;
}

// ---------------------------------------------------------------------------
// Enrolment through the CLI

async function enroll() {
	const bin = env("CONSOLE_MCPGUARD");
	const password = fs.readFileSync(env("CONSOLE_PASSWORD_FILE"), "utf8").trim();
	const secretFile = env("CONSOLE_SECRET_FILE");
	const stepFile = env("CONSOLE_STEP_FILE");
	const args = ["operators", "enroll-mfa", "--config", env("CONSOLE_CONFIG"), env("CONSOLE_OPERATOR"), "--password-stdin", "--no-terminal-qr"];
	const childEnv = { ...process.env };
	delete childEnv.MCPGUARD_OPERATOR_TOKEN; // self-enrolment: the operator proves the password
	const child = spawn(bin, args, { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
	let out = "";
	let errText = "";
	let answered = false;
	child.stderr.on("data", (d) => {
		errText += d;
	});
	child.stdin.write(password + "\n");
	const done = new Promise((resolve) => child.on("close", resolve));
	child.stdout.on("data", async (d) => {
		out += d;
		const m = /^Secret for manual entry: ([A-Z2-7=]+)$/m.exec(out);
		if (m && !answered) {
			answered = true;
			fs.writeFileSync(secretFile, m[1] + "\n", { mode: 0o600 });
			child.stdin.write((await freshCode(secretFile, stepFile)) + "\n");
			child.stdin.end();
		}
	});
	const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
	const code = await done;
	clearTimeout(timer);
	// The URI and the secret are not echoed: only the command's last line.
	const last = out.trim().split("\n").pop();
	if (code !== 0 || !answered) fail(`enroll-mfa exited with ${code}: ${errText.trim()} ${answered ? "" : "(it showed no secret)"}`);
	process.stdout.write(last + "\n");
}

// ---------------------------------------------------------------------------
// MCP over Streamable HTTP, stateless (2026-07-28)

// rpc posts one request and returns {http, message}: the JSON-RPC response, read from a JSON
// body or from the event stream's message that answers id 1.
async function rpc(url, method, params, bearer, name) {
	const body = {
		jsonrpc: "2.0",
		id: 1,
		method,
		params: {
			...params,
			_meta: {
				"io.modelcontextprotocol/protocolVersion": PROTOCOL,
				"io.modelcontextprotocol/clientCapabilities": {},
				"io.modelcontextprotocol/clientInfo": { name: "interop-console-agent", version: "1" },
			},
		},
	};
	const headers = {
		"Content-Type": "application/json",
		Accept: "application/json, text/event-stream",
		"Mcp-Protocol-Version": PROTOCOL,
		"Mcp-Method": method,
	};
	if (name) headers["Mcp-Name"] = name;
	if (bearer) headers.Authorization = "Bearer " + bearer;
	const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10 * 60_000) });
	const text = await r.text();
	let message = null;
	if ((r.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
		for (const block of text.split(/\r?\n\r?\n/)) {
			const data = block
				.split(/\r?\n/)
				.filter((l) => l.startsWith("data:"))
				.map((l) => l.slice(5).trimStart())
				.join("\n");
			if (!data) continue;
			try {
				const m = JSON.parse(data);
				if (m.id === 1) message = m;
			} catch {}
		}
	} else {
		try {
			message = JSON.parse(text);
		} catch {
			message = { raw: text.slice(0, 500) };
		}
	}
	return { http: r.status, message };
}

async function call(url, tool, argsJSON) {
	const { http, message } = await rpc(url, "tools/call", { name: tool, arguments: JSON.parse(argsJSON) }, process.env.CONSOLE_BEARER, tool);
	process.stdout.write(JSON.stringify({ http, result: message?.result, error: message?.error ?? message?.raw }) + "\n");
}

async function list(url) {
	const { http, message } = await rpc(url, "tools/list", {}, process.env.CONSOLE_BEARER);
	const tools = (message?.result?.tools ?? []).map((t) => ({ name: t.name, description: t.description }));
	process.stdout.write(JSON.stringify({ http, tools, error: message?.error }) + "\n");
}

// ---------------------------------------------------------------------------
// The browser scenario

// browser drives the console as an operator would, asserting what the operator would see.
// Env:
//   CONSOLE_URL            the console's base, http://127.0.0.1:PORT/console
//   CONSOLE_OPERATOR       the operator who logs in (holds the approver role)
//   CONSOLE_OTHER_OPERATOR a second operator the operators page must list
//   CONSOLE_PASSWORD_FILE, CONSOLE_SECRET_FILE, CONSOLE_STEP_FILE
//                          the operator's password, TOTP secret and last used step
//   CONSOLE_MCP_URL        the gateway's MCP endpoint
//   CONSOLE_AGENT, CONSOLE_AGENT_KEY_FILE
//                          the agent's principal and its API key (a file, 0600)
//   CONSOLE_TRADE_TOOL, CONSOLE_TRADE_ARGS
//                          the tool whose calls wait for approval, and the call's arguments
//   CONSOLE_READ_TOOL, CONSOLE_READ_ARGS
//                          a tool the agent may call without approval
//   CONSOLE_PINNED_TOOL    the changed tool held back by pinning, as UPSTREAM/TOOL
//   CONSOLE_PINNED_NAME    the same tool as clients see it (namespaced)
//   CONSOLE_OLD_MARK, CONSOLE_NEW_MARK
//                          words only in the approved and only in the changed description
//   CONSOLE_SHOTS          the directory for the screenshots
//   CONSOLE_CLIENT_LOG     where the waiting client's answer is written
//   INTEROP_BROWSER_MODULES the node_modules that holds playwright-core
async function browser() {
	const require = createRequire(path.join(env("INTEROP_BROWSER_MODULES"), "noop.js"));
	const { chromium } = require("playwright-core");
	const base = env("CONSOLE_URL");
	const operator = env("CONSOLE_OPERATOR");
	const password = fs.readFileSync(env("CONSOLE_PASSWORD_FILE"), "utf8").trim();
	const secretFile = env("CONSOLE_SECRET_FILE");
	const stepFile = env("CONSOLE_STEP_FILE");
	const mcpURL = env("CONSOLE_MCP_URL");
	const agent = env("CONSOLE_AGENT");
	const agentKey = fs.readFileSync(env("CONSOLE_AGENT_KEY_FILE"), "utf8").trim();
	const tradeTool = env("CONSOLE_TRADE_TOOL");
	const pinned = env("CONSOLE_PINNED_TOOL");
	const shots = env("CONSOLE_SHOTS");
	fs.mkdirSync(shots, { recursive: true });

	const checks = [];
	const ok = (what) => {
		checks.push(what);
		process.stdout.write(`ok: ${what}\n`);
	};
	const must = (cond, what, detail = "") => {
		if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ""}`);
		ok(what);
	};

	const b = await chromium.launch({
		executablePath: "/usr/bin/chromium",
		headless: true,
		// Nothing but the console on loopback: no sandbox (CI runs as root), and none of
		// Chromium's own traffic (updates, safe browsing, first-run pages).
		args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
	});
	process.stdout.write(`chromium ${b.version()}\n`);
	const context = await b.newContext({ viewport: { width: 1280, height: 900 } });
	const page = await context.newPage();
	page.setDefaultTimeout(15_000);
	const dialogs = [];
	page.on("dialog", async (d) => {
		dialogs.push(`${d.type()}: ${d.message()}`);
		await d.dismiss();
	});
	const pageErrors = [];
	page.on("pageerror", (e) => pageErrors.push(e.message));
	// A Content-Security-Policy violation means something on a page tried to run or load.
	const violations = [];
	page.on("console", (m) => {
		if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
	});
	// Every request the page makes must stay on the console's origin.
	const origin = new URL(base).origin;
	const foreign = [];
	page.on("request", (r) => {
		const u = r.url();
		if (!u.startsWith(origin + "/") && !u.startsWith("data:") && u !== "about:blank") foreign.push(u);
	});
	const shot = async (name) => {
		await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
	};
	// submit clicks a button that submits a form and returns the navigation's response.
	const submit = async (button) => {
		const [resp] = await Promise.all([page.waitForNavigation({ waitUntil: "load" }), button.click()]);
		return resp;
	};
	const flashOK = async (what) => {
		const flash = page.locator(".flash");
		must((await flash.count()) > 0, `${what}: a .flash message is shown`, `page ${page.url()}`);
		const isError = await page.locator(".flash.error").count();
		must(isError === 0, `${what}: the .flash is not an error`, await flash.first().innerText());
	};
	const countRows = (sel) => page.locator(sel).count();

	try {
		// --- Login page, headers, a refused login
		let resp = await page.goto(`${base}/login`);
		must(resp.status() === 200, "GET /console/login answers 200", String(resp.status()));
		checkCSP(resp.headers()["content-security-policy"], must);
		for (const sel of ["form#login", 'form#login input[name="operator"]', 'form#login input[name="password"]', 'form#login input[name="totp"]', "form#login button[type=submit]"]) {
			must((await page.locator(sel).count()) === 1, `the login page has ${sel}`);
		}
		await shot("login");
		await page.fill('input[name="operator"]', operator);
		await page.fill('input[name="password"]', password);
		await page.fill('input[name="totp"]', wrongCode(secretFile));
		resp = await submit(page.locator("form#login button[type=submit]"));
		must(resp.status() === 401, "a wrong TOTP code is refused with 401", String(resp.status()));
		must((await page.locator(".error").count()) > 0, "the refused login shows .error");
		await shot("login-refused");

		// --- Login with password and a current TOTP code
		await page.goto(`${base}/login`);
		await page.fill('input[name="operator"]', operator);
		await page.fill('input[name="password"]', password);
		await page.fill('input[name="totp"]', await freshCode(secretFile, stepFile));
		resp = await submit(page.locator("form#login button[type=submit]"));
		const redirect = resp.request().redirectedFrom();
		const redirectStatus = redirect ? (await redirect.response())?.status() : undefined;
		must(redirectStatus === 303, "the login answers 303", `got ${redirectStatus ?? "no redirect"}, then ${resp.status()} at ${page.url()}`);
		must(new URL(page.url()).pathname === "/console/", "the login leads to /console/", page.url());
		const cookies = await context.cookies();
		must(cookies.length > 0, "the login sets a session cookie");
		for (const c of cookies) {
			must(c.httpOnly && c.secure && c.sameSite === "Strict", `cookie ${c.name} is HttpOnly, Secure, SameSite=Strict`, JSON.stringify(c));
		}
		checkCSP(resp.headers()["content-security-policy"], must, "/console/");
		for (const href of ["audit", "approvals", "tools", "keys", "operators", "blocks", "charts"]) {
			must((await page.locator(`nav a[href="/console/${href}"]`).count()) > 0, `nav links to /console/${href}`);
		}
		must((await page.locator("form#logout").count()) === 1, "the page has form#logout");

		// --- Approvals: a held trade, the waiting client, approve
		const tradeArgs = env("CONSOLE_TRADE_ARGS");
		const clientLog = env("CONSOLE_CLIENT_LOG");
		// heldCall starts the agent's trade with args in a separate process, which waits for
		// its answer, and returns the approvals row that shows it once it is listed.
		const heldCall = async (args, log) => {
			const client = spawn(process.execPath, [process.argv[1], "call", mcpURL, tradeTool, args], {
				env: { ...process.env, CONSOLE_BEARER: agentKey },
				stdio: ["ignore", fs.openSync(log, "w"), "inherit"],
			});
			const held = { exited: false, log };
			held.done = new Promise((resolve) => client.on("close", resolve)).then(() => {
				held.exited = true;
			});
			const quantity = String(JSON.parse(args).quantity);
			held.row = page
				.locator("tr[data-approval-id]")
				.filter({ has: page.locator("td.tool", { hasText: tradeTool }) })
				.filter({ has: page.locator("pre.arguments", { hasText: new RegExp(`quantity\\D{0,4}${quantity}\\b`) }) });
			await pollPage(page, `${base}/approvals`, async () => (await held.row.count()) > 0 || held.exited, `the held trade (quantity ${quantity}) to be listed on /console/approvals`);
			must(!held.exited, `the agent's trade call (quantity ${quantity}) is still waiting while it is listed`, fs.readFileSync(log, "utf8"));
			must((await held.row.count()) === 1, `the held trade (quantity ${quantity}) is listed once on /console/approvals`);
			return held;
		};
		const held = await heldCall(tradeArgs, clientLog);
		const row = held.row;
		must((await row.locator("td.principal").innerText()).includes(agent), `the held trade names the requester ${agent}`, await row.locator("td.principal").innerText());
		const argsText = await row.locator("pre.arguments").innerText();
		const wantArgs = JSON.parse(tradeArgs);
		must(argsText.includes(wantArgs.symbol) && argsText.includes(String(wantArgs.quantity)), "the held trade shows its arguments", argsText);
		await shot("approvals");
		await row.locator('form.decide input[name="reason"]').fill("checked with the client by phone");
		await submit(row.locator('form.decide button[name="decision"][value="approve"]'));
		await flashOK("approving the trade");
		await waitFor(() => held.exited, 30_000, "the waiting client's call to complete after the approval");
		const answer = JSON.parse(fs.readFileSync(clientLog, "utf8"));
		const sc = answer.result?.structuredContent;
		must(answer.http === 200 && answer.result && !answer.result.isError, "the waiting client's trade completed with a result", JSON.stringify(answer).slice(0, 500));
		must(sc?.status === "accepted" && sc?.symbol === wantArgs.symbol, "the trade result is the accepted order", JSON.stringify(sc));
		await page.goto(`${base}/approvals`);
		must((await row.count()) === 0 || !(await row.locator("form.decide").count()), "the decided trade is no longer waiting for a decision");

		// A second trade, denied with a reason: the waiting client is refused with it.
		const denyArgs = JSON.stringify({ ...wantArgs, quantity: wantArgs.quantity + 150 });
		const denied = await heldCall(denyArgs, clientLog.replace(/\.json$/, "") + "-denied.json");
		const denyReason = "over the desk limit for this client";
		await denied.row.locator('form.decide input[name="reason"]').fill(denyReason);
		await submit(denied.row.locator('form.decide button[name="decision"][value="deny"]'));
		await flashOK("denying the second trade");
		await waitFor(() => denied.exited, 30_000, "the waiting client's call to end after the denial");
		const refusal = JSON.parse(fs.readFileSync(denied.log, "utf8"));
		must(
			refusal.http === 403 && refusal.error?.code === -31001 && String(refusal.error?.message).includes(denyReason) && String(refusal.error?.message).includes(operator),
			"the denied trade's client is refused (403, -31001) naming the operator and the reason",
			JSON.stringify(refusal).slice(0, 500),
		);

		// --- Tools: the changed definition held back, hostile markup inert, approve
		const pinnedName = env("CONSOLE_PINNED_NAME");
		let listed = await listTools(mcpURL, agentKey);
		must(!listed.some((t) => t.name === pinnedName), `${pinnedName} is hidden from tools/list while held back`, JSON.stringify(listed.map((t) => t.name)));
		resp = await page.goto(`${base}/tools`);
		checkCSP(resp.headers()["content-security-policy"], must, "/console/tools");
		const toolRow = page.locator(`tr[data-tool="${pinned}"]`);
		must((await toolRow.count()) === 1, `/console/tools lists the held-back ${pinned}`, `rows: ${await page.locator("tr[data-tool]").evaluateAll((rs) => rs.map((r) => r.dataset.tool))}`);
		must((await page.evaluate(() => typeof window.__pwned)) === "undefined", "the description's <script> did not run (window.__pwned is undefined)");
		must(dialogs.length === 0, "no dialog opened", dialogs.join("; "));
		must(violations.length === 0, "nothing on /console/tools tried to run (no CSP violation)", violations.join("; "));
		must((await toolRow.locator("script").count()) === 0, "the description made no <script> element");
		const toolText = await toolRow.innerText();
		must(toolText.includes("<script>"), "the description's markup is shown as text", toolText.slice(0, 300));
		must((await toolRow.locator("span.flag-hostile").count()) > 0, "the hostile description is flagged (span.flag-hostile)");
		const diff = await toolRow.locator(".diff").innerText();
		must(diff.includes(env("CONSOLE_OLD_MARK")) && diff.includes(env("CONSOLE_NEW_MARK")), "the diff shows the approved and the changed description", diff.slice(0, 500));
		await shot("tools");
		await submit(toolRow.locator('form.approve-tool button[name="decision"][value="approve"]'));
		await flashOK("approving the changed tool");
		must((await page.locator(`tr[data-tool="${pinned}"]`).count()) === 0, `${pinned} is no longer held back`);
		listed = await listTools(mcpURL, agentKey);
		const served = listed.find((t) => t.name === pinnedName);
		must(served && served.description.includes(env("CONSOLE_NEW_MARK")), `tools/list serves ${pinnedName} with the approved new definition`, JSON.stringify(listed.map((t) => t.name)));
		must((await page.evaluate(() => typeof window.__pwned)) === "undefined" && dialogs.length === 0, "still no script ran after the approval");

		// --- Keys: create one (shown once), revoke the agent's, its next call refused
		await page.goto(`${base}/keys`);
		const readTool = env("CONSOLE_READ_TOOL");
		const readArgs = env("CONSOLE_READ_ARGS");
		let r = await mcpCall(mcpURL, readTool, readArgs, agentKey);
		must(r.http === 200 && r.result && !r.result.isError, `the agent's key works before the revocation (${readTool})`, JSON.stringify(r).slice(0, 300));
		await page.fill('form#create-key input[name="name"]', "reporting-agent");
		await page.fill('form#create-key input[name="roles"]', env("CONSOLE_AGENT_ROLE"));
		await submit(page.locator("form#create-key button[type=submit], form#create-key button:not([type])").first());
		await flashOK("creating a key");
		const newKey = (await page.locator("code#new-key").innerText()).trim();
		must(/^mcpg_\S+$/.test(newKey), "the new key is shown in code#new-key", newKey.slice(0, 8));
		await shot("keys-created");
		r = await mcpCall(mcpURL, readTool, readArgs, newKey);
		must(r.http === 200 && r.result && !r.result.isError, "the key created in the console authenticates an MCP call", JSON.stringify(r).slice(0, 300));
		await page.goto(`${base}/keys`);
		must((await page.locator("code#new-key").count()) === 0, "the new key is shown only once");
		must(!(await page.content()).includes(newKey), "the keys page does not contain the key afterwards");
		const keyRow = page.locator("tr[data-key-id]").filter({ has: page.locator("td.name", { hasText: agent }) });
		must((await keyRow.count()) === 1, `/console/keys lists ${agent}'s key once`);
		// Cross-site request forgery: a page on another loopback port (the same site, so the
		// SameSite=Strict cookie goes along) posts the revoke form without the form's token.
		const action = new URL(await keyRow.locator("form.revoke").getAttribute("action"), page.url()).href;
		const forged = await forgedPost(context, action, { decision: "revoke" });
		process.stdout.write(`the forged revoke was answered ${forged.status}: ${forged.text}\n`);
		await page.goto(`${base}/keys`);
		must(/active/i.test(await keyRow.locator("td.status").innerText()), "a revoke posted from another origin changed nothing", `status ${await keyRow.locator("td.status").innerText()}; the console answered ${forged.status}: ${forged.text}`);
		r = await mcpCall(mcpURL, readTool, readArgs, agentKey);
		must(r.http === 200, "the agent's key still works after the forged revoke", JSON.stringify(r).slice(0, 300));
		await submit(keyRow.locator('form.revoke button[value="revoke"]'));
		await flashOK("revoking the agent's key");
		must(/revoked/i.test(await keyRow.locator("td.status").innerText()), "the revoked key's status says revoked", await keyRow.locator("td.status").innerText());
		r = await mcpCall(mcpURL, readTool, readArgs, agentKey);
		must(r.http === 401, "the agent's next call with the revoked key is refused with 401", JSON.stringify(r).slice(0, 300));
		await shot("keys");

		// --- Audit: the calls and the acts, a record with its proof, the search
		await page.goto(`${base}/`);
		must((await page.locator("#verify-status").count()) === 1 && (await page.locator("#checkpoint-age").count()) === 1, "the audit page shows #verify-status and #checkpoint-age");
		const seqs = await page.locator("tr[data-seq]").evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq)));
		must(seqs.length > 0, "the audit page lists records");
		must(seqs.every((s, i) => i === 0 || seqs[i - 1] > s), "the audit records are newest first", seqs.slice(0, 10).join(","));
		await shot("audit");
		await page.fill('form#search input[name="tool"]', tradeTool);
		await submit(page.locator("form#search button, form#search input[type=submit]").first());
		const found = await page.locator("tr[data-seq]").evaluateAll((rs) =>
			rs.map((r) => ({
				seq: Number(r.dataset.seq),
				tool: r.querySelector("td.tool")?.textContent.trim(),
				kind: r.querySelector("td.kind")?.textContent.trim(),
				principal: r.querySelector("td.principal")?.textContent.trim(),
			})),
		);
		must(found.length > 0 && found.every((f) => f.tool === tradeTool), `the search by tool lists only ${tradeTool} records`, JSON.stringify(found));
		must(found.some((f) => f.kind === "approval" && f.principal === operator), `the search finds ${operator}'s approval of the trade`, JSON.stringify(found));
		must(found.some((f) => f.kind === "call" && f.principal === agent), `the search finds ${agent}'s trade call`, JSON.stringify(found));
		const newest = found[0].seq;
		await Promise.all([page.waitForNavigation(), page.locator(`tr[data-seq="${newest}"] a[href="/console/audit/${newest}"]`).first().click()]);
		must(new URL(page.url()).pathname === `/console/audit/${newest}`, `a row links to /console/audit/${newest}`, page.url());
		const record = JSON.parse(await page.locator("pre#record").innerText());
		must(record.seq === newest, "the record page shows the record (pre#record, with its seq)", JSON.stringify(record).slice(0, 200));
		must((await page.locator("#inclusion-proof").innerText()).trim().length > 0, "the record page shows its inclusion proof");
		await shot("record");

		// --- Operators, blocks, charts
		await page.goto(`${base}/operators`);
		for (const name of [operator, env("CONSOLE_OTHER_OPERATOR")]) {
			must((await page.locator(`tr[data-operator="${name}"] td.status`).count()) === 1, `/console/operators lists ${name} with a status`);
		}
		await shot("operators");
		// Create an operator; the new operator enrols in a browser of their own (no cookies of
		// this session), scanning the secret and choosing a password, then logs in with them.
		const newcomer = "carol";
		await page.fill('form#create-operator input[name="name"]', newcomer);
		await page.fill('form#create-operator input[name="roles"]', "Desk");
		await submit(page.locator("form#create-operator button[type=submit]"));
		await flashOK(`creating operator ${newcomer}`);
		const oneTime = (await page.locator("code#new-password").innerText()).trim();
		must(/^[A-Z2-7]{32}$/.test(oneTime), "the new operator's one-time password is shown in code#new-password", oneTime.slice(0, 4));
		must(/none/.test(await page.locator(`tr[data-operator="${newcomer}"] td.mfa`).innerText()), `${newcomer} is listed without MFA`);
		await shot("operators-created");
		const other = await b.newContext({ viewport: { width: 1280, height: 900 } });
		const np = await other.newPage();
		np.setDefaultTimeout(15_000);
		np.on("pageerror", (e) => pageErrors.push(e.message));
		np.on("dialog", async (d) => {
			dialogs.push(`${d.type()}: ${d.message()}`);
			await d.dismiss();
		});
		const nsubmit = async (button) => (await Promise.all([np.waitForNavigation({ waitUntil: "load" }), button.click()]))[0];
		await np.goto(`${base}/login`);
		await Promise.all([np.waitForNavigation(), np.locator('#enrol a[href="/console/enroll"]').click()]);
		must(new URL(np.url()).pathname === "/console/enroll", "the login page links to /console/enroll", np.url());
		await np.fill('form#enroll input[name="operator"]', newcomer);
		await np.fill('form#enroll input[name="password"]', oneTime);
		resp = await nsubmit(np.locator("form#enroll button[type=submit]"));
		must(resp.status() === 200 && (await np.locator("img#qr").count()) === 1, "the enrolment shows the QR code (img#qr)", String(resp.status()));
		must(await np.locator("img#qr").evaluate((img) => img.complete && img.naturalWidth > 0), "the QR code image renders under the Content-Security-Policy");
		const tmp = fs.mkdtempSync(path.join(shots, "enrol-"));
		const newSecret = path.join(tmp, "secret");
		const newStep = path.join(tmp, "step");
		fs.writeFileSync(newSecret, (await np.locator("code#secret").innerText()).trim() + "\n", { mode: 0o600 });
		await np.screenshot({ path: path.join(shots, "enroll.png"), fullPage: true });
		const newPassword = "carol chose this passphrase";
		await np.fill('form#enroll input[name="operator"]', newcomer);
		await np.fill('form#enroll input[name="password"]', oneTime);
		await np.fill('form#enroll input[name="new_password"]', newPassword);
		await np.fill('form#enroll input[name="new_password_again"]', newPassword);
		await np.fill('form#enroll input[name="totp"]', await freshCode(newSecret, newStep));
		await nsubmit(np.locator("form#enroll button[type=submit]"));
		must(new URL(np.url()).pathname === "/console/login" && /enrolled/.test(await np.locator(".flash").innerText()), "confirming the enrolment leads to the login page, saying enrolled", np.url());
		await np.fill('form#login input[name="operator"]', newcomer);
		await np.fill('form#login input[name="password"]', newPassword);
		await np.fill('form#login input[name="totp"]', await freshCode(newSecret, newStep));
		await nsubmit(np.locator("form#login button[type=submit]"));
		must(new URL(np.url()).pathname === "/console/" && (await np.locator("form#logout").count()) === 1, `${newcomer} logs in with the chosen password and the app`, np.url());
		await np.screenshot({ path: path.join(shots, "enrolled-login.png"), fullPage: true });
		await other.close();
		fs.rmSync(tmp, { recursive: true, force: true });
		await page.goto(`${base}/operators`);
		must(/enrolled/.test(await page.locator(`tr[data-operator="${newcomer}"] td.mfa`).innerText()), `${newcomer} is listed as enrolled`);
		await page.goto(`${base}/blocks`);
		must((await page.locator("form#block").count()) === 1, "/console/blocks has form#block");
		await shot("blocks");
		await page.goto(`${base}/charts`);
		must((await page.locator("svg.chart").count()) > 0, "/console/charts draws svg.chart");
		await shot("charts");

		// --- Logout ends the session
		await submit(page.locator("form#logout button, form#logout input[type=submit]").first());
		await page.goto(`${base}/audit`);
		must(new URL(page.url()).pathname === "/console/login", "after logout the console asks for a login again", page.url());

		must(pageErrors.length === 0, "no script error on any page", pageErrors.join("; "));
		must(violations.length === 0, "no page violated its Content-Security-Policy", violations.join("; "));
		must(foreign.length === 0, "the pages requested nothing outside the console's origin", foreign.join(", "));
		must((await page.evaluate(() => typeof window.__pwned)) === "undefined" && dialogs.length === 0, "no script from any data ran");
	} catch (err) {
		await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
		fs.writeFileSync(path.join(shots, "failure.html"), await page.content().catch(() => ""));
		const text = (await page.locator("body").innerText().catch(() => "")).replace(/\s+/g, " ").slice(0, 300);
		process.stdout.write(`FAILED at ${page.url()}: ${err.message}\nthe page says: ${text}\n(screenshot and HTML: ${shots}/failure.*)\n`);
		await b.close();
		process.exit(1);
	}
	await b.close();
	process.stdout.write(`ok: all ${checks.length} browser checks passed\n`);
}

// checkCSP asserts the contract's Content-Security-Policy: every directive it names, and no
// script source but 'self'.
function checkCSP(header, must, where = "/console/login") {
	must(typeof header === "string" && header.length > 0, `${where} sends a Content-Security-Policy`);
	const directives = new Map(
		header
			.split(";")
			.map((d) => d.trim().split(/\s+/))
			.filter((d) => d[0])
			.map(([k, ...v]) => [k.toLowerCase(), v.join(" ")]),
	);
	const want = {
		"default-src": "'none'",
		"style-src": "'self'",
		"img-src": "'self' data:",
		"form-action": "'self'",
		"frame-ancestors": "'none'",
		"base-uri": "'none'",
	};
	for (const [k, v] of Object.entries(want)) {
		must(directives.get(k) === v, `${where} CSP has ${k} ${v}`, header);
	}
	const script = directives.get("script-src");
	must(script === undefined || script === "'self'", `${where} CSP allows no script but 'self'`, header);
}

// forgedPost serves, on another loopback port, a page whose form posts fields to action, and
// submits it in a new tab of the operator's browser context (so with the operator's cookies);
// it returns the status and the start of the text of what the console answered.
async function forgedPost(context, action, fields) {
	const inputs = Object.entries(fields)
		.map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`)
		.join("");
	const html = `<!DOCTYPE html><title>prize</title><form method="post" action="${action}">${inputs}<button type="submit">claim</button></form>`;
	const server = http.createServer((_, res) => {
		res.writeHead(200, { "Content-Type": "text/html" });
		res.end(html);
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	const page = await context.newPage();
	try {
		await page.goto(`http://127.0.0.1:${server.address().port}/`);
		const [resp] = await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("button")]);
		const text = (await page.locator("body").innerText().catch(() => "")).replace(/\s+/g, " ").slice(0, 200);
		return { status: resp.status(), text };
	} finally {
		await page.close();
		server.close();
	}
}

// pollPage reloads url until cond() holds, up to a deadline.
async function pollPage(page, url, cond, what, ms = 30_000) {
	const deadline = Date.now() + ms;
	for (;;) {
		await page.goto(url);
		if (await cond()) return;
		if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
		await delay(300);
	}
}

async function waitFor(cond, ms, what) {
	const deadline = Date.now() + ms;
	while (!(await cond())) {
		if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
		await delay(100);
	}
}

async function mcpCall(url, tool, argsJSON, bearer) {
	const { http, message } = await rpc(url, "tools/call", { name: tool, arguments: JSON.parse(argsJSON) }, bearer, tool);
	return { http, result: message?.result, error: message?.error ?? message?.raw };
}

async function listTools(url, bearer) {
	const { http, message } = await rpc(url, "tools/list", {}, bearer);
	if (http !== 200) throw new Error(`tools/list answered ${http}: ${JSON.stringify(message).slice(0, 300)}`);
	return message?.result?.tools ?? [];
}

// ---------------------------------------------------------------------------

const [cmd, ...args] = process.argv.slice(2);
try {
	if (cmd === "enroll" && args.length === 0) await enroll();
	else if (cmd === "totp" && args.length === 2) process.stdout.write((await freshCode(args[0], args[1])) + "\n");
	else if (cmd === "call" && args.length === 3) await call(...args);
	else if (cmd === "list" && args.length === 1) await list(args[0]);
	else if (cmd === "browser" && args.length === 0) await browser();
	else {
		process.stderr.write("usage: console-check.mjs enroll | totp SECRET_FILE STEP_FILE | call URL TOOL ARGS_JSON | list URL | browser\n");
		process.exit(2);
	}
} catch (err) {
	fail(err.stack ?? String(err));
}
