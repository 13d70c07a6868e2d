// inspector-check.mjs: assertions on the JSON the Inspector CLI prints with
// --format json ({"result": ...} on success).
//
//   node inspector-check.mjs assert FILE EXPR
//       exit 1 unless the JavaScript expression EXPR is true, with r bound to
//       the parsed JSON of FILE (e.g. 'r.result.content[0].text === "Echo: x"')
//   node inspector-check.mjs same FILE_A FILE_B KEY
//       exit 1 unless r.result[KEY] is deeply equal in both files (key order
//       ignored); prints which entries differ by name or uri

import fs from "node:fs";

function load(file) {
	const text = fs.readFileSync(file, "utf8");
	try {
		return JSON.parse(text);
	} catch (err) {
		process.stdout.write(`${file} is not JSON (${err.message}); it starts: ${JSON.stringify(text.slice(0, 300))}\n`);
		process.exit(1);
	}
}

function canonical(v) {
	if (Array.isArray(v)) return v.map(canonical);
	if (v && typeof v === "object") {
		return Object.fromEntries(
			Object.keys(v)
				.sort()
				.map((k) => [k, canonical(v[k])]),
		);
	}
	return v;
}

function label(entry) {
	return entry?.name ?? entry?.uri ?? entry?.uriTemplate ?? JSON.stringify(entry).slice(0, 80);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "assert" && args.length === 2) {
	const r = load(args[0]);
	let ok;
	try {
		ok = new Function("r", `return (${args[1]});`)(r);
	} catch (err) {
		ok = false;
		process.stdout.write(`evaluating ${args[1]}: ${err.message}\n`);
	}
	if (!ok) {
		process.stdout.write(`assertion failed: ${args[1]}\n${args[0]} holds: ${JSON.stringify(r).slice(0, 1500)}\n`);
		process.exit(1);
	}
} else if (cmd === "same" && (args.length === 3 || args.length === 4)) {
	// An optional fourth argument names entries that may appear only in FILE_B (comma-separated).
	const [fa, fb, key, extraArg] = args;
	const extra = new Set((extraArg ?? "").split(",").filter(Boolean));
	const a = load(fa).result?.[key];
	const b = load(fb).result?.[key]?.filter((e) => !extra.has(label(e)));
	if (!Array.isArray(a) || !Array.isArray(b)) {
		process.stdout.write(`result.${key} is not an array in both ${fa} and ${fb}\n`);
		process.exit(1);
	}
	const ca = JSON.stringify(canonical(a));
	const cb = JSON.stringify(canonical(b));
	if (ca !== cb) {
		const sa = new Map(a.map((e) => [label(e), JSON.stringify(canonical(e))]));
		const sb = new Map(b.map((e) => [label(e), JSON.stringify(canonical(e))]));
		const lines = [];
		for (const [n, v] of sa) {
			if (!sb.has(n)) lines.push(`  only in ${fa}: ${n}`);
			else if (sb.get(n) !== v) lines.push(`  ${n} differs:\n    ${v}\n    ${sb.get(n)}`);
		}
		for (const n of sb.keys()) if (!sa.has(n)) lines.push(`  only in ${fb}: ${n}`);
		if (!lines.length) lines.push("  same entries in a different order");
		process.stdout.write(`result.${key} differs:\n${lines.join("\n")}\n`);
		process.exit(1);
	}
} else {
	process.stderr.write("usage: inspector-check.mjs assert FILE EXPR | same FILE_A FILE_B KEY [EXTRA,...]\n");
	process.exit(2);
}
