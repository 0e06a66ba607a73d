#!/usr/bin/env bash
# `make evidence`: the plasticity study of docs/plasticity.md.
#
# Trains the digits MLP on the continual stream (random labels on 1,024 digits,
# re-drawn every TASK_STEPS steps, TASKS tasks) with every network (plain, LayerNorm,
# LayerNorm + NaP) and optimizer (adamw, adamw_sf, sf_plus), plus adamw_sf + NaP
# with --sf-window (each of WINDOWS, WINDOW:BETA:LR), over SEEDS seeds; then the
# stationary digits with and without the window; then scripts/merge_study.sh (the
# merging table). Evaluations fall at the end of each task (--eval-every TASK_STEPS), so
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
# WINDOW:BETA:LR of the windowed adamw_sf runs: the chosen setting first, then the
# paper's beta at its learning rate with two windows (what the first study measured).
WINDOWS="${WINDOWS:-100:0.5:0.003 100:0.9:0.003 500:0.9:0.003}"
out=target/plasticity
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --bin sfnap || exit 1
bin="${SFNAP_BIN:-$target/release/sfnap}"

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
        sf_plus) echo "--opt sf_plus --sf-plus-reference" ;;  # the paper's, as when this page was made
        adamw_sf_w*)
            # adamw_sf_wW_bBETA_lrLR
            local spec=${1#adamw_sf_w}
            local w=${spec%%_b*} rest=${spec#*_b}
            echo "--opt adamw_sf --sf-window $w --sf-beta ${rest%%_lr*} --lr ${rest#*_lr}" ;;
    esac
}
wname() {
    local IFS=:
    set -- $1
    echo "adamw_sf_w$1_b$2_lr$3"
}
order=()
for w in $WINDOWS; do order+=("$(wname "$w") nap"); done
order+=("adamw nap" "adamw ln" "adamw_sf nap" "adamw plain" "adamw_sf ln" "adamw_sf plain" "sf_plus nap" "sf_plus ln" "sf_plus plain")
for w in $WINDOWS; do order+=("$(wname "$w") ln"); done
runs=()
for pair in "${order[@]}"; do
    for seed in $SEEDS; do
        set -- $pair
        runs+=("continual-$1-$2-s$seed|$(opt_args "$1") $(net_args "$2")")
    done
done
continual=()
for r in "${runs[@]}"; do
    name="${r%%|*}"
    continual+=("$name|--data continual --steps $steps --task-steps $TASK_STEPS --eval-every $TASK_STEPS --seed ${name##*-s} ${r#*|}")
done
# The stationary digits: adamw_sf + NaP (FINDINGS' 98.70% setting: lr 3e-3, warmup
# 100) with the paper's average and beta, and with each window and its beta.
stationary=()
for seed in $SEEDS; do
    for w in 0:0.9 $WINDOWS; do
        IFS=: read -r win beta _ <<<"$w"
        stationary+=("digits-adamw_sf_w${win}_b$beta-nap-s$seed|--data digits --steps 2000 --eval-every 500 --seed $seed --opt adamw_sf --lr 3e-3 --warmup 100 --nap --sf-window $win --sf-beta $beta")
    done
done

# The candidates for the window's form and setting, on a short stream (6 tasks of
# 500 steps, LayerNorm + NaP, seed 0): which of window, beta and learning rate let
# adamw_sf keep up with adamw. name | arguments.
short="--data continual --steps 3000 --task-steps 500 --eval-every 500 --seed 0 --nap"
candidates=("candidates/adamw_lr0.001|$short --opt adamw --lr 1e-3" "candidates/adamw_lr0.003|$short --opt adamw --lr 3e-3")
for c in 0:0.5:0.001 100:0.9:0.003 100:0.9:0.001 100:0.7:0.001 100:0.5:0.001 100:0.5:0.003 \
    50:0.9:0.001 20:0.9:0.001 500:0.5:0.001 500:0.2:0.001; do
    IFS=: read -r win beta lr <<<"$c"
    candidates+=("candidates/adamw_sf_w${win}_b${beta}_lr$lr|$short --opt adamw_sf --sf-window $win --sf-beta $beta --lr $lr")
done

one() {
    local name="${1%%|*}" args="${1#*|}"
    local dir="$out/$name"
    if [ -f "$dir/done" ]; then return 0; fi
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    local start=$SECONDS
    # shellcheck disable=SC2086
    "$bin" train $args --out "$dir" >"$out/$name.log" 2>&1
    local rc=$?
    mkdir -p "$dir"
    echo "$args" >"$dir/args"
    echo "$rc $((SECONDS - start))" >"$dir/done"
    echo "$name: exit $rc, $((SECONDS - start)) s"
}
export -f one
export bin out
printf '%s\n' "${stationary[@]}" "${candidates[@]}" "${continual[@]}" | xargs -P "$JOBS" -I{} bash -c 'one "$@"' _ {}
# A run that stops (non-finite values, a diverging evaluation loss) exits 1 with the
# reason on stderr: done records the status, the report reads the reason from the log.
bash scripts/merge_study.sh || echo "merge study: exit $?"
python3 scripts/plasticity_report.py "$out" docs/plasticity.md
