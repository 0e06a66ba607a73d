"""Writes docs/evidence.md and its SVG plots from the runs of scripts/sf_plus_evidence.sh
and scripts/sf_plus_scale.sh.

    python3 scripts/evidence_report.py target/evidence docs/evidence.md

target/evidence/runs/ holds gpt-OPT-nSTEPS-sSEED and digits-OPT-sSEED, target/evidence/scale/
holds wWIDTH-bBATCH (each with metrics.csv and done = "exit-status seconds"). The hand-written
part of the page (what the numbers mean) is scripts/evidence_notes.md, copied in; every number
in the tables and plots is computed here from the runs. Standard library only.
"""

import math
import os
import re
import sys
import time

from report_lib import fmt, mean, read_run, svg_lines

UNIGRAM = 3.19  # the shipped text's unigram entropy (nats/char): what a model without context reaches
COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
FAMILIES = [
    ("sf_plus", "sf_plus (sfnap), no learning rate"),
    ("sf_plus_ref", "sf_plus (paper), no learning rate"),
    ("adamw_sf", "adamw_sf"),
    ("wsd", "adamw + WSD"),
    ("cosine", "adamw + cosine"),
]


def family(opt):
    """(family, learning rate or None) of an optimizer name: wsd-3e-3 -> (wsd, 0.003)."""
    m = re.fullmatch(r"(adamw_sf|wsd|cosine)-([0-9.e-]+)", opt)
    return (m[1], float(m[2])) if m else (opt, None)


def label(opt):
    fam, lr = family(opt)
    name = dict(FAMILIES).get(fam, fam)
    return f"{name}, lr {lr:g}" if lr is not None else name


def short_label(opt):
    """A plot legend's name: sf_plus (sfnap), WSD 0.003."""
    fam, lr = family(opt)
    name = {"sf_plus": "sf_plus (sfnap)", "sf_plus_ref": "sf_plus (paper)", "wsd": "WSD"}.get(fam, fam)
    return f"{name} {lr:g}" if lr is not None else name


def final(rows, key):
    return rows[-1][key] if rows else math.nan


def load(runs_dir):
    """{(task, opt, steps, seed): (rows, status)} of every finished run."""
    runs = {}
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        m = re.fullmatch(r"gpt-(.+)-n(\d+)-s(\d+)", name) or re.fullmatch(r"(digits|continual)-(.+)-s(\d+)", name)
        if not m or not os.path.isdir(os.path.join(runs_dir, name)):
            continue
        rows, status, _ = read_run(os.path.join(runs_dir, name))
        if status is None:
            continue  # unfinished
        if name.startswith("gpt-"):
            runs[("gpt", m[1], int(m[2]), int(m[3]))] = (rows, status)
        else:
            runs[(m[1], m[2], 2000 if m[1] == "digits" else 6000, int(m[3]))] = (rows, status)
    return runs


def by_opt(runs, task, steps, key):
    """{opt: [final value per seed, in seed order]} and the seeds seen."""
    out, seeds = {}, set()
    for (t, opt, n, seed), (rows, status) in sorted(runs.items()):
        if t == task and n == steps:
            out.setdefault(opt, []).append(final(rows, key) if status == 0 else math.nan)
            seeds.add(seed)
    return out, sorted(seeds)


def best(values, fam, lower):
    """The best optimizer of a family by its mean over seeds: (opt, mean)."""
    cands = [(o, mean(v)) for o, v in values.items() if family(o)[0] == fam and not math.isnan(mean(v))]
    if not cands:
        return None, math.nan
    return (min if lower else max)(cands, key=lambda c: c[1])


def lowest(runs, task, steps):
    """{opt: mean over seeds of the lowest eval loss along the run}."""
    out = {}
    for (t, opt, n, _), (rows, status) in sorted(runs.items()):
        if t == task and n == steps and status == 0 and rows:
            out.setdefault(opt, []).append(min(r["eval_loss"] for r in rows))
    return {o: mean(v) for o, v in out.items()}


