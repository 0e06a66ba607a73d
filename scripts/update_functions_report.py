"""docs/update-functions.md and its SVG plots from the runs of scripts/update_functions.sh
(each target/update-functions/NAME/inspect/update.json, as `sfnap inspect update --json`
prints it). Standard library only.

Usage: python3 scripts/update_functions_report.py target/update-functions
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_lib import svg_lines  # noqa: E402

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "update_functions_notes.md")
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs/update-functions.md")
# {{IMG file.svg|alt text}} in the notes: a plot of docs/ (the notes live in scripts/,
# where a Markdown link to it would not resolve).
IMG = re.compile(r"\{\{IMG ([^|}]+)\|([^}]*)\}\}")
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
# The runs, in the page's order: (name, label, settings).
RUNS = [
    ("sgd_sf", "sgd_sf", "`--opt sgd_sf --lr 0.3`"),
    ("adamw_sf", "adamw_sf", "`--opt adamw_sf --lr 3e-3`"),
    ("adamw_sf_paper", "adamw_sf_paper", "`--opt adamw_sf_paper --lr 3e-3`"),
    ("radam_sf", "radam_sf", "`--opt radam_sf --lr 3e-3`"),
    ("sf_plus", "sf_plus", "`--opt sf_plus` (no learning rate)"),
    ("adamw_wsd", "adamw + wsd", "`--opt adamw --lr 1e-3 --schedule wsd`"),
    ("adamw", "adamw", "`--opt adamw --lr 1e-3`"),
    ("continual_adamw", "adamw, continual", "`--data continual --opt adamw --lr 1e-3`"),
    ("continual_adamw_nap", "adamw + NaP, continual", "`--data continual --opt adamw --lr 1e-3 --nap`"),
    ("continual_sgd_sf", "sgd_sf, continual", "`--data continual --opt sgd_sf --lr 0.3`"),
    ("continual_sgd_sf_nap", "sgd_sf + NaP, continual", "`--data continual --opt sgd_sf --lr 0.3 --nap`"),
]
# The NaP pairs: (without, with).
NAP_PAIRS = [("continual_sgd_sf", "continual_sgd_sf_nap"), ("continual_adamw", "continual_adamw_nap")]
SF = ["sgd_sf", "adamw_sf", "adamw_sf_paper", "radam_sf", "sf_plus"]
TENSOR = "l1.weight"  # the tensor the page draws: the second hidden layer's weights


def load(root):
    runs = {}
    for name, _, _ in RUNS:
        path = os.path.join(root, name, "inspect", "update.json")
        if not os.path.exists(path):
            sys.exit(f"error: {path} is missing: run scripts/update_functions.sh first")
        with open(path) as f:
            runs[name] = json.load(f)
    return runs


def tensor_row(moment, tensor):
    return next(t for t in moment["tensors"] if t["tensor"] == tensor)


def curve(run, tensor):
    return next(c for c in run["curves"] if c["tensor"] == tensor)


def g3(x):
    return "n/a" if x is None else f"{x + 0.0:.3g}"


def ratio(a, b):
    """a / b, None where b is 0 (a step that did not move: sf_plus's zero Polyak step)."""
    return a / b if b else None


def plot_updates(run, name, label, seqs):
    """update_NAME_SEQ.svg: the update of SEQ against g at each moment; returns the file names."""
    c = curve(run, TENSOR)
    steps = [m["step"] for m in run["moments"]]
    files = []
    for seq in seqs:
        series = []
        for i, (sweep, step) in enumerate(zip(c["sweeps"], steps)):
            series.append((f"step {step}", COLOURS[i % len(COLOURS)], "", [(u["g"], u[seq]) for u in sweep]))
        fname = f"update_{name}_{seq}.svg"
        what = {"x": "x (evaluation weights)", "y": "y (training weights)", "z": "z (base sequence)"}[seq]
        if seq == "x" and name.startswith("adamw"):
            what = "the weights"
        svg_lines(series, os.path.join(DOCS, fname), f"{label}: update of {what}, {TENSOR}[{c['index']}]",
                  f"change of {seq}", xlabel="g")
        files.append(fname)
    return files


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "target/update-functions"
    runs = load(root)
    steps = [m["step"] for m in runs["sgd_sf"]["moments"]]

    # The slope of x at g = 0 over training, every kind.
    series = []
    for i, (name, label, _) in enumerate(RUNS[:6]):
        pts = [(m["step"], -tensor_row(m, TENSOR)["slope"]["x"]) for m in runs[name]["moments"]]
        series.append((label, COLOURS[i], "4,3" if name == "adamw_wsd" else "", pts))
    svg_lines(series, os.path.join(DOCS, "update_slopes.svg"), f"-(slope of x at g = 0), {TENSOR}, median",
              "-dx/dg", log=True, xlabel="step", logx=True)

    # x's slope over z's: c_t for the Schedule-Free kinds.
    series = []
    for i, name in enumerate(SF):
        pts = [(m["step"], ratio(tensor_row(m, TENSOR)["slope"]["x"], tensor_row(m, TENSOR)["slope"]["z"]))
               for m in runs[name]["moments"]]
        series.append((name, COLOURS[i], "", pts))
    series.append(("1 / (k + 1)", "black", "4,3", [(k, 1 / (k + 1)) for k in steps]))
    svg_lines(series, os.path.join(DOCS, "update_ratio.svg"), f"slope of x over slope of z, {TENSOR}",
              "dx/dg / dz/dg", log=True, xlabel="step", logx=True)

    # NaP: the effective learning rate and the norm, with and without.
    for pair in NAP_PAIRS:
        series, norms = [], []
        for i, name in enumerate(pair):
            for j, tensor in enumerate(["l0.weight", TENSOR]):
                label = f"{'NaP' if i else 'no NaP'} {tensor}"
                rows = [(m["step"], tensor_row(m, tensor)) for m in runs[name]["moments"]]
                dash = "" if i else "4,3"
                series.append((label, COLOURS[2 * i + j], dash, [(st, t["effective_lr"]) for st, t in rows]))
                norms.append((label, COLOURS[2 * i + j], dash, [(st, t["norm"]) for st, t in rows]))
        kind = runs[pair[0]]["kind"]
        svg_lines(series, os.path.join(DOCS, f"update_nap_{kind}_elr.svg"),
                  f"{kind}, continual: effective lr = -(slope of z) / |z|^2", "effective lr", log=True,
                  xlabel="step", logx=True)
        svg_lines(norms, os.path.join(DOCS, f"update_nap_{kind}_norm.svg"), f"{kind}, continual: |z|", "|z|",
                  xlabel="step", logx=True)

    figures = {}
    for name, label, _ in RUNS[:7]:  # the digits runs: every kind
        seqs = ["x"] if name.startswith("adamw") and not name.startswith("adamw_sf") else ["x", "z"]
        figures[name] = plot_updates(runs[name], name, label, seqs)

    out = [
        "# Update functions",
        "",
        "<!-- Written by scripts/update_functions_report.py (`make update-functions`); edit",
        "     scripts/update_functions_notes.md or the script, not this page. -->",
        "",
    ]
    with open(NOTES) as f:
        notes = f.read()

    def table_slopes(name, with_c):
        lines = ["| step | -dx/dg | -dy/dg | -dz/dg | dx/dg over dz/dg | 1 / (k + 1) |" if with_c else
                 "| step | -dx/dg | -dz/dg |",
                 "|---:|---:|---:|---:|---:|---:|" if with_c else "|---:|---:|---:|"]
        for m in runs[name]["moments"]:
            s = tensor_row(m, TENSOR)["slope"]
            if with_c:
                lines.append(f"| {m['step']} | {g3(-s['x'])} | {g3(-s['y'])} | {g3(-s['z'])} | {g3(ratio(s['x'], s['z']))} "
                             f"| {g3(1 / (m['step'] + 1))} |")
            else:
                lines.append(f"| {m['step']} | {g3(-s['x'])} | {g3(-s['z'])} |")
        return "\n".join(lines)

    def table_nap(pair):
        lines = ["| step | no NaP: \\|z\\| | no NaP: -dz/dg | no NaP: effective lr | NaP: \\|z\\| | NaP: -dz/dg "
                 "| NaP: effective lr |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        for a, b in zip(runs[pair[0]]["moments"], runs[pair[1]]["moments"]):
            ta, tb = tensor_row(a, TENSOR), tensor_row(b, TENSOR)
            lines.append(f"| {a['step']} | {ta['norm']:.2f} | {g3(-ta['slope']['z'])} | {g3(ta['effective_lr'])} "
                         f"| {tb['norm']:.2f} | {g3(-tb['slope']['z'])} | {g3(tb['effective_lr'])} |")
        return "\n".join(lines)

    deviations = [m["deviation"] for r in runs.values() for m in r["moments"]]
    values = {
        "STEPS": ", ".join(str(s) for s in steps),
        "RUNS": "\n".join(f"- **{label}**: {settings}" for _, label, settings in RUNS),
        "TABLE_SGD_SF": table_slopes("sgd_sf", True),
        "TABLE_ADAMW_SF": table_slopes("adamw_sf", True),
        "TABLE_SF_PLUS": table_slopes("sf_plus", True),
        "TABLE_WSD": table_slopes("adamw_wsd", False),
        "TABLE_NAP_SGD_SF": table_nap(NAP_PAIRS[0]),
        "TABLE_NAP_ADAMW": table_nap(NAP_PAIRS[1]),
        "CONTINUAL_STEPS": ", ".join(str(m["step"]) for m in runs["continual_adamw"]["moments"]),
        "DEVIATION_MAX": f"{max(deviations):.1e}",
    }
    for name, files in figures.items():
        values[f"FIG_{name.upper()}"] = " ".join(f"![{f}]({f})" for f in files)
    for key, value in values.items():
        notes = notes.replace("{{" + key + "}}", value)
    notes = IMG.sub(lambda m: f"![{m.group(2)}]({m.group(1)})", notes)
    if "{{" in notes:
        sys.exit("error: a placeholder of " + NOTES + " is not filled: " + notes[notes.index("{{"):][:40])
    out.append(notes.rstrip())
    with open(PAGE, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote docs/update-functions.md and its plots")


if __name__ == "__main__":
    main()
