// The plasticity page: two networks (plain and NaP) on the continual label-reset stream.
//
// Each animation frame submits a few steps of both networks (no readback), then one snapshot
// of both: per-step batch stats, end-of-task accuracies and the hidden weights (for norms).
//
// URL parameters preset the controls; `steps=N` runs exactly N steps, then publishes
// `window.plasticityResult` and sets `window.plasticityStatus = "done"`.

import { loadSfnap, openAdapter, showNotice } from "./sfnap.js";

const COLORS = { plain: "#ff8a4c", nap: "#3ee0c8" };
const NAMES = ["plain", "nap"];
const MAX_PER_FRAME = 128;
const FRAME_MS = 120;
const form = document.getElementById("controls");
const params = new URLSearchParams(location.search);
const testSteps = params.has("steps") ? Number(params.get("steps")) : null;
window.plasticityStatus = "loading";

let mod = null;
let adapterName = "";
let run = null;
let generation = 0;
let state = null;
let paused = false;
let busy = false;
let perFrame = 2;
let minFrame = Infinity; // ms, the shortest frame since the last restart

function fail(e) {
  window.plasticityError = showNotice(e);
  window.plasticityStatus = "error";
}

function config() {
  const el = form.elements;
  return {
    inputs: Number(el.inputs.value),
    task_steps: Number(el.task_steps.value),
    hidden: Number(el.hidden.value),
    batch: Number(el.batch.value),
    lr: Number(el.lr.value),
    seed: Number(el.seed.value),
  };
}

function buildControls() {
  for (const [key, value] of params) {
    if (form.elements[key]) form.elements[key].value = value;
  }
  form.addEventListener("change", (e) => {
    if (e.target.name !== "run_tasks") restart();
  });
  document.getElementById("reset").addEventListener("click", restart);
  document.getElementById("pause").addEventListener("click", () => {
    paused = !paused;
    document.getElementById("pause").textContent = paused ? "Resume" : "Pause";
  });
}

async function restart() {
  const gen = ++generation;
  if (run) run.free();
  run = null;
  state = null;
  let created = null;
  try {
    created = await mod.WebPlasticity.create(JSON.stringify(config()));
    const cfg = JSON.parse(created.config());
    const first = JSON.parse(await created.snapshot());
    if (gen !== generation) {
      created.free();
      return;
    }
    state = { cfg, step: 0, last: null, rate: [], start: performance.now(), nets: {} };
    for (const n of NAMES) state.nets[n] = { batchAcc: [], tasks: [], norms: [], efflr: [] };
    ingest(first);
  } catch (e) {
    if (created) created.free();
    if (gen === generation) fail(e);
    return;
  }
  document.getElementById("notice").hidden = true;
  run = created;
  perFrame = 2;
  minFrame = Infinity;
  draw();
  window.plasticityStatus = "running";
}

function ingest(snap) {
  state.step = snap.step;
  state.last = snap;
  for (const n of snap.nets) {
    const s = state.nets[n.name];
    while (s.batchAcc.length < snap.history_from) s.batchAcc.push(null);
    s.batchAcc.push(...n.train_acc);
    s.tasks = n.task_acc;
    s.norms.push([snap.step, n.norms]);
    s.efflr.push([snap.step, n.effective_lr]);
  }
  const now = performance.now();
  state.rate.push([now, snap.step]);
  while (state.rate.length > 2 && now - state.rate[0][0] > 2000) state.rate.shift();
}