def table(values, seeds, key_fmt, lower, extra=None):
    """Markdown rows: optimizer | per seed | mean (| extra column); the best of each
    family in bold. `extra`: (title, {opt: value})."""
    bests = {best(values, fam, lower)[0] for fam, _ in FAMILIES}
    lines = ["| optimizer | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |"
             + (f" {extra[0]} |" if extra else ""),
             "|---|" + "---|" * (len(seeds) + 1 + (1 if extra else 0))]
    order = sorted(values, key=lambda o: ([f for f, _ in FAMILIES].index(family(o)[0])
                                          if family(o)[0] in dict(FAMILIES) else 99, family(o)[1] or 0))
    for o in order:
        v = values[o]
        m = fmt(mean(v), key_fmt)
        name = f"**{label(o)}**" if o in bests and family(o)[1] is not None else label(o)
        more = f" {fmt(extra[1].get(o, math.nan), key_fmt)} |" if extra else ""
        lines.append(f"| {name} | " + " | ".join(fmt(x, key_fmt) for x in v) + f" | {m} |" + more)
    return lines


def curves(runs, task, steps, opts, key):
    """[(label, colour, dash, points)] of the mean over seeds of `key` along the run."""
    series = []
    for i, o in enumerate(opts):
        seqs = [rows for (t, opt, n, _), (rows, st) in sorted(runs.items()) if t == task and opt == o and n == steps]
        if not seqs:
            continue
        pts = {}
        for rows in seqs:
            for r in rows:
                pts.setdefault(int(r["step"]), []).append(r[key])
        series.append((short_label(o), COLOURS[i % len(COLOURS)], "6,3" if o == "sf_plus_ref" else "",
                       sorted((s, mean(v)) for s, v in pts.items())))
    return series


def gpt_section(runs, docs, lines):
    lengths = sorted({n for (t, _, n, _) in runs if t == "gpt"})
    claims = []
    for n in lengths:
        values, seeds = by_opt(runs, "gpt", n, "eval_loss")
        lines += [f"### {n:,} steps ({n * 8 * 64:,} tokens)", ""]
        lines += table(values, seeds, ".3f", lower=True,
                       extra=("lowest along the run (mean)", lowest(runs, "gpt", n))) + [""]
        ours, ref = mean(values.get("sf_plus", [])), mean(values.get("sf_plus_ref", []))
        wsd_opt, wsd = best(values, "wsd", True)
        sf_opt, sf = best(values, "adamw_sf", True)
        cos_opt, cos = best(values, "cosine", True)
        claims.append((n, ours, ref, wsd_opt, wsd, sf, cos, len(seeds), len(values)))
        opts = ["sf_plus", "sf_plus_ref"] + [o for o in (sf_opt, wsd_opt, cos_opt) if o]
        svg = f"evidence_gpt_{n}.svg"
        svg_lines(curves(runs, "gpt", n, opts, "eval_loss"), os.path.join(docs, svg),
                  f"Character model, {n:,} steps: eval loss at x (mean over seeds)", "nats per character",
                  ymin=1.0, ymax=4.5, xlabel="step")
        if os.path.exists(os.path.join(docs, svg)):
            lines += [f"![eval loss over {n} steps]({svg})", ""]
    return claims


