#!/usr/bin/env bash
# `make update-functions`: the runs and plots of docs/update-functions.md.
#
# Trains the MLP 64-256-256-10 with LayerNorm (batch 64, seed 0) once with each
# optimizer below: on the digits for DIGITS_STEPS steps, and for the NaP pairs on
# the continual stream (labels re-drawn every 500 steps) for CONTINUAL_STEPS. Then
# `sfnap inspect update --at` makes each run again and freezes its optimizer at
# those step counts: the update functions of its weight matrices (update.csv,
# update.png) and the median slope at g = 0 and effective learning rate of each
# (slopes.csv, slopes.png). scripts/update_functions_report.py turns
# target/update-functions/ into docs/update-functions.md and its SVG plots
# (standard library).
#
# A run whose directory already holds its inspection is not run again (delete
# target/update-functions/ to start over). About 10 minutes on lavapipe with 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
DIGITS_STEPS="${DIGITS_STEPS:-2000}"
DIGITS_AT="${DIGITS_AT:-10,30,100,300,1000,1600,1800,1999}"
CONTINUAL_STEPS="${CONTINUAL_STEPS:-4000}"
CONTINUAL_AT="${CONTINUAL_AT:-10,100,500,1000,2000,3000,3999}"
out=target/update-functions
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${SFNAP_BIN:-}" ]; then cargo build --release --bin sfnap; fi
bin="${SFNAP_BIN:-$target/release/sfnap}"

# name | data | arguments
runs=(
    "sgd_sf|digits|--opt sgd_sf --lr 0.3"
    "adamw_sf|digits|--opt adamw_sf --lr 3e-3"
    "adamw_sf_paper|digits|--opt adamw_sf_paper --lr 3e-3"
    "radam_sf|digits|--opt radam_sf --lr 3e-3"
    "sf_plus|digits|--opt sf_plus"
    "adamw_wsd|digits|--opt adamw --lr 1e-3 --schedule wsd"
    "adamw|digits|--opt adamw --lr 1e-3"
    "continual_adamw|continual|--opt adamw --lr 1e-3"
    "continual_adamw_nap|continual|--opt adamw --lr 1e-3 --nap"
    "continual_sgd_sf|continual|--opt sgd_sf --lr 0.3"
    "continual_sgd_sf_nap|continual|--opt sgd_sf --lr 0.3 --nap"
)
started=$(date +%s)
for run in "${runs[@]}"; do
    IFS='|' read -r name data args <<< "$run"
    if [ "$data" = digits ]; then steps=$DIGITS_STEPS at=$DIGITS_AT; else steps=$CONTINUAL_STEPS at=$CONTINUAL_AT; fi
    dir="$out/$name"
    if [ -f "$dir/inspect/update.json" ]; then
        echo "== $name: done before"
        continue
    fi
    echo "== $name: sfnap train $args"
    # shellcheck disable=SC2086 # the arguments are words
    "$bin" train --data "$data" --steps "$steps" --eval-every 500 $args --out "$dir" --overwrite
    mkdir -p "$dir/inspect"
    "$bin" inspect update "$dir" --at "$at" --out "$dir/inspect" --json > "$dir/inspect/update.json.tmp" \
        || { rm -f "$dir/inspect/update.json.tmp"; exit 1; }
    mv "$dir/inspect/update.json.tmp" "$dir/inspect/update.json"
done
echo "runs: $(( $(date +%s) - started )) s"
python3 scripts/update_functions_report.py "$out"
