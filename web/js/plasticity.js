// The plasticity page: three networks (AdamW without and with NaP, adamw_sf with NaP and an
// averaging window) on the continual label-reset stream; web/js/demo.js runs the loop.
//
// Each animation frame submits a few steps of every network (no readback), then one snapshot
// of all: per-step batch stats, end-of-task accuracies and the hidden weights (for norms).
//
// The controls live in the address (`plasticity.html#task_steps=50&sf_window=10&...`, see
// web/js/address.js); the query's `steps=N` runs exactly N steps, then publishes
// `window.plasticityResult` and sets `window.plasticityStatus = "done"`.

import { aboutMs, runPage } from "./demo.js";
import { drawChart } from "./plot.js";

const COLORS = { plain: "#ff8a4c", nap: "#3ee0c8", nap_sf: "#c58cff" };
const NAMES = ["plain", "nap", "nap_sf"];
const form = document.getElementById("controls");

function config() {
  const el = form.elements;
  return {
    inputs: Number(el.inputs.value),
    task_steps: Number(el.task_steps.value),
    hidden: Number(el.hidden.value),
    batch: Number(el.batch.value),
    lr: Number(el.lr.value),
    plain_norm: el.plain_norm.checked,
    sf_lr: Number(el.sf_lr.value),
    sf_window: Number(el.sf_window.value),
    sf_beta: Number(el.sf_beta.value),
    seed: Number(el.seed.value),
  };
}

/** A new run's state: its full config, and per network the history of its stats. */
function begin(run) {
  const state = { cfg: JSON.parse(run.config()), nets: {} };
  for (const n of NAMES) state.nets[n] = { batchAcc: [], tasks: [], norms: [], efflr: [] };
  return state;
}

function ingest(state, snap) {
  for (const n of snap.nets) {
    const s = state.nets[n.name];
    while (s.batchAcc.length < snap.history_from) s.batchAcc.push(null);
    s.batchAcc.push(...n.train_acc);
    s.tasks = n.task_acc;
    s.norms.push([snap.step, n.norms]);
    s.efflr.push([snap.step, n.effective_lr]);
  }
}

/** Mean end-of-task accuracy over the second half of the finished tasks. */
function later(tasks) {
  if (tasks.length < 2) return null;
  const tail = tasks.slice(Math.floor(tasks.length / 2));
  return tail.reduce((a, b) => a + b, 0) / tail.length;
}

function fmt(v) {
  return v === null || !Number.isFinite(v) ? "–" : v.toFixed(3);
}

function draw(state, target) {
  const ts = state.cfg.task_steps;
  const tasksDone = Math.floor(state.step / ts);
  drawChart(
    document.getElementById("tasks").getContext("2d"),
    NAMES.map((n) => ({ color: COLORS[n], dots: true, points: state.nets[n].tasks.map((a, i) => [i + 1, a]) })),
    { xmax: Math.max(Math.ceil(target / ts), tasksDone, 1), ymin: 0, ymax: 1, xlabel: " tasks" }
  );
  const xmax = Math.max(state.step, 1);
  const marks = [];
  for (let k = ts; k <= state.step; k += ts) marks.push(k);
  // Both layers of every network: the first solid, the second dashed.
  const layerSeries = (key) =>
    NAMES.flatMap((n) =>
      [0, 1].map((l) => ({
        color: COLORS[n],
        dash: l ? [5, 4] : [],
        points: state.nets[n][key].map(([k, v]) => [k, v[l]]),
      }))
    );
  const norms = layerSeries("norms");
  const nv = norms.flatMap((s) => s.points.map((p) => p[1]));
  drawChart(document.getElementById("norms").getContext("2d"), norms, {
    xmax,
    ymin: 0,
    ymax: Math.max(...nv, 1) * 1.1,
  });
  const eff = layerSeries("efflr");
  const ev = eff.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  drawChart(document.getElementById("efflr").getContext("2d"), eff, {
    xmax,
    ymin: Math.min(...ev) / 1.5,
    ymax: Math.max(...ev) * 1.5,
    log: true,
  });
  drawChart(
    document.getElementById("batch").getContext("2d"),
    NAMES.map((n) => ({
      color: COLORS[n],
      width: 1,
      alpha: 0.8,
      points: state.nets[n].batchAcc.map((a, k) => [k, a]),
    })),
    { xmax, ymin: 0, ymax: 1, marks }
  );
  document.getElementById("task").textContent = tasksDone;
  for (const n of NAMES) document.getElementById(`acc-${n}`).textContent = fmt(later(state.nets[n].tasks));
}

/** What the browser test reads. */
function report(state) {
  const net = (n) => {
    const s = state.nets[n];
    const last = state.last.nets.find((x) => x.name === n);
    return {
      task_acc: s.tasks,
      later: later(s.tasks),
      norms_start: s.norms[0][1],
      norms_end: last.norms,
      effective_lr_start: s.efflr[0][1],
      effective_lr_end: last.effective_lr,
    };
  };
  return { config: state.cfg, plain: net("plain"), nap: net("nap"), nap_sf: net("nap_sf") };
}

runPage({
  name: "plasticity",
  runControl: "run_tasks",
  runSteps: (state) => Number(form.elements.run_tasks.value) * state.cfg.task_steps,
  maxPerFrame: 128,
  frameBand: aboutMs(120),
  config,
  create: (mod, cfg) => mod.WebPlasticity.create(JSON.stringify(cfg)),
  begin,
  ingest,
  draw,
  report,
});
