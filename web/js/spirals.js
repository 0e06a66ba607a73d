// The two-spirals page: an MLP trained live, its decision boundary at y and at x, losses;
// web/js/demo.js runs the loop.
//
// Each animation frame submits a few training steps (one command buffer each, no readback),
// then one snapshot: x exported, a grid evaluated at y and at x, the test set at both, and
// the per-step training losses since the last snapshot, all read back in one transfer.
//
// The controls live in the address (`spirals.html#optimizer=sf_plus&nap=1&...`, see
// web/js/address.js); the query's `steps=N` runs exactly N steps, then publishes
// `window.spiralsResult` and sets `window.spiralsStatus = "done"`.

import { aboutMs, runPage } from "./demo.js";
import { drawLoss } from "./plot.js";

const form = document.getElementById("controls");
let meta = null; // spirals_meta(): optimizers, their tuned lr, defaults

function setup(mod) {
  meta = JSON.parse(mod.spirals_meta());
  const select = document.getElementById("optimizer");
  for (const o of meta.optimizers) select.add(new Option(o, o));
  select.value = meta.defaults.optimizer;
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

/** A new run's state: its full config, the training data, the losses so far. */
function begin(net) {
  return { cfg: JSON.parse(net.config()), data: JSON.parse(net.data()), perStep: [], sampled: [] };
}

function ingest(state, snap) {
  while (state.perStep.length < snap.history_from) state.perStep.push(null);
  state.perStep.push(...snap.train_loss);
  state.sampled.push([snap.step, snap.test_loss_x]);
}

const BLUE = [62, 160, 255];
const ORANGE = [255, 138, 76];

/** P(class 1) on the grid as colors, the training points on top. */
function drawBoundary(ctx, state, prob, grid) {
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

function draw(state) {
  const s = state.last;
  drawBoundary(document.getElementById("boundary-y").getContext("2d"), state, s.prob_y, s.grid);
  drawBoundary(document.getElementById("boundary-x").getContext("2d"), state, s.prob_x, s.grid);
  document.getElementById("cap-y").textContent = `test loss ${fmt(s.test_loss_y)}, accuracy ${fmt(s.test_acc_y)}`;
  document.getElementById("cap-x").textContent = `test loss ${fmt(s.test_loss_x)}, accuracy ${fmt(s.test_acc_x)}`;
  drawLoss(document.getElementById("loss").getContext("2d"), [
    { color: "#3ee0c8", perStep: state.perStep, sampled: state.sampled },
  ], { steps: state.step });
  document.getElementById("loss-x").textContent = fmt(s.test_loss_x);
  document.getElementById("acc-x").textContent = fmt(s.test_acc_x);
  document.getElementById("acc-y").textContent = fmt(s.test_acc_y);
}

/** What the browser test reads. */
function report(state) {
  const losses = state.perStep.filter((v) => v !== null);
  const mean = (a) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
  return {
    config: state.cfg,
    optimizer: state.cfg.optimizer,
    nap: state.cfg.nap,
    train_loss_first: mean(losses.slice(0, 20)),
    train_loss_last: mean(losses.slice(-20)),
    test_loss_x_start: state.sampled[0][1],
    test_loss_x: state.last.test_loss_x,
    test_acc_x: state.last.test_acc_x,
    test_acc_y: state.last.test_acc_y,
  };
}

runPage({
  name: "spirals",
  runControl: "run_steps",
  maxPerFrame: 128,
  frameBand: aboutMs(120),
  setup,
  defaults() {
    if (!form.elements.lr.value) form.elements.lr.value = meta.lr[form.elements.optimizer.value];
  },
  changed(control) {
    if (control.name === "optimizer") form.elements.lr.value = meta.lr[control.value];
  },
  config,
  create: (mod, cfg) => mod.WebSpirals.create(JSON.stringify(cfg)),
  begin,
  ingest,
  draw,
  report,
});
