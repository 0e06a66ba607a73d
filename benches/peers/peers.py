"""The PyTorch peer of `sfnap bench --kind adamw_sf`: the official
schedulefree.AdamWScheduleFree (foreach=True) step, timed at the same sizes.

Prints one JSON object per line with the fields of `sfnap bench --json` that
apply. bytes_per_param is the step's necessary traffic (28 B, as for sfnap's
adamw_sf); PyTorch's foreach step makes several passes and moves more than that,
so step_gbps is "useful" bandwidth, comparable with sfnap's. copy_gbps is
`dst.copy_(src)` on tensors of the same size on the same device (2 * bytes / time),
rotating over 4 sources and 2 destinations as sfnap's copy does.
Run through run.sh, which makes the virtual environment.
"""

import argparse
import importlib.metadata
import json
import os
import time

import schedulefree
import torch

BYTES_PER_PARAM = 28  # reads g, y, z, v; writes y, z, v (see sfnap::bench::bytes_per_param)
STATE_BYTES_PER_PARAM = 8  # z and exp_avg_sq
TRIALS = 5
MAX_DISTURBED = 20  # as sfnap::bench: trials repeated because other processes took CPU time


def others_ticks():
    """CPU ticks other processes have used (Linux; None elsewhere), as sfnap::bench::others_ticks."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
        with open("/proc/self/stat") as f:
            own = f.read().rpartition(")")[2].split()
        return user + nice + system + irq + softirq + steal - int(own[11]) - int(own[12])
    except (OSError, ValueError, IndexError):
        return None


def ragged_sizes(params, tensors):
    """The same split as sfnap::bench::ragged_sizes: ragged, deterministic, summing to params."""
    if not 1 <= tensors <= params:
        raise SystemExit(f"--tensors: must lie in [1, params = {params}], got {tensors}")
    weights = [0.5 + ((i * 0.618034) % 1.0) for i in range(tensors)]
    total = sum(weights)
    spare = params - tensors
    sizes = [1 + int(spare * w / total) for w in weights]
    for i in range(params - sum(sizes)):
        sizes[i] += 1
    return sizes


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def fastest(fns, reps, device):
    """Seconds for `reps` calls of each of fns, fastest of TRIALS trials each. A
    trial during which other processes took more than a tick plus 5% of one core
    is repeated (at most MAX_DISTURBED times), as in sfnap::bench."""
    best = [float("inf")] * len(fns)
    done = disturbed = 0
    while done < TRIALS:
        before, start = others_ticks(), time.perf_counter()
        times = []
        for fn in fns:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            sync(device)
            times.append(time.perf_counter() - t0)
        after, allowed = others_ticks(), 1 + int((time.perf_counter() - start) * 5)
        if before is None or after is None or after - before <= allowed or disturbed == MAX_DISTURBED:
            best = [min(b, t) for b, t in zip(best, times)]
            done += 1
        else:
            disturbed += 1
    return best, disturbed


def bench(params, tensors, device, steps):
    gen = torch.Generator().manual_seed(0)
    ps = []
    for n in ragged_sizes(params, tensors):
        p = torch.nn.Parameter((torch.rand(n, generator=gen) - 0.5).mul_(0.2).to(device))
        p.grad = (torch.rand(n, generator=gen) - 0.5).mul_(0.02).to(device)
        ps.append(p)
    opt = schedulefree.AdamWScheduleFree(ps, lr=0.0025, foreach=True)
    opt.train()
    if steps is None:
        steps = max(8, min(1000, -(-10**9 // (params * BYTES_PER_PARAM))))
    for _ in range(max(2, steps // 4)):
        opt.step()
    # As sfnap's copy: each copy reads the next of 4 tensors of the step's size (the
    # step reads 4 buffers) into one of 2 others, sweeping as much memory as a step.
    srcs = [torch.empty(params, device=device).uniform_() for _ in range(4)]
    dsts = [torch.empty(params, device=device) for _ in range(2)]
    copies = [0]

    def copy():
        k = copies[0]
        dsts[k % 2].copy_(srcs[k % 4])
        copies[0] = k + 1

    for _ in range(4):
        copy()
    (step_s, copy_s), disturbed = fastest([opt.step, copy], steps, device)

    step_gbps = params * BYTES_PER_PARAM * steps / step_s / 1e9
    copy_gbps = 2 * params * 4 * steps / copy_s / 1e9
    if device.type == "cuda":
        adapter = torch.cuda.get_device_name(device)
    else:
        adapter = f"CPU, {torch.get_num_threads()} threads"
    return {
        "kind": "adamw_sf",
        "params": params,
        "tensors": tensors,
        "steps": steps,
        "adapter": adapter,
        "backend": f"pytorch-{device.type}",
        "step_ms": step_s / steps * 1e3,
        "bytes_per_param": BYTES_PER_PARAM,
        "step_gbps": step_gbps,
        "copy_gbps": copy_gbps,
        "roofline": step_gbps / copy_gbps,
        "state_bytes_per_param": STATE_BYTES_PER_PARAM,
        "torch": torch.__version__,
        "schedulefree": importlib.metadata.version("schedulefree"),
        "disturbed_trials": disturbed,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    ap.add_argument("--sizes", default="4194304:1,16777216:1,16777216:16,16777216:256,16777216:4096",
                    help="comma-separated PARAMS:TENSORS pairs")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per trial (default: about 1 GB moved)")
    ap.add_argument("--out", default=None, help="append the JSON lines to this file as well")
    args = ap.parse_args()
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    out = open(args.out, "a") if args.out else None
    for pair in args.sizes.split(","):
        params, _, tensors = pair.partition(":")
        row = bench(int(params), int(tensors or 1), device, args.steps)
        line = json.dumps(row)
        print(line, flush=True)
        if out:
            out.write(line + "\n")
            out.flush()
    if out:
        out.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
