# Sourced by the study scripts (sf_plus_evidence.sh, sf_plus_scale.sh): training runs
# that are skipped once finished, queued JOBS at a time. The caller sets `out` (the
# runs' directory), `bin` (the sfnap binary), JOBS, and fills the array `jobs_list`
# with "NAME ARGS..." entries.

# run_train NAME ARGS...: `sfnap train --out $out/NAME ARGS...` unless $out/NAME/done
# exists. The output goes to $out/NAME.log; NAME/done holds the exit status and seconds.
run_train() {
    local name=$1
    shift
    local dir="$out/$name"
    if [ -f "$dir/done" ]; then return; fi
    rm -rf "$dir"
    local start=$SECONDS
    "$bin" train --out "$dir" "$@" >"$out/$name.log" 2>&1
    echo "$? $((SECONDS - start))" >"$dir/done"
    echo "$(basename "$out"): $name done (exit status, seconds: $(cat "$dir/done"))"
}

# run_all: every entry of jobs_list through run_train, JOBS at a time, in order.
run_all() {
    for j in "${jobs_list[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
        # shellcheck disable=SC2086
        run_train $j &
    done
    wait
}
