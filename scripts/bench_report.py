"""Writes BENCHMARKS.md and its SVG plot from the JSON lines of scripts/bench.sh.

    python3 scripts/bench_report.py RESULTS_DIR BENCHMARKS.md PLOT.svg

RESULTS_DIR holds sfnap.jsonl ({"sweep", "cmd", "result"} per line; sweep "train"
holds `sfnap bench --train` results), peers.jsonl and train_peers.jsonl
(benches/peers/peers.py and train_peer.py, possibly empty or missing) and devices.txt. The hand-written part (what was
tried, the levers; the data-parallel exchange; the step on a caller's buffers) is benches/precision.md, benches/levers.md,
benches/distributed.md and benches/foreign.md, copied in. Standard library only.
"""

import json
import os
import platform
import subprocess
import sys
import time


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fastest(rows, key):
    """One row per key (first-seen order), the one with the smallest time (step_ms, or a
    matmul's ms)."""
    def ms(r):
        x = r["result"] if "result" in r else r
        return x["step_ms"] if "step_ms" in x else x["ms"]
    best = {}
    for r in rows:
        k = key(r)
        if k not in best or ms(r) < ms(best[k]):
            best[k] = r
    return list(best.values())


def human(n):
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_rev():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ms(r):
    """ms/step, starred when the run never found a quiet machine."""
    return fmt(r["step_ms"], 3) + ("*" if r.get("disturbed_trials", 0) >= 20 else "")


def kernel_copy(r):
    """The copy kernel's GB/s, or "-" for a result from before it was measured."""
    return fmt(r["kernel_copy_gbps"]) if "kernel_copy_gbps" in r else "-"


def machine_bandwidth(peers):
    """The machine's memory bandwidth: PyTorch's `copy_` at the largest size the peer ran
    (the copies sweep 6 tensors of that size, past any cache), as (GB/s, peer row)."""
    if not peers:
        return None, None
    top = max(p["params"] for p in peers)
    row = max((p for p in peers if p["params"] == top), key=lambda p: p["copy_gbps"])
    return row["copy_gbps"], row


