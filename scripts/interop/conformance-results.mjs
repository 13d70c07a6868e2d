// conformance-results.mjs: read the conformance suite's requirement sets and
// result directories, and compare per-scenario verdicts between runs.
//
// The machine-readable source of truth is the checks.json file the suite
// writes for every scenario under --output-dir (one directory per scenario,
// named "<scenario>-<ISO timestamp>" for client runs and
// "server-<scenario>-<ISO timestamp>" for server runs; a client scenario named
// "auth/x" lands in "auth/x-<timestamp>"). The suite's printed summary line
// ("✓ name: N passed, M failed") is parsed only to cross-check that this file
// derives the same verdict the suite printed.
//
// Verdicts mirror the suite's own rules:
//   server scenario: FAIL if any check has status FAILURE, else PASS
//   client scenario: FAIL if any check has status FAILURE or WARNING, else PASS
// with two additions the suite folds into PASS:
//   EMPTY:   no check reached SUCCESS, FAILURE or WARNING (nothing was verified;
//            the suite prints it as passed)
//   MISSING: no checks.json (the scenario never produced results)
//
// Usage (run with Node 22):
//   node conformance-results.mjs scenarios REQUIREMENTS_YAML server|client
//       one line per scenario: "<name>\tscored" or "<name>\tnot_scored:<reason>"
//   node conformance-results.mjs verdicts RESULTS_DIR server|client [SUMMARY_LOG] > verdicts.json
//   node conformance-results.mjs expect VERDICTS_JSON EXPECTED_TXT
//       exit 1 unless every scenario in EXPECTED_TXT ("<name> PASS|FAIL|EMPTY" lines)
//       has that verdict, and VERDICTS_JSON holds no other scenario
//   node conformance-results.mjs compare LABEL_A A.json LABEL_B B.json SCENARIOS_TXT
//       print a table for the scenarios listed in SCENARIOS_TXT; exit 1 if any
//       verdict differs or is MISSING on either side
//   node conformance-results.mjs table VERDICTS_JSON [SCENARIOS_TSV]
//       print a Markdown table (for docs/conformance.md), in requirement-set
//       order when SCENARIOS_TSV (the output of "scenarios") is given

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const npmModules =
	process.env.INTEROP_NPM_MODULES ?? path.join(here, "..", "..", ".cache", "peers", "npm", "node_modules");

function fail(msg) {
	process.stderr.write(`conformance-results: ${msg}\n`);
	process.exit(2);
}

function readJSON(file) {
	try {
		return JSON.parse(fs.readFileSync(file, "utf8"));
	} catch (err) {
		fail(`read ${file}: ${err.message}`);
	}
}

function leg(arg) {
	if (arg !== "server" && arg !== "client") fail(`leg must be "server" or "client", got ${JSON.stringify(arg)}`);
	return arg;
}

// scenarios lists a requirement set's scenarios for one leg, in file order:
// the scored list first, then not_scored entries for that leg.
function scenarios(reqFile, which) {
	const require = createRequire(path.join(npmModules, "noop.js"));
	let YAML;
	try {
		YAML = require("yaml");
	} catch (err) {
		fail(`load the yaml package from ${npmModules} (run install-peers.sh): ${err.message}`);
	}
	const doc = YAML.parse(fs.readFileSync(reqFile, "utf8"));
	const scored = doc?.[which];
	if (!Array.isArray(scored)) fail(`${reqFile} has no "${which}" list`);
	const out = scored.map((name) => `${name}\tscored`);
	for (const entry of doc.not_scored ?? []) {
		if (entry.leg === which) out.push(`${entry.scenario}\tnot_scored:${entry.reason}`);
	}
	process.stdout.write(out.join("\n") + "\n");
}

const TIMESTAMP = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

function* walkChecks(dir) {
	for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
		const p = path.join(dir, ent.name);
		if (ent.isDirectory()) yield* walkChecks(p);
		else if (ent.name === "checks.json") yield p;
	}
}

function scenarioOf(root, checksFile, which) {
	let rel = path.relative(root, path.dirname(checksFile)).split(path.sep).join("/");
	if (!TIMESTAMP.test(rel)) fail(`unexpected result directory name ${rel} (no timestamp suffix)`);
	rel = rel.replace(TIMESTAMP, "");
	if (which === "server") {
		if (!rel.startsWith("server-")) fail(`unexpected server result directory ${rel} (no "server-" prefix)`);
		rel = rel.slice("server-".length);
	}
	return rel;
}

