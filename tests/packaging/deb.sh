#!/usr/bin/env bash
# The Debian package, tested the way a user meets it, on the Debian release this runs on
# (the bookworm host from `make test-packaging`; trixie and sid through the platform
# matrix: RCT_MATRIX_SUITES=deb tools/matrix.sh trixie sid).
#
#   build       tools/deb.sh: resty-client-tls_<version>_<arch>.deb
#   contents    the files, their modes, the control fields; Depends names the package of
#               the libssl this release links (and equals dpkg-shlibdeps where it is installed)
#   install     apt-get install ./resty-client-tls_<version>_<arch>.deb
#   c           pkg-config finds it with no PKG_CONFIG_PATH; tests/c/example.c built with
#               its flags only runs a real handshake, the library found through ld.so.cache
#   luajit      plain luajit loads the installed module and library, no LUA_PATH
#   nginx       a real nginx with no lua_package_path/cpath lines: the installed module
#               does mTLS; kong/example/nginx.conf (the demo: SUCCESS + the chain, the
#               shim); Kong's two call patterns through the shim
#   remove      apt-get remove: every file list (/usr, /etc, dpkg's database) as before
#   purge       installed again, then apt-get purge: as before again
#
# Needs root, and the package not installed. Whatever happens, the package is purged on
# exit if this script installed it. Runs are serialized with a lock (/run/lock). Ends
# with "N passed, N failed". DEB_KEEP=1 keeps the temp dir.
set -uo pipefail

cd "$(dirname "$0")/../.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
NAME=resty-client-tls
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
T=$(mktemp -d /tmp/rct-deb-test.XXXXXX)
OUT=$T/out
DEB=""
installed_by_us=0

RUN_PREFIX=deb-
# run NAME FUNCTION, fail MESSAGE, passed/failed counts, last_rc: the shared shell runner.
. "$REPO/tests/harness/run.sh"

apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=300 "$@"
}

status() { dpkg-query -W -f='${db:Status-Abbrev}' "$NAME" 2>/dev/null | tr -d ' '; }

# Every path under the places a package can touch (not file contents: ld.so.cache and
# dpkg's status file change on any install). Python byte-code caches are left out:
# python run as root writes them next to the modules it imports, package or not.
snapshot() {
    find /usr /etc /var/lib/dpkg/info /var/lib/dpkg/alternatives -xdev \
        -path '*/__pycache__' -prune -o -print 2>/dev/null | LC_ALL=C sort
}

cleanup() {
    if [ "$installed_by_us" = 1 ] && [ -n "$(status)" ] && [ "$(status)" != un ]; then
        echo "deb: purging $NAME (left installed by a failed step)"
        apt_get purge "$NAME" >/dev/null 2>&1 || dpkg --purge "$NAME" >/dev/null 2>&1
    fi
    if [ "$failed" -eq 0 ] && [ -z "${DEB_KEEP:-}" ]; then rm -rf "$T"; else echo "temp dir kept: $T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- tests ----------------------------------------------------------------------------------

t_prerequisites() {
    [ "$(id -u)" = 0 ] || fail "needs root (apt-get install)"
    local missing=()
    for cmd in apt-get dpkg dpkg-deb pkg-config cc luajit nginx openssl curl "$PYTHON" flock; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) || fail "not on PATH: ${missing[*]}"
    [ -f target/release/libresty_client_tls.so ] || fail "no target/release/libresty_client_tls.so (make build)"
    [ -z "$(status)" ] || [ "$(status)" = un ] ||
        fail "$NAME is already installed ($(status)): this test installs and removes it; remove it first"
    "$PYTHON" -m tests.harness has-ssl-pointer ||
        fail "this release's lua module lacks ngx_http_lua_ffi_get_req_ssl_pointer" \
             "(lua-nginx-module < 0.10.23): the package's demo needs Debian 12 or newer"
}

t_build() {
    DEB=$(bash tools/deb.sh "$OUT" | tail -n 1)
    [ "$DEB" = "$OUT/${NAME}_${VERSION}_$(dpkg --print-architecture).deb" ] || fail "built $DEB"
    [ -f "$DEB" ] || fail "no $DEB"
    echo "$DEB" >"$T/deb-path"
    echo "note: $(basename "$DEB"), $(stat -c %s "$DEB") bytes"
}

field() { dpkg-deb -f "$DEB" "$1"; }