/** Lines on a plain chart: series [{color, points: [x, y][], width, dash}]. */
function chart(ctx, series, { xmax, ymin, ymax, log = false, marks = [], xlabel = "" }) {
  const { width: w, height: h } = ctx.canvas;
  const pad = { l: 52, r: 12, t: 10, b: 26 };
  ctx.fillStyle = "#0d1119";
  ctx.fillRect(0, 0, w, h);
  const f = (v) => (log ? Math.log10(v) : v);
  const [lo, hi] = [f(ymin), f(ymax)];
  const px = (k) => pad.l + (k / Math.max(xmax, 1e-9)) * (w - pad.l - pad.r);
  const py = (v) => pad.t + ((hi - f(v)) / (hi - lo || 1)) * (h - pad.t - pad.b);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#8b97aa";
  ctx.strokeStyle = "#263044";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = log ? 10 ** (lo + ((hi - lo) * i) / 4) : ymin + ((ymax - ymin) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, py(v));
    ctx.lineTo(w - pad.r, py(v));
    ctx.stroke();
    ctx.fillText(log ? v.toExponential(1) : v.toFixed(v < 10 ? 2 : 0), 4, py(v) + 4);
  }
  for (const k of [0, xmax / 2, xmax]) ctx.fillText(`${Math.round(k)}${xlabel}`, Math.min(px(k), w - 60), h - 8);
  ctx.strokeStyle = "#263044";
  for (const m of marks) {
    ctx.beginPath();
    ctx.moveTo(px(m), pad.t);
    ctx.lineTo(px(m), h - pad.b);
    ctx.stroke();
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 2;
    ctx.globalAlpha = s.alpha || 1;
    ctx.setLineDash(s.dash || []);
    const every = Math.max(1, Math.floor(s.points.length / w));
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < s.points.length; i += every) {
      const [x, y] = s.points[i];
      if (y === null || !Number.isFinite(y) || (log && y <= 0)) {
        open = false;
        continue;
      }
      if (open) ctx.lineTo(px(x), py(y));
      else ctx.moveTo(px(x), py(y));
      open = true;
    }
    ctx.stroke();
    if (s.dots) {
      ctx.fillStyle = s.color;
      for (const [x, y] of s.points) {
        ctx.beginPath();
        ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
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

function draw() {
  const ts = state.cfg.task_steps;
  const tasksDone = Math.floor(state.step / ts);
  const taskTarget = testSteps !== null ? Math.ceil(testSteps / ts) : Number(form.elements.run_tasks.value);
  chart(
    document.getElementById("tasks").getContext("2d"),
    NAMES.map((n) => ({ color: COLORS[n], dots: true, points: state.nets[n].tasks.map((a, i) => [i + 1, a]) })),
    { xmax: Math.max(taskTarget, tasksDone, 1), ymin: 0, ymax: 1, xlabel: " tasks" }
  );
  const xmax = Math.max(state.step, 1);
  const marks = [];
  for (let k = ts; k <= state.step; k += ts) marks.push(k);
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
  chart(document.getElementById("norms").getContext("2d"), norms, {
    xmax,
    ymin: 0,
    ymax: Math.max(...nv, 1) * 1.1,
  });
  const eff = layerSeries("efflr");
  const ev = eff.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  chart(document.getElementById("efflr").getContext("2d"), eff, {
    xmax,
    ymin: Math.min(...ev) / 1.5,
    ymax: Math.max(...ev) * 1.5,
    log: true,
  });
  chart(
    document.getElementById("batch").getContext("2d"),
    NAMES.map((n) => ({
      color: COLORS[n],
      width: 1,
      alpha: 0.8,
      points: state.nets[n].batchAcc.map((a, k) => [k, a]),
    })),
    { xmax, ymin: 0, ymax: 1, marks }
  );
  document.getElementById("step").textContent = state.step;
  document.getElementById("task").textContent = tasksDone;
  document.getElementById("acc-plain").textContent = fmt(later(state.nets.plain.tasks));
  document.getElementById("acc-nap").textContent = fmt(later(state.nets.nap.tasks));
  const [t0, s0] = state.rate[0];
  const [t1, s1] = state.rate[state.rate.length - 1];
  if (t1 > t0) document.getElementById("rate").textContent = Math.round(((s1 - s0) * 1000) / (t1 - t0));
}

async function frame() {
  const gen = generation;
  const target = testSteps ?? Number(form.elements.run_tasks.value) * state.cfg.task_steps;
  if (paused || state.step >= target) return;
  const n = Math.min(perFrame, target - state.step);
  const t0 = performance.now();
  run.step(n);
  const snap = JSON.parse(await run.snapshot());
  if (gen !== generation) return;
  const dt = performance.now() - t0;
  if (n === perFrame) {
    // Frames of about FRAME_MS, or longer where the snapshot alone (about the shortest frame
    // seen) takes long, as on CPU adapters: then more steps go between two snapshots.
    minFrame = Math.min(minFrame, dt);
    const goal = Math.max(FRAME_MS, 2.5 * minFrame);
    if (dt < 0.6 * goal) perFrame = Math.min(MAX_PER_FRAME, Math.ceil(perFrame * 1.3));
    else if (dt > 1.5 * goal) perFrame = Math.max(1, Math.floor(perFrame * 0.7));
  }
  ingest(snap);
  draw();
  if (testSteps !== null && state.step >= testSteps) report();
}

/** What the browser test reads. */
function report() {
  const elapsed = (performance.now() - state.start) / 1000;
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
  window.plasticityResult = {
    adapter: adapterName,
    config: state.cfg,
    steps: state.step,
    steps_per_second: state.step / elapsed,
    plain: net("plain"),
    nap: net("nap"),
  };
  window.plasticityStatus = "done";
}

function loop() {
  if (run && state && !busy) {
    busy = true;
    const gen = generation;
    frame()
      .catch((e) => {
        if (gen !== generation) return;
        run.free();
        run = null;
        fail(e);
      })
      .finally(() => (busy = false));
  }
  requestAnimationFrame(loop);
}

async function main() {
  try {
    mod = await loadSfnap();
    adapterName = await openAdapter(mod);
  } catch (e) {
    document.getElementById("adapter").textContent = "no WebGPU";
    fail(e);
    return;
  }
  document.getElementById("adapter").textContent = "WebGPU adapter: " + adapterName;
  buildControls();
  await restart();
  requestAnimationFrame(loop);
}

main();
