#!/usr/bin/env bash
# Packaging tests (make test-packaging): installing and using the library the way
# OpenResty, LuaRocks, Kong and C-module users do.
#
#   install           make install PREFIX=<tmp>: every file in place; DESTDIR staging
#   pkg-config        tests/c/example.c built with `pkg-config --cflags --libs
#                     resty-client-tls` only (no -I/-L into the checkout), then run
#   luajit            the installed module and library load in plain LuaJIT from the tree
#   nginx-installed   ... and in nginx: a real mTLS request (tests/packaging/nginx_checks.py)
#   kong-example      kong/example/nginx.conf on the installed tree: Kong's call pattern
#   kong-shim         resty.kong.tls phases, errors and signatures through the shim
#   kong-patterns     Kong's current call pattern (ngx.ssl.verify_client(ca, 0), then
#                     resty.kong.tls) and the older one (request_client_certificate +
#                     set_client_ca_list) through the shim; get_request_ssl_pointer,
#                     get_ssl_pointer on a real cosocket
#   version           one version: Cargo.toml, resty_client_tls_version(), _VERSION, the
#                     rockspec, the .pc file, CHANGELOG.md and the Debian changelog agree
#   uninstall         make uninstall leaves none of the installed files
#   luarocks          luarocks make of a copy of the checkout into a temp tree, offline;
#                     loaded by LuaJIT and nginx from that tree; luarocks remove
#   openssl-dir       cargo build with OPENSSL_DIR pointing at a copy of the system OpenSSL:
#                     the build, the link (NEEDED, RUNPATH, ldd) and the load use that copy
#   docs              every C export and Lua function documented (tests/packaging/check_docs.py)
#   deb               the Debian package as a user meets it (tests/packaging/deb.sh): make deb,
#                     apt-get install, C/LuaJIT/nginx (the Kong example, no package path
#                     lines), apt-get remove and purge leave every file list as it was
#
# Ends with "N passed, N failed"; exits non-zero when anything failed. Missing tools are
# failures, never skips. PACKAGING_KEEP=1 keeps the temp dir.
set -uo pipefail

cd "$(dirname "$0")/../.."
REPO=$PWD
CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}
LIB=$REPO/target/release/libresty_client_tls.so
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# Stable build dirs (ignored by git, under target/): repeated runs build incrementally.
WORK=$REPO/target/packaging

T=$(mktemp -d /tmp/rct-packaging.XXXXXX)
P=$T/prefix                     # make install PREFIX
PY_LUA_PATH=$P/share/lua/5.1/?.lua
PY_LUA_CPATH=$P/lib/lua/5.1/?.so

# run NAME FUNCTION, fail MESSAGE, passed/failed counts, last_rc: the shared shell runner.
. "$REPO/tests/harness/run.sh"

need_file() { [ -e "$1" ] || fail "missing: $1"; }

# -- tests ----------------------------------------------------------------------------------------

t_prerequisites() {
    local missing=()
    for cmd in make cc pkg-config luajit luarocks nginx openssl curl readelf nm ldd "$CARGO" "$PYTHON"; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) || fail "not on PATH: ${missing[*]} (make deps installs them)"
    need_file "$LIB"
}

