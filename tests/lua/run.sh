#!/usr/bin/env bash
# Runs the plain-LuaJIT tests of lua-bindings/resty/client_tls.lua.
# Needs target/release/libresty_client_tls.so (cargo build --release), luajit,
# the openssl CLI and libssl3; a C compiler for the PDK-layer tests.
# Env: LUAJIT (default luajit), RCT_LIB_DIR (default <repo>/target/release).
# Prints one line per test and, last, exactly "N passed, N failed".
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
luajit=${LUAJIT:-luajit}
export RCT_REPO="$repo"
lib_dir=${RCT_LIB_DIR:-$repo/target/release}

passed=0 failed=0
run() { # name, then the command
  local name=$1; shift
  echo "== $name"
  local out rc
  out=$(cd "$here" && "$@" 2>&1); rc=$?
  printf '%s\n' "$out"
  local res
  res=$(printf '%s\n' "$out" | awk '/^RESULT [0-9]+ [0-9]+$/ { print $2, $3 }' | tail -n 1)
  if [ -z "$res" ]; then
    echo "FAILED $name: exited with $rc before reporting"
    failed=$((failed + 1))
    return
  fi
  set -- $res
  passed=$((passed + $1)); failed=$((failed + $2))
  if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
    echo "FAILED $name: exit status $rc"
    failed=$((failed + 1))
  fi
}

if [ ! -e "$lib_dir/libresty_client_tls.so" ]; then
  echo "FAILED: $lib_dir/libresty_client_tls.so is missing (run: cargo build --release)"
  echo "0 passed, 1 failed"
  exit 1
fi

run low_layer "$luajit" test_low_layer.lua
run handshake "$luajit" test_handshake.lua
run "cache memory" "$luajit" test_cache_memory.lua
run "pdk (lua-nginx-module 0.10.13: no get_req_ssl_pointer)" "$luajit" test_pdk_old_module.lua
run "kong drop-in (lua-nginx-module 0.10.13)" "$luajit" test_kong.lua

# The PDK layer against a stand-in for nginx: a fake `ngx`, a fake
# resty.core.base and a shim exporting ngx_http_lua_ffi_get_req_ssl_pointer,
# once per C signature of that function (and once with no version known).
shim_dir=$(mktemp -d /tmp/rct-shim.XXXXXX)
trap 'rm -rf "$shim_dir"' EXIT
cc_=${CC:-cc}
if command -v "$cc_" >/dev/null 2>&1; then
  for v in 1 2; do
    "$cc_" -shared -fPIC -O2 -DERR_ARG=$((v - 1)) -o "$shim_dir/shim$v.so" "$here/ngx_shim.c" \
      || { echo "FAILED: cannot build the ngx shim"; failed=$((failed + 1)); }
  done
  run "pdk (lua-nginx-module 0.10.23, get_req_ssl_pointer(r))" \
    env RCT_SHIM="$shim_dir/shim1.so" RCT_NGX_LUA_VERSION=10023 "$luajit" test_pdk.lua
  run "pdk (lua-nginx-module 0.10.29, get_req_ssl_pointer(r, err))" \
    env RCT_SHIM="$shim_dir/shim2.so" RCT_NGX_LUA_VERSION=10029 "$luajit" test_pdk.lua
  run "pdk (version unknown: 2-argument call into the 1-argument function)" \
    env RCT_SHIM="$shim_dir/shim1.so" RCT_NGX_LUA_VERSION=none "$luajit" test_pdk.lua
  run "kong drop-in and Kong's phase checker (lua-nginx-module 0.10.23)" \
    env RCT_SHIM="$shim_dir/shim1.so" RCT_NGX_LUA_VERSION=10023 "$luajit" test_kong.lua
  run "kong drop-in and Kong's phase checker (lua-nginx-module 0.10.29)" \
    env RCT_SHIM="$shim_dir/shim2.so" RCT_NGX_LUA_VERSION=10029 "$luajit" test_kong.lua
  run "kong drop-in: what its calls do to a handshake" \
    env RCT_SHIM="$shim_dir/shim2.so" RCT_NGX_LUA_VERSION=10029 "$luajit" test_kong_calls.lua
  mkdir -p "$shim_dir/refuse" "$shim_dir/lacking"
  "$cc_" -shared -fPIC -O2 -DREFUSE -o "$shim_dir/refuse/libresty_client_tls.so" "$here/fake_lib.c" \
    && "$cc_" -shared -fPIC -O2 -o "$shim_dir/lacking/libresty_client_tls.so" "$here/fake_lib.c" \
    || { echo "FAILED: cannot build the stand-in libraries"; failed=$((failed + 1)); }
  run "loading: a refusing library, _VERSION" env RCT_FAKE_LIBS="$shim_dir" "$luajit" test_load.lua
else
  echo "FAILED pdk tests: no C compiler (set CC, or run tools/install-deps.sh)"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
