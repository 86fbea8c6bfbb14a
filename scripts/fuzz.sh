#!/usr/bin/env bash
# Runs each fuzz target (cargo-fuzz, libFuzzer) for FUZZ_SECONDS and fails if any of them finds a crash.
# The corpus each run grows is kept in fuzz/corpus/<target> (not committed); the committed seeds
# (fuzz/seeds/<target>) and the inputs that once found a defect (fuzz/regressions/<target>) are read by
# every run, so a regression shows at once. A crash leaves its input in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=60                     per target
#   FUZZ_TARGETS="control_frame ..."    which targets (default: all of them)
#   FUZZ_TARGET_DIR=dir                 where to build (default fuzz/target); CI keeps one outside its
#                                       fresh clone so that only the project's own crates are rebuilt
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-control_frame data_frame seal_open http_api}
cargo=${CARGO:-cargo}

if ! "$cargo" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
    exit 1
fi
# cargo-fuzz passes nightly-only flags (-Z sanitizer=address, ...) to rustc; a stable toolchain accepts
# them with this. The build is a release build with debug assertions and overflow checks on.
export RUSTC_BOOTSTRAP=1

dictionary() {
    case $1 in
        control_frame) echo fuzz/dictionaries/control.dict ;;
        data_frame) echo fuzz/dictionaries/data.dict ;;
        http_api) echo fuzz/dictionaries/http.dict ;;
    esac
}

target_dir=()
[[ -n ${FUZZ_TARGET_DIR:-} ]] && target_dir=(--target-dir "$FUZZ_TARGET_DIR")

# Build every target once, so each target's time is spent fuzzing.
"$cargo" fuzz build "${target_dir[@]}"

failed=()
for target in $targets; do
    corpora=("fuzz/corpus/$target")
    mkdir -p "fuzz/corpus/$target"
    for extra in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
        [[ -d $extra ]] && corpora+=("$extra")
    done
    options=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    dict=$(dictionary "$target")
    [[ -n $dict ]] && options+=(-dict="$dict")
    echo "fuzz: $target for ${seconds}s"
    if ! "$cargo" fuzz run "${target_dir[@]}" "$target" "${corpora[@]}" -- "${options[@]}" >"fuzz/$target.log" 2>&1; then
        failed+=("$target")
        echo "fuzz: $target FAILED; the end of fuzz/$target.log:" >&2
        tail -n 40 "fuzz/$target.log" >&2
    else
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "fuzz/$target.log" | tail -n 1 || true
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/; replay one with" >&2
    echo "      RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input>)" >&2
    exit 1
fi
echo "fuzz: no crash in ${seconds}s per target ($targets)"