def scale_section(scale_dir, docs, lines):
    names = sorted(os.listdir(scale_dir)) if os.path.isdir(scale_dir) else []
    found = []
    for name in names:
        m = re.fullmatch(r"w(\d+)-b(\d+)", name)
        if not m:
            continue
        rows, status, seconds = read_run(os.path.join(scale_dir, name))
        if status is None or not rows:
            continue
        found.append((int(m[1]), int(m[2]), rows, status))
    if not found:
        lines += ["(no scale runs found)", ""]
        return []
    found.sort()
    lines += ["| width | batch | gamma at step 10 | largest gamma | step of the largest | "
              "eval loss at x, end | steps | below the unigram level (3.19 - 0.1) |",
              "|---|---|---|---|---|---|---|---|"]
    out = []
    for w, b, rows, status in found:
        g10 = next((r["gamma"] for r in rows if r["step"] == 10), math.nan)
        big = max(rows, key=lambda r: r["gamma"] if math.isfinite(r["gamma"]) else -1)
        end = rows[-1]["eval_loss"]
        below = end < UNIGRAM - 0.1
        lines.append(f"| {w} | {b} | {fmt(g10, '.4f')} | {fmt(big['gamma'], '.3f')} | {int(big['step'])} | "
                     f"{fmt(end, '.2f')} | {int(rows[-1]['step'])} | {'yes' if below else 'no'} |")
        out.append((w, b, g10, big["gamma"], end))
    lines.append("")
    series = [(f"width {w}, batch {b}", COLOURS[i % len(COLOURS)], "" if b == 8 else "6,3",
               [(r["step"], r["gamma"]) for r in rows]) for i, (w, b, rows, _) in enumerate(found)]
    svg_lines(series, os.path.join(docs, "evidence_scale_gamma.svg"),
              "Reference sf_plus: the step gamma (log scale)", "gamma", log=True, xlabel="step")
    series = [(f"width {w}, batch {b}", COLOURS[i % len(COLOURS)], "" if b == 8 else "6,3",
               [(r["step"], r["eval_loss"]) for r in rows]) for i, (w, b, rows, _) in enumerate(found)]
    svg_lines(series, os.path.join(docs, "evidence_scale_loss.svg"),
              "Reference sf_plus: eval loss at x", "nats per character", ymin=2.0, ymax=8.0, xlabel="step")
    lines += ["![gamma of the reference step by width and batch](evidence_scale_gamma.svg)", "",
              "![eval loss of the reference step by width and batch](evidence_scale_loss.svg)", ""]
    return out