t_contents() {
    local ma
    ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    dpkg-deb -c "$DEB" | awk '{ print $1, $6, $7, $8 }' | sed 's| \./| /|; s| *$||' >"$T/contents"
    local want
    for want in \
        "-rw-r--r-- /usr/lib/$ma/libresty_client_tls.so" \
        "lrwxrwxrwx /usr/lib/$ma/lua/5.1/libresty_client_tls.so -> ../../libresty_client_tls.so" \
        "-rw-r--r-- /usr/include/resty_client_tls.h" \
        "-rw-r--r-- /usr/lib/$ma/pkgconfig/resty-client-tls.pc" \
        "-rw-r--r-- /usr/share/lua/5.1/resty/client_tls.lua" \
        "-rw-r--r-- /usr/share/lua/5.1/resty/client_tls/kong.lua" \
        "-rw-r--r-- /usr/share/lua/5.1/resty/kong/tls.lua" \
        "-rw-r--r-- /usr/share/doc/$NAME/copyright" \
        "-rw-r--r-- /usr/share/doc/$NAME/changelog.gz"; do
        grep -qxF -- "$want" "$T/contents" || fail "not in the package: $want"$'\n'"$(cat "$T/contents")"
    done
    [ "$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/' | wc -l)" = 11 ] ||
        fail "unexpected files:"$'\n'"$(cat "$T/contents")"
    ! dpkg-deb -c "$DEB" | awk '{ print $2 }' | grep -v '^root/root$' ||
        fail "files not owned by root"
    [ "$(field Package)" = "$NAME" ] && [ "$(field Version)" = "$VERSION" ] &&
        [ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "control: $(dpkg-deb -f "$DEB")"
    # Depends: the package that holds the libssl this release's library links against.
    local depends libssl pkg
    depends=$(field Depends)
    libssl=$(ldd target/release/libresty_client_tls.so | awk '$1 ~ /^libssl\.so/ { print $3 }')
    pkg=$(dpkg -S "$(readlink -f "$libssl")" 2>/dev/null || dpkg -S "$libssl")
    pkg=${pkg%%:*}
    [[ ", $depends," == *", $pkg (>= "* ]] || fail "Depends '$depends' does not name $pkg (holds $libssl)"
    [[ ", $depends," == *", libc6 (>= "* ]] || fail "Depends '$depends' does not name libc6"
    # Every package it names is a package this system has installed, at a version that
    # satisfies the dependency (so apt-get install needs nothing from a mirror).
    local dep dname dver have
    while read -r dep; do
        dname=${dep%% *}
        dver=$(sed -n 's/.*(>= \(.*\))/\1/p' <<<"$dep")
        have=$(dpkg-query -W -f='${Version}' "$dname" 2>/dev/null) || fail "Depends names '$dname', not installed here"
        [ -z "$dver" ] || dpkg --compare-versions "$have" ge "$dver" || fail "$dname $have < $dver"
    done < <(tr ',' '\n' <<<"$depends" | sed 's/^ *//')
    if command -v dpkg-shlibdeps >/dev/null; then
        local d=$T/shlibdeps
        mkdir -p "$d/debian"
        printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$NAME" "$NAME" >"$d/debian/control"
        cp target/release/libresty_client_tls.so "$d/"
        local want_dep
        want_dep=$(cd "$d" && dpkg-shlibdeps -O libresty_client_tls.so 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
        [ "$depends" = "$want_dep" ] || fail "Depends '$depends', dpkg-shlibdeps says '$want_dep'"
        echo "note: Depends: $depends (as dpkg-shlibdeps)"
    else
        echo "note: Depends: $depends"
    fi
    # The changelog inside is the repository's, and says this version.
    dpkg-deb --fsys-tarfile "$DEB" | tar -xOf - "./usr/share/doc/$NAME/changelog.gz" | gunzip |
        head -n 1 | grep -q "^$NAME ($VERSION) " || fail "changelog.gz does not start with $VERSION"
}

t_install() {
    snapshot >"$T/before"
    (cd "$OUT" && apt_get install "./$(basename "$DEB")") >"$T/apt-install.log" 2>&1 ||
        { cat "$T/apt-install.log"; fail "apt-get install failed"; }
    [ "$(status)" = ii ] || fail "status after install: $(status)"
    dpkg -L "$NAME" >"$T/listed"
    local f
    while read -r f; do
        [ -e "$f" ] || [ -L "$f" ] || fail "listed but missing: $f"
    done <"$T/listed"
    ldconfig -p | grep -q "libresty_client_tls.so " || fail "ld.so.cache does not list the library"
    echo "note: $(grep -c . "$T/listed") paths installed"
}

t_c() {
    [ "$(pkg-config --modversion resty-client-tls)" = "$VERSION" ] || fail "pkg-config version"
    local cflags libs
    cflags=$(pkg-config --cflags resty-client-tls)
    libs=$(pkg-config --libs resty-client-tls)
    case "$cflags $libs" in *"$REPO"*) fail "flags point into the checkout: $cflags $libs" ;; esac
    local src=$T/c
    mkdir -p "$src"
    cp tests/c/example.c tests/c/header_alone.c "$src/"
    # shellcheck disable=SC2086 # word splitting of pkg-config output is intended
    cc -std=c11 -Wall -Wextra -Werror -Wpedantic -o "$src/example" "$src/example.c" "$src/header_alone.c" \
        $cflags $libs
    grep -Eq "libresty_client_tls.so => /(usr/)?lib/[^ ]*/libresty_client_tls.so" <<<"$(ldd "$src/example")" ||
        fail "example does not resolve the installed library: $(ldd "$src/example")"
    local pki=$T/pki
    "$PYTHON" -m tests.harness pki "$pki" >/dev/null
    cat "$pki/good.pem" "$pki/int.pem" >"$pki/expected.pem"
    "$src/example" "$pki/server.pem" "$pki/server.key" "$pki/good.pem" "$pki/good.key" \
        "$pki/int.pem" "$pki/root.pem" "$pki/expected.pem"
    echo "note: cc ... $cflags $libs"
}

t_luajit() {
    (cd / && env -u LUA_PATH -u LUA_CPATH luajit -e '
        local t = require "resty.client_tls"
        local src = debug.getinfo(t.new, "S").source
        assert(src == "@/usr/share/lua/5.1/resty/client_tls.lua", "module from " .. src)
        local mapped
        for line in io.lines("/proc/self/maps") do
            mapped = mapped or line:match("%s(/%S*libresty_client_tls%.so)$")
        end
        assert(mapped and mapped:match("^/usr/lib/[^/]+/libresty_client_tls%.so$"), "library " .. tostring(mapped))
        local ffi = require "ffi"
        assert(ffi.string(ffi.load("resty_client_tls").resty_client_tls_version()) == t._VERSION)
        assert(require("resty.kong.tls")._IMPLEMENTATION == "resty-client-tls")
        print("note: luajit: " .. src:sub(2) .. ", " .. mapped .. ", version " .. t._VERSION)')
}

t_nginx() {
    local check
    for check in installed kong kong-patterns; do
        "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" "$check" default default ||
            fail "nginx check $check failed"
    done
}

removed_as_before() {
    snapshot >"$T/after"
    if ! cmp -s "$T/before" "$T/after"; then
        diff "$T/before" "$T/after" | head -n 40
        fail "$1 left the file lists changed (< before, > after)"
    fi
    [ -z "$(status)" ] || [ "$(status)" = un ] || fail "dpkg still knows $NAME after $1: $(status)"
    ! ldconfig -p | grep -q "libresty_client_tls.so " || fail "ld.so.cache still lists the library"
}

t_remove() {
    apt_get remove "$NAME" >"$T/apt-remove.log" 2>&1 || { cat "$T/apt-remove.log"; fail "apt-get remove failed"; }
    removed_as_before "apt-get remove"
    echo "note: $(wc -l <"$T/before") paths compared"
}

t_purge() {
    (cd "$OUT" && apt_get install "./$(basename "$DEB")") >"$T/apt-install2.log" 2>&1 ||
        { cat "$T/apt-install2.log"; fail "second apt-get install failed"; }
    [ "$(status)" = ii ] || fail "status after the second install: $(status)"
    apt_get purge "$NAME" >"$T/apt-purge.log" 2>&1 || { cat "$T/apt-purge.log"; fail "apt-get purge failed"; }
    removed_as_before "apt-get purge"
}

# -- run ------------------------------------------------------------------------------------

main() {
    run prerequisites t_prerequisites
    [ "$last_rc" = 0 ] || return
    run build t_build
    [ "$last_rc" = 0 ] || return
    DEB=$(cat "$T/deb-path")
    run contents t_contents
    # One install/remove at a time on this system (make test may run in parallel trees).
    mkdir -p /run/lock
    exec 9>/run/lock/resty-client-tls-deb-test.lock
    if ! flock -w 600 9; then
        failed=$((failed + 1))
        echo "FAIL deb-lock: another run held it for 10 minutes"
        return
    fi
    installed_by_us=1   # from here on, cleanup purges whatever is left installed
    run install t_install
    [ "$last_rc" = 0 ] || return
    run c t_c
    run luajit t_luajit
    run nginx t_nginx
    run remove t_remove
    run purge t_purge
}
main
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
