#!/usr/bin/env bash
# `make evidence-bf16`: the runs behind docs/bf16-state.md (optimizer state stored
# in bf16 against f32), then scripts/bf16_state_report.py (the page and its plots).
#
# Every setting runs three times, identical but for the state's precision:
#   f32       --state-dtype f32 (the default)
#   bf16      --state-dtype bf16 (stochastic rounding, the default rounding)
#   nearest   --state-dtype bf16 --state-rounding nearest
#   bf16alt   --state-dtype bf16 --state-seed 1000: other rounding bits for the same
#             run (the character model and digits), the spread that the rounding's
#             bits alone cause, to read bf16 - f32 against
# on:
#   the character model (GPT, shipped text, batch 8), GPT_STEPS steps, seeds GPT_SEEDS:
#     adamw_sf at 3e-3 with 50 warmup steps, and sfnap's sf_plus (no learning rate).
#     Neither depends on the run's length, so the row at step 1,000 of these runs is
#     the result of a 1,000-step run; the 1,000-step command itself runs too
#     (adamw_sf, seed 0, f32 and bf16), and the report checks that the two agree.
#   the digits MLP + NaP (batch 64, 2,000 steps), seeds DIGITS_SEEDS:
#     sf_plus (no learning rate) and adamw_sf at 3e-3 with 100 warmup steps;
#   the continual stream (random labels re-drawn every 500 steps, 21 tasks) + NaP,
#     seeds CONTINUAL_SEEDS: adamw_sf at 3e-3 with --sf-window 100 --sf-beta 0.5.
#
# Runs land in target/bf16-state/runs/ (a finished run is not run again; delete the
# directory to start over), JOBS at a time. About 70 minutes on lavapipe with 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
GPT_STEPS="${GPT_STEPS:-4000}"
GPT_SEEDS="${GPT_SEEDS:-0 1}"
DIGITS_SEEDS="${DIGITS_SEEDS:-0 1 2 3 4}"
CONTINUAL_SEEDS="${CONTINUAL_SEEDS:-0 1}"
JOBS="${JOBS:-2}"
out=target/bf16-state/runs
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${SFNAP_BIN:-}" ]; then cargo build --release --bin sfnap || exit 1; fi
bin="${SFNAP_BIN:-$target/release/sfnap}"

# Arguments of a precision name.
precision_args() {
    case $1 in
        f32) echo "--state-dtype f32" ;;
        bf16) echo "--state-dtype bf16" ;;
        nearest) echo "--state-dtype bf16 --state-rounding nearest" ;;
        bf16alt) echo "--state-dtype bf16 --state-seed 1000" ;;
    esac
}
PRECISIONS="f32 bf16 nearest"

# shellcheck source=scripts/runs_lib.sh
source scripts/runs_lib.sh

jobs_list=()
gpt() { # opt steps seed precision
    local args="--opt sf_plus"
    if [ "$1" = adamw_sf ]; then args="--opt adamw_sf --lr 3e-3 --warmup 50"; fi
    jobs_list+=("gpt-$1-n$2-s$3-$4 --model gpt --data text --batch 8 --steps $2 --seed $3 --eval-every 250 $args $(precision_args "$4")")
}
digits() { # opt seed precision
    local args="--opt sf_plus"
    if [ "$1" = adamw_sf ]; then args="--opt adamw_sf --lr 3e-3 --warmup 100"; fi
    jobs_list+=("digits-$1-s$2-$3 --data digits --nap --steps 2000 --seed $2 --eval-every 100 $args $(precision_args "$3")")
}
continual() { # seed precision
    jobs_list+=("continual-s$1-$2 --data continual --nap --steps 10500 --task-steps 500 --eval-every 500 --seed $1 --opt adamw_sf --lr 3e-3 --sf-window 100 --sf-beta 0.5 $(precision_args "$2")")
}

# The 1,000-step comparison first, so that a study cut short still holds it.
for p in f32 bf16; do jobs_list+=("gpt-adamw_sf-n1000-s0-$p --model gpt --data text --batch 8 --steps 1000 --seed 0 --opt adamw_sf --lr 3e-3 --warmup 50 $(precision_args $p)"); done
for seed in $DIGITS_SEEDS; do for opt in sf_plus adamw_sf; do for p in $PRECISIONS; do digits "$opt" "$seed" "$p"; done; done; done
for seed in $GPT_SEEDS; do for opt in adamw_sf sf_plus; do for p in $PRECISIONS; do gpt "$opt" "$GPT_STEPS" "$seed" "$p"; done; done; done
for seed in $CONTINUAL_SEEDS; do for p in $PRECISIONS; do continual "$seed" "$p"; done; done
for seed in $GPT_SEEDS; do for opt in adamw_sf sf_plus; do gpt "$opt" "$GPT_STEPS" "$seed" bf16alt; done; done
for seed in $DIGITS_SEEDS; do for opt in sf_plus adamw_sf; do digits "$opt" "$seed" bf16alt; done; done

started=$SECONDS
run_all
echo "runs: $((SECONDS - started)) s"
python3 scripts/bf16_state_report.py target/bf16-state