def train_section(train_rows, train_peers, first_backend, matmul_rows):
    """The "Training throughput" section: `sfnap bench --train` beside the PyTorch peer."""
    md = ["## Training throughput: whole steps of `sfnap train`'s models", ""]
    md += ["A step is the batch drawn and written, forward, cross-entropy, backward and the optimizer",
           "step (adamw on both sides: sfnap's `adamw`, `torch.optim.AdamW(foreach=True)`). sfnap's time is",
           "the wall clock over a run of steps from the first batch to a drained queue (the median of 5",
           "runs); PyTorch's is each step timed alone (the median of 30, after 5 warm-up steps), on the",
           "same machine (its CPU threads = the cores, or CUDA where the peer ran there). gpt: `sfnap train",
           "--model gpt --data text` (2 pre-LN blocks, width 64, 4 heads, context 64, GELU, untied head),",
           "batch 8 sequences; mlp: `--model mlp --data digits` (64-256-256-10, Linear without bias ->",
           "LayerNorm -> ReLU), batch 64. Throughput is tokens/s for the gpt, examples/s for the mlp;",
           "the ratio is sfnap's throughput over PyTorch's (above 1: sfnap is faster).", ""]
    if not train_rows:
        md += ["Not measured in this run (scripts/bench.sh runs `sfnap bench --train gpt|mlp`).", ""]
        return md
    peer = {(p["model"], p["kind"]): p for p in train_peers if p.get("peer") == "train"}
    body = []
    for cmd, r in train_rows:
        p = peer.get((r["model"], r["kind"]))
        unit = "tokens/s" if r.get("tokens_per_s") else "examples/s"

        def rate(x):
            return x.get("tokens_per_s") or x["examples_per_s"]

        params = f"{r['params']:,}"
        if p and p.get("params") != r["params"]:
            params += f" (PyTorch: {p['params']:,}: not the same model)"
        body.append([r["model"], r["batch"], params, fmt(r["step_ms"], 3), f"{rate(r):,.0f}",
                     fmt(p["step_ms"], 3) if p else "-", f"{rate(p):,.0f}" if p else "-",
                     f"**{fmt(rate(r) / rate(p))}x**" if p else "-", unit])
    md += [table(["model", "batch", "params", "sfnap ms/step", "sfnap rate", "PyTorch ms/step",
                  "PyTorch rate", "sfnap / PyTorch", "rate in"], body), ""]
    if not peer:
        md += ["PyTorch peer: not measured in this run (`make bench-peers` creates target/peers-venv;",
               "`make bench` then runs benches/peers/train_peer.py).", ""]
    else:
        p0 = next(iter(peer.values()))
        md += [f"PyTorch {p0.get('torch')} on {p0['adapter']} ({p0['backend']}); sfnap on {first_backend}.", ""]
    mm = fastest_by(train_peers, lambda p: p["n"], "gflops", lambda p: p.get("peer") == "matmul")
    ours = {}
    for _, r in matmul_rows:
        if r["n"] not in ours or r["gflops"] > ours[r["n"]]["gflops"]:
            ours[r["n"]] = r
    if mm or ours:
        torch = {p["n"]: p for p in mm}
        peak = max(mm, key=lambda p: p["gflops"]) if mm else None
        if peak:
            md += [f"The device's measured matmul peak: **{fmt(peak['gflops'], 1)} GFLOP/s** (`torch.matmul`, n = {peak['n']},"
                   f" {mm[0]['adapter']}; float32, 2 n^3 flops a product, the median of 7 groups of calls)."]
        md += ["sfnap's column is `sfnap bench --matmul N`: the linear layer's forward product of two n x n",
               "matrices on the kernel it picks on this adapter (GPU-side time, the fastest of 5 trials).", ""]
        body = []
        for n in sorted(set(torch) | set(ours)):
            t, o = torch.get(n), ours.get(n)
            body.append([n, fmt(o["gflops"], 1) if o else "-", f"`{o['kernel'].split(' ')[0]}`" if o else "-",
                         fmt(t["gflops"], 1) if t else "-",
                         f"**{fmt(o['gflops'] / peak['gflops'], 2)}**" if o and peak else "-"])
        md += [table(["n", "sfnap GFLOP/s", "sfnap kernel", "torch GFLOP/s", "sfnap / peak"], body), ""]
    for cmd, r in train_rows:
        md += profile_table(r)
    md += ["Commands:", "", "```"] + [cmd for cmd, _ in train_rows] + [cmd for cmd, _ in matmul_rows]
    if peer:
        md += ["benches/peers/run.sh train"]
    md += ["```", ""]
    return md


def profile_table(r, top=12):
    """Where one model's training step goes (`sfnap bench --train --profile`): GPU ms per
    dispatch label, the largest first, the rest summed on one line."""
    prof = r.get("profile")
    if not prof:
        return []
    lines = prof["lines"]
    total = sum(l["ms"] for l in lines)
    rows = [[fmt(l["ms"], 3), f"{100 * l['ms'] / total:.1f}%", l["calls"], l["workgroups"], f"`{l['label']}`"]
            for l in lines[:top]]
    rest = lines[top:]
    if rest:
        ms = sum(l["ms"] for l in rest)
        rows.append([fmt(ms, 3), f"{100 * ms / total:.1f}%", sum(l["calls"] for l in rest), "",
                     f"the other {len(rest)} labels"])
    calls = sum(l["calls"] for l in lines)
    return [f"Where the {r['model']}'s step goes on the GPU (`--profile`: each of its {calls} dispatches timed in",
            f"a compute pass of its own, summed by kernel; a matmul's label gives its product's shape). They add",
            f"up to {fmt(total, 3)} ms; the whole step, recorded as training records it, takes {fmt(prof['step_ms'], 3)} ms",
            f"on the GPU and {fmt(r['step_ms'], 3)} ms of wall time:", "",
            table(["ms/step", "share", "dispatches", "workgroups", "kernel"], rows), ""]


