// The update-functions page: an MLP trained live on two spirals by each ticked optimizer; every
// frame freezes each optimizer's state and draws the change its next step would make to one
// element's x, y and z as a function of that element's gradient g, with the slope at g = 0
// over time; web/js/demo.js runs the loop.
//
// Each animation frame submits a few training steps of every network (no readback), then one
// snapshot: the next batch's gradient and each optimizer's state read back in one transfer, the
// update functions computed from them by the library's f64 reference in the wasm module (no
// formula of an optimizer lives in this file).
//
// The controls live in the address (`update.html#tensor=l1.weight&index=5&nap_sf_plus=1&...`,
// see web/js/address.js); the query's `steps=N` runs exactly N steps, then publishes
// `window.updateResult` (what was drawn last, and the frozen states it was computed from) and sets
// `window.updateStatus = "done"`.

import { aboutMs, runPage } from "./demo.js";
import { drawChart, drawLoss } from "./plot.js";

const COLORS = { adamw: "#e07bff", adamw_sf: "#3ee0c8", sf_plus: "#ffd43b" };
const LABELS = { adamw: "AdamW", adamw_sf: "AdamW-SF", sf_plus: "SF+" };
const SEQUENCES = ["x", "y", "z"];
const form = document.getElementById("controls");
let meta = null; // update_meta(): optimizers, their default lr, the model's tensors, defaults

/** From the module's metadata: a row per optimizer (on, lr, NaP) and the weights to pick from. */
function setup(mod) {
  meta = JSON.parse(mod.update_meta());
  const body = document.getElementById("optimizers");
  for (const name of meta.optimizers) {
    const row = body.insertRow();
    const on = meta.defaults.nets.some((n) => n.optimizer === name) ? " checked" : "";
    row.innerHTML =
      `<td><label class="pick"><input name="${name}" type="checkbox"${on}>` +
      `<span class="swatch" style="background:${COLORS[name]}"></span>${LABELS[name]}</label></td>` +
      `<td><input name="lr_${name}" type="number" min="0" step="any" value="${meta.lr[name]}"></td>` +
      `<td><input name="nap_${name}" type="checkbox"></td>`;
  }
  const select = document.getElementById("tensor");
  for (const t of meta.tensors) select.add(new Option(t, t));
  select.value = meta.defaults.tensor;
}

function config() {
  const el = form.elements;
  return {
    nets: meta.optimizers
      .filter((name) => el[name].checked)
      .map((name) => ({ optimizer: name, lr: Number(el[`lr_${name}`].value), nap: el[`nap_${name}`].checked })),
    schedule: el.schedule.value,
    warmup_steps: Number(el.warmup_steps.value),
    total_steps: Number(el.total_steps.value),
    tensor: el.tensor.value,
    index: Number(el.index.value),
    span: Number(el.span.value),
    hidden: Number(el.hidden.value),
    batch: Number(el.batch.value),
    noise: Number(el.noise.value),
    seed: Number(el.seed.value),
  };
}

/** A new run's state: its config as the module took it, a figure per network, the histories. */
function begin(run) {
  const cfg = JSON.parse(run.config());
  const box = document.getElementById("functions");
  box.replaceChildren();
  const figures = cfg.nets.map((net) => {
    const fig = document.createElement("figure");
    const caption = document.createElement("figcaption");
    const canvases = {};
    const row = document.createElement("div");
    row.className = "triple";
    for (const s of SEQUENCES) {
      const c = document.createElement("canvas");
      c.className = "chart";
      c.width = 300;
      c.height = 200;
      canvases[s] = c.getContext("2d");
      row.append(c);
    }
    fig.append(caption, row);
    box.append(fig);
    return { caption, canvases, color: COLORS[net.optimizer], label: label(net) };
  });
  return { cfg, run, figures, loss: cfg.nets.map(() => []), slopes: cfg.nets.map(() => []) };
}

function label(net) {
  return `${LABELS[net.optimizer]}${net.nap ? " + NaP" : ""}`;
}

function ingest(state, snap) {
  snap.nets.forEach((n, i) => {
    const loss = state.loss[i];
    while (loss.length < snap.history_from) loss.push(null);
    loss.push(...n.train_loss);
    state.slopes[i].push([snap.step, n.slope]);
  });
}

const fmt = (v) => (v === null || !Number.isFinite(v) ? "–" : v.toExponential(2));

/**
 * One update function: the change of sequence `s` against g over the sweep, the tangent at g = 0
 * (dashed, clipped to the plot) and the element's actual gradient (a dot).
 */
