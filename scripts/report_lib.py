"""What the study reports share: reading a run's metrics.csv and done file, a
plain SVG line plot, number formatting. Standard library only."""

import csv
import math
import os
import re


def read_run(path):
    """Evaluation rows of metrics.csv: dicts of floats; and (exit status, seconds)."""
    rows = []
    csv_path = os.path.join(path, "metrics.csv")
    if os.path.exists(csv_path):
        with open(csv_path) as f:
            for r in csv.DictReader(f):
                if r.get("eval_loss"):
                    rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in r.items()})
    status, seconds = None, None
    done = os.path.join(path, "done")
    if os.path.exists(done):
        parts = open(done).read().split()
        if len(parts) >= 2:  # merge_study.sh's done files are empty
            status, seconds = int(parts[0]), int(parts[1])
    return rows, status, seconds


def stop_reason(path):
    """For a run that exited 1: "diverged at step N" or "non-finite at step N", from its log."""
    log = path.rstrip("/") + ".log"
    text = open(log).read() if os.path.exists(log) else ""
    m = re.search(r"after (\d+) steps", text)
    step = f" at step {m[1]}" if m else ""
    if "diverged" in text:
        return f"diverged{step}"
    if "not finite" in text or "non-finite" in text or " is NaN" in text or " is inf" in text:
        return f"non-finite values{step}"
    return f"stopped{step}"


def mean(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def fmt(x, spec=".2f"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def svg_lines(series, path, title, ylabel, log=False, ymin=None, ymax=None, xlabel="task", logx=False):
    """series: [(label, colour, dash, [(x, y)])]. A plain SVG line plot (logx: x on a log scale, x > 0)."""
    w, h, left, right, top, bottom = 640, 360, 70, 180, 30, 45
    pts = [(x, y) for _, _, _, p in series for x, y in p if y is not None and math.isfinite(y) and (y > 0 or not log)
           and (x > 0 or not logx)]
    if not pts:
        return
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    xs = [fx(p[0]) for p in pts]
    ys = [f(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0 = f(ymin) if ymin is not None else min(ys)
    y1 = f(ymax) if ymax is not None else max(ys)
    if y1 == y0:
        y1 = y0 + 1
    if x1 == x0:
        x1 = x0 + 1
    px = lambda x: left + (fx(x) - x0) / (x1 - x0) * (w - left - right)
    py = lambda y: top + (1 - (min(max(f(y), y0), y1) - y0) / (y1 - y0)) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">{xlabel}</text>',
           f'<text x="14" y="{(top + h - bottom) / 2}" transform="rotate(-90 14 {(top + h - bottom) / 2})" '
           f'text-anchor="middle">{ylabel}</text>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        label = 10 ** yv if log else yv
        y = top + (1 - i / 4) * (h - top - bottom)
        out.append(f'<line x1="{left - 4}" y1="{y}" x2="{w - right}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{label:.3g}</text>')
    if logx:
        ticks = [10 ** e for e in range(math.ceil(x0), math.floor(x1) + 1)]
    elif x1 - x0 >= 10:
        ticks = range(int(x0), int(x1) + 1, max(1, round((x1 - x0) / 10)))
    else:
        ticks = [x0 + (x1 - x0) * i / 4 for i in range(5)]
    for xv in ticks:
        label = xv if isinstance(xv, int) else f"{xv:.3g}"
        out.append(f'<text x="{px(xv)}" y="{h - bottom + 16}" text-anchor="middle">{label}</text>')
    for k, (label, colour, dash, p) in enumerate(series):
        good = [(x, y) for x, y in p if y is not None and math.isfinite(y) and (y > 0 or not log) and (x > 0 or not logx)]
        if not good:
            continue
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in good)
        style = f'stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2" {style}/>')
        ly = top + 14 + 18 * k
        out.append(f'<line x1="{w - right + 10}" y1="{ly - 4}" x2="{w - right + 34}" y2="{ly - 4}" stroke="{colour}" '
                   f'stroke-width="2" {style}/>')
        out.append(f'<text x="{w - right + 40}" y="{ly}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
