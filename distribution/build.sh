#!/bin/sh
# Builds the release tarball: dist/mqtt-gateway-<version>.tar.gz with bin/, conf/, docs/, the release
# executables (in libexec/, the Swift runtime linked in statically) and a README.
#
#   distribution/build.sh [VERSION]
#
# VERSION defaults to `git describe --tags --always` (or "dev" outside a git checkout). The build uses
# its own scratch folder (.build-dist), so it does not disturb the debug and release builds of the
# checkout. Unpack the tarball on another machine with the same OS and C library and run
# `bin/mqtt.sh start` there: no Swift toolchain is needed (distribution/README.md says what the machine
# needs: glibc, libstdc++, libsqlite3, procps). The tarball holds the working tree as it is, local
# changes included: build a release from a clean checkout of its tag.

set -eu

home_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$home_dir"

command -v swift >/dev/null 2>&1 || { echo "build.sh: no swift on PATH; a Swift toolchain is needed to build" >&2; exit 1; }
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
    # Without symbols each executable is about half as large; the Swift runtime and Foundation (with
    # its ICU data) are still in every one.
    if command -v strip >/dev/null 2>&1; then
        strip "$stage/libexec/$product"
    else
        printf 'warning: no strip on PATH; %s keeps its symbols\n' "$product" >&2
    fi
done
cp distribution/README.md "$stage/README.md"
printf '%s\n' "$version" > "$stage/VERSION"

# Owned by root in the archive, not by whoever built it: unpacked as root, the files are root's.
tar -C "$home_dir/dist" --owner=0 --group=0 --numeric-owner -czf "$home_dir/dist/$name.tar.gz" "$name"
printf '%s\n' "$home_dir/dist/$name.tar.gz"
