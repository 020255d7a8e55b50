# Sourced by bin/mqtt.sh, bin/mqnamesrv and bin/mqadmin (POSIX sh): finds the binary of a product.
#
#   resolve_binary PRODUCT OVERRIDE [update]
#
# Sets $bin to OVERRIDE when it is not empty (the script's *_BIN variable). Otherwise, in a source
# checkout with a Swift toolchain, to .build/release/PRODUCT, built first when it is missing — and, with
# `update`, brought up to date (an incremental `swift build -c release`, a no-op when nothing changed),
# so a node never runs code older than the checkout. In an unpacked distribution (distribution/build.sh)
# it takes libexec/PRODUCT. Without a toolchain it takes .build/release/PRODUCT, else .build/debug/PRODUCT,
# as it is. Expects $home_dir, $program and fail().

resolve_binary() {
    product=$1
    override=$2
    update=${3:-}
    if [ -n "$override" ]; then
        [ -x "$override" ] || fail "$override is not an executable"
        bin=$override
        return
    fi
    release=$home_dir/.build/release/$product
    if [ ! -f "$home_dir/Package.swift" ] && [ -x "$home_dir/libexec/$product" ]; then
        bin=$home_dir/libexec/$product
        return
    fi
    if [ -f "$home_dir/Package.swift" ] && command -v swift >/dev/null 2>&1; then
        if [ ! -x "$release" ]; then
            printf '%s: building %s (swift build -c release --product %s; the first build takes a few minutes)...\n' \
                "$program" "$product" "$product" >&2
        elif [ "$update" != update ]; then
            bin=$release
            return
        fi
        (cd "$home_dir" && swift build -c release --product "$product" >&2) || fail "building $product failed"
        bin=$release
    elif [ -x "$release" ]; then
        bin=$release
    elif [ -x "$home_dir/.build/debug/$product" ]; then
        bin=$home_dir/.build/debug/$product
    else
        fail "no $product binary here, and no Swift toolchain to build it"
    fi
}
