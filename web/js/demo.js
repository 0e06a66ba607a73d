// The loop the demo pages (race, spirals, plasticity) share: start-up, restarts, adaptive
// steps per frame, pause and reset, and what the browser tests read.
//
// A page's wasm object steps without readback (`step(n)`) and reads back its state in one
// transfer (`snapshot()`, JSON). Each animation frame submits a few steps, then one snapshot,
// and redraws. A restart bumps the generation, so snapshots of a replaced run are dropped.
//
// The page's settings live in its address (web/js/address.js): restored from the fragment (or
// the query) at start-up, written back into the fragment on every change.
//
// Test hooks (web/tests/run.py), for a page named e.g. "race": `window.raceStatus` ("loading",
// "running", "done" or "error"), `window.raceResult` (the page's report with the adapter,
// steps and steps per second), `window.raceError` (the notice's text), `window.raceAddress`
// (the settings taken from the address and those ignored, with why). The query's `steps=N`
// runs exactly N steps, then publishes the result.

import { noteIgnored, restoreSettings, writeSettings } from "./address.js";
import { loadSfnap, openAdapter, showNotice } from "./sfnap.js";

/** Query keys that are no control: the browser tests' hooks. */
const HOOKS = ["steps"];

/**
 * A `frameBand` of frames of about `ms`, or longer where the snapshot alone (about the shortest
 * frame seen) takes long, as on CPU adapters: then more steps go between two snapshots.
 */
export function aboutMs(ms) {
  return (minFrame) => {
    const goal = Math.max(ms, 2.5 * minFrame);
    return [0.6 * goal, 1.5 * goal];
  };
}

/**
 * Runs a demo page (the form `#controls`, buttons `#pause` and `#reset`, stats `#step`, `#rate`
 * and, where present, `#per-frame`). `page` holds:
 *   name: the prefix of the test hooks;
 *   runControl: the control that says how long to run (changing it does not restart);
 *   maxPerFrame, frameBand(minFrame) → [fast, slow]: steps per frame (at most maxPerFrame) grow
 *     while frames take under `fast` ms and shrink while over `slow`; minFrame: the shortest
 *     frame since the restart;
 *   setup(mod) (optional): once, when the adapter is open: metadata, controls built from it;
 *   defaults() (optional): after the address's settings, fills controls they left empty;
 *   changed(control) (optional): a control changed, before the restart;
 *   config(): the run's config from the form; create(mod, cfg): a promise of the wasm object;
 *   begin(sim, cfg): the page's state of a new run, to which the loop adds `step`, `last`
 *     (the latest snapshot), `start` and `rate`;
 *   runSteps(state) (optional): the steps to run, by default runControl's value;
 *   ingest(state, snapshot); draw(state, target): target, the steps to run;
 *   report(state): the page's part of the result.
 */
