#!/usr/bin/env bash
# The scale study of docs/evidence.md: where does the reference ScheduleFree+ step
# come from, and how does it move with the character model's width and batch?
#
# Trains the GPT on the shipped text with sf_plus as the paper defines it
# (--sf-plus-reference: no cap on the Polyak step, inner momentum 0.9, beta2 0.95)
# for STEPS steps (WIDE_STEPS at width 256), evaluating every 10 so that metrics.csv holds the step size gamma
# next to the training loss: at widths WIDTHS (batch 8), and at batches BATCHES
# (width 64). Runs land in target/evidence/scale/ (finished runs are kept).
set -uo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
STEPS="${STEPS:-300}"
WIDE_STEPS="${WIDE_STEPS:-200}" # width 256 costs 4x width 128 a step: two thirds of the steps
WIDTHS="${WIDTHS:-32 64 128 256}"
BATCHES="${BATCHES:-2 8 32}"
JOBS="${JOBS:-2}"
REF_ARGS="${REF_ARGS---sf-plus-reference}"
out=target/evidence/scale
mkdir -p "$out"
bin="${SFNAP_BIN:-${CARGO_TARGET_DIR:-target}/release/sfnap}"

# shellcheck source=scripts/runs_lib.sh
source scripts/runs_lib.sh

common="--model gpt --data text --opt sf_plus $REF_ARGS --eval-every 10"
jobs_list=()
for w in $WIDTHS; do
    steps=$STEPS
    [ "$w" -ge 256 ] && steps=$WIDE_STEPS
    jobs_list+=("w$w-b8 $common --width $w --batch 8 --steps $steps")
done
for b in $BATCHES; do
    [ "$b" = 8 ] && continue
    jobs_list+=("w64-b$b $common --width 64 --batch $b --steps $STEPS")
done
run_all
