// Drawing for the demo pages (canvas 2D): the race's contour backgrounds and trajectories,
// and line charts (loss curves, the plasticity page's charts). The race's function values
// come from the wasm module (`race_field`); nothing is computed twice.

const PALETTE = [
  [8, 18, 40],
  [22, 52, 96],
  [40, 94, 140],
  [86, 146, 176],
  [168, 204, 218],
];

function paletteAt(t) {
  const s = Math.min(Math.max(t, 0), 1) * (PALETTE.length - 1);
  const i = Math.min(Math.floor(s), PALETTE.length - 2);
  const f = s - i;
  return PALETTE[i].map((c, k) => c + (PALETTE[i + 1][k] - c) * f);
}

/**
 * The contour background of a function: log10 values on a size x size grid, shaded
 * from dark (low) to light (high), with a contour line every half decade.
 */
export function fieldImage(mod, name, size) {
  const v = mod.race_field(name, size, size);
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  const band = (i) => Math.floor(v[i] * 2);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const i = row * size + col;
      const [r, g, b] = paletteAt((v[i] - lo) / (hi - lo || 1));
      const edge =
        (col + 1 < size && band(i) !== band(i + 1)) || (row + 1 < size && band(i) !== band(i + size));
      const k = 4 * i;
      img.data[k] = edge ? r * 0.55 + 110 : r;
      img.data[k + 1] = edge ? g * 0.55 + 110 : g;
      img.data[k + 2] = edge ? b * 0.55 + 110 : b;
      img.data[k + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Maps function coordinates to canvas pixels for a view [a0, a1, b0, b1]. */
function mapper(view, w, h) {
  const [a0, a1, b0, b1] = view;
  return (a, b) => [((a - a0) / (a1 - a0)) * w, ((b1 - b) / (b1 - b0)) * h];
}

/**
 * One racer's panel: the background, every point's trail of x, x as dots and y as rings,
 * and the minimum as a cross.
 */
export function drawPanel(ctx, { background, view, minimum, trails, x, y, color }) {
  const { width: w, height: h } = ctx.canvas;
  const at = mapper(view, w, h);
  ctx.drawImage(background, 0, 0, w, h);
  ctx.lineWidth = 1.3;
  ctx.strokeStyle = color;
  ctx.globalAlpha = 0.55;
  ctx.beginPath();
  for (const trail of trails) {
    for (let k = 0; k < trail.length; k += 2) {
      const [px, py] = at(trail[k], trail[k + 1]);
      if (k === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    }
  }
  ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.fillStyle = color;
  for (let i = 0; i + 1 < x.length; i += 2) {
    const [px, py] = at(x[i], x[i + 1]);
    ctx.beginPath();
    ctx.arc(px, py, 2.6, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.lineWidth = 1;
  for (let i = 0; i + 1 < y.length; i += 2) {
    const [px, py] = at(y[i], y[i + 1]);
    ctx.beginPath();
    ctx.arc(px, py, 4, 0, 2 * Math.PI);
    ctx.stroke();
  }
  const [mx, my] = at(minimum[0], minimum[1]);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(mx - 6, my - 6);
  ctx.lineTo(mx + 6, my + 6);
  ctx.moveTo(mx - 6, my + 6);
  ctx.lineTo(mx + 6, my - 6);
  ctx.stroke();
}

const PAD = { l: 52, r: 12, t: 10, b: 26 };
const BACKGROUND = "#0d1119";
const TEXT = "#8b97aa";
const GRID = "#263044";

function clear(ctx) {
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

/**
 * Mean loss against step on a log scale. `series`: [{color, perStep: number[] (loss at y
 * of every step), sampled: [step, loss][] (loss at x)}]; `mark`: a step to draw dashed.
 */
export function drawLoss(ctx, series, { steps, mark }) {
  const positive = (v) => v !== null && Number.isFinite(v) && v > 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const v of s.perStep) if (positive(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    for (const [, v] of s.sampled) if (positive(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  }
  if (!(hi >= lo)) return clear(ctx);
  // Whole decades, a gridline each.
  const d0 = Math.floor(Math.log10(lo));
  const d1 = Math.max(Math.ceil(Math.log10(hi)), d0 + 1);
  const decades = [];
  for (let d = d0; d <= d1; d++) decades.push([10 ** d, `1e${d}`]);
  const lines = series.flatMap((s) => [
    { color: s.color, alpha: 0.45, width: 1, points: s.perStep.map((v, k) => [k, v]) },
    { color: s.color, width: 2.2, points: s.sampled },
  ]);
  drawChart(ctx, lines, {
    xmax: Math.max(steps, mark || 0, 1),
    ymin: 10 ** d0,
    ymax: 10 ** d1,
    log: true,
    yticks: decades,
    dashed: mark,
  });
}

/**
 * Lines against x from `xmin` (default 0) to `xmax`. `series`: [{color, points: [x, y][], width = 2,
 * alpha = 1, dash = [], dots = false (a dot on every point)}]; y from `ymin` to `ymax`, on a log
 * scale with `log`. `yticks`: [y, label][] gridlines (default: five evenly spaced, labelled by
 * `yformat` where given); `xlabel`: a unit after the x labels, `xformat` (default: rounded) writes
 * them; `marks`: x values drawn as gridlines; `dashed`: one x value drawn dashed.
 */
export function drawChart(
  ctx,
  series,
  { xmin = 0, xmax, ymin, ymax, log = false, yticks, yformat, xlabel = "", xformat = Math.round, marks = [], dashed }
) {
  const { width: w, height: h } = ctx.canvas;
  clear(ctx);
  const f = (v) => (log ? Math.log10(v) : v);
  const [lo, hi] = [f(ymin), f(ymax)];
  const px = (k) => PAD.l + ((k - xmin) / Math.max(xmax - xmin, 1e-300)) * (w - PAD.l - PAD.r);
  const py = (v) => PAD.t + ((hi - f(v)) / (hi - lo || 1)) * (h - PAD.t - PAD.b);
  const shown = (v) => v !== null && Number.isFinite(v) && !(log && v <= 0);
  const vertical = (k) => {
    ctx.beginPath();
    ctx.moveTo(px(k), PAD.t);
    ctx.lineTo(px(k), h - PAD.b);
    ctx.stroke();
  };

  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = TEXT;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  for (const [v, label] of yticks || evenTicks(ymin, ymax, log, yformat)) {
    ctx.beginPath();
    ctx.moveTo(PAD.l, py(v));
    ctx.lineTo(w - PAD.r, py(v));
    ctx.stroke();
    ctx.fillText(label, 6, py(v) + 4);
  }
  for (const k of [xmin, (xmin + xmax) / 2, xmax]) {
    // The last label ends at the plot's right edge.
    const label = `${xformat(k)}${xlabel}`;
    ctx.fillText(label, Math.min(px(k), w - PAD.r - ctx.measureText(label).width), h - 8);
  }
  for (const k of marks) vertical(k);
  if (dashed) {
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = TEXT;
    vertical(dashed);
    ctx.setLineDash([]);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width || 2;
    ctx.globalAlpha = s.alpha || 1;
    ctx.setLineDash(s.dash || []);
    line(ctx, s.points, px, py, shown);
    if (s.dots) {
      ctx.fillStyle = s.color;
      for (const [x, y] of s.points) {
        if (!shown(y)) continue;
        ctx.beginPath();
        ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
}

/** Five gridlines evenly spaced from ymin to ymax (in log10 on a log scale), labelled by `format`. */
function evenTicks(ymin, ymax, log, format) {
  const f = (v) => (log ? Math.log10(v) : v);
  const unf = (u) => (log ? 10 ** u : u);
  return [0, 1, 2, 3, 4].map((i) => {
    const v = unf(f(ymin) + ((f(ymax) - f(ymin)) * i) / 4);
    return [v, format ? format(v) : log ? v.toExponential(1) : v.toFixed(v < 10 ? 2 : 0)];
  });
}

function line(ctx, points, px, py, shown) {
  // Long histories: draw about one vertex per pixel.
  const every = Math.max(1, Math.floor(points.length / ctx.canvas.width));
  ctx.beginPath();
  let open = false;
  for (let i = 0; i < points.length; i += every) {
    const [k, v] = points[i];
    if (!shown(v)) {
      open = false;
      continue;
    }
    if (open) ctx.lineTo(px(k), py(v));
    else ctx.moveTo(px(k), py(v));
    open = true;
  }
  ctx.stroke();
}