export function runPage(page) {
  const form = document.getElementById("controls");
  const params = new URLSearchParams(location.search);
  const testSteps = params.has("steps") ? Number(params.get("steps")) : null;
  const publish = (hook, value) => (window[page.name + hook] = value);
  publish("Status", "loading");

  let mod = null;
  let adapterName = "";
  let sim = null; // the wasm object of the current run
  let state = null;
  let generation = 0;
  let paused = false;
  let busy = false;
  let perFrame = 2;
  let minFrame = Infinity; // ms, the shortest frame since the last restart

  function fail(e) {
    publish("Error", showNotice(e));
    publish("Status", "error");
  }

  /** The step to run to. */
  function target() {
    if (testSteps !== null) return testSteps;
    return page.runSteps ? page.runSteps(state) : Number(form.elements[page.runControl].value);
  }

  function setupControls() {
    page.setup?.(mod);
    publish("Address", restoreSettings(form, HOOKS));
    page.defaults?.();
    writeSettings(form, HOOKS); // the address holds what the page shows from the start
    form.addEventListener("change", (e) => {
      page.changed?.(e.target);
      writeSettings(form, HOOKS);
      noteIgnored(form, []); // the address no longer holds what was ignored
      if (e.target.name !== page.runControl) restart();
    });
    // A fragment edited by hand navigates within the page: start again from it.
    window.addEventListener("hashchange", () => location.reload());
    document.getElementById("reset").addEventListener("click", restart);
    document.getElementById("pause").addEventListener("click", () => {
      paused = !paused;
      document.getElementById("pause").textContent = paused ? "Resume" : "Pause";
    });
  }

  /** Starts a new run from the controls; the loop picks it up once its first snapshot is in. */
  async function restart() {
    const gen = ++generation;
    if (sim) sim.free();
    sim = null;
    state = null;
    const cfg = page.config();
    let created = null;
    try {
      created = await page.create(mod, cfg);
      const first = JSON.parse(await created.snapshot());
      if (gen !== generation) {
        created.free();
        return;
      }
      state = { ...page.begin(created, cfg), step: 0, last: null, start: performance.now(), rate: [] };
      ingest(first);
    } catch (e) {
      if (created) created.free();
      if (gen === generation) fail(e);
      return;
    }
    document.getElementById("notice").hidden = true;
    sim = created;
    perFrame = 2;
    minFrame = Infinity;
    draw();
    publish("Status", "running");
  }

  function ingest(snap) {
    state.step = snap.step;
    state.last = snap;
    page.ingest(state, snap);
    // Steps per second over the last two seconds.
    const now = performance.now();
    state.rate.push([now, snap.step]);
    while (state.rate.length > 2 && now - state.rate[0][0] > 2000) state.rate.shift();
  }

  function draw() {
    page.draw(state, target());
    document.getElementById("step").textContent = state.step;
    const [t0, s0] = state.rate[0];
    const [t1, s1] = state.rate[state.rate.length - 1];
    if (t1 > t0) document.getElementById("rate").textContent = Math.round(((s1 - s0) * 1000) / (t1 - t0));
    const shown = document.getElementById("per-frame");
    if (shown) shown.textContent = perFrame;
  }

  /** One animation frame: a few steps, one readback, one redraw. */
  async function frame() {
    const gen = generation;
    const steps = target();
    if (paused || state.step >= steps) return;
    const n = Math.min(perFrame, steps - state.step);
    const t0 = performance.now();
    sim.step(n);
    const snap = JSON.parse(await sim.snapshot());
    if (gen !== generation) return;
    if (n === perFrame) adapt(performance.now() - t0);
    ingest(snap);
    draw();
    if (testSteps !== null && state.step >= testSteps) report();
  }

  /** Steps per frame from the time a frame of perFrame steps took. */
  function adapt(dt) {
    minFrame = Math.min(minFrame, dt);
    const [fast, slow] = page.frameBand(minFrame);
    if (dt < fast) perFrame = Math.min(page.maxPerFrame, Math.ceil(perFrame * 1.3));
    else if (dt > slow) perFrame = Math.max(1, Math.floor(perFrame * 0.7));
  }

  function report() {
    const elapsed = (performance.now() - state.start) / 1000;
    publish("Result", {
      adapter: adapterName,
      steps: state.step,
      steps_per_second: state.step / elapsed,
      ...page.report(state),
    });
    publish("Status", "done");
  }

  function loop() {
    if (sim && state && !busy) {
      busy = true;
      const gen = generation;
      frame()
        .catch((e) => {
          // A failed step stops the run (it would fail again); a change of controls restarts it.
          if (gen !== generation) return;
          sim.free();
          sim = null;
          fail(e);
        })
        .finally(() => (busy = false));
    }
    requestAnimationFrame(loop);
  }

  async function main() {
    const adapter = document.getElementById("adapter");
    try {
      mod = await loadSfnap();
      adapterName = await openAdapter(mod);
    } catch (e) {
      adapter.textContent = "no WebGPU";
      fail(e);
      return;
    }
    adapter.textContent = "WebGPU adapter: " + adapterName;
    setupControls();
    await restart();
    requestAnimationFrame(loop);
  }

  main();
}