function verdictOf(checks, which) {
	const count = (s) => checks.filter((c) => c.status === s).length;
	const ids = (status) => [...new Set(checks.filter((c) => c.status === status).map((c) => c.id))];
	const v = {
		success: count("SUCCESS"),
		failure: count("FAILURE"),
		warning: count("WARNING"),
		skipped: count("SKIPPED"),
		failedChecks: ids("FAILURE"),
		passedChecks: ids("SUCCESS"),
	};
	const bad = v.failure > 0 || (which === "client" && v.warning > 0);
	v.verdict = bad ? "FAIL" : v.success + v.failure + v.warning === 0 ? "EMPTY" : "PASS";
	return v;
}

// parseSummary reads the suite's "✓ name: N passed, M failed[, K warnings]" lines.
function parseSummary(file) {
	const out = new Map();
	const re = /^([✓✗]) (\S+): (\d+) passed, (\d+) failed/u;
	for (const line of fs.readFileSync(file, "utf8").split("\n")) {
		const m = re.exec(line);
		if (m) out.set(m[2], m[1] === "✓" ? "PASS" : "FAIL");
	}
	return out;
}

function verdicts(root, which, summaryLog) {
	if (!fs.existsSync(root)) fail(`results directory ${root} does not exist (the suite wrote no results)`);
	const result = {};
	for (const file of walkChecks(root)) {
		const name = scenarioOf(root, file, which);
		if (name in result) fail(`two result directories for scenario ${name} under ${root}`);
		const checks = readJSON(file);
		if (!Array.isArray(checks)) fail(`${file} is not a JSON array`);
		result[name] = verdictOf(checks, which);
	}
	if (summaryLog) {
		// Cross-check: what the suite printed must agree with what we derived.
		for (const [name, printed] of parseSummary(summaryLog)) {
			if (!(name in result)) {
				result[name] = { verdict: "MISSING", success: 0, failure: 0, warning: 0, skipped: 0, failedChecks: [], passedChecks: [] };
			}
			const derived = result[name].verdict === "EMPTY" ? "PASS" : result[name].verdict;
			if (derived !== printed && derived !== "MISSING") {
				fail(
					`scenario ${name}: the suite printed ${printed} but checks.json gives ${result[name].verdict}; ` +
						`the verdict rules in conformance-results.mjs no longer match this suite version`,
				);
			}
		}
	}
	const sorted = Object.fromEntries(Object.entries(result).sort(([a], [b]) => a.localeCompare(b)));
	process.stdout.write(JSON.stringify(sorted, null, 2) + "\n");
}