def race_section(rows):
    """The browser race's steps/s (scripts/bench_race.py), or a line saying it was not run."""
    md = ["## The browser race", ""]
    if not rows:
        return md + ["Not measured in this run: it needs web/pkg (`make web-build`) and Chromium with",
                     "chromedriver (`bash scripts/setup-web.sh --browser`).", ""]
    r0 = rows[0]
    md += [f"`web/race.html` in headless Chromium on its WebGPU adapter ({r0['adapter']}): {r0['racers']} racers",
           f"(each optimizer's points in one arena, one step of each per step), the {r0['function']} function,",
           f"{r0['steps']} steps a run, steps over the run's wall time as the page counts them (frames,",
           "readbacks and drawing included), the fastest of "
           f"{r0['trials']} runs.", ""]
    body = [[r["points"], r["points"] * r["racers"], f"**{fmt(r['steps_per_second'], 1)}**"] for r in rows]
    md += [table(["points per racer", "2-element tensors", "steps/s"], body), ""]
    md += ["Command: `python3 scripts/bench_race.py --out target/bench/race.jsonl`", ""]
    return md


def fastest_by(rows, key, field, keep):
    """One row per key among those `keep` accepts, the one with the largest `field`."""
    best = {}
    for r in rows:
        if keep(r):
            k = key(r)
            if k not in best or r[field] > best[k][field]:
                best[k] = r
    return list(best.values())


def machine_line(peers, first):
    """The Machine section's memory bandwidth line."""
    gbps, row = machine_bandwidth(peers)
    if gbps is None:
        return ("- memory bandwidth: not measured in this run (the PyTorch peer's `copy_`; `make bench-peers`"
                " installs it)")
    where = "this machine's" if row["backend"] == "pytorch-cpu" else "the CUDA device's"
    return (f"- memory bandwidth ({where}): **{fmt(gbps)} GB/s**, PyTorch's `copy_` at {human(row['params'])}"
            f" parameters on {row['adapter']} (benches/peers); sfnap's faster copy at {human(first['params'])}:"
            f" {fmt(max(first['copy_gbps'], first.get('kernel_copy_gbps', 0)))} GB/s")


def kind_label(r):
    return r["kind"] + (" (inner momentum)" if r.get("inner_momentum", 0) > 0 else "")