function drawFunction(ctx, net, s, color) {
  const g = net.g;
  const values = net[s];
  const [g0, g1] = [g[0], g[g.length - 1]];
  let lo = Math.min(...values, net.actual[s], 0);
  let hi = Math.max(...values, net.actual[s], 0);
  const pad = 0.08 * (hi - lo || Math.abs(hi) || 1);
  [lo, hi] = [lo - pad, hi + pad];
  const slope = net.slope[s];
  const at0 = net.zero[s];
  // The tangent between the g where it leaves [lo, hi] (or the sweep's ends).
  let [t0, t1] = [g0, g1];
  if (slope !== 0) {
    const ga = (lo - at0) / slope;
    const gb = (hi - at0) / slope;
    t0 = Math.max(g0, Math.min(ga, gb));
    t1 = Math.min(g1, Math.max(ga, gb));
  }
  drawChart(
    ctx,
    [
      { color: "#4b5870", width: 1, points: [[g0, 0], [g1, 0]] },
      { color: "#dfe6f0", width: 1.2, dash: [5, 4], points: [[t0, at0 + slope * t0], [t1, at0 + slope * t1]] },
      { color, width: 2.2, points: g.map((gi, i) => [gi, values[i]]) },
      { color: "#ffffff", width: 0, dots: true, points: [[net.actual.g, net.actual[s]]] },
    ],
    {
      xmin: g0,
      xmax: g1,
      ymin: lo,
      ymax: hi,
      marks: [0],
      // The middle label is 0 (up to rounding of the sweep's ends).
      xformat: (v) => (Math.abs(v) <= 1e-9 * g1 ? "0" : v.toExponential(0)),
      yformat: (v) => (v === 0 ? "0" : v.toExponential(1)),
    }
  );
  ctx.fillStyle = "#dfe6f0";
  ctx.font = "13px system-ui, sans-serif";
  ctx.fillText(`Δ${s}`, ctx.canvas.width - 34, 24);
}

function draw(state) {
  const snap = state.last;
  snap.nets.forEach((net, i) => {
    const f = state.figures[i];
    f.caption.innerHTML =
      `<span class="swatch" style="background:${f.color}"></span><b>${f.label}</b> ` +
      `<code>${snap.tensor}[${snap.index}]</code> slope at 0: x ${fmt(net.slope.x)}, y ${fmt(net.slope.y)}, ` +
      `z ${fmt(net.slope.z)}; g sweeps ±${fmt(net.g[net.g.length - 1])}`;
    for (const s of SEQUENCES) drawFunction(f.canvases[s], net, s, f.color);
  });
  // −slope over steps, log scale: x thick, y thin, z dashed. From step 1 on: before the first step
  // Adam's second moment is 0 and its slope at 0 is lr / eps, which would flatten the rest.
  const series = state.slopes.flatMap((all, i) => {
    const points = all.filter(([k]) => k > 0);
    const color = state.figures[i].color;
    return [
      { color, width: 2.2, points: points.map(([k, sl]) => [k, -sl.x]) },
      { color, width: 1, alpha: 0.8, points: points.map(([k, sl]) => [k, -sl.y]) },
      { color, width: 1.2, dash: [5, 4], points: points.map(([k, sl]) => [k, -sl.z]) },
    ];
  });
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v));
  if (values.length) {
    drawChart(document.getElementById("slopes").getContext("2d"), series, {
      xmax: Math.max(state.step, 1),
      ymin: Math.min(...values) / 1.5,
      ymax: Math.max(...values) * 1.5,
      log: true,
    });
  }
  drawLoss(
    document.getElementById("loss").getContext("2d"),
    state.loss.map((perStep, i) => ({ color: state.figures[i].color, perStep, sampled: [] })),
    { steps: state.step }
  );
}

/**
 * What the browser test reads: per network the update functions and slopes as drawn last, and the
 * frozen states (with the next batch's gradient and loss) they were computed from.
 */
function report(state) {
  const snap = state.last;
  return {
    config: state.cfg,
    tensor: snap.tensor,
    index: snap.index,
    snapshot_step: snap.step,
    nets: snap.nets.map((n) => ({
      optimizer: n.optimizer,
      nap: n.nap,
      g: n.g,
      x: n.x,
      y: n.y,
      z: n.z,
      zero: n.zero,
      slope: n.slope,
      actual: n.actual,
      slopes: state.slopes[snap.nets.indexOf(n)].length,
    })),
    frozen: JSON.parse(state.run.frozen()),
  };
}

runPage({
  name: "update",
  runControl: "run_steps",
  maxPerFrame: 16,
  frameBand: aboutMs(150),
  setup,
  config,
  create: (mod, cfg) => mod.WebUpdate.create(JSON.stringify(cfg)),
  begin,
  ingest,
  draw,
  report,
});