t_install() {
    make --no-print-directory install PREFIX="$P" LDCONFIG=:
    need_file "$P/lib/libresty_client_tls.so"
    need_file "$P/include/resty_client_tls.h"
    need_file "$P/lib/pkgconfig/resty-client-tls.pc"
    need_file "$P/share/lua/5.1/resty/client_tls.lua"
    need_file "$P/share/lua/5.1/resty/client_tls/kong.lua"
    need_file "$P/share/resty-client-tls/kong-shim/resty/kong/tls.lua"
    [ "$(readlink "$P/lib/lua/5.1/libresty_client_tls.so")" = "$P/lib/libresty_client_tls.so" ] ||
        fail "lib/lua/5.1/libresty_client_tls.so is not a link to lib/libresty_client_tls.so"
    cmp "$LIB" "$P/lib/libresty_client_tls.so"
    cmp include/resty_client_tls.h "$P/include/resty_client_tls.h"
    cmp lua-bindings/resty/client_tls.lua "$P/share/lua/5.1/resty/client_tls.lua"
    [ "$(stat -c %a "$P/lib/libresty_client_tls.so")" = 755 ] || fail "library mode is not 755"
    [ "$(stat -c %a "$P/share/lua/5.1/resty/client_tls.lua")" = 644 ] || fail "module mode is not 644"

    # DESTDIR: staged for packaging, paths inside the files are the final ones.
    local stage=$T/stage
    make --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local LDCONFIG=false
    need_file "$stage/usr/local/lib/libresty_client_tls.so"
    [ "$(readlink "$stage/usr/local/lib/lua/5.1/libresty_client_tls.so")" = /usr/local/lib/libresty_client_tls.so ] ||
        fail "staged link does not point at the final path"
    grep -qx 'prefix=/usr/local' "$stage/usr/local/lib/pkgconfig/resty-client-tls.pc" ||
        fail "staged .pc does not say prefix=/usr/local"
    make --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr/local
    local left
    left=$(find "$stage" -type f -o -type l)
    [ -z "$left" ] || fail "left after staged uninstall: $left"

    # OpenResty layout: Lua module and library link in one lualib directory.
    local or=$T/openresty
    make --no-print-directory install PREFIX="$or/site" LUA_LIBDIR="$or/site/lualib" \
        LUA_CLIBDIR="$or/site/lualib" LDCONFIG=:
    need_file "$or/site/lualib/resty/client_tls.lua"
    [ "$(readlink "$or/site/lualib/libresty_client_tls.so")" = "$or/site/lib/libresty_client_tls.so" ] ||
        fail "OpenResty layout: no library link in site/lualib"
    LUA_PATH="$or/site/lualib/?.lua;;" LUA_CPATH="$or/site/lualib/?.so;;" luajit -e '
        local t = require "resty.client_tls"
        assert(debug.getinfo(t.new, "S").source:find(os.getenv("OR"), 1, true), "module not from the OpenResty tree")' \
        || fail "OpenResty layout: module does not load"
    make --no-print-directory uninstall PREFIX="$or/site" LUA_LIBDIR="$or/site/lualib" LUA_CLIBDIR="$or/site/lualib"
    left=$(find "$or" -type f -o -type l)
    [ -z "$left" ] || fail "left after OpenResty-layout uninstall: $left"
}
export OR=$T/openresty

t_pkg_config() {
    export PKG_CONFIG_PATH=$P/lib/pkgconfig
    [ "$(pkg-config --modversion resty-client-tls)" = "$VERSION" ] || fail "pkg-config version is not $VERSION"
    local cflags libs libdir
    cflags=$(pkg-config --cflags resty-client-tls)
    libs=$(pkg-config --libs resty-client-tls)
    libdir=$(pkg-config --variable=libdir resty-client-tls)
    echo "cflags: $cflags"
    echo "libs:   $libs"
    case "$cflags $libs" in *"$REPO"*) fail "pkg-config flags point into the checkout" ;; esac
    [ "$libdir" = "$P/lib" ] || fail "libdir is $libdir"
    # The sources alone, away from include/: the header can only come from the prefix.
    local src=$T/c
    mkdir -p "$src"
    cp tests/c/example.c tests/c/header_alone.c "$src/"
    # shellcheck disable=SC2086 # word splitting of pkg-config output is intended
    cc -std=c11 -Wall -Wextra -Werror -Wpedantic -o "$src/example" "$src/example.c" "$src/header_alone.c" \
        $cflags $libs -Wl,-rpath,"$libdir"
    grep -q "libresty_client_tls.so => $P/lib/libresty_client_tls.so" <<<"$(ldd "$src/example")" ||
        fail "example does not resolve the library in the prefix: $(ldd "$src/example")"
    local pki=$T/pki
    "$PYTHON" -m tests.harness pki "$pki" >/dev/null
    cat "$pki/good.pem" "$pki/int.pem" >"$pki/expected.pem"
    "$src/example" "$pki/server.pem" "$pki/server.key" "$pki/good.pem" "$pki/good.key" \
        "$pki/int.pem" "$pki/root.pem" "$pki/expected.pem"
}

