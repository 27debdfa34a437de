#!/usr/bin/env bash
# The platform matrix: the library built and tested on other Debian releases than the
# host's (Debian 12), each a real debootstrap chroot from Debian's package registry
# with that release's nginx, lua module, LuaJIT and OpenSSL.
#
#   tools/matrix.sh [RELEASE ...]     default: bullseye trixie sid
#   tools/matrix.sh --prepare [REL]   only build (or refresh) the chroots
#   tools/matrix.sh --exec REL 'CMD'  run CMD in that chroot's copy of the tree
#
# Per release it prints one line: "matrix <release>: <suite> <result>, ..." and, last,
# "N passed, N failed" (one count per release). Exit status 0 only if every release
# passed.
#
# Chroots are cached in $RCT_MATRIX_CACHE (default /var/cache/resty-client-tls/matrix):
# about 1 GB and 2-3 minutes each to make, reused by later runs. The mirror is the one
# this machine's own apt sources name. The host's Rust toolchain (rustup, cargo) is
# bind-mounted at the same path; crates are vendored once on the host into the cache.
# Every process started in a chroot is ended and every mount undone on every exit path.
#
# Env: RCT_MATRIX_CACHE, RCT_MATRIX_SUITES (default "rust lua nginx valgrind operations
#      soak http3"; also "deb"), RCT_MATRIX_MIRROR (overrides the mirror read from apt's sources).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${RCT_MATRIX_CACHE:-/var/cache/resty-client-tls/matrix}
suites=${RCT_MATRIX_SUITES:-rust lua nginx valgrind operations soak http3 demo}
# Suites that drive the PDK layer in nginx throughout: on a lua module without
# ngx_http_lua_ffi_get_req_ssl_pointer (bullseye's 0.10.13) they are reported n/a.
pointer_suites="operations soak demo"

prepare_only=0 exec_cmd=""
if [ "${1:-}" = "--prepare" ]; then prepare_only=1; shift; fi
# --exec RELEASE CMD: run CMD (sh -c) in /src/rct of that chroot as the suites run, without
# copying the tree again: for trying a change by hand inside one release.
if [ "${1:-}" = "--exec" ]; then exec_cmd=$3; set -- "$2"; fi
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(bullseye trixie sid)

die() { echo "matrix: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts); run it with sudo"

# Packages per release. bullseye has no lua-resty-core and its lua module predates the
# SSL-pointer function; trixie and sid call OpenResty's LuaJIT fork "luajit".
common_pkgs="nginx libnginx-mod-http-lua curl openssl libssl-dev pkg-config gcc libc6-dev make
  python3 valgrind nghttp2-client ca-certificates procps git"
pkgs_for() {
    case $1 in
        bullseye) echo "$common_pkgs luajit clang" ;;
        # zlib and zstd: OpenSSL 3.5+'s libcrypto.a needs them (tests/openssl_guard.rs).
        # python3-aioquic: the HTTP/3 client of tests that send several requests on one QUIC
        # connection (tests/http3/h3.py h3_requests).
        trixie) echo "$common_pkgs lua-resty-core luajit clang libclang-rt-19-dev zlib1g-dev libzstd-dev python3-aioquic" ;;
        sid) echo "$common_pkgs lua-resty-core luajit clang libclang-rt-dev zlib1g-dev libzstd-dev python3-aioquic" ;;
        *) return 1 ;;
    esac
}

# The Debian mirror named by this machine's apt sources (deb822 first, then one-line).
mirror() {
    if [ -n "${RCT_MATRIX_MIRROR:-}" ]; then echo "$RCT_MATRIX_MIRROR"; return; fi
    local m
    m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    [ -n "$m" ] || m=$(awk '$1 == "deb" && $2 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }' \
        /etc/apt/sources.list 2>/dev/null)
    [ -n "$m" ] || return 1
    echo "$m"
}

mounted=()
cleanup_mounts() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[$i]}" 2>/dev/null
    done
    mounted=()
}
kill_chroot_procs() { # every process whose root is this chroot
    local root=$1 p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
}
current_root=""
# Every mount below the chroots of this run's releases, deepest first: also those of its
# parallel prepare jobs, and none of another run's (two runs on different releases can go
# on at once; two on one release cannot).
sweep_mounts() {
    local m rel
    for rel in "${releases[@]}"; do
        awk -v c="$cache/$rel/" 'index($2, c) == 1 { print $2 }' /proc/mounts
    done | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
}
on_exit() {
    [ -n "$current_root" ] && kill_chroot_procs "$current_root"
    cleanup_mounts
    sweep_mounts
}
trap on_exit EXIT
trap 'exit 130' INT TERM

