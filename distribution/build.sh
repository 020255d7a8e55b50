#!/bin/sh
# Builds the release tarball: dist/mqtt-gateway-<version>.tar.gz with bin/, conf/, docs/, the release
# executables (in libexec/, the Swift runtime linked in statically) and a README.
#
#   distribution/build.sh [VERSION]
#
# VERSION defaults to `git describe --tags --always` (or "dev" outside a git checkout). The build uses
# its own scratch folder (.build-dist), so it does not disturb the debug and release builds of the
# checkout. Unpack the tarball on another machine with the same OS and C library and run
# `bin/mqtt.sh start` there: no Swift toolchain is needed.

set -eu

home_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$home_dir"

version=${1:-$(git describe --tags --always 2>/dev/null || echo dev)}
name=mqtt-gateway-$version
products="mqtt-node mqbroker mqnamesrv mqadmin mqtt-bench"
scratch=$home_dir/.build-dist
stage=$home_dir/dist/$name

for product in $products; do
    printf 'building %s (release, static Swift runtime)...\n' "$product" >&2
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product" >&2
done
bin_dir=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)

rm -rf "$stage"
mkdir -p "$stage/libexec"
cp -R bin conf docs "$stage/"
rm -f "$stage/bin/bench-compare"
for product in $products; do
    cp "$bin_dir/$product" "$stage/libexec/$product"
    strip "$stage/libexec/$product" 2>/dev/null || true
done
cp distribution/README.md "$stage/README.md"
printf '%s\n' "$version" > "$stage/VERSION"

tar -C "$home_dir/dist" -czf "$home_dir/dist/$name.tar.gz" "$name"
printf '%s\n' "$home_dir/dist/$name.tar.gz"