t_luajit() {
    LUA_PATH="$PY_LUA_PATH;;" LUA_CPATH="$PY_LUA_CPATH;;" P="$P" luajit -e '
        local t = require "resty.client_tls"
        local P = os.getenv("P")
        local src = debug.getinfo(t.new, "S").source
        assert(src == "@" .. P .. "/share/lua/5.1/resty/client_tls.lua", "module from " .. src)
        local mapped
        for line in io.lines("/proc/self/maps") do
            mapped = mapped or line:match("%s(/%S*libresty_client_tls%.so)$")
        end
        assert(mapped == P .. "/lib/libresty_client_tls.so", "library mapped from " .. tostring(mapped))
        assert(t.ssl.is_valid_client_verify("FAILED:x") and not t.ssl.is_valid_client_verify("OK"))
        local ok, err = t.ssl.get_client_verify(nil)
        assert(ok == nil and err == "ssl is NULL", tostring(err))
        local kong = require "resty.client_tls.kong"
        assert(kong._IMPLEMENTATION == "resty-client-tls")
        print("note: loaded " .. src .. " and " .. mapped)'
}

t_nginx_installed() {
    "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" installed "$PY_LUA_PATH" "$PY_LUA_CPATH"
}

t_kong_example() {
    "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" kong "$PY_LUA_PATH" "$PY_LUA_CPATH"
}

t_kong_shim() {
    "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" kong-shim "$PY_LUA_PATH" "$PY_LUA_CPATH"
}

t_kong_patterns() {
    "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" kong-patterns \
        "$P/share/resty-client-tls/kong-shim/?.lua;$PY_LUA_PATH" "$PY_LUA_CPATH"
}

