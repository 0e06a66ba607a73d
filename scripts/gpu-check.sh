#!/usr/bin/env bash
# One bounded pass over a machine with a real GPU: build, adapters, a reduced bench
# sweep, the PyTorch peers (CUDA when torch sees it), the GPU test suite on Vulkan.
#
#   bash scripts/gpu-check.sh OUTDIR          # e.g. bash scripts/gpu-check.sh "$OUT"
#   GPU_CHECK_DRY=1 bash scripts/gpu-check.sh OUTDIR   # print the plan, run nothing
#
# Vulkan is the vendor's driver: nothing here points Vulkan at lavapipe (a
# VK_DRIVER_FILES or VK_ICD_FILENAMES naming lavapipe is dropped, with a note), and
# the report says which adapter ran. Every step has a time limit and the whole
# script a budget (GPU_CHECK_BUDGET seconds, default 460: under 8 minutes); a step
# that fails or runs out of time is reported and the others still run; the exit
# status is 1 when any step failed. Skipped steps (no PyTorch environment) are not
# failures.
#
# OUTDIR receives what scripts/bench.sh writes for lavapipe, for this GPU:
# sfnap.jsonl, peers.jsonl, train_peers.jsonl, devices.txt, BENCHMARKS.md and
# scale.svg (scripts/bench_report.py), precision.md (scripts/bench_precision.sh, one
# pass), plus summary.md (each step: status, seconds)
# and logs/STEP.log. PEERS_VENV (default target/peers-venv) is the peers' Python
# environment; it is used only if it already has torch (nothing is installed).
set -uo pipefail
cd "$(dirname "$0")/.."

# The sweep itself, run as a step of its own (bounded by the caller's timeout).
if [ "${1:-}" = --sweep ]; then
    set -e
    out=$2 bin=$3
    M4=4194304 M16=16777216 M64=67108864
    run() {
        local sweep=$1
        shift
        echo "gpu-check: sfnap bench $*" >&2
        local r
        r=$("$bin" bench --json "$@")
        printf '{"sweep":"%s","cmd":"%s","result":%s}\n' "$sweep" "sfnap bench $* --json" "$r" >>"$out/sfnap.jsonl"
    }
    for kind in adamw_sf sf_plus adamw; do
        run kinds --kind $kind --params $M4
    done
    run kinds-nap --kind sf_plus --params $M4 --nap
    for t in 1 256; do
        run batching --kind adamw_sf --params $M16 --tensors $t
    done
    for p in 65536 1048576 $M16 $M64; do
        run scale --kind adamw_sf --params $p
    done
    run segments --kind adamw_sf --params $M16 --max-binding $((32 << 20))
    run train --train gpt --kind adamw --profile
    run train --train mlp --kind adamw --profile
    exit 0
fi

if [ $# -ne 1 ]; then
    echo "usage: bash scripts/gpu-check.sh OUTDIR   (GPU_CHECK_DRY=1: print the plan only)" >&2
    exit 2
fi
out=$1
dry=${GPU_CHECK_DRY:-0}
budget=${GPU_CHECK_BUDGET:-460}
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/sfnap
venv=${PEERS_VENV:-target/peers-venv}
export SFNAP_BACKEND=vulkan
for var in VK_DRIVER_FILES VK_ICD_FILENAMES; do
    if [[ "${!var:-}" == *lvp* ]]; then
        echo "gpu-check: $var names lavapipe (${!var}); dropped so that the vendor's driver is used" >&2
        unset "$var"
    fi
done

start=$SECONDS
failed=0
summary=()
# step NAME LIMIT CMD...: runs CMD for at most LIMIT seconds (less when the budget
# is nearly spent), its output in OUTDIR/logs/NAME.log; records the outcome.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - (SECONDS - start)))
    ((limit > left)) && limit=$left
    if [ "$dry" = 1 ]; then
        echo "step $name (at most ${limit}s): $*"
        return 0
    fi
    if ((limit < 5)); then
        echo "gpu-check: $name: skipped, the ${budget}s budget is spent" >&2
        summary+=("| $name | not run: out of time | 0 |")
        failed=1
        return 1
    fi
    echo "gpu-check: $name (at most ${limit}s): $*" >&2
    local t0=$SECONDS rc=0
    timeout -k 10 "$limit" "$@" >"$out/logs/$name.log" 2>&1 || rc=$?
    local took=$((SECONDS - t0)) status=ok
    if ((rc == 124 || rc == 137)); then
        status="FAILED: timed out after ${limit}s"
    elif ((rc != 0)); then
        status="FAILED: exit $rc"
    fi
    [ "$status" = ok ] || failed=1
    echo "gpu-check: $name: $status (${took}s)" >&2
    [ "$status" = ok ] || tail -n 20 "$out/logs/$name.log" | sed 's/^/    /' >&2
    summary+=("| $name | $status | $took |")
    [ "$status" = ok ]
}

skip() {
    if [ "$dry" = 1 ]; then
        echo "step $1: skipped ($2)"
    else
        echo "gpu-check: $1: skipped ($2)" >&2
        summary+=("| $1 | skipped: $2 | 0 |")
    fi
}

if [ "$dry" = 1 ]; then
    echo "gpu-check plan (GPU_CHECK_DRY=1: nothing runs), budget ${budget}s (each limit is cut to what is left of it), figures to $out, SFNAP_BACKEND=vulkan"
else
    mkdir -p "$out/logs"
    : >"$out/sfnap.jsonl"
    : >"$out/peers.jsonl"
    : >"$out/train_peers.jsonl"
fi

step build 300 cargo build --release --bin sfnap
step build-tests 240 cargo test --release --workspace --no-run
step devices 30 bash -c "set -o pipefail; '$bin' devices | tee '$out/devices.txt'"
step bench-sweep 150 bash "$0" --sweep "$out" "$bin"
# f32 against bf16 state, one interleaved pass (on a GPU the step is memory-bound,
# so bf16 state should be faster; on lavapipe it is not).
step bench-precision 90 bash -c "set -o pipefail; PASSES=1 bash scripts/bench_precision.sh | tee '$out/precision.md'"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    step peers 60 "$venv/bin/python" benches/peers/peers.py --device auto --steps 50 \
        --sizes 4194304:1,16777216:1,16777216:256,65536:1,1048576:1,67108864:1 --out "$out/peers.jsonl"
    step train-peer 60 "$venv/bin/python" benches/peers/train_peer.py --device auto --steps 20 \
        --matmul 256,1024,4096 --out "$out/train_peers.jsonl"
else
    skip peers "no PyTorch in $venv (make bench-peers creates it)"
    skip train-peer "no PyTorch in $venv"
fi
step report 20 python3 scripts/bench_report.py "$out" "$out/BENCHMARKS.md" "$out/scale.svg"
step tests 240 cargo test --release --workspace

if [ "$dry" = 1 ]; then
    exit 0
fi
{
    echo "# gpu-check: $(date -u '+%Y-%m-%d %H:%M UTC'), sfnap $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo "Adapter (SFNAP_BACKEND=vulkan; see devices.txt):"
    echo
    echo '```text'
    head -n 5 "$out/devices.txt" 2>/dev/null || echo "(no devices.txt)"
    echo '```'
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---|"
    printf '%s\n' "${summary[@]}"
    echo
    echo "Total: $((SECONDS - start)) s of a ${budget} s budget. Figures: BENCHMARKS.md (from sfnap.jsonl,"
    echo "peers.jsonl, train_peers.jsonl); logs: logs/."
} >"$out/summary.md"
cat "$out/summary.md"
exit $failed
