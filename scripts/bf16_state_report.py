"""Writes docs/bf16-state.md and its SVG plots from the runs of scripts/bf16_state.sh.

    python3 scripts/bf16_state_report.py STUDY_DIR [docs/bf16-state.md]

STUDY_DIR/runs holds one directory per run (metrics.csv, done = "exit-status
seconds"), named gpt-OPT-nSTEPS-sSEED-PREC, digits-OPT-sSEED-PREC or
continual-sSEED-PREC, PREC one of f32, bf16 (stochastic rounding), bf16alt (the
same with other rounding bits) and nearest (bf16, round to nearest). The hand-written part of the page is
scripts/bf16_state_notes.md, whose {{NAME}} placeholders are filled here (its
links into docs/ made relative to the page); every
number on the page is computed here. Standard library only.
"""

import math
import os
import re
import sys
import time

from report_lib import fmt, mean, read_run, svg_lines

PRECS = [("f32", "f32"), ("bf16", "bf16, stochastic rounding"), ("nearest", "bf16, round to nearest")]
# bf16 with other rounding bits (--state-seed 1000): the spread the bits alone cause.
ALT = ("bf16alt", "bf16, stochastic rounding, other bits")
GPT_GOAL = 0.02  # nats
DIGITS_GOAL = 0.5  # points
NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bf16_state_notes.md")
# {{IMG file.svg|alt text}} in the notes: a plot of docs/.
IMG = re.compile(r"\{\{IMG ([^|}]+)\|([^}]+)\}\}")
# Legend labels short enough for the plots.
SHORT = {"f32": "f32", "bf16": "bf16 SR", "nearest": "bf16 nearest", "bf16alt": "bf16 SR, other bits"}
COLOURS = {"f32": "#1f77b4", "bf16": "#d62728", "nearest": "#2ca02c", "bf16alt": "#ff7f0e"}


def load(runs_dir):
    """{name: (rows, status, seconds)} of every run directory."""
    runs = {}
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        if os.path.isdir(os.path.join(runs_dir, name)):
            runs[name] = read_run(os.path.join(runs_dir, name))
    return runs


def at(rows, step, key="eval_loss"):
    """The value of `key` in the evaluation row of `step`, or nan."""
    for r in rows:
        if int(r["step"]) == step:
            return r[key]
    return math.nan


def last(rows, key):
    return rows[-1][key] if rows else math.nan


def signed(x, spec=".3f"):
    return "n/a" if math.isnan(x) else format(x, "+" + spec)


def seeds_of(runs, pattern):
    """The seeds of the runs whose names match `pattern` (one group: the seed)."""
    return sorted({int(m[1]) for n in runs for m in [re.fullmatch(pattern, n)] if m})