function readList(file) {
	return fs
		.readFileSync(file, "utf8")
		.split("\n")
		.map((l) => l.replace(/#.*/, "").trim())
		.filter(Boolean);
}

function expect(verdictsFile, expectedFile) {
	const got = readJSON(verdictsFile);
	const want = new Map();
	for (const line of readList(expectedFile)) {
		const [name, verdict, ...rest] = line.split(/\s+/);
		if (rest.length || !["PASS", "FAIL", "EMPTY"].includes(verdict)) fail(`${expectedFile}: bad line ${JSON.stringify(line)}`);
		want.set(name, verdict);
	}
	const problems = [];
	for (const [name, verdict] of want) {
		const g = got[name]?.verdict ?? "MISSING";
		if (g !== verdict) problems.push(`  ${name}: expected ${verdict}, got ${g}`);
	}
	for (const name of Object.keys(got)) {
		if (!want.has(name)) problems.push(`  ${name}: ran but is not listed in ${expectedFile}`);
	}
	if (problems.length) {
		process.stdout.write(`baseline differs from ${expectedFile}:\n${problems.join("\n")}\n`);
		process.exit(1);
	}
	process.stdout.write(`baseline matches ${expectedFile} (${want.size} scenarios)\n`);
}

function pad(s, n) {
	return s + " ".repeat(Math.max(0, n - s.length));
}

function describe(v) {
	if (!v) return "MISSING";
	if (v.verdict === "MISSING") return "MISSING";
	const extra = (v.warning ? `, ${v.warning} warn` : "") + (v.skipped ? `, ${v.skipped} skip` : "");
	return `${v.verdict} (${v.success} ok, ${v.failure} fail${extra})`;
}

function compare(labelA, fileA, labelB, fileB, listFile) {
	const a = readJSON(fileA);
	const b = readJSON(fileB);
	const names = readList(listFile).map((l) => l.split(/\s+/)[0]);
	const w = Math.max(8, ...names.map((n) => n.length));
	const rows = [];
	let differ = 0;
	const notes = [];
	for (const name of names) {
		const va = a[name];
		const vb = b[name];
		const ga = va?.verdict ?? "MISSING";
		const gb = vb?.verdict ?? "MISSING";
		let mark = "same";
		if (ga === "MISSING" || gb === "MISSING" || ga !== gb) {
			mark = "DIFFERENT";
			differ++;
			const onlyB = (vb?.failedChecks ?? []).filter((c) => !(va?.failedChecks ?? []).includes(c));
			const onlyA = (va?.failedChecks ?? []).filter((c) => !(vb?.failedChecks ?? []).includes(c));
			if (onlyB.length) notes.push(`  ${name}: failing only in ${labelB}: ${onlyB.join(", ")}`);
			if (onlyA.length) notes.push(`  ${name}: failing only in ${labelA}: ${onlyA.join(", ")}`);
		} else if (va.failure !== vb.failure || va.success !== vb.success || va.warning !== vb.warning) {
			notes.push(`  ${name}: same verdict, different check counts (${describe(va)} vs ${describe(vb)})`);
		}
		// A check that passed in A but not in B did not run, or ran differently,
		// in B; worth knowing even when the verdicts agree.
		const lost = (va?.passedChecks ?? []).filter((c) => !(vb?.passedChecks ?? []).includes(c));
		if (lost.length && vb && vb.verdict !== "MISSING") {
			notes.push(`  ${name}: passed in ${labelA} but not in ${labelB}: ${lost.join(", ")}`);
		}
		rows.push(`${pad(name, w)}  ${pad(describe(va), 30)}  ${pad(describe(vb), 30)}  ${mark}`);
	}
	const header = `${pad("scenario", w)}  ${pad(labelA, 30)}  ${pad(labelB, 30)}  verdict`;
	process.stdout.write([header, "-".repeat(header.length), ...rows].join("\n") + "\n");
	if (notes.length) process.stdout.write(`\nnotes:\n${notes.join("\n")}\n`);
	if (differ) {
		process.stdout.write(`\n${differ} of ${names.length} scenario verdicts differ between ${labelA} and ${labelB}\n`);
		process.exit(1);
	}
	process.stdout.write(`\nall ${names.length} scenario verdicts agree between ${labelA} and ${labelB}\n`);
}

// table prints a Markdown table; with SCENARIOS_TSV (the output of
// "scenarios"), in requirement-set order with each scenario's scoring.
function table(verdictsFile, listFile) {
	const got = readJSON(verdictsFile);
	const order = listFile
		? readList(listFile).map((l) => l.split(/\s+/))
		: Object.keys(got).map((name) => [name, ""]);
	const lines = [
		"| scenario | scored | verdict | checks ok | failed | warnings | skipped |",
		"|---|---|---|---|---|---|---|",
	];
	for (const [name, scoring = ""] of order) {
		const v = got[name] ?? { verdict: "MISSING", success: 0, failure: 0, warning: 0, skipped: 0 };
		lines.push(`| ${name} | ${scoring} | ${v.verdict} | ${v.success} | ${v.failure} | ${v.warning} | ${v.skipped ?? 0} |`);
	}
	process.stdout.write(lines.join("\n") + "\n");
}

const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
	case "scenarios":
		if (args.length !== 2) fail("usage: scenarios REQUIREMENTS_YAML server|client");
		scenarios(args[0], leg(args[1]));
		break;
	case "verdicts":
		if (args.length < 2 || args.length > 3) fail("usage: verdicts RESULTS_DIR server|client [SUMMARY_LOG]");
		verdicts(args[0], leg(args[1]), args[2]);
		break;
	case "expect":
		if (args.length !== 2) fail("usage: expect VERDICTS_JSON EXPECTED_TXT");
		expect(args[0], args[1]);
		break;
	case "compare":
		if (args.length !== 5) fail("usage: compare LABEL_A A.json LABEL_B B.json SCENARIOS_TXT");
		compare(...args);
		break;
	case "table":
		if (args.length < 1 || args.length > 2) fail("usage: table VERDICTS_JSON [SCENARIOS_TSV]");
		table(args[0], args[1]);
		break;
	default:
		fail(`unknown command ${JSON.stringify(cmd)}; want scenarios, verdicts, expect, compare or table`);
}
