// The optimizer race page: its controls, state and drawing; web/js/demo.js runs the loop.
//
// Each animation frame submits a few steps of every racer (one batched dispatch per step
// per optimizer, no readback), then one snapshot readback of every racer's y, x and new
// per-step losses.
//
// The controls live in the address (`race.html#function=beale&points=256&...`, see
// web/js/address.js); the query's `steps=N` runs exactly N steps, then publishes
// `window.raceResult` and sets `window.raceStatus = "done"`.

import { runPage } from "./demo.js";
import { drawLoss, drawPanel, fieldImage } from "./plot.js";

const COLORS = { sgd_sf: "#ff8a4c", adamw_sf: "#3ee0c8", sf_plus: "#ffd43b", adamw: "#e07bff" };
const LABELS = { sgd_sf: "SGD-SF", adamw_sf: "AdamW-SF", sf_plus: "SF+", adamw: "AdamW" };
const TRAIL = 400; // frames of x kept per point
// Points drawn with a trail: with more points, an evenly spaced sample of them. Every
// trail is stroked again each frame, so thousands of them would cost the page far more
// than the optimizer steps do.
const MAX_TRAILS = 128;

const form = document.getElementById("controls");
let mod = null;
let meta = null; // race_functions(): racers, functions, defaults
const backgrounds = new Map();
const panels = {};

function functionMeta(name) {
  return meta.functions.find((f) => f.name === name);
}

/** From the module's metadata: the select of functions, a row and a panel per racer. */
function setup(wasm) {
  mod = wasm;
  meta = JSON.parse(mod.race_functions());
  const select = document.getElementById("function");
  for (const f of meta.functions) select.add(new Option(f.name.replace("_", " "), f.name));
  const body = document.getElementById("racers");
  const plots = document.getElementById("plots");
  for (const name of meta.racers) {
    const row = body.insertRow();
    row.innerHTML =
      `<td><span class="swatch" style="background:${COLORS[name]}"></span>${LABELS[name]}</td>` +
      `<td><input name="lr_${name}" type="number" min="0" step="any"></td><td id="loss_${name}">–</td>`;
    const fig = document.createElement("figure");
    fig.innerHTML = `<figcaption><b>${LABELS[name]}</b> <code>${name}</code> <span id="cap_${name}"></span></figcaption>`;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 400;
    fig.append(canvas);
    plots.insertBefore(fig, plots.lastElementChild);
    panels[name] = canvas.getContext("2d");
  }
}

/** Puts the function's tuned learning rates into the lr fields (with `force`, all of them). */
function setDefaultRates(force) {
  const f = functionMeta(form.elements.function.value);
  for (const name of meta.racers) {
    const input = form.elements[`lr_${name}`];
    if (force || !input.value) input.value = f.lr[name];
  }
}

/** The race config from the controls. */
function config() {
  const data = new FormData(form);
  const lr = {};
  for (const name of meta.racers) lr[name] = Number(data.get(`lr_${name}`));
  return {
    function: data.get("function"),
    points: Number(data.get("points")),
    beta: Number(data.get("beta")),
    warmup_steps: Number(data.get("warmup_steps")),
    total_steps: Number(data.get("total_steps")),
    schedule: data.get("schedule"),
    lr,
  };
}

/** A new race's state: per racer, the losses so far and the trails of x of up to MAX_TRAILS points. */
function begin(race, cfg) {
  const f = functionMeta(cfg.function);
  if (!backgrounds.has(f.name)) backgrounds.set(f.name, fieldImage(mod, f.name, 400));
  const stride = Math.ceil(cfg.points / MAX_TRAILS);
  // `config`: the race's config as the module took it (what the browser tests check).
  const state = { cfg, config: JSON.parse(race.config()), f, stride, perStep: {}, sampled: {}, trails: {} };
  for (const name of meta.racers) {
    state.perStep[name] = [];
    state.sampled[name] = [];
    state.trails[name] = Array.from({ length: Math.ceil(cfg.points / stride) }, () => []);
  }
  return state;
}

/** Adds a snapshot's positions and losses to the race's state. */
function ingest(state, snap) {
  for (const r of snap.racers) {
    const hist = state.perStep[r.name];
    while (hist.length < r.history_from) hist.push(null); // steps the device ring no longer held
    hist.push(...r.history);
    state.sampled[r.name].push([snap.step, r.loss_x]);
    const trails = state.trails[r.name];
    for (let i = 0; i < trails.length; i++) {
      const p = i * state.stride;
      trails[i].push(r.x[2 * p], r.x[2 * p + 1]);
      if (trails[i].length > 2 * TRAIL) trails[i].splice(0, 2);
    }
  }
}

function fmt(v) {
  return v === null || !Number.isFinite(v) ? "diverged" : v.toExponential(2);
}

function draw(state) {
  const { f, last } = state;
  for (const r of last.racers) {
    drawPanel(panels[r.name], {
      background: backgrounds.get(f.name),
      view: f.view,
      minimum: f.minimum,
      trails: state.trails[r.name],
      x: r.x,
      y: r.y,
      color: COLORS[r.name],
    });
    document.getElementById(`loss_${r.name}`).textContent = fmt(r.loss_x);
    document.getElementById(`cap_${r.name}`).textContent = `mean loss at x ${fmt(r.loss_x)}`;
  }
  const series = meta.racers.map((name) => ({
    color: COLORS[name],
    perStep: state.perStep[name],
    sampled: state.sampled[name],
  }));
  drawLoss(document.getElementById("loss").getContext("2d"), series, {
    steps: state.step,
    mark: state.cfg.total_steps,
  });
}

/** What the browser test reads: every racer's mean loss at x at the start and now. */
function report(state) {
  return {
    function: state.cfg.function,
    points: state.cfg.points,
    config: state.config,
    racers: state.last.racers.map((r) => ({
      name: r.name,
      start: state.sampled[r.name][0][1],
      end: r.loss_x,
      end_y: r.loss_y,
    })),
  };
}

runPage({
  name: "race",
  runControl: "run_steps",
  maxPerFrame: 64,
  frameBand: () => [20, 40], // ms
  setup,
  defaults: () => setDefaultRates(false), // lr fields not set by the URL take the function's tuned rates
  changed(control) {
    if (control.name === "function") setDefaultRates(true);
  },
  config,
  create: (mod, cfg) => mod.WebRace.create(JSON.stringify(cfg)),
  begin,
  ingest,
  draw,
  report,
});