bind() { # src dst [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2" || return 1
    mounted+=("$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2" 2>/dev/null; fi
    return 0
}

mount_chroot() {
    local root=$1
    bind /proc "$root/proc" && bind /dev "$root/dev" && bind /dev/pts "$root/dev/pts" && bind /sys "$root/sys" \
        || return 1
    mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
}

# Builds $cache/<release> once; a ".ready" marker (holding the package list) says it is
# complete. A half-made chroot is removed and made again.
prepare() {
    local rel=$1 root="$cache/$1" mir pkgs
    pkgs=$(pkgs_for "$rel") || { echo "matrix: unknown release $rel" >&2; return 1; }
    pkgs=$(echo $pkgs)
    if [ -f "$root/.ready" ] && [ "$(cat "$root/.ready")" = "$pkgs" ]; then return 0; fi
    mir=$(mirror) || { echo "matrix: no Debian mirror in /etc/apt/sources*" >&2; return 1; }
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; } \
        || { echo "matrix: cannot install debootstrap" >&2; return 1; }
    local log="$cache/$rel.prepare.log"
    echo "matrix: making the $rel chroot from $mir (log: $log)"
    if [ ! -f "$root/.debootstrapped" ]; then
        rm -rf "$root"
        mkdir -p "$root"
        debootstrap --variant=minbase "$rel" "$root" "$mir" >"$log" 2>&1 \
            || { tail -20 "$log"; echo "matrix: debootstrap $rel failed" >&2; return 1; }
        touch "$root/.debootstrapped"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod +x "$root/usr/sbin/policy-rc.d"
    # sid's Release file may be past its Valid-Until date.
    echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99rct-matrix"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
    mount_chroot "$root" || { echo "matrix: cannot mount into $root" >&2; return 1; }
    current_root=$root
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs" >>"$log" 2>&1
    local rc=$?
    kill_chroot_procs "$root"
    current_root=""
    cleanup_mounts
    [ $rc -eq 0 ] || { tail -20 "$log"; echo "matrix: installing packages in $rel failed" >&2; return 1; }
    echo "$pkgs" >"$root/.ready"
}

# The crates, vendored once on the host (no network is needed inside the chroots).
vendor() {
    local v="$cache/vendor"
    if [ -f "$v/.stamp" ] && cmp -s "$v/.stamp" "$repo/Cargo.lock"; then return 0; fi
    rm -rf "$v"
    mkdir -p "$v"
    (cd "$repo" && cargo vendor --locked --versioned-dirs "$v/crates" >"$v/config.toml" 2>"$cache/vendor.log") \
        || { tail -20 "$cache/vendor.log"; echo "matrix: cargo vendor failed" >&2; return 1; }
    sed -i "s|$v/crates|/rct-vendor/crates|" "$v/config.toml"
    cp "$repo/Cargo.lock" "$v/.stamp"
}

# One run at a time per release (another run on the same release waits here): fd 9 holds
# the lock of the release being worked on.
lock_release() {
    exec 9>"$cache/$1.lock"
    flock 9
}

# Mounts what a run needs into the chroot of $1 and sets envs: the command prefix that
# runs a command inside it with the host's toolchain and the vendored crates.
envs=()
enter() {
    local rel=$1 root="$cache/$1"
    local rustup=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
    mount_chroot "$root" || { echo "matrix $rel: mounts failed"; return 1; }
    current_root=$root
    bind "$rustup" "$root$rustup" ro && bind "$cargo_home/bin" "$root$cargo_home/bin" ro \
        && bind "$cache/vendor" "$root/rct-vendor" ro || { echo "matrix $rel: mounts failed"; return 1; }
    # Cargo reads its registry config from CARGO_HOME: a per-chroot one points at the vendor dir.
    mkdir -p "$root/rct-cargo"
    cp "$cache/vendor/config.toml" "$root/rct-cargo/config.toml"
    envs=(chroot "$root" env -i PATH="$cargo_home/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root
          RUSTUP_HOME="$rustup" CARGO_HOME=/rct-cargo CARGO_NET_OFFLINE=true LANG=C.UTF-8
          RCT_MATRIX_RELEASE="$rel"
          RUSTUP_TOOLCHAIN="$(cd "$repo" && rustup show active-toolchain 2>/dev/null | awk '{print $1}')")
}

