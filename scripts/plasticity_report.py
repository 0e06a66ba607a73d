"""Writes docs/plasticity.md and its SVG plots from the runs of scripts/plasticity.sh.

    python3 scripts/plasticity_report.py RUNS_DIR docs/plasticity.md

RUNS_DIR holds one directory per run (metrics.csv, done = "exit-status seconds"),
named continual-OPT-NET-sSEED or digits-OPT-nap-sSEED. The hand-written part of the
page (what the numbers mean) is scripts/plasticity_notes.md, copied in; everything
with a number in it is computed here. Standard library only.
"""

import csv
import math
import os
import re
import sys
import time

# The reference PyTorch runs of FINDINGS.md (first 3 tasks -> last 3, hidden norm start -> end).
PAPER = {
    ("adamw", "plain"): (0.48, 0.41, "21 -> 56"),
    ("adamw", "ln"): (0.86, 0.74, "17 -> 38"),
    ("adamw", "nap"): (0.83, 0.80, "13 -> 13"),
    ("adamw_sf", "plain"): (0.44, 0.11, "29 -> 74"),
    ("adamw_sf", "ln"): (0.53, 0.11, "21 -> 58"),
    ("adamw_sf", "nap"): (0.75, 0.22, "13 -> 12"),
}
NETS = [("plain", "plain (biases, no norm)"), ("ln", "LayerNorm"), ("nap", "LayerNorm + NaP")]
DIVERGED = 1e3  # an eval loss above this (or not finite) counts as diverged


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


def window_label(o):
    """adamw_sf_wW_bBETA_lrLR -> a readable label."""
    m = re.fullmatch(r"adamw_sf_w(\d+)_b([0-9.]+)_lr([0-9.e-]+)", o)
    if not m:
        return o
    return f"adamw_sf --sf-window {m[1]} --sf-beta {m[2]}, lr {float(m[3]):g}"


