#!/usr/bin/env bash
# The OpenSSL-copy guard in a real nginx that embeds OpenSSL statically
# (./configure --with-openssl=DIR, which exports the copy: nginx links with -Wl,-E).
# Builds Debian's own nginx source package with the exact `nginx -V` configure arguments
# (so Debian's dynamic ndk and lua modules load into it) plus --with-openssl=:
#   - Debian's OpenSSL 3.0 source (the series the library is built against): the library's
#     calls all bind to nginx's copy; require and every function must work
#     (static_nginx.py: handshakes with SUCCESS and the exact chain);
#   - bullseye's OpenSSL 1.1.1 source: most calls bind to nginx's 1.1.1, the functions
#     1.1.1 lacks to the system libssl.so.3: require must raise the guard's message (in
#     init_by_lua nginx must not start), and the C functions must refuse the request's SSL*;
#   - with FIX=1 also the documented fix: the library built against an installed shared
#     build of that same 1.1.1 source (OPENSSL_DIR), which must then work in that nginx.
# Sources come through a private apt configuration (deb-src lines naming the mirrors of
# /etc/apt/sources.list.d/*.sources; the system's sources are not changed). The binaries
# are cached in $RCT_STATIC_CACHE (default /var/cache/resty-client-tls/static-nginx):
# about 2.5 minutes per nginx build on 2 cores (measured: 137 s and 131 s), the first time only;
# afterwards the whole script takes about 5 s (50 handshakes; HANDSHAKES=N for more).
# Needs: dpkg-dev (apt-get source), cc, make, perl, python3, curl, openssl, the
# nginx package (for `nginx -V` and its modules), libnginx-mod-http-lua, and nginx's build
# dependencies: apt-get install libpcre2-dev zlib1g-dev libgeoip-dev libgd-dev libperl-dev
# libxslt1-dev. Ends with exactly "N passed, N failed".
#   tests/reliability/static_nginx.sh [--build-only]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${RCT_STATIC_CACHE:-/var/cache/resty-client-tls/static-nginx}
jobs=${JOBS:-2}
lib=${RCT_LIB:-$repo/target/release/libresty_client_tls.so}

die() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }
log() { echo "-- $*"; }

for tool in apt-get dpkg-source cc make perl python3 nginx; do
    command -v $tool >/dev/null || die "$tool is missing"
done
for h in pcre2.h zlib.h GeoIP.h gd.h libxslt/xslt.h; do
    echo "#include <$h>" | cc -x c -E -DPCRE2_CODE_UNIT_WIDTH=8 -I/usr/include/libxml2 - >/dev/null 2>&1 \
        || die "<$h> missing: apt-get install libpcre2-dev zlib1g-dev libgeoip-dev libgd-dev libxslt1-dev libperl-dev"
done
[ -e "$lib" ] || die "$lib missing (cargo build --release)"
mkdir -p "$cache" || die "cannot create $cache"

# -- private apt configuration ------------------------------------------------------------------
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts.d"
# The mirror URIs the system uses: one for the release suites, one for -security.
read -r mirror security < <(python3 - <<'EOF'
import glob
main = sec = None
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        f = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                k, v = line.split(":", 1)
                f[k.strip()] = v.split()
        for uri in f.get("URIs", []):
            suites = f.get("Suites", [])
            if any(s.endswith("-security") for s in suites):
                sec = sec or uri.rstrip("/")
            elif suites:
                main = main or uri.rstrip("/")
print(main or "http://deb.debian.org/debian", sec or "http://deb.debian.org/debian-security")
EOF
)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/sources.list" <<EOF
deb-src [signed-by=$keyring] $mirror bookworm main
deb-src [signed-by=$keyring] $security bookworm-security main
deb-src [signed-by=$keyring] $mirror bullseye main
deb-src [signed-by=$keyring] $security bullseye-security main
EOF
APT=(apt-get -q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts.d"
     -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Acquire::Check-Valid-Until=false
     -o APT::Sandbox::User=root)
if [ ! -e "$apt_dir/updated" ] || [ -n "$(find "$apt_dir/updated" -mtime +7)" ]; then
    log "apt-get update (private configuration: $apt_dir/sources.list)"
    "${APT[@]}" update >"$apt_dir/update.log" 2>&1 || die "apt-get update failed: $(tail -3 "$apt_dir/update.log")"
    touch "$apt_dir/updated"
fi

