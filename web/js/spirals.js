// The two-spirals page: an MLP trained live, its decision boundary at y and at x, losses.
//
// Each animation frame submits a few training steps (one command buffer each, no readback),
// then one snapshot: x exported, a grid evaluated at y and at x, the test set at both, and
// the per-step training losses since the last snapshot, all read back in one transfer.
//
// URL parameters preset the controls (`optimizer`, `lr`, `nap`, ...); `steps=N` runs exactly
// N steps, then publishes `window.spiralsResult` and sets `window.spiralsStatus = "done"`.

import { loadSfnap, openAdapter, showNotice } from "./sfnap.js";
import { drawLoss } from "./plot.js";

const MAX_PER_FRAME = 128;
const FRAME_MS = 120;
const form = document.getElementById("controls");
const params = new URLSearchParams(location.search);
const testSteps = params.has("steps") ? Number(params.get("steps")) : null;
window.spiralsStatus = "loading";

let mod = null;
let meta = null;
let adapterName = "";
let net = null;
let generation = 0;
let state = null;
let paused = false;
let busy = false;
let perFrame = 2;
let minFrame = Infinity; // ms, the shortest frame since the last restart

function fail(e) {
  window.spiralsError = showNotice(e);
  window.spiralsStatus = "error";
}

function config() {
  const el = form.elements;
  return {
    optimizer: el.optimizer.value,
    lr: Number(el.lr.value),
    nap: el.nap.checked,
    hidden: Number(el.hidden.value),
    batch: Number(el.batch.value),
    noise: Number(el.noise.value),
    seed: Number(el.seed.value),
  };
}

function buildControls() {
  const select = document.getElementById("optimizer");
  for (const o of meta.optimizers) select.add(new Option(o, o));
  select.value = meta.defaults.optimizer;
  for (const [key, value] of params) {
    const el = form.elements[key];
    if (!el) continue;
    if (el.type === "checkbox") el.checked = value === "1" || value === "true";
    else el.value = value;
  }
  if (!form.elements.lr.value) form.elements.lr.value = meta.lr[select.value];
  form.addEventListener("change", (e) => {
    if (e.target.name === "optimizer") form.elements.lr.value = meta.lr[e.target.value];
    if (e.target.name !== "run_steps") restart();
  });
  document.getElementById("reset").addEventListener("click", restart);
  document.getElementById("pause").addEventListener("click", () => {
    paused = !paused;
    document.getElementById("pause").textContent = paused ? "Resume" : "Pause";
  });
}

async function restart() {
  const gen = ++generation;
  if (net) net.free();
  net = null;
  state = null;
  const cfg = config();
  let created = null;
  try {
    created = await mod.WebSpirals.create(JSON.stringify(cfg));
    const data = JSON.parse(created.data());
    const full = JSON.parse(created.config());
    const first = JSON.parse(await created.snapshot());
    if (gen !== generation) {
      created.free();
      return;
    }
    state = { cfg: full, data, perStep: [], sampled: [], last: null, rate: [], start: performance.now(), step: 0 };
    ingest(first);
  } catch (e) {
    if (created) created.free();
    if (gen === generation) fail(e);
    return;
  }
  document.getElementById("notice").hidden = true;
  net = created;
  perFrame = 2;
  minFrame = Infinity;
  draw();
  window.spiralsStatus = "running";
}

function ingest(snap) {
  state.step = snap.step;
  state.last = snap;
  while (state.perStep.length < snap.history_from) state.perStep.push(null);
  state.perStep.push(...snap.train_loss);
  state.sampled.push([snap.step, snap.test_loss_x]);
  const now = performance.now();
  state.rate.push([now, snap.step]);
  while (state.rate.length > 2 && now - state.rate[0][0] > 2000) state.rate.shift();
}

const BLUE = [62, 160, 255];
const ORANGE = [255, 138, 76];

