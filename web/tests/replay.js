// Runs every golden replay case on the browser's WebGPU adapter through the wasm
// `replay`, checks each with the wasm `check_replay` (the same `check_within` as the
// native tests), and publishes the outcome as `window.replayResults` for the browser test.

import { loadSfnap, openAdapter, showNotice } from "../js/sfnap.js";

const body = document.getElementById("results");

function row(name, ok, ms, detail) {
  const tr = body.insertRow();
  tr.insertCell().textContent = name;
  const cell = tr.insertCell();
  cell.textContent = ok ? "pass" : "FAIL";
  cell.className = ok ? "pass" : "fail";
  tr.insertCell().textContent = `${ms.toFixed(0)} ms`;
  tr.insertCell().textContent = detail;
}

async function run() {
  const mod = await loadSfnap();
  const adapter = await openAdapter(mod);
  document.getElementById("adapter").textContent = "WebGPU adapter: " + adapter;
  const index = await fetch("../pkg/golden/index.json");
  if (!index.ok) throw new Error(`no golden cases at pkg/golden/index.json (${index.status}): run \`make web\``);
  const names = await index.json();
  const cases = [];
  for (const name of names) {
    const t0 = performance.now();
    let ok = false;
    let detail = "";
    try {
      const text = await (await fetch(`../pkg/golden/${name}`)).text();
      const result = await mod.replay(text);
      mod.check_replay(text, result);
      ok = true;
      detail = "y, x and z within tolerance";
    } catch (e) {
      detail = e && e.message ? e.message : String(e);
    }
    const ms = performance.now() - t0;
    row(name, ok, ms, detail);
    cases.push({ name, ok, ms, detail });
  }
  const failed = cases.filter((c) => !c.ok).length;
  document.getElementById("summary").textContent = `${cases.length - failed} passed, ${failed} failed on ${adapter}`;
  return { adapter, cases };
}

run()
  .then((results) => (window.replayResults = results))
  .catch((e) => {
    window.replayResults = { adapter: null, cases: [], error: showNotice(e) };
  });