def gpt_section(runs, out, docs, values):
    seeds = seeds_of(runs, r"gpt-\w+?-n\d+-s(\d+)-f32")
    steps = sorted({int(m[1]) for n in runs for m in [re.fullmatch(r"gpt-\w+?-n(\d+)-s\d+-\w+", n)] if m} - {1000})
    if not steps:
        return
    n = steps[-1]
    lengths = [1000, n] if n > 1000 else [n]
    out.append(f"### The character model (eval loss in nats at x, {n:,}-step runs)\n")
    out.append("| optimizer | seed | step | f32 | bf16 | bf16, other bits | nearest | bf16 - f32 | "
               "other bits - bf16 | nearest - f32 |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    diffs = {}
    for opt in ["adamw_sf", "sf_plus"]:
        for length in lengths:
            for seed in seeds:
                v = {p: at(runs.get(f"gpt-{opt}-n{n}-s{seed}-{p}", ([], 0, 0))[0], length) for p, _ in PRECS + [ALT]}
                d_sr, d_rn, d_alt = v["bf16"] - v["f32"], v["nearest"] - v["f32"], v["bf16alt"] - v["bf16"]
                diffs.setdefault((opt, length), []).append((d_sr, d_rn, d_alt))
                out.append(f"| {opt} | {seed} | {length:,} | {fmt(v['f32'], '.3f')} | {fmt(v['bf16'], '.3f')} | "
                           f"{fmt(v['bf16alt'], '.3f')} | {fmt(v['nearest'], '.3f')} | {signed(d_sr)} | "
                           f"{signed(d_alt)} | {signed(d_rn)} |")
    out.append("")
    out.append(f"Mean over the seeds (goal: bf16 within {GPT_GOAL} nats of f32):\n")
    out.append("| optimizer | step | bf16 - f32 | \\|other bits - bf16\\| | nearest - f32 | "
               "bf16 within the goal on every seed |")
    out.append("|---|---|---|---|---|---|")
    for (opt, length), ds in diffs.items():
        sr = [d for d, _, _ in ds]
        rn = [d for _, d, _ in ds]
        alt = [abs(d) for _, _, d in ds]
        ok = all(abs(d) <= GPT_GOAL for d in sr)
        out.append(f"| {opt} | {length:,} | {signed(mean(sr))} | {fmt(mean(alt), '.3f')} | {signed(mean(rn))} | "
                   f"{'yes' if ok else 'no'} |")
        key = f"GPT_{opt.upper()}_{length}"
        values[key + "_SR"], values[key + "_ALT"], values[key + "_RN"] = (
            signed(mean(sr)), fmt(mean(alt), ".3f"), signed(mean(rn)))
        values[key + "_SR_WORST"] = fmt(max(abs(d) for d in sr), ".3f")
        values[key + "_ALT_WORST"] = fmt(max(alt), ".3f")
    out.append("")
    values["GPT_STEPS"] = f"{n:,}"
    values["GPT_SEEDS"] = str(len(seeds))

    # The 1,000-step command against the row at step 1,000 of the long runs.
    checks = []
    for p in ["f32", "bf16"]:
        short = runs.get(f"gpt-adamw_sf-n1000-s0-{p}")
        long_ = runs.get(f"gpt-adamw_sf-n{n}-s0-{p}")
        if short and long_ and short[0]:
            a, b = last(short[0], "eval_loss"), at(long_[0], 1000)
            checks.append((p, a, b))
    if checks:
        out.append("The 1,000-step runs (`sfnap train --model gpt --data text --opt adamw_sf --lr 3e-3 --warmup 50 "
                   "--steps 1000 --batch 8`, seed 0), against the row at step 1,000 of the long runs:\n")
        out.append(f"| state | 1,000-step run | step 1,000 of the {n:,}-step run | same |")
        out.append("|---|---|---|---|")
        for p, a, b in checks:
            out.append(f"| {p} | {fmt(a, '.4f')} | {fmt(b, '.4f')} | {'yes' if a == b else 'NO'} |")
        out.append("")
        if len(checks) == 2:
            values["DONE_WHEN"] = (f"{fmt(checks[1][1], '.4f')} with bf16 state against {fmt(checks[0][1], '.4f')} "
                                   f"in f32 ({signed(checks[1][1] - checks[0][1], '.4f')} nats)")

    # The plot: bf16 minus f32 along the run, each optimizer and seed.
    for opt in ["adamw_sf", "sf_plus"]:
        series = []
        for seed in seeds:
            base = {int(r["step"]): r["eval_loss"] for r in runs.get(f"gpt-{opt}-n{n}-s{seed}-f32", ([],))[0]}
            for p, label in PRECS[1:] + [ALT]:
                rows = runs.get(f"gpt-{opt}-n{n}-s{seed}-{p}", ([],))[0]
                pts = [(int(r["step"]), r["eval_loss"] - base[int(r["step"])]) for r in rows if int(r["step"]) in base]
                dash = "" if seed == seeds[0] else "6,3"
                series.append((f"{SHORT[p]}, s{seed}", COLOURS[p], dash, pts))
        name = f"bf16_state_gpt_{opt}.svg"
        svg_lines(series, os.path.join(docs, name), f"character model, {opt}: eval loss minus f32's",
                  "nats", xlabel="step")
        values[f"IMG_GPT_{opt.upper()}"] = name


def digits_section(runs, out, values):
    seeds = seeds_of(runs, r"digits-\w+?-s(\d+)-f32")
    if not seeds:
        return
    out.append(f"### Digits + NaP (test accuracy at x after 2,000 steps, {len(seeds)} seeds)\n")
    out.append("| optimizer | f32 | bf16 | bf16, other bits | nearest | bf16 - f32 (per seed) | mean bf16 - f32 | "
               "mean other bits - bf16 | mean nearest - f32 |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for opt in ["sf_plus", "adamw_sf"]:
        acc = {p: [100 * last(runs.get(f"digits-{opt}-s{s}-{p}", ([],))[0], "eval_accuracy") for s in seeds]
               for p, _ in PRECS + [ALT]}
        d_sr = [b - a for a, b in zip(acc["f32"], acc["bf16"])]
        d_rn = [b - a for a, b in zip(acc["f32"], acc["nearest"])]
        d_alt = [b - a for a, b in zip(acc["bf16"], acc["bf16alt"])]
        per_seed = ", ".join(signed(d, ".2f") for d in d_sr)
        out.append(f"| {opt} | {fmt(mean(acc['f32']))}% | {fmt(mean(acc['bf16']))}% | {fmt(mean(acc['bf16alt']))}% | "
                   f"{fmt(mean(acc['nearest']))}% | {per_seed} | {signed(mean(d_sr), '.2f')} | "
                   f"{signed(mean(d_alt), '.2f')} | {signed(mean(d_rn), '.2f')} |")
        values[f"DIGITS_{opt.upper()}"] = signed(mean(d_sr), ".2f")
        values[f"DIGITS_{opt.upper()}_ALT"] = signed(mean(d_alt), ".2f")
        values[f"DIGITS_{opt.upper()}_RN"] = signed(mean(d_rn), ".2f")
    out.append("")


def continual_section(runs, out, docs, values):
    seeds = seeds_of(runs, r"continual-s(\d+)-f32")
    if not seeds:
        return
    out.append("### The continual stream + NaP, adamw_sf with `--sf-window 100 --sf-beta 0.5` "
               f"(accuracy at x at the end of each task, {len(seeds)} seeds)\n")
    out.append("| state | all tasks | last 3 tasks | per seed (all tasks) |")
    out.append("|---|---|---|---|")
    for p, label in PRECS:
        per = [[r["eval_accuracy"] for r in runs.get(f"continual-s{s}-{p}", ([],))[0]] for s in seeds]
        out.append(f"| {label} | {fmt(mean([mean(a) for a in per]))} | {fmt(mean([mean(a[-3:]) for a in per]))} | "
                   f"{', '.join(fmt(mean(a)) for a in per)} |")
    out.append("")
    series = []
    for p, label in PRECS:
        per = [[r["eval_accuracy"] for r in runs.get(f"continual-s{s}-{p}", ([],))[0]] for s in seeds]
        k = min(len(a) for a in per)
        series.append((SHORT[p], COLOURS[p], "", [(i + 1, mean([a[i] for a in per])) for i in range(k)]))
    svg_lines(series, os.path.join(docs, "bf16_state_continual.svg"),
              "continual stream + NaP: accuracy at the end of each task", "accuracy", ymin=0, ymax=1)
    values["IMG_CONTINUAL"] = "bf16_state_continual.svg"


def times_section(runs, out):
    """Seconds per run, by family and precision (training on lavapipe, JOBS at a time)."""
    out.append("### Wall time of the runs (seconds, mean)\n")
    out.append("Two to four runs at a time on 2 cores shared with other work: this says what the study costs, "
               "not how fast a bf16 step is. [BENCHMARKS.md](../BENCHMARKS.md"
               "#f32-against-bf16-optimizer-state-hand-written-copied-in-by-scriptsbench_reportpy) "
               "times the step itself.\n")
    out.append("| runs | f32 | bf16 | nearest |")
    out.append("|---|---|---|---|")
    families = sorted({re.sub(r"-s\d+-\w+$", "", n) for n in runs})
    for fam in families:
        t = {p: mean([s for n, (_, _, s) in runs.items()
                      if n.startswith(fam + "-s") and n.endswith("-" + p) and s is not None]) for p, _ in PRECS}
        out.append(f"| {fam} | {fmt(t['f32'], '.0f')} | {fmt(t['bf16'], '.0f')} | {fmt(t['nearest'], '.0f')} |")
    out.append("")


def main():
    study = sys.argv[1]
    md_path = sys.argv[2] if len(sys.argv) > 2 else "docs/bf16-state.md"
    docs = os.path.dirname(md_path) or "."
    runs = load(os.path.join(study, "runs"))
    failed = [n for n, (_, st, _) in runs.items() if st not in (0, None)]
    values = {}
    tables = []
    gpt_section(runs, tables, docs, values)
    digits_section(runs, tables, values)
    continual_section(runs, tables, docs, values)
    times_section(runs, tables)
    if failed:
        tables.append("Runs that exited with an error: " + ", ".join(f"`{n}`" for n in failed) + "\n")
    values["TABLES"] = "\n".join(tables).rstrip()
    values["DATE"] = time.strftime("%Y-%m-%d")
    values["RUNS"] = str(len(runs))
    with open(NOTES) as f:
        notes = f.read()
    for key, value in values.items():
        notes = notes.replace("{{" + key + "}}", value)
    notes = IMG.sub(lambda m: f"![{m.group(2)}]({m.group(1)})", notes)
    # The notes link to docs/ from scripts/ (so that the link check holds there too).
    notes = notes.replace("](../docs/", "](")
    if "{{" in notes:
        sys.exit("error: a placeholder of " + NOTES + " is not filled: " + notes[notes.index("{{"):][:40])
    header = ["<!-- Written by scripts/bf16_state_report.py from the runs of scripts/bf16_state.sh (make evidence-bf16);",
              "     edit scripts/bf16_state_notes.md or the scripts, not this page. -->", ""]
    with open(md_path, "w") as f:
        f.write("\n".join(header) + notes.rstrip() + "\n")
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
