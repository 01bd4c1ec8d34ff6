#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS (default 60) on the stable toolchain
# (`-s none`), two at a time, each from a scratch corpus seeded with fuzz/corpus/<target>
# so that discovered inputs stay out of the repository. Fails if any target fails.
#
# Usage: scripts/fuzz-all.sh [SECONDS]
# Environment: FUZZ_JOBS (parallel targets, default 2), FUZZ_WORK (scratch directory,
# default a fresh mktemp directory; logs are kept there as <target>.log).
set -euo pipefail

secs="${1:-60}"
jobs="${FUZZ_JOBS:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

work="${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/lvs-fuzz.XXXXXX")}"
mkdir -p "$work"

mapfile -t targets < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

echo "building ${#targets[@]} targets"
cargo fuzz build -s none

run_one() {
    local t="$1"
    mkdir -p "$work/corpus-$t" "$work/artifacts-$t"
    if cargo fuzz run "$t" -s none "$work/corpus-$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts-$t/" >"$work/$t.log" 2>&1; then
        local execs cov
        execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || true)"
        cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/$t.log" | tail -n 1 || true)"
        echo "ok    $t: ${execs:-?} execs, ${cov:-no coverage line}"
    else
        echo "FAIL  $t (log: $work/$t.log)"
        tail -n 40 "$work/$t.log"
        return 1
    fi
}

pids=()
names=()
failed=()
wait_first() {
    # Waits for the oldest running target and records a failure.
    if ! wait "${pids[0]}"; then
        failed+=("${names[0]}")
    fi
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
}

for t in "${targets[@]}"; do
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait_first
    fi
    run_one "$t" &
    pids+=("$!")
    names+=("$t")
done
while [ "${#pids[@]}" -gt 0 ]; do
    wait_first
done

echo "logs and corpora in $work"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed targets: ${failed[*]}" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${secs}s without a failure"
