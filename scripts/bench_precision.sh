#!/usr/bin/env bash
# The f32 against bf16 state sweep of benches/precision.md: every kind at 4M and
# 64M parameters (64M: 4 timed steps a trial), f32 and bf16 state, interleaved: each pass
# runs every configuration once, f32 then bf16 side by side, in fresh processes.
# Prints the Markdown table (median step time over the passes, the spread
# min-max, bf16/f32 per kind). PASSES (default 3). Results: target/bench/precision.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
passes="${PASSES:-3}"
out=target/bench/precision.jsonl
mkdir -p target/bench
: >"$out"
cargo build --release --bin sfnap
bin=target/release/sfnap
M4=4194304 M64=67108864
for pass in $(seq "$passes"); do
    for size in "$M4" "$M64 --steps 4"; do
        for kind in sgd_sf adamw_sf adamw_sf_paper radam_sf sf_plus adamw; do
            # shellcheck disable=SC2086 # the size carries its own flags
            set -- $kind $size
            for dtype in f32 bf16; do
                echo "precision: pass $pass: sfnap bench --kind $1 --params $2 ${*:3} --state-dtype $dtype" >&2
                printf '{"pass":%s,"result":%s}\n' "$pass" \
                    "$("$bin" bench --json --kind "$1" --params "$2" "${@:3}" --state-dtype "$dtype")" >>"$out"
            done
        done
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = rows[0]["result"]
print(f"Adapter {first['adapter']} ({first['backend']}, {first['timing']}); {max(r['pass'] for r in rows)} passes.\n")
print("| kind | params | B/param moved f32 / bf16 | f32 ms/step (median, min-max) | bf16 ms/step (median, min-max) | bf16 GB/s | bf16 roofline | f32 / bf16 time |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
keys = []
for r in rows:
    k = (r["result"]["kind"], r["result"]["params"])
    if k not in keys:
        keys.append(k)
for kind, params in keys:
    sel = lambda d: [r["result"] for r in rows if (r["result"]["kind"], r["result"]["params"], r["result"]["state_dtype"]) == (kind, params, d)]
    f, b = sel("f32"), sel("bf16")
    ms = lambda rs: [r["step_ms"] for r in rs]
    med = lambda rs: statistics.median(ms(rs))
    cell = lambda rs: f"{med(rs):.3f} ({min(ms(rs)):.3f}-{max(ms(rs)):.3f})"
    bb = sorted(b, key=lambda r: r["step_ms"])[len(b) // 2]
    print(f"| {kind} | {params // 2**20}M | {f[0]['bytes_per_param']} / {b[0]['bytes_per_param']} | {cell(f)} | {cell(b)} "
          f"| {bb['step_gbps']:.2f} | {bb['roofline']:.2f} | **{med(f) / med(b):.2f}x** |")
PY
