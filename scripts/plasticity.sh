#!/usr/bin/env bash
# `make evidence`: the plasticity study of docs/plasticity.md.
#
# Trains the digits MLP on the continual stream (random labels on 1,024 digits,
# re-drawn every TASK_STEPS steps, TASKS tasks) with every network (plain, LayerNorm,
# LayerNorm + NaP) and optimizer (adamw, adamw_sf, sf_plus), plus adamw_sf + NaP
# with --sf-window (each of WINDOWS), over SEEDS seeds; then the stationary digits with and without
# the window. Evaluations fall at the end of each task (--eval-every TASK_STEPS), so
# metrics.csv holds accuracy on the current labels at each task's end, the hidden
# weights' norm and the effective learning rate. scripts/plasticity_report.py turns
# target/plasticity/ into docs/plasticity.md and its SVG plots (standard library).
#
# A run whose directory already holds a finished metrics.csv is not run again
# (delete target/plasticity/ to start over). JOBS runs go at once (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
TASKS="${TASKS:-21}"          # 20 label resets
TASK_STEPS="${TASK_STEPS:-500}"
SEEDS="${SEEDS:-0 1}"
JOBS="${JOBS:-2}"
WINDOWS="${WINDOWS:-500 100}"
out=target/plasticity
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin sfnap || exit 1
bin="$target/release/sfnap"

steps=$((TASKS * TASK_STEPS))
# name | arguments (the continual runs), most telling first: a run stopped early
# (or a study cut short) still leaves the comparisons that matter most.
net_args() {
    case $1 in
        plain) echo "--no-norm" ;;
        ln) echo "" ;;
        nap) echo "--nap" ;;
    esac
}
opt_args() {
    case $1 in
        adamw) echo "--opt adamw --lr 1e-3" ;;
        adamw_sf) echo "--opt adamw_sf --lr 3e-3" ;;
        sf_plus) echo "--opt sf_plus" ;;
        adamw_sf_w*) echo "--opt adamw_sf --lr 3e-3 --sf-window ${1#adamw_sf_w}" ;;
    esac
}
order=()
for w in $WINDOWS; do order+=("adamw_sf_w$w nap"); done
order+=("adamw nap" "adamw ln" "adamw_sf nap" "adamw plain" "adamw_sf ln" "adamw_sf plain" "sf_plus nap" "sf_plus ln" "sf_plus plain")
for w in $WINDOWS; do order+=("adamw_sf_w$w ln"); done
runs=()
for seed in $SEEDS; do
    for pair in "${order[@]}"; do
        set -- $pair
        runs+=("continual-$1-$2-s$seed|$(opt_args "$1") $(net_args "$2")")
    done
done
continual=()
for r in "${runs[@]}"; do
    name="${r%%|*}"
    continual+=("$name|--data continual --steps $steps --task-steps $TASK_STEPS --eval-every $TASK_STEPS --seed ${name##*-s} ${r#*|}")
done
# The stationary digits: adamw_sf + NaP (FINDINGS' 98.70% setting) with and without the window.
stationary=()
for seed in $SEEDS; do
    for w in 0 $WINDOWS; do
        stationary+=("digits-adamw_sf_w$w-nap-s$seed|--data digits --steps 2000 --eval-every 500 --seed $seed --opt adamw_sf --lr 3e-3 --warmup 100 --nap --sf-window $w")
    done
done

one() {
    local name="${1%%|*}" args="${1#*|}"
    local dir="$out/$name"
    if [ -f "$dir/done" ]; then return 0; fi
    rm -rf "$dir"
    local start=$SECONDS
    # shellcheck disable=SC2086
    "$bin" train $args --out "$dir" >"$out/$name.log" 2>&1
    local rc=$?
    mkdir -p "$dir"
    echo "$rc $((SECONDS - start))" >"$dir/done"
    echo "$name: exit $rc, $((SECONDS - start)) s"
}
export -f one
export bin out
printf '%s\n' "${stationary[@]}" "${continual[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}
python3 scripts/plasticity_report.py "$out" docs/plasticity.md
