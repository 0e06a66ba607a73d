// Drawing for the race page: contour backgrounds, trajectories, loss curves (canvas 2D).
// The function values come from the wasm module (`race_field`); nothing is computed twice.

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

/**
 * Mean loss against step on a log scale. `series`: [{color, perStep: number[] (loss at y
 * of every step), sampled: [step, loss][] (loss at x)}]; `mark`: a step to draw dashed.
 */
export function drawLoss(ctx, series, { steps, mark }) {
  const { width: w, height: h } = ctx.canvas;
  const pad = { l: 52, r: 12, t: 10, b: 26 };
  ctx.fillStyle = "#0d1119";
  ctx.fillRect(0, 0, w, h);
  const finite = (v) => v !== null && Number.isFinite(v) && v > 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const v of s.perStep) if (finite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    for (const [, v] of s.sampled) if (finite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  }
  if (!(hi >= lo)) return;
  const d0 = Math.floor(Math.log10(lo));
  const d1 = Math.max(Math.ceil(Math.log10(hi)), d0 + 1);
  const xmax = Math.max(steps, mark || 0, 1);
  const px = (k) => pad.l + (k / xmax) * (w - pad.l - pad.r);
  const py = (v) => pad.t + ((d1 - Math.log10(v)) / (d1 - d0)) * (h - pad.t - pad.b);

  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#8b97aa";
  ctx.strokeStyle = "#263044";
  ctx.lineWidth = 1;
  for (let d = d0; d <= d1; d++) {
    ctx.beginPath();
    ctx.moveTo(pad.l, py(10 ** d));
    ctx.lineTo(w - pad.r, py(10 ** d));
    ctx.stroke();
    ctx.fillText(`1e${d}`, 6, py(10 ** d) + 4);
  }
  for (const k of [0, xmax / 2, xmax]) {
    ctx.fillText(String(Math.round(k)), Math.min(px(k), w - 40), h - 8);
  }
  if (mark) {
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = "#8b97aa";
    ctx.beginPath();
    ctx.moveTo(px(mark), pad.t);
    ctx.lineTo(px(mark), h - pad.b);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = 1;
    line(ctx, s.perStep.map((v, k) => [k, v]), px, py, finite);
    ctx.globalAlpha = 1;
    ctx.lineWidth = 2.2;
    line(ctx, s.sampled, px, py, finite);
  }
}

function line(ctx, points, px, py, finite) {
  // Long histories: draw about one vertex per pixel.
  const every = Math.max(1, Math.floor(points.length / ctx.canvas.width));
  ctx.beginPath();
  let open = false;
  for (let i = 0; i < points.length; i += every) {
    const [k, v] = points[i];
    if (!finite(v)) {
      open = false;
      continue;
    }
    if (open) ctx.lineTo(px(k), py(v));
    else ctx.moveTo(px(k), py(v));
    open = true;
  }
  ctx.stroke();
}