def main():
    root, md_path = sys.argv[1:3]
    docs = os.path.dirname(md_path) or "."
    runs = load(os.path.join(root, "runs"))
    lines = [
        "# ScheduleFree+ without a learning rate: the evidence",
        "",
        "Generated by `make evidence-sf-plus` (`scripts/sf_plus_evidence.sh`, `scripts/sf_plus_scale.sh`; "
        f"this page by `scripts/evidence_report.py`) on {time.strftime('%Y-%m-%d')}, on lavapipe "
        "(Mesa's CPU Vulkan driver, 2 cores). Every number below comes from the runs in `target/evidence/`.",
        "",
        "**Setup.** The character model is `sfnap train --model gpt --data text --batch 8` (2 layers, width 64, "
        "4 heads, context 64: 8 x 64 = 512 characters a step), the loss at x on a fixed held-out set of 16 "
        "sequences (1,024 characters) of the text's last 10%. Digits is the MLP 64-256-256-10 with `--nap`, "
        "batch 64, 2,000 steps. `sf_plus` is `sfnap train --opt sf_plus` with no learning rate (sfnap's step, "
        "the default); `sf_plus (paper)` adds `--sf-plus-reference`. The tuned baselines use `--lr` from a "
        "grid with a warmup of 50 steps (GPT) or 100 (digits); WSD decays over the last 20% of the steps, "
        "cosine to 0. In the tables the best learning rate of each family is in bold.",
        "",
    ]
    body = ["## The character model", ""]
    claims = gpt_section(runs, docs, body)
    body += ["## Digits (MLP + NaP): test accuracy at x", ""]
    dvalues, dseeds = by_opt(runs, "digits", 2000, "eval_accuracy")
    if dvalues:
        body += table({o: [100 * x for x in v] for o, v in dvalues.items()}, dseeds, ".1f", lower=False) + [""]
    else:
        body += ["(no digits runs found)", ""]
    body += ["## The continual stream (MLP + NaP, labels re-drawn every 500 steps)", ""]
    cont = sorted((k, v) for k, v in runs.items() if k[0] == "continual")
    if cont:
        body += ["| optimizer | seed | exit status | eval loss at x, end | largest eval loss | "
                 "mean eval accuracy |", "|---|---|---|---|---|---|"]
        for (_, opt, _, seed), (rows, status) in cont:
            worst = max((r["eval_loss"] for r in rows), default=math.nan)
            body.append(f"| {label(opt)} | {seed} | {status} | {fmt(final(rows, 'eval_loss'), '.3f')} | "
                        f"{fmt(worst, '.3g')} | {fmt(mean([r['eval_accuracy'] for r in rows]), '.3f')} |")
        body += ["", "Chance is ln 10 = 2.30 nats and 0.10 accuracy; a run that diverges stops with exit "
                 "status 1 (a loss above 100 ln 10 at three evaluations in a row).", ""]
    else:
        body += ["(no continual runs found)", ""]
    body += ["## Why the paper's step fails here: the scale study", "",
             "The paper's sf_plus (`--sf-plus-reference`) on the character model at widths 32 to 256 (batch 8) "
             "and batches 2 to 32 (width 64), evaluated every 10 steps.", ""]
    scale = scale_section(os.path.join(root, "scale"), docs, body)

    # The claims, next to what these runs show.
    lines += ["## The claims and what this scale shows", "",
              "| claim | what the runs here show |", "|---|---|"]
    for n, ours, ref, wsd_opt, wsd, sf, cos, nseeds, nopts in claims:
        if math.isnan(ours) or math.isnan(wsd):
            continue
        verdict = "beats" if ours < wsd else "trails"
        lines.append(
            f"| ScheduleFree+ needs no learning rate and beats tuned WSD ({n:,} steps, {nseeds} seed(s), "
            f"{nopts} optimizers) | sfnap's sf_plus {ours:.3f} {verdict} the best WSD ({label(wsd_opt)}) "
            f"{wsd:.3f} by {abs(wsd - ours):.3f} nats; the paper's sf_plus reaches {fmt(ref, '.3f')} "
            f"(unigram statistics: {UNIGRAM}); best adamw_sf {fmt(sf, '.3f')}, best cosine {fmt(cos, '.3f')} |")
    gaps = [(n, wsd - ours) for n, ours, _, _, wsd, *_ in claims if not (math.isnan(ours) or math.isnan(wsd))]
    if len(gaps) > 1:
        trend = " -> ".join(f"{g:+.3f} at {n:,}" for n, g in gaps)
        grows = all(b[1] > a[1] for a, b in zip(gaps, gaps[1:]))
        lines.append(f"| ... by more the longer the run | the best WSD minus sfnap's sf_plus (positive: sf_plus "
                     f"ahead): {trend} nats: sf_plus's lead "
                     f"{'grows with the length' if grows else 'does not grow steadily with the length'} |")
    if dvalues:
        ours_d = mean(dvalues.get("sf_plus", []))
        ref_d = mean(dvalues.get("sf_plus_ref", []))
        _, wsd_d = best(dvalues, "wsd", False)
        lines.append(f"| sf_plus + NaP trains digits without a learning rate | sfnap's {fmt(100 * ours_d, '.1f')}%, "
                     f"the paper's {fmt(100 * ref_d, '.1f')}%, best WSD {fmt(100 * wsd_d, '.1f')}% |")
    for (_, opt, _, seed), (rows, status) in sorted((k, v) for k, v in runs.items() if k[0] == "continual"):
        worst = max((r["eval_loss"] for r in rows), default=math.nan)
        lines.append(f"| sf_plus survives the continual stream without diverging | {label(opt)}, seed {seed}: "
                     f"exit status {status}, largest eval loss {fmt(worst, '.3g')} |")
    if scale:
        learned = [f"{w}x{b}" for w, b, _, _, end in scale if end < UNIGRAM - 0.1]
        lines.append(f"| (the paper's step at this scale) | width x batch whose loss at x ends below the unigram "
                     f"level: {', '.join(learned) if learned else 'none'}; the step at step 10 against its largest: "
                     + ", ".join(f"{w}x{b} {fmt(g, '.4f')} -> {fmt(big, '.3f')}" for w, b, g, big, _ in scale)
                     + " |")
    lines.append("")
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evidence_notes.md")
    if os.path.exists(notes):
        lines += [open(notes).read().rstrip(), ""]
    lines += body
    with open(md_path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
