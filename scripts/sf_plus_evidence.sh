#!/usr/bin/env bash
# `make evidence-sf-plus`: the runs behind docs/evidence.md (ScheduleFree+ without a
# learning rate against tuned schedules), then scripts/sf_plus_scale.sh (the scale
# study) and scripts/evidence_report.py (the page and its plots).
#
# The character model (GPT, shipped text, batch 8) and the digits MLP (+ NaP,
# batch 64, 2,000 steps), each with:
#   sf_plus        sfnap's sf_plus, no learning rate (the default of `--opt sf_plus`)
#   sf_plus_ref    the paper's ScheduleFree+, no learning rate (--sf-plus-reference)
#   adamw_sf, adamw + wsd, adamw + cosine   at each learning rate of LRS (warmup
#                  50 steps on the GPT, 100 on digits)
# The GPT runs the whole grid at each length of GRID_STEPS over SEEDS, and the
# long-run subset LONG_OPTS at each length of LONG_STEPS over LONG_SEEDS. Both
# sf_plus also run the continual stream (--data continual --nap, 6,000 steps):
# do they diverge?
#
# Runs land in target/evidence/runs/ (a finished run is not run again; delete the
# directory to start over). JOBS runs go at once. The order puts the most telling
# runs first, so that a study cut short still holds the main comparisons.
set -uo pipefail
cd "$(dirname "$0")/.."
export SFNAP_BACKEND="${SFNAP_BACKEND:-vulkan}"
GRID_STEPS="${GRID_STEPS:-1000}"
LONG_STEPS="${LONG_STEPS:-16000 4000}"
SEEDS="${SEEDS:-0 1}"
LONG_SEEDS="${LONG_SEEDS:-0 1}"
LRS="${LRS:-1.5e-3 3e-3 6e-3}"
LONG_OPTS="${LONG_OPTS:-sf_plus wsd-3e-3}"
JOBS="${JOBS:-2}"
out=target/evidence/runs
mkdir -p "$out"
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${SFNAP_BIN:-}" ]; then cargo build --release --bin sfnap || exit 1; fi
bin="${SFNAP_BIN:-$target/release/sfnap}"

# Arguments of an optimizer name: sf_plus, sf_plus_ref, adamw_sf-LR, wsd-LR, cosine-LR.
opt_args() { # name warmup
    case $1 in
        sf_plus) echo "--opt sf_plus" ;;
        sf_plus_ref) echo "--opt sf_plus --sf-plus-reference" ;;
        adamw_sf-*) echo "--opt adamw_sf --lr ${1#adamw_sf-} --warmup $2" ;;
        wsd-*) echo "--opt adamw --schedule wsd --lr ${1#wsd-} --warmup $2" ;;
        cosine-*) echo "--opt adamw --schedule cosine --lr ${1#cosine-} --warmup $2" ;;
    esac
}
grid() {
    echo sf_plus sf_plus_ref
    for lr in $LRS; do echo "adamw_sf-$lr wsd-$lr cosine-$lr"; done
}

# shellcheck source=scripts/runs_lib.sh
source scripts/runs_lib.sh

jobs_list=()
gpt() { # opt steps seed
    # shellcheck disable=SC2046
    jobs_list+=("gpt-$1-n$2-s$3 --model gpt --data text --batch 8 --steps $2 --seed $3 --eval-every $(($2 / 20)) $(opt_args "$1" 50)")
}
digits() { # opt seed
    jobs_list+=("digits-$1-s$2 --data digits --nap --steps 2000 --seed $2 --eval-every 100 $(opt_args "$1" 100)")
}
continual() { # opt seed
    jobs_list+=("continual-$1-s$2 --data continual --nap --steps 6000 --seed $2 --eval-every 250 $(opt_args "$1" 0)")
}
first_seed=${SEEDS%% *}
long_seed=${LONG_SEEDS%% *}
long_first=${LONG_STEPS%% *}
# The longest sf_plus run first (it takes longest), then the grid of the first seed,
# then the other long runs, digits, and the remaining seeds.
gpt sf_plus "$long_first" "$long_seed"
for s in $GRID_STEPS; do for o in $(grid); do gpt "$o" "$s" "$first_seed"; done; done
for n in $LONG_STEPS; do
    for seed in $LONG_SEEDS; do
        for o in $LONG_OPTS; do
            [ "$o $n $seed" = "sf_plus $long_first $long_seed" ] || gpt "$o" "$n" "$seed"
        done
    done
done
for o in $(grid); do digits "$o" "$first_seed"; done
for o in sf_plus sf_plus_ref; do continual "$o" "$first_seed"; done
for seed in ${SEEDS#"$first_seed"}; do
    for s in $GRID_STEPS; do for o in $(grid); do gpt "$o" "$s" "$seed"; done; done
    for o in $(grid); do digits "$o" "$seed"; done
done
run_all
SFNAP_BIN="$bin" bash scripts/sf_plus_scale.sh
python3 scripts/evidence_report.py target/evidence docs/evidence.md