/** P(class 1) on the grid as colors, the training points on top. */
function drawBoundary(ctx, prob, grid) {
  const { width: w, height: h } = ctx.canvas;
  const img = new ImageData(grid, grid);
  for (let i = 0; i < grid * grid; i++) {
    const p = Number.isFinite(prob[i]) ? prob[i] : 0.5;
    const s = Math.abs(p - 0.5) * 2;
    const c = p > 0.5 ? ORANGE : BLUE;
    for (let k = 0; k < 3; k++) img.data[4 * i + k] = Math.round(13 + (c[k] - 13) * (0.25 + 0.45 * s));
    img.data[4 * i + 3] = 255;
  }
  const off = new OffscreenCanvas(grid, grid);
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, w, h);
  const e = state.cfg.extent;
  const { inputs, labels } = state.data;
  for (let i = 0; i < labels.length; i++) {
    const x = ((inputs[2 * i] + e) / (2 * e)) * w;
    const y = ((e - inputs[2 * i + 1]) / (2 * e)) * h;
    ctx.fillStyle = labels[i] ? "#ffd0b5" : "#c4e2ff";
    ctx.strokeStyle = labels[i] ? "#b34a10" : "#0f5fa8";
    ctx.beginPath();
    ctx.arc(x, y, 2.6, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
}

function fmt(v, digits = 3) {
  return v === null || !Number.isFinite(v) ? "diverged" : v.toFixed(digits);
}

function draw() {
  const s = state.last;
  drawBoundary(document.getElementById("boundary-y").getContext("2d"), s.prob_y, s.grid);
  drawBoundary(document.getElementById("boundary-x").getContext("2d"), s.prob_x, s.grid);
  document.getElementById("cap-y").textContent = `test loss ${fmt(s.test_loss_y)}, accuracy ${fmt(s.test_acc_y)}`;
  document.getElementById("cap-x").textContent = `test loss ${fmt(s.test_loss_x)}, accuracy ${fmt(s.test_acc_x)}`;
  drawLoss(document.getElementById("loss").getContext("2d"), [
    { color: "#3ee0c8", perStep: state.perStep, sampled: state.sampled },
  ], { steps: state.step });
  document.getElementById("step").textContent = state.step;
  document.getElementById("loss-x").textContent = fmt(s.test_loss_x);
  document.getElementById("acc-x").textContent = fmt(s.test_acc_x);
  document.getElementById("acc-y").textContent = fmt(s.test_acc_y);
  const [t0, s0] = state.rate[0];
  const [t1, s1] = state.rate[state.rate.length - 1];
  if (t1 > t0) document.getElementById("rate").textContent = Math.round(((s1 - s0) * 1000) / (t1 - t0));
}

async function frame() {
  const gen = generation;
  const target = testSteps ?? Number(form.elements.run_steps.value);
  if (paused || state.step >= target) return;
  const n = Math.min(perFrame, target - state.step);
  const t0 = performance.now();
  net.step(n);
  const snap = JSON.parse(await net.snapshot());
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
  const losses = state.perStep.filter((v) => v !== null);
  const mean = (a) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
  window.spiralsResult = {
    adapter: adapterName,
    optimizer: state.cfg.optimizer,
    nap: state.cfg.nap,
    steps: state.step,
    steps_per_second: state.step / elapsed,
    train_loss_first: mean(losses.slice(0, 20)),
    train_loss_last: mean(losses.slice(-20)),
    test_loss_x_start: state.sampled[0][1],
    test_loss_x: state.last.test_loss_x,
    test_acc_x: state.last.test_acc_x,
    test_acc_y: state.last.test_acc_y,
  };
  window.spiralsStatus = "done";
}

function loop() {
  if (net && state && !busy) {
    busy = true;
    const gen = generation;
    frame()
      .catch((e) => {
        if (gen !== generation) return;
        net.free();
        net = null;
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
  meta = JSON.parse(mod.spirals_meta());
  buildControls();
  await restart();
  requestAnimationFrame(loop);
}

main();
