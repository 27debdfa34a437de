#!/usr/bin/env bash
# make deb: builds resty-client-tls_<version>_<arch>.deb with dpkg-deb (no debhelper) from
# target/release/libresty_client_tls.so, for the Debian release this runs on: its Depends
# come from this system's dpkg database (tools/deb_depends.py), so build it in the release
# it targets (tools/matrix.sh chroots: RCT_MATRIX_SUITES=deb tools/matrix.sh trixie sid).
#
#   tools/deb.sh [OUTDIR]        default target/deb; prints the path of the .deb
#
# Layout (Debian's nginx lua module and pkg-config find everything with no
# lua_package_path, lua_package_cpath or PKG_CONFIG_PATH):
#   /usr/lib/<multiarch>/libresty_client_tls.so              the library
#   /usr/lib/<multiarch>/lua/5.1/libresty_client_tls.so      link to it, on package.cpath
#   /usr/include/resty_client_tls.h                           the header
#   /usr/lib/<multiarch>/pkgconfig/resty-client-tls.pc        pkg-config
#   /usr/share/lua/5.1/resty/client_tls.lua                   require "resty.client_tls"
#   /usr/share/lua/5.1/resty/client_tls/kong.lua              the Kong drop-in
#   /usr/share/lua/5.1/resty/kong/tls.lua                     require "resty.kong.tls" (shim)
#   /usr/share/doc/resty-client-tls/{copyright,changelog.gz,CHANGELOG.md.gz,README.md.gz}
# The library is found by the module through package.cpath and by ffi.load/C programs
# through ld.so.cache (an ldconfig trigger).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${1:-$REPO/target/deb}
LIB=$REPO/target/release/libresty_client_tls.so
NAME=resty-client-tls

die() { echo "deb: $*" >&2; exit 1; }

for cmd in dpkg dpkg-deb readelf nm ldd strip gzip python3; do
    command -v "$cmd" >/dev/null || die "$cmd is not installed"
done
[ -f "$LIB" ] || die "$LIB is missing: run make build first"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$VERSION" ] || die "no version in Cargo.toml"
top=$(head -n 1 pkg/debian/changelog)
[[ $top == "$NAME ($VERSION) "* ]] ||
    die "pkg/debian/changelog starts with '$top', not '$NAME ($VERSION) ...': add an entry"
ARCH=$(dpkg --print-architecture)
# The multiarch triplet of the running system, as Debian's lua module and pkg-config use it.
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || true)
[ -n "$MA" ] && [ -d "/usr/lib/$MA" ] || die "cannot tell the multiarch directory (got '$MA')"

stage=$(mktemp -d /tmp/rct-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
libdir=/usr/lib/$MA
doc=/usr/share/doc/$NAME

install -d "$root$libdir/lua/5.1" "$root$libdir/pkgconfig" "$root/usr/include" \
    "$root/usr/share/lua/5.1/resty/client_tls" "$root/usr/share/lua/5.1/resty/kong" \
    "$root$doc" "$root/DEBIAN"
# Debian installs shared libraries 0644, stripped of debugging symbols.
install -m 0644 "$LIB" "$root$libdir/libresty_client_tls.so"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root$libdir/libresty_client_tls.so"
ln -s ../../libresty_client_tls.so "$root$libdir/lua/5.1/libresty_client_tls.so"
install -m 0644 include/resty_client_tls.h "$root/usr/include/"
sed -e "s|@prefix@|/usr|" -e "s|@libdir@|$libdir|" -e "s|@includedir@|/usr/include|" \
    -e "s|@lualibdir@|/usr/share/lua/5.1|" -e "s|@luaclibdir@|$libdir/lua/5.1|" \
    -e "s|@version@|$VERSION|" -e "s|@requires@|libssl libcrypto|" \
    -e "s| *@openssl_cflags@||" -e "s| *@openssl_libs@||" \
    pkg/resty-client-tls.pc.in >"$root$libdir/pkgconfig/resty-client-tls.pc"
chmod 0644 "$root$libdir/pkgconfig/resty-client-tls.pc"
install -m 0644 lua-bindings/resty/client_tls.lua "$root/usr/share/lua/5.1/resty/"
install -m 0644 kong/lua/resty/client_tls/kong.lua "$root/usr/share/lua/5.1/resty/client_tls/"
install -m 0644 kong/shim/resty/kong/tls.lua "$root/usr/share/lua/5.1/resty/kong/"
install -m 0644 pkg/debian/copyright "$root$doc/copyright"
gzip -9n <pkg/debian/changelog >"$root$doc/changelog.gz"
gzip -9n <CHANGELOG.md >"$root$doc/CHANGELOG.md.gz"
gzip -9n <README.md >"$root$doc/README.md.gz"
chmod 0644 "$root$doc"/*

depends=$(python3 tools/deb_depends.py "$LIB") || die "cannot compute Depends"
size=$(du -sk --apparent-size "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: resty-client-tls maintainers <resty-client-tls@example.invalid>
Installed-Size: $size
Depends: $depends
Recommends: libnginx-mod-http-lua, lua-resty-core
Section: libs
Priority: optional
Description: Kong's kong.client.tls for nginx's lua module, on the raw SSL*
 Ask a client for a certificate with CA hints, turn off session resumption for
 that connection, read the client's full certificate chain and report or
 override the client-verify result: Kong's kong.client.tls functions for
 Debian's nginx with libnginx-mod-http-lua, with no nginx rebuild.
 .
 This package holds the shared library libresty_client_tls.so (C ABI, header
 and pkg-config file included), the LuaJIT FFI module resty.client_tls and a
 drop-in for lua-kong-nginx-module's resty.kong.tls. No lua_package_path or
 lua_package_cpath line is needed.
EOF
# The library's directory is in ld.so.cache: refresh it after install and removal.
echo "activate-noawait ldconfig" >"$root/DEBIAN/triggers"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/triggers" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +

mkdir -p "$OUT"
deb=$OUT/${NAME}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
