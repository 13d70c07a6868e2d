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
// Checks: besides the verdict, every scenario's checks are compared. A check is the suite's
// entry in checks.json, identified by its id; its "status" per scenario is the set of distinct
// statuses the entries with that id have, INFO left out (INFO entries are the suite's log of the
// traffic it saw, "incoming-request" and the like, whose number depends on how chatty the
// transport is, not a result). A check whose entries are all INFO is absent. Two runs agree on a
// scenario when every check id has the same status set in both; a check present in one run and
// absent in the other differs (for example SUCCESS direct and only INFO through the gateway).
//
// Usage (run with Node 22):
//   node conformance-results.mjs scenarios REQUIREMENTS_YAML server|client
//       one line per scenario: "<name>\tscored" or "<name>\tnot_scored:<reason>"
//   node conformance-results.mjs verdicts RESULTS_DIR server|client [SUMMARY_LOG] > verdicts.json
//   node conformance-results.mjs expect VERDICTS_JSON EXPECTED_TXT [EXPECTED_CHECKS_TXT]
//       exit 1 unless every scenario in EXPECTED_TXT ("<name> PASS|FAIL|EMPTY" lines)
//       has that verdict, and VERDICTS_JSON holds no other scenario; with
//       EXPECTED_CHECKS_TXT ("<name> <check-id> <STATUS>[,<STATUS>…]" lines, or
//       "<name> (none)" for a scenario without checks), also unless every scenario's
//       checks are exactly those
//   node conformance-results.mjs baseline VERDICTS_JSON EXPECTED_TXT EXPECTED_CHECKS_TXT DESCRIPTION
//       write both expected files from a run ("# Expected verdicts of DESCRIPTION.")
//   node conformance-results.mjs compare LABEL_A A.json LABEL_B B.json SCENARIOS_TXT [DIFFERENCES_TXT]
//       print a table for the scenarios listed in SCENARIOS_TXT; exit 1 if any
//       verdict differs or is MISSING on either side, or any check's status differs;
//       DIFFERENCES_TXT lists check differences that are expected, one
//       "<name> <check-id> <A statuses> <B statuses>" line each ("-" for absent); each
//       must occur exactly as listed, or the comparison fails too
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
	v.checks = checkStatuses(checks);
	return v;
}

// checkStatuses maps each check id with a non-INFO entry to its sorted distinct non-INFO
// statuses, joined with ",".
function checkStatuses(checks) {
	const by = new Map();
	for (const c of checks) {
		if (c.status === "INFO" || typeof c.id !== "string") continue;
		if (!by.has(c.id)) by.set(c.id, new Set());
		by.get(c.id).add(String(c.status));
	}
	return Object.fromEntries(
		[...by.keys()].sort().map((id) => [id, [...by.get(id)].sort().join(",")]),
	);
}