# Runs the suites inside one chroot; prints the per-release line.
run_release() {
    local rel=$1 root="$cache/$1"
    lock_release "$rel"
    local out="$cache/$rel.out"
    mkdir -p "$out"
    # A fresh copy of the working tree (tracked and untracked, not ignored): each release
    # keeps its own target/ between runs.
    mkdir -p "$root/src/rct"
    find "$root/src/rct" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
    (cd "$repo" && git ls-files -co --exclude-standard -z) \
        | rsync -a --delete --from0 --files-from=- "$repo/" "$root/src/rct/" \
        || { echo "matrix $rel: copying the source failed"; return 1; }
    enter "$rel" || return 1
    local line="matrix $rel:" all_ok=0 s rc
    echo "platform $rel: $("${envs[@]}" sh -c "cd /src/rct && python3 -B -m tests.harness versions" 2>&1 | tail -n 1)"
    if ! "${envs[@]}" sh -c 'cd /src/rct && cargo build --release --offline' >"$out/build.log" 2>&1; then
        tail -30 "$out/build.log"
        echo "$line build FAILED"
        kill_chroot_procs "$root"; current_root=""; cleanup_mounts
        return 1
    fi
    line+=" build ok"
    for s in $suites; do
        case $s in
            rust) cmd='cargo test --release --offline --no-fail-fast' ;;
            lua) cmd='bash tests/lua/run.sh' ;;
            nginx) cmd='python3 -m tests.nginx.run' ;;
            valgrind) cmd='bash tests/reliability/valgrind.sh' ;;
            operations) cmd='python3 -m tests.operations.run' ;;
            soak) cmd='bash tests/soak/run.sh --short' ;;
            # `make demo`'s script on that release's nginx (with HTTP/3 where it has it).
            demo) cmd='bash demo/run.sh' ;;
            # HTTP/3 (QUIC) where nginx has ngx_http_v3_module and curl speaks HTTP/3; it
            # prints "N/A: <why>" and no result line elsewhere (reported n/a below).
            http3) cmd='python3 -m tests.http3.run' ;;
            # The Debian package built in this release, installed with apt-get, the Kong
            # example run on it, removed and purged (not a default suite: it installs
            # into the chroot). RCT_MATRIX_SUITES=deb tools/matrix.sh trixie sid
            deb) cmd='bash tests/packaging/deb.sh' ;;
            *) cmd="$s" ;;
        esac
        if [[ " $pointer_suites " == *" $s "* ]] && ! "${envs[@]}" sh -c 'cd /src/rct && python3 -B -m tests.harness has-ssl-pointer'; then
            line+=", $s n/a (lua module without ngx_http_lua_ffi_get_req_ssl_pointer)"
            continue
        fi
        local start=$(date +%s)
        "${envs[@]}" sh -c "cd /src/rct && $cmd" >"$out/$s.log" 2>&1
        rc=$?
        local summary
        if [ "$s" = rust ]; then
            summary=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$out/$s.log")
        else
            summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/$s.log" | tail -n 1)
            [ -n "$summary" ] || summary=$(tail -n 1 "$out/$s.log")
        fi
        if [ $rc -eq 0 ] && [ -z "$summary" ] && grep -q '^N/A: ' "$out/$s.log"; then
            line+=", $s n/a ($(grep -m 1 '^N/A: ' "$out/$s.log" | sed 's/^N\/A: //'))"
        elif [ $rc -eq 0 ]; then
            line+=", $s ok ($summary; $(( $(date +%s) - start )) s)"
        else
            all_ok=1
            # The failed tests' names on the summary line too: a CI log cut short in the
            # middle still ends with what failed.
            local failed_names
            failed_names=$(awk '/^FAIL(ED)? [^ ]/ { print $2 } /^test .* \.\.\. FAILED$/ { print $2 }' \
                "$out/$s.log" | head -n 5 | paste -sd ' ')
            line+=", $s FAILED (exit $rc; $summary${failed_names:+; failed: $failed_names})"
            echo "---- $rel $s: tail of $out/$s.log"
            grep -E 'FAIL|panicked|error' "$out/$s.log" | head -40
            tail -15 "$out/$s.log"
        fi
        kill_chroot_procs "$root"
    done
    current_root=""
    cleanup_mounts
    echo "$line"
    return $all_ok
}

mkdir -p "$cache"
# What the host needs besides the chroots (a fresh Debian 12 has neither).
for tool in debootstrap rsync; do
    command -v "$tool" >/dev/null && continue
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; } \
        || die "cannot install $tool"
done
passed=0 failed=0
# The chroots are made in parallel (mostly downloads), each job with its own log.
start=$(date +%s)
pids=()
for rel in "${releases[@]}"; do
    (
        current_root=""; mounted=()
        lock_release "$rel"
        prepare "$rel" >"$cache/$rel.prepare.out" 2>&1
        rc=$?
        kill_chroot_procs "$cache/$rel"; cleanup_mounts
        exit $rc
    ) &
    pids+=($!)
done
for i in "${!releases[@]}"; do
    rel=${releases[$i]}
    if wait "${pids[$i]}"; then
        echo "matrix: $rel chroot ready ($(( $(date +%s) - start )) s)"
    else
        cat "$cache/$rel.prepare.out"
        echo "matrix $rel: chroot FAILED"
        failed=$((failed + 1))
    fi
done
if [ $prepare_only = 1 ]; then
    echo "$(( ${#releases[@]} - failed )) passed, $failed failed"
    [ $failed -eq 0 ]; exit
fi
vendor || die "cannot vendor the crates"
if [ -n "$exec_cmd" ]; then
    lock_release "${releases[0]}"
    enter "${releases[0]}" || exit 1
    "${envs[@]}" sh -c "cd /src/rct && $exec_cmd"
    exit
fi
for rel in "${releases[@]}"; do
    [ -f "$cache/$rel/.ready" ] || continue
    start=$(date +%s)
    if run_release "$rel"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    echo "matrix: $rel took $(( $(date +%s) - start )) s"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
