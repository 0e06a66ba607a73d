#!/usr/bin/env bash
# The foreign-buffer step of benches/foreign.md: `sfnap bench --foreign` (the step on
# parameters and gradients in caller buffers, copies in and out included, against the
# same step on sfnap's arena, interleaved trials in one process) at 4M parameters in
# 256 tensors for adamw_sf, sf_plus, adamw_sf with NaP and adamw_sf with bf16 state.
# Each pass runs every configuration once, each in a fresh process, which times 64
# rounds of one arena step and one foreign step back to back. Prints the Markdown
# table: the median over the passes of each run's median ratio, and the lowest first
# and highest third quartile of the rounds' ratios. PASSES (default 3). Results:
# target/bench/foreign.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
passes="${PASSES:-3}"
out=target/bench/foreign.jsonl
mkdir -p target/bench
: >"$out"
cargo build --release --bin sfnap
bin=target/release/sfnap
for pass in $(seq "$passes"); do
    for config in "adamw_sf" "sf_plus" "adamw_sf --nap" "adamw_sf --state-dtype bf16"; do
        # shellcheck disable=SC2086 # the configuration carries its own flags
        set -- $config
        echo "foreign: pass $pass: sfnap bench --foreign --kind $1 --params 4194304 --tensors 256 ${*:2}" >&2
        printf '{"pass":%s,"result":%s}\n' "$pass" \
            "$("$bin" bench --json --foreign --kind "$1" --params 4194304 --tensors 256 "${@:2}")" >>"$out"
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l)["result"] for l in open(sys.argv[1])]
first = rows[0]
print(f"Adapter {first['adapter']} ({first['backend']}, {first['timing']}); "
      f"{len(rows) // len({(r['kind'], r['nap'], r['state_dtype']) for r in rows})} passes.\n")
print("| kind | B/param step + copies | arena ms/step (median) | foreign ms/step (median) | foreign / arena (median; quartiles) | recording us, arena / foreign |")
print("|---|---:|---:|---:|---:|---:|")
keys = []
for r in rows:
    k = (r["kind"], r["nap"], r["state_dtype"])
    if k not in keys:
        keys.append(k)
for kind, nap, dtype in keys:
    rs = [r for r in rows if (r["kind"], r["nap"], r["state_dtype"]) == (kind, nap, dtype)]
    med = lambda f: statistics.median(f(r) for r in rs)
    ratios = [r["ratio"] for r in rs]
    lo, hi = min(r["ratio_q1"] for r in rs), max(r["ratio_q3"] for r in rs)
    name = kind + (" + NaP" if nap else "") + (f" ({dtype} state)" if dtype != "f32" else "")
    print(f"| {name} | {rs[0]['bytes_per_param']} + {rs[0]['copy_bytes_per_param']} | {med(lambda r: r['arena_ms']):.3f} "
          f"| {med(lambda r: r['foreign_ms']):.3f} | **{statistics.median(ratios):.2f}x** ({lo:.2f}-{hi:.2f}) "
          f"| {med(lambda r: r['arena_record_us']):.0f} / {med(lambda r: r['foreign_record_us']):.0f} |")
PY
