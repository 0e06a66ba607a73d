#!/usr/bin/env bash
# `make evidence`, second part: the checkpoint-merging table of docs/plasticity.md.
#
# The character model (--model gpt --data text) trained by adamw at a constant
# learning rate (3e-3 after 50 warmup steps), stopped and resumed at every
# checkpoint step so each checkpoint is kept (CKPTS); the same length of adamw_sf
# (3e-3, 50 warmup steps) for its x. `sfnap merge` then averages the adamw
# checkpoints (uniform over all, uniform over the second half, Schedule-Free
# weights over all) and `sfnap eval` evaluates every candidate on the held-out text.
# Results go to target/plasticity/merge/results.txt, one line per candidate:
# "name<TAB>eval loss<TAB>description". Runs already done are kept.
set -uo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
target="${CARGO_TARGET_DIR:-target}"
bin="${SFNAP_BIN:-$target/release/sfnap}"
out="${MERGE_OUT:-target/plasticity/merge}"
CKPTS="${CKPTS:-100 200 400 600 800 1000 1200 1400 1600 1800 2000}"
mkdir -p "$out"
common="--model gpt --data text --batch 8 --lr 3e-3 --warmup 50 --seed 0"
last=0
for s in $CKPTS; do last=$s; done
if [ ! -f "$out/adamw/done" ]; then
    rm -rf "$out/adamw" "$out/ckpt"
    mkdir -p "$out/ckpt"
    for s in $CKPTS; do
        if [ -f "$out/adamw/checkpoint.safetensors" ]; then
            resume=(--resume "$out/adamw")
        else
            resume=(--out "$out/adamw")
        fi
        # shellcheck disable=SC2086
        "$bin" train $common --opt adamw --schedule warmup --steps "$s" --eval-every 100 \
            --checkpoint-every 100 "${resume[@]}" >>"$out/adamw.log" 2>&1 || exit 1
        cp "$out/adamw/checkpoint.safetensors" "$out/ckpt/step-$s.safetensors"
    done
    touch "$out/adamw/done"
fi
if [ ! -f "$out/adamw_sf/done" ]; then
    rm -rf "$out/adamw_sf"
    # shellcheck disable=SC2086
    "$bin" train $common --opt adamw_sf --steps "$last" --eval-every 100 --out "$out/adamw_sf" \
        >"$out/adamw_sf.log" 2>&1 || exit 1
    touch "$out/adamw_sf/done"
fi
all=()
half=()
for s in $CKPTS; do
    all+=("$out/ckpt/step-$s.safetensors")
    if [ $((2 * s)) -gt "$last" ]; then half+=("$out/ckpt/step-$s.safetensors"); fi
done
"$bin" merge "${all[@]}" --weights uniform --out "$out/uniform-all.safetensors" >"$out/uniform-all.log" 2>&1 || exit 1
"$bin" merge "${half[@]}" --weights uniform --out "$out/uniform-half.safetensors" >"$out/uniform-half.log" 2>&1 || exit 1
"$bin" merge "${all[@]}" --weights sf --out "$out/sf-all.safetensors" >"$out/sf-all.log" 2>&1 || exit 1
loss() { "$bin" eval "$1" | sed -n 's/.*eval loss \([0-9.]*\).*/\1/p'; }
{
    printf 'adamw-final\t%s\tadamw, its final weights (step %s)\n' "$(loss "$out/ckpt/step-$last.safetensors")" "$last"
    printf 'uniform-all\t%s\tuniform average of the %s adamw checkpoints (steps %s)\n' \
        "$(loss "$out/uniform-all.safetensors")" "${#all[@]}" "$(echo $CKPTS | tr ' ' ',')"
    printf 'uniform-half\t%s\tuniform average of the %s adamw checkpoints after step %s\n' \
        "$(loss "$out/uniform-half.safetensors")" "${#half[@]}" "$((last / 2))"
    printf 'sf-all\t%s\tSchedule-Free weights (steps since the previous checkpoint) over all %s\n' \
        "$(loss "$out/sf-all.safetensors")" "${#all[@]}"
    printf 'adamw_sf-x\t%s\tadamw_sf, its x at step %s\n' "$(loss "$out/adamw_sf/checkpoint.safetensors")" "$last"
} >"$out/results.txt"
cat "$out/results.txt"