# fetch PACKAGE=VERSION|PACKAGE/RELEASE -> prints the unpacked source directory
fetch() {
    local spec=$1 src=$cache/src
    mkdir -p "$src"
    local out
    out=$(cd "$src" && "${APT[@]}" source --only-source "$spec" 2>&1) || { echo "apt-get source $spec failed: $out" >&2; return 1; }
    # "Selected version '1:1.22.1-9+deb12u9' (bookworm)": unpacked in PACKAGE-UPSTREAM
    local pkg=${spec%%[=/]*} version dir
    version=$(printf '%s\n' "$out" | sed -n "s/^Selected version '\([^']*\)'.*/\1/p" | head -1)
    version=${version#*:}
    dir=$src/$pkg-${version%-*}
    [ -n "$version" ] && [ -d "$dir" ] || { echo "cannot tell where apt-get source $spec unpacked: $out" >&2; return 1; }
    echo "$dir"
}

# fetch_any SPEC... -> the first that the mirror serves completely
fetch_any() {
    local spec
    for spec in "$@"; do fetch "$spec" 2>>"$apt_dir/source.log" && return 0; done
    return 1
}
installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
# Exactly the installed versions when the mirror still has them, else the newest there.
nginx_src=$(fetch_any "nginx=$(installed nginx-common)" nginx/bookworm-security nginx/bookworm) \
    || die "nginx source (see $apt_dir/source.log)"
ossl3_src=$(fetch_any "openssl=$(installed libssl3)" openssl/bookworm-security openssl/bookworm) \
    || die "openssl 3.0 source (see $apt_dir/source.log)"
ossl1_src=$(fetch_any openssl/bullseye-security openssl/bullseye) || die "openssl 1.1.1 source (see $apt_dir/source.log)"
log "sources: $nginx_src, $ossl3_src, $ossl1_src"

# The configure arguments of the installed nginx, one per line.
mapfile -t nginx_args < <(nginx -V 2>&1 | sed -n 's/^configure arguments: //p' \
    | python3 -c 'import shlex, sys; print("\n".join(shlex.split(sys.stdin.read())))')
[ "${#nginx_args[@]}" -gt 5 ] || die "cannot read the configure arguments of nginx -V"

# build NAME OPENSSL_SRC -> $cache/bin/NAME (nginx), rebuilt when its inputs change
build_nginx() {
    local name=$1 ossl=$2 bin=$cache/bin/$1
    local stamp
    stamp=$(printf '%s\n' "$nginx_src" "$ossl" "${nginx_args[@]}" | sha256sum | cut -c1-16)
    if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$stamp" ]; then
        log "$name: cached ($bin)"
        return 0
    fi
    local b=$cache/build/$name
    rm -rf "$b" && mkdir -p "$b" "$cache/bin"
    cp -a "$nginx_src" "$b/nginx" && cp -a "$ossl" "$b/openssl" || return 1
    log "$name: configure + make -j$jobs (about 2.5 minutes), log in $b/build.log"
    local t0=$SECONDS
    ( cd "$b/nginx" && ./configure "${nginx_args[@]}" --with-openssl="$b/openssl" \
        --with-openssl-opt=no-tests && make -j"$jobs" ) >"$b/build.log" 2>&1 \
        || { tail -20 "$b/build.log"; return 1; }
    cp "$b/nginx/objs/nginx" "$bin" && echo "$stamp" >"$bin.stamp" || return 1
    log "$name: built in $((SECONDS - t0)) s"
    rm -rf "$b"
}

ver_of() { sed -n 's/^openssl (\([^)]*\)).*/\1/p;q' "$1/debian/changelog"; }
n3=nginx-openssl-$(ver_of "$ossl3_src")
n1=nginx-openssl-$(ver_of "$ossl1_src")
build_nginx "$n3" "$ossl3_src" || die "building $n3"
build_nginx "$n1" "$ossl1_src" || die "building $n1"
for n in "$n3" "$n1"; do
    v=$("$cache/bin/$n" -V 2>&1) && [[ $v == *"built with OpenSSL"* ]] || die "$n -V: $v"
    [[ $'\n'$(nm -D --defined-only "$cache/bin/$n")$'\n' == *" SSL_new"$'\n'* ]] \
        || die "$n does not export SSL_new (no -Wl,-E?)"
    log "$n: $(printf '%s\n' "$v" | grep 'built with')"
done

# The documented fix (FIX=1): a shared build of the same 1.1.1 source, installed, and the
# library built against it.
fixed_lib=
if [ "${FIX:-0}" = 1 ]; then
    prefix=$cache/openssl-$(ver_of "$ossl1_src")
    if [ ! -e "$prefix/lib/libssl.so" ]; then
        log "installing a shared build of $(basename "$ossl1_src") in $prefix"
        b=$cache/build/openssl-shared
        rm -rf "$b" && cp -a "$ossl1_src" "$b" || die "copying the 1.1.1 source"
        ( cd "$b" && ./config --prefix="$prefix" --openssldir="$prefix/ssl" shared no-tests \
            && make -j"$jobs" && make install_sw ) >"$cache/openssl-shared.log" 2>&1 \
            || die "building 1.1.1 (see $cache/openssl-shared.log)"
        rm -rf "$b"
    fi
    log "cargo build --release against $prefix (target dir $cache/target-1.1.1)"
    ( cd "$repo" && OPENSSL_DIR=$prefix RUSTFLAGS="-C link-arg=-Wl,-rpath,$prefix/lib" \
        CARGO_TARGET_DIR=$cache/target-1.1.1 cargo build --release -q ) >"$cache/cargo-1.1.1.log" 2>&1 \
        || die "cargo build against $prefix (see $cache/cargo-1.1.1.log)"
    fixed_lib=$cache/target-1.1.1/release/libresty_client_tls.so
fi

[ "${1:-}" = --build-only ] && { echo "0 passed, 0 failed"; exit 0; }
cd "$repo" && python3 -m tests.reliability.static_nginx --lib "$lib" --same "$cache/bin/$n3" --other "$cache/bin/$n1" \
    ${fixed_lib:+--fixed-lib "$fixed_lib"}