t_version() {
    [ -n "$VERSION" ] || fail "no version in Cargo.toml"
    # The library and the Lua module, as installed.
    local got
    got=$(LUA_PATH="$PY_LUA_PATH;;" LUA_CPATH="$PY_LUA_CPATH;;" luajit -e '
        local ffi = require "ffi"
        local t = require "resty.client_tls"
        ffi.cdef "const char *resty_client_tls_version(void);"
        local lib = ffi.load(os.getenv("P") .. "/lib/libresty_client_tls.so")
        io.write(t._VERSION, " ", ffi.string(lib.resty_client_tls_version()), " ",
                 require("resty.client_tls.kong")._VERSION)')
    [ "$got" = "$VERSION $VERSION $VERSION" ] ||
        fail "_VERSION, resty_client_tls_version() and the Kong module's _VERSION: $got; Cargo.toml: $VERSION"
    # The rockspec: its file name and its version field.
    local rocks
    rocks=$(ls resty-client-tls-*.rockspec)
    [ "$rocks" = "resty-client-tls-$VERSION-1.rockspec" ] || fail "rockspec(s): $rocks"
    grep -qx "version = \"$VERSION-1\"" "$rocks" || fail "$rocks: version is not $VERSION-1"
    grep -q "tag = \"v$VERSION\"" "$rocks" || fail "$rocks: tag is not v$VERSION"
    # CHANGELOG.md (Keep a Changelog): the newest release section is this version.
    [ "$(grep -m1 -oP '^## \[\K[0-9][^]]*(?=\] - [0-9]{4}-[0-9]{2}-[0-9]{2}$)' CHANGELOG.md)" = "$VERSION" ] ||
        fail "the newest release in CHANGELOG.md is not [$VERSION] - YYYY-MM-DD"
    # The Debian changelog's newest entry.
    [ "$(head -n 1 pkg/debian/changelog | sed -n 's/^resty-client-tls (\([^)]*\)).*/\1/p')" = "$VERSION" ] ||
        fail "pkg/debian/changelog does not start with resty-client-tls ($VERSION)"
    echo "note: version $VERSION everywhere"
}
export P

t_uninstall() {
    need_file "$P/lib/libresty_client_tls.so"
    make --no-print-directory uninstall PREFIX="$P"
    local left
    left=$(find "$P" -type f -o -type l)
    [ -z "$left" ] || fail "left after make uninstall: $left"
    [ ! -e "$P/share/resty-client-tls" ] || fail "share/resty-client-tls was not removed"
}

t_luarocks() {
    local rockspec="resty-client-tls-$VERSION-1.rockspec"
    need_file "$rockspec"
    luarocks lint "$rockspec"
    # A copy of the checkout (not target/): what a user builds, in a stable place so that
    # cargo builds incrementally from run to run.
    local src=$WORK/luarocks-src tree=$T/rocks
    mkdir -p "$src"
    find "$src" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
    tar -C "$REPO" --exclude=./target --exclude=./.git -cf - . | tar -C "$src" -xf -
    # Offline: no proxy reachable, no crates.io, no rocks server.
    (cd "$src" && env http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
        CARGO_NET_OFFLINE=true luarocks make --tree "$tree" "$rockspec")
    grep -qP "^resty-client-tls\t$VERSION-1\tinstalled" <<<"$(luarocks --tree "$tree" list --porcelain)" ||
        fail "luarocks list does not show resty-client-tls $VERSION-1"
    need_file "$tree/share/lua/5.1/resty/client_tls.lua"
    need_file "$tree/share/lua/5.1/resty/client_tls/kong.lua"
    need_file "$tree/lib/lua/5.1/libresty_client_tls.so"
    local rockdir
    rockdir=$(luarocks --tree "$tree" show --rock-dir resty-client-tls)
    need_file "$rockdir/kong/shim/resty/kong/tls.lua"
    # LuaJIT with the tree's paths, as `luarocks path` prints them.
    (eval "$(luarocks --tree "$tree" path)"; TREE=$tree luajit -e '
        local t = require "resty.client_tls"
        local src = debug.getinfo(t.new, "S").source
        assert(src:find(os.getenv("TREE"), 1, true), "module from " .. src)
        for line in io.lines("/proc/self/maps") do
            local p = line:match("%s(/%S*libresty_client_tls%.so)$")
            if p then assert(p:find(os.getenv("TREE"), 1, true), "library from " .. p) end
        end
        assert(t.ssl.is_valid_client_verify("SUCCESS"))')
    "$PYTHON" -m tests.packaging.nginx_checks "$T/nginx" installed \
        "$tree/share/lua/5.1/?.lua" "$tree/lib/lua/5.1/?.so"
    luarocks --tree "$tree" remove resty-client-tls
    [ ! -e "$tree/share/lua/5.1/resty/client_tls.lua" ] && [ ! -e "$tree/lib/lua/5.1/libresty_client_tls.so" ] ||
        fail "luarocks remove left files behind"
}

t_openssl_dir() {
    # "Another OpenSSL": a copy of the system's headers and libraries in its own prefix,
    # laid out like OpenResty's /usr/local/openresty/openssl3 (include/, lib/).
    local ossl=$WORK/ossl target=$WORK/ossl-target
    rm -rf "$ossl"
    mkdir -p "$ossl/include" "$ossl/lib"
    cp -r /usr/include/openssl "$ossl/include/"
    local multiarch
    multiarch=$(gcc -print-multiarch 2>/dev/null || true)
    if [ -n "$multiarch" ] && [ -d "/usr/include/$multiarch/openssl" ]; then
        cp "/usr/include/$multiarch/openssl/"*.h "$ossl/include/openssl/"   # Debian's opensslconf.h
    fi
    local syslib
    syslib=$(pkg-config --variable=libdir libssl)
    cp -a "$syslib"/libssl.so* "$syslib"/libcrypto.so* "$ossl/lib/"
    # OPENSSL_STATIC unset: linked dynamically. The rpath makes the library load this copy
    # outside nginx too (inside nginx the process's libssl.so.3 is reused by soname).
    OPENSSL_DIR=$ossl RUSTFLAGS="-C link-arg=-Wl,-rpath,$ossl/lib" \
        "$CARGO" build --release -vv --target-dir "$target" >"$T/openssl-dir-build.log" 2>&1 ||
        { tail -n 40 "$T/openssl-dir-build.log"; fail "cargo build with OPENSSL_DIR failed"; }
    local out=$T/openssl-dir-build.log
    grep -q "\[openssl-sys .*\] cargo:rustc-link-search=native=$ossl/lib\$" "$out" ||
        fail "openssl-sys did not search $ossl/lib"
    grep -q "\[openssl-sys .*\] cargo:include=$ossl/include\$" "$out" ||
        fail "openssl-sys did not use $ossl/include"
    grep -q "\[openssl-sys .*\] cargo:rustc-link-lib=dylib=ssl\$" "$out" ||
        fail "openssl-sys did not link libssl dynamically"
    local lib=$target/release/libresty_client_tls.so
    readelf -d "$lib" >"$T/readelf.txt"
    grep -q "NEEDED.*\[libssl\.so\.3\]" "$T/readelf.txt" || fail "no NEEDED libssl.so.3"
    grep -q "RUNPATH.*\[$ossl/lib\]" "$T/readelf.txt" || fail "no RUNPATH $ossl/lib"
    grep -qw "SSL_new@OPENSSL_3.0.0" <<<"$(nm -D --undefined-only "$lib")" || fail "SSL_new is not imported (static OpenSSL?)"
    grep -q "libssl.so.3 => $ossl/lib/libssl.so.3" <<<"$(ldd "$lib")" || fail "ldd: libssl not from $ossl/lib"
    grep -q "libcrypto.so.3 => $ossl/lib/libcrypto.so.3" <<<"$(ldd "$lib")" || fail "ldd: libcrypto not from $ossl/lib"
    # It loads, its guard finds one OpenSSL, and the copy in use is the one under $ossl.
    LUA_PATH="$REPO/lua-bindings/?.lua;;" LUA_CPATH="$target/release/lib?.so;;" OSSL=$ossl luajit -e '
        local t = require "resty.client_tls"
        local ssl
        for line in io.lines("/proc/self/maps") do
            ssl = ssl or line:match("%s(/%S*libssl%.so%.3)$")
        end
        assert(ssl == os.getenv("OSSL") .. "/lib/libssl.so.3", "libssl mapped from " .. tostring(ssl))
        assert(t.ssl.is_valid_client_verify("NONE"))'
    # make install then describes that OpenSSL in the .pc file.
    make --no-print-directory install PREFIX="$T/ossl-prefix" OPENSSL_DIR="$ossl" LDCONFIG=: LIB="$lib" >/dev/null
    local pc=$T/ossl-prefix/lib/pkgconfig/resty-client-tls.pc
    grep -qx "Libs: -L\${libdir} -lresty_client_tls -L$ossl/lib -Wl,-rpath,$ossl/lib -lssl -lcrypto" "$pc" ||
        fail ".pc Libs do not name $ossl/lib: $(grep Libs: "$pc")"
    grep -qx "Requires: " "$pc" || fail ".pc still requires the system libssl"
    echo "note: linked against $ossl/lib (RUNPATH), libssl.so.3 resolved there"
}

t_deb() {
    bash tests/packaging/deb.sh
}

t_docs() {
    "$PYTHON" tests/packaging/check_docs.py "$LIB"
}

# -- run --------------------------------------------------------------------------------------------

run prerequisites t_prerequisites
run install t_install
run pkg-config t_pkg_config
run luajit t_luajit
run nginx-installed t_nginx_installed
run kong-example t_kong_example
run kong-shim t_kong_shim
run kong-patterns t_kong_patterns
run version t_version
run uninstall t_uninstall
run luarocks t_luarocks
run openssl-dir t_openssl_dir
run docs t_docs
run deb t_deb

if [ "$failed" -eq 0 ] && [ -z "${PACKAGING_KEEP:-}" ]; then
    rm -rf "$T"
else
    echo "temp dir kept: $T"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
