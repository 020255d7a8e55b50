#!/usr/bin/env bash
# Runs the codec and topic-matching benchmarks (Benchmarks/, its own package) in release mode.
#
#   scripts/bench-codec.sh                              all benchmarks
#   scripts/bench-codec.sh --filter 'Decode PUBLISH.*'  some of them (any option of `benchmark run`)
#   scripts/bench-codec.sh --allocation-stacks --filter 'Decode mixed.*'
#                                                       where the allocations come from
#
# Prints the machine and its load first: on a shared machine the numbers are only as good as the
# quiet they were taken in. See docs/benchmarks.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$root/Benchmarks"
swift package --disable-sandbox benchmark run --no-progress "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
