#!/usr/bin/env bash
# Builds a fuzzer of Fuzz/ (its own package) with libFuzzer and AddressSanitizer and runs it. Two targets:
# `decoder` (MQTTDecoderFuzzer, the packet decoder) and `state-machine` (ServerConnectionFuzzer, the
# server connection state machine driven by event scripts).
#
#   scripts/fuzz.sh [SECONDS] [TARGET]          fuzz TARGET (default decoder) for SECONDS (default 60)
#   scripts/fuzz.sh [TARGET] replay FILE...     run the harness once on each FILE, printing what it does
#   scripts/fuzz.sh [TARGET] minimize FILE      shrink a crashing input; the result goes to Fuzz/artifacts/
#
# The working corpora (Fuzz/corpus/, Fuzz/corpus-state-machine/) and crash artifacts (Fuzz/artifacts/) are
# not committed; the seeds are (Fuzz/seeds/*.hex, written by Fuzz/seeds/generate.py; for the state
# machine, the regression inputs in Fuzz/regressions/state-machine/). See docs/fuzzing.md.
#
# FUZZ_CONFIGURATION=debug builds without optimization: better stack traces, about 20 times fewer
# executions per second. The default, release, keeps every check of the harness (see docs/fuzzing.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/Fuzz"
scratch="$fuzz_dir/.build-fuzz"
configuration="${FUZZ_CONFIGURATION:-release}"

target=decoder
if [[ "${1:-}" == decoder || "${1:-}" == state-machine ]]; then
    target="$1"
    shift
elif [[ "${1:-}" =~ ^[0-9]+$ && -n "${2:-}" ]]; then
    target="$2"
fi
case "$target" in
decoder)
    product=MQTTDecoderFuzzer
    corpus="$fuzz_dir/corpus"
    ;;
state-machine)
    product=ServerConnectionFuzzer
    corpus="$fuzz_dir/corpus-state-machine"
    ;;
*)
    echo "unknown fuzz target: $target (decoder or state-machine)" >&2
    exit 2
    ;;
esac
binary="$scratch/$configuration/$product"
# A failed check traps; let libFuzzer's handler report it and save the input. The Swift runtime's own
# backtracer would run first, and AddressSanitizer flags the backtracer's memory reads as errors.
export SWIFT_BACKTRACE="enable=no"
artifacts="$fuzz_dir/artifacts"

build() {
    echo "==> building $product ($configuration, -sanitize=fuzzer,address) in $scratch"
    # gold warns once per ASan helper symbol ("Cannot export local symbol"); those lines are noise.
    (cd "$fuzz_dir" && swift build -c "$configuration" --scratch-path "$scratch" --product "$product" -Xswiftc -sanitize=fuzzer,address) 2>&1 \
        | { grep -v 'warning: Cannot export local symbol' || true; }
    [[ -x "$binary" ]] || { echo "build failed" >&2; exit 1; }
}

hex_to_binary() {
    if command -v xxd >/dev/null 2>&1; then
        xxd -r -p "$1" >"$2"
    else
        python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read()))' "$1" "$2"
    fi
}

case "${1:-}" in
replay)
    shift
    [[ $# -gt 0 ]] || { echo "usage: $0 replay FILE..." >&2; exit 2; }
    build
    # With files as arguments libFuzzer runs each once and exits.
    MQTT_FUZZ_VERBOSE=1 "$binary" "$@"
    exit $?
    ;;
minimize)
    shift
    [[ $# -eq 1 ]] || { echo "usage: $0 minimize CRASH_FILE" >&2; exit 2; }
    build
    mkdir -p "$artifacts"
    "$binary" -minimize_crash=1 -runs=100000 -max_len=4096 -artifact_prefix="$artifacts/minimized-" "$1"
    ls -l "$artifacts"/minimized-* 2>/dev/null || true
    exit 0
    ;;
esac

seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [decoder|state-machine] | [TARGET] replay FILE... | [TARGET] minimize FILE" >&2; exit 2; }

build
mkdir -p "$corpus" "$artifacts"
if [[ "$target" == decoder ]]; then
    for seed in "$fuzz_dir"/seeds/*.hex; do
        hex_to_binary "$seed" "$corpus/seed-$(basename "$seed" .hex).bin"
    done
else
    # Every byte string is a valid event script, so the fuzzer needs no seeds; the regressions are kept.
    for regression in "$fuzz_dir"/regressions/state-machine/*.bin; do
        [[ -e "$regression" ]] && cp "$regression" "$corpus/regression-$(basename "$regression")"
    done
fi

log="$artifacts/fuzz-$target-$(date +%Y%m%d-%H%M%S).log"
echo "==> fuzzing $target for ${seconds}s; corpus $corpus ($(ls "$corpus" | wc -l) files), log $log"
started="$(mktemp)"
trap 'rm -f "$started"' EXIT
status=0
"$binary" \
    -max_total_time="$seconds" \
    -max_len=4096 \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$corpus" >"$log" 2>&1 || status=$?

echo "==> result"
grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|stat::new_units_added):' "$log" || true
grep -E '^#[0-9]+ +DONE' "$log" | tail -1 || true
echo "corpus: $(ls "$corpus" | wc -l) files"
# Only what this run found; artifacts of earlier runs stay in the directory until removed.
mapfile -t crashes < <(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$started" | sort)
echo "crashes: ${#crashes[@]}"
for crash in "${crashes[@]}"; do
    echo "  $crash ($(stat -c %s "$crash") bytes)"
done
if [[ $status -ne 0 ]]; then
    echo "==> the fuzzer stopped with status $status; its report:"
    grep -E -A30 '(Fatal error|==[0-9]+==ERROR|deadly signal)' "$log" | head -60 || tail -60 "$log"
    exit "$status"
fi