def mean(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan


def diverged(rows):
    return any(not math.isfinite(r["eval_loss"]) or r["eval_loss"] > DIVERGED for r in rows)


def fmt(x, spec=".2f"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def svg_lines(series, path, title, ylabel, log=False, ymin=None, ymax=None):
    """series: [(label, colour, dash, [(x, y)])]. A plain SVG line plot."""
    w, h, left, right, top, bottom = 640, 360, 70, 180, 30, 45
    pts = [(x, y) for _, _, _, p in series for x, y in p if y is not None and math.isfinite(y) and (y > 0 or not log)]
    if not pts:
        return
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    xs = [p[0] for p in pts]
    ys = [f(p[1]) for p in pts]
    x0, x1 = min(xs), max(xs)
    y0 = f(ymin) if ymin is not None else min(ys)
    y1 = f(ymax) if ymax is not None else max(ys)
    if y1 == y0:
        y1 = y0 + 1
    if x1 == x0:
        x1 = x0 + 1
    px = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)
    py = lambda y: top + (1 - (min(max(f(y), y0), y1) - y0) / (y1 - y0)) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">task</text>',
           f'<text x="14" y="{(top + h - bottom) / 2}" transform="rotate(-90 14 {(top + h - bottom) / 2})" '
           f'text-anchor="middle">{ylabel}</text>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        label = 10 ** yv if log else yv
        y = top + (1 - i / 4) * (h - top - bottom)
        out.append(f'<line x1="{left - 4}" y1="{y}" x2="{w - right}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{label:.3g}</text>')
    step = max(1, round((x1 - x0) / 10))
    for xv in range(int(x0), int(x1) + 1, step):
        out.append(f'<text x="{px(xv)}" y="{h - bottom + 16}" text-anchor="middle">{xv}</text>')
    for k, (label, colour, dash, p) in enumerate(series):
        good = [(x, y) for x, y in p if y is not None and math.isfinite(y) and (y > 0 or not log)]
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


def main():
    runs_dir, md_path = sys.argv[1:3]
    docs = os.path.dirname(md_path) or "."
    names = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
    runs = {}
    for name in names:
        m = re.fullmatch(r"(continual|digits)-(.+)-(plain|ln|nap)-s(\d+)", name)
        if m and os.path.isdir(os.path.join(runs_dir, name)):
            run = read_run(os.path.join(runs_dir, name))
            if run[1] is None:
                continue  # not finished (still running, or killed): listed under Runs only
            runs.setdefault((m[1], m[2], m[3]), {})[int(m[4])] = run

    windows = sorted({o for (d, o, _) in runs if d == "continual" and o.startswith("adamw_sf_w")})
    opts = ["adamw", "adamw_sf", "sf_plus"] + windows
    colours = {"adamw": "#1f77b4", "adamw_sf": "#d62728", "sf_plus": "#9467bd"}
    for i, o in enumerate(windows):
        colours[o] = ["#2ca02c", "#8c564b"][i % 2]

    def label(o):
        return window_label(o) if o.startswith("adamw_sf_w") else o

    lines = []
    add = lines.append
    add("# Plasticity: NaP, Schedule-Free and a moving target")
    add("")
    add("Generated by `make evidence` (scripts/plasticity.sh, then scripts/plasticity_report.py) on "
        f"{time.strftime('%Y-%m-%d')}; every number below comes from the runs in `target/plasticity/`.")
    add("")
    seeds = sorted({s for v in runs.values() for s in v})
    tasks = None
    for (d, o, n), by_seed in runs.items():
        if d == "continual":
            for rows, _, _ in by_seed.values():
                if rows:
                    tasks = max(tasks or 0, int(max(r["task"] for r in rows)) + 1)
    add(f"**Setup.** `sfnap train --data continual`: random labels on 1,024 digits, re-drawn every 500 steps, "
        f"{tasks} tasks ({(tasks or 1) - 1} label resets), batch 64, seeds {', '.join(map(str, seeds))}; the digits "
        "MLP 64-256-256-10. Networks: *plain* (`--no-norm`: Linear with bias, ReLU), *LayerNorm* (Linear, "
        "LayerNorm, ReLU: the default), *LayerNorm + NaP* (`--nap`). Optimizers: adamw at a constant 1e-3, "
        "adamw_sf at 3e-3 (no warmup), sf_plus at its defaults (no learning rate), and adamw_sf with "
        "`--sf-window`. Accuracy is measured at x (the evaluation weights) on the current task's labels at the "
        "last step of each task; the hidden weight norm is the Frobenius norm of both hidden weight matrices at "
        "x; the effective learning rate is gamma / |W| (`metrics.csv`'s `effective_lr`). Lavapipe (a CPU Vulkan "
        "driver).")
    add("")

    # Per-configuration summaries.
    summary = {}
    for o in opts:
        for n, _ in NETS:
            by_seed = runs.get(("continual", o, n))
            if not by_seed:
                continue
            per_seed = []
            for seed, (rows, status, seconds) in sorted(by_seed.items()):
                if not rows:
                    per_seed.append(None)
                    continue
                by_task = {}
                for r in rows:
                    by_task[int(r["task"])] = r  # the last evaluation of a task: its end
                ts = sorted(by_task)
                acc = [by_task[t]["eval_accuracy"] for t in ts]
                per_seed.append({
                    "stopped": stop_reason(os.path.join(runs_dir, f"continual-{o}-{n}-s{seed}"))
                    if status not in (0, None) else None,
                    "acc": dict(zip(ts, acc)),
                    "first3": mean(acc[:3]),
                    "last3": mean(acc[-3:]) if len(acc) >= 6 else math.nan,
                    "norm0": by_task[ts[0]]["hidden_weight_norm"],
                    "norm1": by_task[ts[-1]]["hidden_weight_norm"],
                    "elr": {t: by_task[t]["effective_lr"] for t in ts},
                    "norm": {t: by_task[t]["hidden_weight_norm"] for t in ts},
                    "diverged": diverged(rows),
                    "max_loss": max(r["eval_loss"] for r in rows),
                    "status": status,
                    "seconds": seconds,
                    "tasks": len(ts),
                })
            summary[(o, n)] = per_seed

    add("## Accuracy at the end of a task: first 3 tasks -> last 3")
    add("")
    add("Mean over seeds (each seed's value in brackets). *Paper* is the reference PyTorch run of "
        "`FINDINGS.md` (AdamW 1e-3, SF-AdamW 3e-3, 20 tasks of 500 steps, 2 seeds).")
    add("")
    add("| optimizer | network | first 3 | last 3 | hidden weight norm, task 1 -> last | effective lr, last task | "
        "paper: first 3 -> last 3, norm |")
    add("|---|---|---|---|---|---|---|")
    for o in opts:
        for n, nlabel in NETS:
            ps = summary.get((o, n))
            if not ps:
                continue
            good = [p for p in ps if p]
            if any(p["stopped"] for p in good):
                first = " / ".join(p["stopped"] or "finished" for p in good)
                last = f"eval loss up to {max(p['max_loss'] for p in good):.3g}"
                norm = " / ".join(f"{p['norm0']:.3g} -> {p['norm1']:.3g}" for p in good)
                elr = " / ".join(fmt(p["elr"][max(p["elr"])], ".2e") for p in good)
            elif any(p["diverged"] for p in good):
                worst = max(p["max_loss"] for p in good)
                first = "diverged"
                last = f"eval loss up to {worst:.2g}"
                norm = " / ".join(f"{p['norm0']:.3g} -> {p['norm1']:.3g}" for p in good)
                elr = " / ".join(fmt(p["elr"][max(p["elr"])], ".2e") for p in good)
            else:
                first = f"{mean([p['first3'] for p in good]):.2f} ({', '.join(fmt(p['first3']) for p in good)})"
                last = f"{mean([p['last3'] for p in good]):.2f} ({', '.join(fmt(p['last3']) for p in good)})"
                norm = f"{mean([p['norm0'] for p in good]):.3g} -> {mean([p['norm1'] for p in good]):.3g}"
                elr = fmt(mean([p["elr"][max(p["elr"])] for p in good]), ".2e")
            paper = PAPER.get((o, n))
            paper_s = f"{paper[0]:.2f} -> {paper[1]:.2f}, {paper[2]}" if paper else ""
            add(f"| {label(o)} | {nlabel} | {first} | {last} | {norm} | {elr} | {paper_s} |")
    add("")

    # Plots: accuracy per task for each network; norm and effective lr.
    for n, nlabel in NETS:
        series = []
        for o in opts:
            ps = [p for p in summary.get((o, n)) or [] if p]
            if not ps:
                continue
            ts = sorted(set().union(*[p["acc"].keys() for p in ps]))
            pts = [(t + 1, mean([p["acc"].get(t, math.nan) for p in ps])) for t in ts]
            series.append((label(o), colours[o], "6,3" if o.startswith("adamw_sf_w") else "", pts))
        svg = os.path.join(docs, f"plasticity_acc_{n}.svg")
        svg_lines(series, svg, f"accuracy at the end of each task: {nlabel}", "accuracy at x", ymin=0, ymax=1)
        add(f"![accuracy at the end of each task, {nlabel}]({os.path.basename(svg)})")
        add("")
    for key, what, fname in [("norm", "hidden weight norm (at x)", "norm"), ("elr", "effective learning rate", "elr")]:
        series = []
        for o in opts:
            for n, nlabel in NETS:
                ps = [p for p in summary.get((o, n)) or [] if p and not p["diverged"] and not p["stopped"]]
                if not ps:
                    continue
                ts = sorted(set().union(*[p[key].keys() for p in ps]))
                pts = [(t + 1, mean([p[key].get(t, math.nan) for p in ps])) for t in ts]
                dash = {"plain": "2,3", "ln": "", "nap": "8,4"}[n]
                series.append((f"{label(o)}, {n}", colours[o], dash, pts))
        svg = os.path.join(docs, f"plasticity_{fname}.svg")
        svg_lines(series, svg, f"{what} at the end of each task (diverged runs left out)", what, log=True)
        add(f"![{what} at the end of each task]({os.path.basename(svg)})")
        add("")

    add("## Accuracy at the end of every task")
    add("")
    add("Mean over seeds, in percent; `-` where a run has no evaluation (it stopped).")
    add("")
    add("| optimizer | network | " + " | ".join(str(t + 1) for t in range(tasks or 0)) + " |")
    add("|---|---|" + "---|" * (tasks or 0))
    for o in opts:
        for n, nlabel in NETS:
            ps = [p for p in summary.get((o, n)) or [] if p]
            if not ps:
                continue
            cells = []
            for t in range(tasks or 0):
                v = mean([p["acc"].get(t, math.nan) for p in ps])
                cells.append("-" if math.isnan(v) else f"{100 * v:.0f}")
            add(f"| {label(o)} | {nlabel} | " + " | ".join(cells) + " |")
    add("")

    # The two checks of the window.
    add("## The window: the two checks")
    add("")
    base = summary.get(("adamw", "nap"))
    for o in windows:
        w = summary.get((o, "nap"))
        if base and w:
            a = mean([p["last3"] for p in base if p])
            b = mean([p["last3"] for p in w if p])
            gap = 100 * (a - b)
            verdict = "within" if gap <= 5 else "not within"
            seeds_w = ", ".join(f"{100 * p['last3']:.1f}" for p in w if p)
            add(f"- Continual, last 3 tasks: adamw + NaP {100 * a:.1f}%, `{window_label(o)}` + NaP "
                f"{100 * b:.1f}% ({seeds_w}): a gap of {gap:.1f} points, {verdict} the 5 points asked.")
    dig = {}
    for (d, o, n), by_seed in runs.items():
        if d == "digits":
            for seed, (rows, status, seconds) in by_seed.items():
                if rows:
                    dig.setdefault(o, {})[seed] = rows[-1]["eval_accuracy"]
    if dig:
        uniform = dig.get("adamw_sf_w0_b0.9", {})
        for o in sorted(dig):
            if o == "adamw_sf_w0_b0.9":
                continue
            wa = dig[o]
            common = sorted(set(uniform) & set(wa))
            if not common:
                continue
            u = mean([uniform[s] for s in common])
            v = mean([wa[s] for s in common])
            cost = 100 * (u - v)
            verdict = "within" if cost <= 0.5 else "more than"
            m = re.fullmatch(r"adamw_sf_w(\d+)_b([0-9.]+)", o)
            what = f"`--sf-window {m[1]} --sf-beta {m[2]}`" if m else o
            add(f"- Stationary digits (adamw_sf 3e-3, warmup 100, NaP, 2,000 steps, test set of 360): the paper's "
                f"average and beta 0.9 {100 * u:.2f}% ({', '.join(f'{100 * uniform[s]:.2f}' for s in common)}), "
                f"{what} {100 * v:.2f}% ({', '.join(f'{100 * wa[s]:.2f}' for s in common)}): "
                f"the window costs {cost:.2f} points, {verdict} the 0.5 asked. One test digit is 0.28 points.")
    add("")

    cand_dir = os.path.join(runs_dir, "candidates")
    if os.path.isdir(cand_dir):
        add("## Choosing the window: the candidates on a short stream")
        add("")
        add("6 tasks of 500 steps (5 label resets), LayerNorm + NaP, seed 0. Accuracy at x at the end of each "
            "task, in percent; the training loss at y is the mean of the last 100 steps of each task (a fitted "
            "task is below 0.9, chance is ln 10 = 2.30). *Late* is the mean accuracy of tasks 4-6.")
        add("")
        add("| run | late | accuracy per task | training loss at y per task | arguments |")
        add("|---|---|---|---|---|")
        for name in sorted(os.listdir(cand_dir)):
            path = os.path.join(cand_dir, name)
            rows, status, _ = read_run(path)
            if not os.path.isdir(path) or status is None:
                continue
            acc = [r["eval_accuracy"] for r in rows]
            train = {}
            with open(os.path.join(path, "metrics.csv")) as f:
                for r in csv.DictReader(f):
                    step = int(r["step"])
                    if r["train_loss"] and step % 500 >= 400:
                        train.setdefault(step // 500, []).append(float(r["train_loss"]))
            late = mean(acc[3:6]) if len(acc) >= 6 else math.nan
            args = open(os.path.join(path, "args")).read().strip() if os.path.exists(os.path.join(path, "args")) else ""
            args = args.split("--nap", 1)[-1].strip()
            add(f"| {label(name)} | {fmt(100 * late, '.1f')} | {' '.join(f'{100 * a:.0f}' for a in acc)} | "
                f"{' '.join(f'{mean(v):.2f}' for _, v in sorted(train.items()))} | `{args}` |")
        add("")

    merge_file = os.path.join(runs_dir, "merge", "results.txt")
    if os.path.exists(merge_file):
        add("## Checkpoint merging on the character model")
        add("")
        add("`scripts/merge_study.sh`: `--model gpt --data text --batch 8 --seed 0`; adamw at 3e-3 (50 warmup "
            "steps, then constant), stopped and resumed at each checkpoint step so every checkpoint is kept; "
            "`sfnap merge` over them; adamw_sf at 3e-3 (50 warmup steps) for the same number of steps. Held-out "
            "loss in nats per character at the evaluation weights (`sfnap eval`; for a merge of adamw checkpoints "
            "the merged weights).")
        add("")
        add("| weights | held-out loss | what |")
        add("|---|---|---|")
        for line in open(merge_file):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                add(f"| {parts[0]} | {parts[1]} | {parts[2]} |")
        add("")
        for run in ("adamw", "adamw_sf"):
            rows, _, _ = read_run(os.path.join(runs_dir, "merge", run))
            if rows:
                add(f"{run}'s held-out loss along the run (step: loss at x): "
                    + ", ".join(f"{int(r['step'])}: {r['eval_loss']:.3f}" for r in rows) + ".")
                add("")

    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plasticity_notes.md")
    if os.path.exists(notes):
        add(open(notes).read().rstrip())
        add("")

    add("## Runs")
    add("")
    add("Runs without an exit status had not finished when this page was written; "
        "`make evidence` runs what is missing and keeps what is done.")
    add("")
    add("| run | exit status | seconds |")
    add("|---|---|---|")
    for name in names:
        p = os.path.join(runs_dir, name)
        if os.path.isdir(p) and re.fullmatch(r"(continual|digits)-.+", name):
            _, status, seconds = read_run(p)
            add(f"| {name} | {status} | {seconds} |")
    if os.path.isdir(cand_dir):
        for name in sorted(os.listdir(cand_dir)):
            p = os.path.join(cand_dir, name)
            if os.path.isdir(p):
                _, status, seconds = read_run(p)
                add(f"| candidates/{name} | {status} | {seconds} |")
    add("")
    with open(md_path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
