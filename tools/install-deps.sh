#!/usr/bin/env bash
# Installs what the demo and the tests need on Debian 12, via apt-get, when missing:
# nginx with the lua module and lua-resty-core, LuaJIT, curl, nghttp2's client, the
# OpenSSL headers, a C compiler, python3. Fails loudly when something cannot be had.
set -euo pipefail

# Debian's libnginx-mod-http-lua depends on OpenResty's LuaJIT (luajit2): the package
# named "luajit" conflicts with it, so luajit2 provides /usr/bin/luajit here.
packages=(nginx libnginx-mod-http-lua lua-resty-core luajit2 nghttp2-client curl openssl
          libssl-dev pkg-config build-essential python3 make valgrind luarocks
          clang-14 libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # policy-rc.d keeps the package from starting the system nginx on port 80.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

for cmd in nginx luajit curl nghttp openssl cc python3 pkg-config luarocks; do
    command -v "$cmd" >/dev/null || { echo "install-deps: $cmd is still missing" >&2; exit 1; }
done
[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ] || { echo "install-deps: the nginx lua module is missing" >&2; exit 1; }
if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo is missing: install Rust >= 1.85 (rustup), then run this again" >&2
    exit 1
fi