def svg_plot(series, path):
    """Bandwidth (GB/s) against parameters (log2 axis): series = [(label, colour, dash, [(params, gbps)])]."""
    w, h, left, right, top, bottom = 720, 400, 60, 190, 20, 50
    pts = [p for _, _, _, s in series for p in s]
    if not pts:
        return
    lo = min(p for p, _ in pts).bit_length() - 1
    hi = max(p for p, _ in pts).bit_length() - 1
    hi = max(hi, lo + 1)
    ymax = max(g for _, g in pts) * 1.1
    ystep = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if ymax / s <= 8)

    def x(p):
        return left + (p.bit_length() - 1 - lo) / (hi - lo) * (w - left - right)

    def y(g):
        return h - bottom - g / ymax * (h - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    for e in range(lo, hi + 1, 2):
        px = x(1 << e)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{h - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{px:.1f}" y="{h - bottom + 16}" text-anchor="middle">{human(1 << e)}</text>')
    g = 0
    while g <= ymax:
        py = y(g)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{w - right}" y2="{py:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{g}</text>')
        g += ystep
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">parameters (one tensor)</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + h - bottom) / 2})">GB/s</text>')
    for i, (label, colour, dash, s) in enumerate(series):
        s = sorted(s)
        d = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in s)
        style = f'stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2" {style}/>')
        for p, v in s:
            out.append(f'<circle cx="{x(p):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        ly = top + 10 + 20 * i
        out.append(f'<line x1="{w - right + 10}" y1="{ly}" x2="{w - right + 34}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2" {style}/>')
        out.append(f'<text x="{w - right + 40}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    results_dir, md_path, svg_path = sys.argv[1:4]
    raw = load(os.path.join(results_dir, "sfnap.jsonl"))
    rows = fastest(raw, lambda r: (r["sweep"], r["cmd"]))
    peers = fastest(load(os.path.join(results_dir, "peers.jsonl")), lambda p: (p["params"], p["tensors"]))
    train_peers = load(os.path.join(results_dir, "train_peers.jsonl"))
    train_peers = fastest([p for p in train_peers if p.get("peer") == "train"],
                          lambda p: (p["model"], p["kind"])) + [p for p in train_peers if p.get("peer") == "matmul"]
    passes = max(sum(1 for r in raw if (r["sweep"], r["cmd"]) == (x["sweep"], x["cmd"])) for x in rows)
    if not rows:
        raise SystemExit(f"bench_report: no results in {results_dir}/sfnap.jsonl")
    by_sweep = {}
    for r in rows:
        by_sweep.setdefault(r["sweep"], []).append(r["result"])
    train_rows = [(r["cmd"], r["result"]) for r in rows if r["sweep"] == "train"]
    matmul_rows = [(r["cmd"], r["result"]) for r in rows if r["sweep"] == "matmul"]
    rows = [r for r in rows if r["sweep"] not in ("train", "matmul")]
    if not rows:
        raise SystemExit(f"bench_report: no optimizer-step results in {results_dir}/sfnap.jsonl")
    peer = {(p["params"], p["tensors"]): p for p in peers}
    first = rows[0]["result"]
    gpu_rows = [r["result"] for r in rows if r["result"].get("device_type") != "Cpu"]

    md = ["# Benchmarks: the optimizer step against the memory roofline", ""]
    md += ["Generated by `make bench` (scripts/bench.sh, scripts/bench_report.py); do not edit by hand:",
           "the hand-written parts are benches/precision.md, levers.md, distributed.md and foreign.md.", ""]
    md += ["The step is memory-bound. Each row reports its useful bandwidth (parameters x",
           "`bytes_per_param` / step time, `sfnap::bench::bytes_per_param` derives every figure) next to two",
           "copy bandwidths of the same adapter on buffers of the arena's size, measured in the same run",
           "(2 x bytes / time): `copy_buffer_to_buffer` (copy GB/s) and a WGSL kernel copying vec4s, one",
           "dispatch per arena segment (kernel copy GB/s; `shaders/bench.wgsl`). The **roofline** fraction is",
           "the step's bandwidth over the **faster** of the two (on a CPU driver the buffer copy may be one",
           "thread's memcpy while a kernel runs on every core); it is what compares across machines. Times are GPU-side (timestamp queries around each submission of up to RING = 64 steps),",
           "the fastest of 5 trials after a warm-up; a trial during which other processes took CPU time is",
           "repeated (up to 20 times; rows marked * ran out of retries). Each configuration ran in",
           f"{passes} separate process{'es' if passes > 1 else ''} (passes over all sweeps; the PyTorch peer"
           " likewise), and the fastest is shown.", "GB = 1e9 bytes.", ""]
    md += ["## Machine", "",
           f"- adapter: **{first['adapter']}** ({first['backend']}, {first.get('device_type', '?')}),"
           f" driver {first.get('driver', '?')}",
           f"- host: {cpu_model()}, {os.cpu_count()} cores; timing: {first.get('timing', '?')}",
           machine_line(peers, first),
           f"- sfnap {git_rev()}, {time.strftime('%Y-%m-%d')}", ""]
    if not gpu_rows:
        md += ["**GPU figures: not measured yet.** This run had no GPU, only Mesa's lavapipe (a CPU Vulkan",
               "driver). On a GPU machine `make bench` picks the vendor's Vulkan driver (SFNAP_BACKEND=vulkan)",
               "and regenerates this file.", ""]
        md += ["lavapipe's `copy_buffer_to_buffer` behaves like one thread's memcpy (it stays near 20-25",
               "GB/s) while its kernels run on every core, so the roofline is taken against the faster of it",
               "and the kernel copy; the machine's own bandwidth, PyTorch's `copy_` on every core, is given",
               "above (memory bandwidth). A roofline near 1 is the step matching the best copy sfnap's",
               "adapter makes, not necessarily the machine's limit: compare the GB/s with that line. Whole",
               "runs of one configuration differ by up to about 1.5x between processes on this shared",
               "virtual machine, a slowdown no CPU counter shows (likely memory bandwidth shared with other",
               "guests): hence the passes.",
               ""]

    kinds = by_sweep.get("kinds", [])
    naps = {(kind_label(r)): r for r in by_sweep.get("kinds-nap", [])}
    if kinds:
        md += [f"## Every kind at {human(kinds[0]['params'])} parameters (one tensor)", ""]
        machine, _ = machine_bandwidth(peers)

        def of_machine(r):
            """The "of machine" cell (blank without a row), or no cell when the peer did not run."""
            return [fmt(r["step_gbps"] / machine) if r else ""] if machine else []

        body = []
        for r in kinds:
            n = naps.get(kind_label(r))
            body.append([kind_label(r), r["bytes_per_param"], r["state_bytes_per_param"], ms(r),
                         fmt(r["step_gbps"]), fmt(r["copy_gbps"]), kernel_copy(r), f"**{fmt(r['roofline'])}**"]
                        + of_machine(r)
                        + [n["bytes_per_param"] if n else "", ms(n) if n else "",
                           fmt(n["step_gbps"]) if n else "", f"**{fmt(n['roofline'])}**" if n else ""]
                        + of_machine(n))
        vs = ["of machine"] if machine else []
        md += [table(["kind", "B/param", "state B/param", "ms/step", "GB/s", "copy GB/s", "kernel copy GB/s", "roofline"]
                     + vs + ["+NaP B/param", "+NaP ms/step", "+NaP GB/s", "+NaP roofline"] + ["+NaP " + v for v in vs],
                     body), ""]
        md += ["NaP: every tensor its own group; its norms and projection passes run after every step and",
               "their traffic is counted in +NaP B/param."]
        if machine:
            md += ["*of machine*: the GB/s over the machine's memory bandwidth (PyTorch's `copy_` on every core,",
                   "above), the strictest of the three references."]
        md += [""]

    batching = by_sweep.get("batching", [])
    if batching:
        base = next((r for r in batching if r["tensors"] == 1), batching[0])
        md += [f"## Batching: {human(base['params'])} parameters split into ragged tensors (adamw_sf)", "",
               "One dispatch per arena segment, however many tensors: the goal is 256 tensors within 1.15x",
               "of one tensor.", ""]
        body = []
        for r in batching:
            p = peer.get((r["params"], r["tensors"]))
            body.append([r["tensors"], ms(r), fmt(r["step_gbps"]), fmt(r["roofline"]),
                         f"**{fmt(r['step_ms'] / base['step_ms'])}x**",
                         ms(p) if p else "-",
                         f"{fmt(p['step_ms'] / r['step_ms'])}x" if p else "-"])
        md += [table(["tensors", "ms/step", "GB/s", "roofline", "vs 1 tensor", "PyTorch ms/step",
                      "PyTorch / sfnap"], body), ""]

    scale = by_sweep.get("scale", [])
    if scale:
        sizes = [r["params"] for r in scale]
        md += [f"## Scale: adamw_sf from {human(min(sizes))} to {human(max(sizes))} parameters (one tensor)", "",
               f"![step and copy bandwidth against size]({os.path.relpath(svg_path, os.path.dirname(md_path) or '.')})",
               ""]
        body = []
        for r in scale:
            p = peer.get((r["params"], 1))
            body.append([human(r["params"]), r["segments"], r["steps"], ms(r), fmt(r["step_gbps"]),
                         fmt(r["copy_gbps"]), kernel_copy(r), fmt(r["roofline"]),
                         ms(p) if p else "-", fmt(p["step_gbps"]) if p else "-",
                         f"{fmt(p['step_ms'] / r['step_ms'])}x" if p else "-"])
        md += [table(["params", "segments", "steps", "ms/step", "GB/s", "copy GB/s", "kernel copy GB/s", "roofline",
                      "PyTorch ms/step", "PyTorch GB/s", "PyTorch / sfnap"], body), ""]
        series = [("sfnap adamw_sf", "#c0392b", "", [(r["params"], r["step_gbps"]) for r in scale]),
                  ("adapter copy", "#7f8c8d", "6 4", [(r["params"], r["copy_gbps"]) for r in scale])]
        kc = [(r["params"], r["kernel_copy_gbps"]) for r in scale if "kernel_copy_gbps" in r]
        if kc:
            series.append(("kernel copy", "#27ae60", "2 3", kc))
        ps = [p for p in peers if p["tensors"] == 1]
        if ps:
            series.append(("PyTorch (CPU)" if ps[0]["backend"] == "pytorch-cpu" else "PyTorch (CUDA)", "#2e86c1", "",
                           [(p["params"], p["step_gbps"]) for p in ps]))
        svg_plot(series, svg_path)

    segs = by_sweep.get("segments", [])
    if segs:
        md += ["## Past one storage binding", "",
               "An arena larger than `max_storage_buffer_binding_size` is cut into segments, one dispatch each",
               "(lavapipe's limit is 128 MiB = 32M f32). `--max-binding` forces a smaller limit.", ""]
        body = []
        for r, cmd in [(r["result"], r["cmd"]) for r in rows if r["sweep"] == "segments"]:
            mb = cmd.split("--max-binding ")[1].split()[0] if "--max-binding" in cmd else "device"
            mb = (f"{int(mb) >> 20} MiB" if int(mb) >= 1 << 20 else f"{int(mb) >> 10} KiB") if mb.isdigit() else mb
            body.append([human(r["params"]), mb, r["segments"], ms(r), fmt(r["step_gbps"]),
                         fmt(r["roofline"])])
        md += [table(["params", "binding limit", "segments", "ms/step", "GB/s", "roofline"], body), ""]

    md += ["## PyTorch side by side", ""]
    if peers:
        p0 = peers[0]
        md += [f"`schedulefree.AdamWScheduleFree(foreach=True)`, torch {p0.get('torch')}, schedulefree"
               f" {p0.get('schedulefree')}, on {p0['adapter']} ({p0['backend']}); see benches/peers. Its"
               " GB/s counts the same 28 B/param (its foreach step makes several passes and moves more).", ""]
        at16 = [(r, peer.get((r["params"], r["tensors"]))) for r in batching]
        body = [[r["tensors"], ms(r), ms(p), f"**{fmt(p['step_ms'] / r['step_ms'])}x**",
                 fmt(p["copy_gbps"])] for r, p in at16 if p]
        if body:
            md += [f"At {human(batching[0]['params'])} parameters (the goal: sfnap on lavapipe at least as fast as"
                   " PyTorch on the same CPU):", "",
                   table(["tensors", "sfnap ms/step", "PyTorch ms/step", "PyTorch / sfnap", "torch copy GB/s"], body),
                   ""]
    else:
        md += ["Not measured in this run: `make bench-peers` creates target/peers-venv (torch and schedulefree",
               "from PyPI); `make bench` then includes the peer.", ""]

    md += train_section(train_rows, train_peers, f"{first['adapter']} ({first['backend']})", matmul_rows)
    md += race_section(load(os.path.join(results_dir, "race.jsonl")))

    md += ["## Commands", "", "`make bench` runs, with SFNAP_BACKEND=vulkan:", "", "```"]
    md += sorted({r["cmd"] for r in rows}, key=[r["cmd"] for r in rows].index)
    if peers:
        md += ["benches/peers/run.sh --sizes " + ",".join(f"{p['params']}:{p['tensors']}" for p in peers)]
    md += ["```", ""]
    # The hand-written parts: f32 against bf16 state (scripts/bench_precision.sh and
    # `sfnap bench --memory-table`), the levers tried, the data-parallel exchange's cost,
    # and the step on a caller's buffers (scripts/bench_foreign.sh).
    for part in ("precision.md", "levers.md", "distributed.md", "foreign.md"):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches", part)
        if os.path.exists(path):
            with open(path) as f:
                md += [f.read().rstrip(), ""]
    with open(md_path, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