// checkDiffs lists the check ids whose statuses differ between two verdicts, as
// [id, statusesA, statusesB] with "-" for a check that is absent.
function checkDiffs(va, vb) {
	const a = va?.checks ?? {};
	const b = vb?.checks ?? {};
	const ids = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
	return ids.filter((id) => a[id] !== b[id]).map((id) => [id, a[id] ?? "-", b[id] ?? "-"]);
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
				result[name] = { verdict: "MISSING", success: 0, failure: 0, warning: 0, skipped: 0, failedChecks: [], passedChecks: [], checks: {} };
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

function expect(verdictsFile, expectedFile, expectedChecksFile) {
	const got = readJSON(verdictsFile);
	const checksOK = expectedChecksFile ? expectChecks(got, expectedChecksFile) : true;
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
	if (!checksOK) process.exit(1);
}

// expectChecks reports whether every scenario's checks in got are exactly those listed in file.
function expectChecks(got, file) {
	const want = new Map();
	for (const line of readList(file)) {
		const [name, id, statuses, ...rest] = line.split(/\s+/);
		if (rest.length || !id || (id === "(none)") !== (statuses === undefined)) fail(`${file}: bad line ${JSON.stringify(line)}`);
		if (!want.has(name)) want.set(name, {});
		if (id !== "(none)") want.get(name)[id] = statuses;
	}
	const problems = [];
	for (const [name, checks] of want) {
		if (!(name in got) || got[name].verdict === "MISSING") {
			problems.push(`  ${name}: expected checks, but the scenario did not run`);
			continue;
		}
		for (const [id, a, b] of checkDiffs({ checks }, got[name])) problems.push(`  ${name}: ${id}: expected ${a}, got ${b}`);
	}
	for (const name of Object.keys(got)) {
		if (!want.has(name)) problems.push(`  ${name}: ran but is not listed in ${file}`);
	}
	if (problems.length) {
		process.stdout.write(`checks differ from ${file}:\n${problems.join("\n")}\n`);
		return false;
	}
	process.stdout.write(`checks match ${file} (${want.size} scenarios)\n`);
	return true;
}

// baseline writes the expected verdicts and checks of a run.
function baseline(verdictsFile, verdictsTxt, checksTxt, description) {
	const got = readJSON(verdictsFile);
	const regen = "# Regenerate with INTEROP_UPDATE_EXPECTED=1 after changing a pinned peer version.";
	const v = [`# Expected verdicts of ${description}.`, regen];
	const c = [
		`# Expected checks of ${description}.`,
		"# <scenario> <check id> <its distinct statuses other than INFO>, or <scenario> (none).",
		regen,
	];
	for (const [name, x] of Object.entries(got)) {
		v.push(`${name} ${x.verdict}`);
		const ids = Object.keys(x.checks ?? {});
		if (!ids.length) c.push(`${name} (none)`);
		for (const id of ids) c.push(`${name} ${id} ${x.checks[id]}`);
	}
	fs.writeFileSync(verdictsTxt, v.join("\n") + "\n");
	fs.writeFileSync(checksTxt, c.join("\n") + "\n");
}

function readDifferences(file) {
	const out = new Map();
	if (!file) return out;
	for (const line of readList(file)) {
		const parts = line.split(/\s+/);
		if (parts.length !== 4) fail(`${file}: bad line ${JSON.stringify(line)} (want: scenario check-id statusesA statusesB)`);
		out.set(`${parts[0]} ${parts[1]}`, `${parts[2]} ${parts[3]}`);
	}
	return out;
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

function compare(labelA, fileA, labelB, fileB, listFile, differencesFile) {
	const a = readJSON(fileA);
	const b = readJSON(fileB);
	const names = readList(listFile).map((l) => l.split(/\s+/)[0]);
	const allowed = readDifferences(differencesFile);
	const seenAllowed = new Set();
	const w = Math.max(8, ...names.map((n) => n.length));
	const rows = [];
	let differ = 0;
	let checksDiffer = 0;
	const notes = [];
	const checkNotes = [];
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
		let checkMark = "same";
		if (va && vb && va.verdict !== "MISSING" && vb.verdict !== "MISSING") {
			let unexpected = 0;
			let expected = 0;
			for (const [id, sa, sb] of checkDiffs(va, vb)) {
				const key = `${name} ${id}`;
				if (allowed.get(key) === `${sa} ${sb}`) {
					seenAllowed.add(key);
					expected++;
					checkNotes.push(`  ${name}: ${id}: ${labelA} ${sa}, ${labelB} ${sb} (expected: ${differencesFile})`);
				} else {
					unexpected++;
					checkNotes.push(`  ${name}: ${id}: ${labelA} ${sa}, ${labelB} ${sb}  DIFFERENT`);
				}
			}
			if (unexpected) {
				checksDiffer++;
				checkMark = `${unexpected} DIFFERENT`;
			} else if (expected) {
				checkMark = `same (${expected} expected difference${expected > 1 ? "s" : ""})`;
			}
		} else {
			checkMark = "-";
		}
		rows.push(`${pad(name, w)}  ${pad(describe(va), 30)}  ${pad(describe(vb), 30)}  ${pad(mark, 9)}  ${checkMark}`);
	}
	const header = `${pad("scenario", w)}  ${pad(labelA, 30)}  ${pad(labelB, 30)}  ${pad("verdict", 9)}  checks`;
	process.stdout.write([header, "-".repeat(header.length + 10), ...rows].join("\n") + "\n");
	if (notes.length) process.stdout.write(`\nnotes:\n${notes.join("\n")}\n`);
	if (checkNotes.length) process.stdout.write(`\ncheck statuses that differ (- = absent or only INFO):\n${checkNotes.join("\n")}\n`);
	const stale = [...allowed.keys()].filter((k) => names.includes(k.split(" ")[0]) && !seenAllowed.has(k));
	for (const k of stale) {
		process.stdout.write(`expected difference did not occur as listed in ${differencesFile}: ${k} ${allowed.get(k)}\n`);
	}
	let bad = false;
	if (differ) {
		process.stdout.write(`\n${differ} of ${names.length} scenario verdicts differ between ${labelA} and ${labelB}\n`);
		bad = true;
	}
	if (checksDiffer) {
		process.stdout.write(`${checksDiffer} of ${names.length} scenarios have checks whose status differs between ${labelA} and ${labelB}\n`);
		bad = true;
	}
	if (stale.length) {
		process.stdout.write(`${stale.length} expected differences did not occur: update ${differencesFile}\n`);
		bad = true;
	}
	if (bad) process.exit(1);
	process.stdout.write(`\nall ${names.length} scenarios agree between ${labelA} and ${labelB}, in verdict and in every check's status\n`);
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
		if (args.length < 2 || args.length > 3) fail("usage: expect VERDICTS_JSON EXPECTED_TXT [EXPECTED_CHECKS_TXT]");
		expect(args[0], args[1], args[2]);
		break;
	case "baseline":
		if (args.length !== 4) fail("usage: baseline VERDICTS_JSON EXPECTED_TXT EXPECTED_CHECKS_TXT DESCRIPTION");
		baseline(...args);
		break;
	case "compare":
		if (args.length < 5 || args.length > 6) fail("usage: compare LABEL_A A.json LABEL_B B.json SCENARIOS_TXT [DIFFERENCES_TXT]");
		compare(...args);
		break;
	case "table":
		if (args.length < 1 || args.length > 2) fail("usage: table VERDICTS_JSON [SCENARIOS_TSV]");
		table(args[0], args[1]);
		break;
	default:
		fail(`unknown command ${JSON.stringify(cmd)}; want scenarios, verdicts, expect, baseline, compare or table`);
}
