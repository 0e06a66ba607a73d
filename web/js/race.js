// The optimizer race page: controls, the animation loop, and what the browser test reads.
//
// Each animation frame submits a few steps of every racer (one batched dispatch per step
// per optimizer, no readback), then one snapshot readback of every racer's y, x and new
// per-step losses. Steps per frame adapt to keep frames short on slow (CPU) adapters.
//
// URL parameters preset the controls (`function`, `points`, `beta`, ...); `steps=N` runs
// exactly N steps, then publishes `window.raceResult` and sets `window.raceStatus = "done"`.

import { loadSfnap, openAdapter, showNotice } from "./sfnap.js";
import { drawLoss, drawPanel, fieldImage } from "./plot.js";

const COLORS = { sgd_sf: "#ff8a4c", adamw_sf: "#3ee0c8", sf_plus: "#ffd43b", adamw: "#e07bff" };
const LABELS = { sgd_sf: "SGD-SF", adamw_sf: "AdamW-SF", sf_plus: "SF+", adamw: "AdamW" };
const TRAIL = 400; // frames of x kept per point
const MAX_PER_FRAME = 64;

const form = document.getElementById("controls");
const params = new URLSearchParams(location.search);
const testSteps = params.has("steps") ? Number(params.get("steps")) : null;
window.raceStatus = "loading";

let mod = null;
let meta = null; // race_functions(): racers, functions, defaults
let adapterName = "";
let race = null;
let generation = 0;
let state = null;
let paused = false;
let busy = false;
let perFrame = 2;
const backgrounds = new Map();
const panels = {};

function fail(e) {
  window.raceError = showNotice(e);
  window.raceStatus = "error";
}

function functionMeta(name) {
  return meta.functions.find((f) => f.name === name);
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

function buildControls() {
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
  for (const [key, value] of params) {
    if (form.elements[key]) form.elements[key].value = value;
  }
  setDefaultRates(false); // lr fields not set by the URL take the function's tuned rates
  form.addEventListener("change", (e) => {
    if (e.target.name === "function") setDefaultRates(true);
    if (e.target.name !== "run_steps") restart();
  });
  document.getElementById("reset").addEventListener("click", restart);
  document.getElementById("pause").addEventListener("click", () => {
    paused = !paused;
    document.getElementById("pause").textContent = paused ? "Resume" : "Pause";
  });
}

/** Puts the function's tuned learning rates into the lr fields. */
function setDefaultRates(force) {
  const f = functionMeta(form.elements.function.value);
  for (const name of meta.racers) {
    const input = form.elements[`lr_${name}`];
    if (force || !input.value) input.value = f.lr[name];
  }
}

/** Starts a new race from the controls; the animation picks it up once its first snapshot is in. */
async function restart() {
  const gen = ++generation;
  if (race) race.free();
  race = null;
  state = null;
  const cfg = config();
  let created = null;
  try {
    created = await mod.WebRace.create(JSON.stringify(cfg));
    const first = JSON.parse(await created.snapshot());
    if (gen !== generation) {
      created.free();
      return;
    }
    const f = functionMeta(cfg.function);
    if (!backgrounds.has(f.name)) backgrounds.set(f.name, fieldImage(mod, f.name, 400));
    state = { cfg, f, step: 0, perStep: {}, sampled: {}, trails: {}, last: null, rate: [], start: performance.now() };
    for (const name of meta.racers) {
      state.perStep[name] = [];
      state.sampled[name] = [];
      state.trails[name] = Array.from({ length: cfg.points }, () => []);
    }
    ingest(first, gen);
  } catch (e) {
    if (created) created.free();
    if (gen === generation) fail(e);
    return;
  }
  document.getElementById("notice").hidden = true;
  race = created;
  perFrame = 2;
  draw();
  window.raceStatus = "running";
}

/** Adds a snapshot's positions and losses to the page's state. */
function ingest(snap, gen) {
  if (gen !== generation) return;
  state.step = snap.step;
  state.last = snap;
  for (const r of snap.racers) {
    const hist = state.perStep[r.name];
    while (hist.length < r.history_from) hist.push(null); // steps the device ring no longer held
    hist.push(...r.history);
    state.sampled[r.name].push([snap.step, r.loss_x]);
    const trails = state.trails[r.name];
    for (let i = 0; i < trails.length; i++) {
      trails[i].push(r.x[2 * i], r.x[2 * i + 1]);
      if (trails[i].length > 2 * TRAIL) trails[i].splice(0, 2);
    }
  }
  const now = performance.now();
  state.rate.push([now, snap.step]);
  while (state.rate.length > 2 && now - state.rate[0][0] > 2000) state.rate.shift();
}

function fmt(v) {
  return v === null || !Number.isFinite(v) ? "diverged" : v.toExponential(2);
}

function draw() {
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
  document.getElementById("step").textContent = state.step;
  const [t0, s0] = state.rate[0];
  const [t1, s1] = state.rate[state.rate.length - 1];
  if (t1 > t0) document.getElementById("rate").textContent = Math.round(((s1 - s0) * 1000) / (t1 - t0));
  document.getElementById("per-frame").textContent = perFrame;
}

/** One animation frame: a few steps, one readback, one redraw. */
async function frame() {
  const gen = generation;
  const target = testSteps ?? Number(form.elements.run_steps.value);
  if (paused || state.step >= target) return;
  const n = Math.min(perFrame, target - state.step);
  const t0 = performance.now();
  race.step(n);
  const snap = JSON.parse(await race.snapshot());
  if (gen !== generation) return;
  const dt = performance.now() - t0;
  if (n === perFrame) {
    if (dt < 20) perFrame = Math.min(MAX_PER_FRAME, Math.ceil(perFrame * 1.3));
    else if (dt > 40) perFrame = Math.max(1, Math.floor(perFrame * 0.7));
  }
  ingest(snap, gen);
  draw();
  if (testSteps !== null && state.step >= testSteps) report();
}

/** What the browser test reads: every racer's mean loss at x at the start and now. */
function report() {
  const elapsed = (performance.now() - state.start) / 1000;
  window.raceResult = {
    adapter: adapterName,
    function: state.cfg.function,
    points: state.cfg.points,
    steps: state.step,
    steps_per_second: state.step / elapsed,
    racers: state.last.racers.map((r) => ({
      name: r.name,
      start: state.sampled[r.name][0][1],
      end: r.loss_x,
      end_y: r.loss_y,
    })),
  };
  window.raceStatus = "done";
}

function loop() {
  if (race && state && !busy) {
    busy = true;
    const gen = generation;
    frame()
      .catch((e) => {
        // A failed step stops the race (it would fail again); a change of controls restarts it.
        if (gen !== generation) return;
        race.free();
        race = null;
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
  meta = JSON.parse(mod.race_functions());
  buildControls();
  await restart();
  requestAnimationFrame(loop);
}

main();
