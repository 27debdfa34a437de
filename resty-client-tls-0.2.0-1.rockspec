-- LuaRocks package of resty-client-tls: builds the Rust library with cargo (Rust >= 1.85
-- and the OpenSSL headers, libssl-dev, must be installed) and installs it with the Lua
-- module. From a checkout, without network access:
--
--   luarocks make --local                        # into ~/.luarocks
--   luarocks make --tree /usr/local/openresty/site   # hypothetical OpenResty tree
--
-- To build against the OpenSSL of your OpenResty, export OPENSSL_DIR first
-- (docs/openssl.md). The library lands next to the Lua C modules of the tree
-- (lib/lua/5.1/libresty_client_tls.so), where the module looks for it on package.cpath.
-- The Kong shim directory (docs/kong.md) is copied to the rock directory:
--   $(luarocks show --rock-dir resty-client-tls)/kong/shim
rockspec_format = "3.0"
package = "resty-client-tls"
version = "0.2.0-1"

source = {
  -- Placeholder until the project has a public home; `luarocks make` from a
  -- checkout never fetches it.
  url = "git+https://example.invalid/resty-client-tls.git",
  tag = "v0.2.0",
}

description = {
  summary = "Kong's kong.client.tls for any nginx with the lua module, on the raw SSL*",
  detailed = [[
Ask a client for a certificate with CA hints, turn off session resumption for that
connection, read the client's full certificate chain, and report or override the
client-verify result: Kong's kong.client.tls PDK functions for OpenResty or Debian's
nginx + libnginx-mod-http-lua, with no nginx rebuild. A Rust shared library with a C ABI
(libresty_client_tls.so) and a LuaJIT FFI module (require "resty.client_tls").
]],
  license = "Apache-2.0",
  labels = { "openresty", "nginx", "tls", "mtls", "kong", "ffi" },
}

-- LuaJIT (the FFI) is what runs it; LuaRocks knows it as Lua 5.1.
dependencies = {
  "lua == 5.1",
}

build = {
  type = "command",
  build_command = "cargo build --release",
  install = {
    lua = {
      ["resty.client_tls"] = "lua-bindings/resty/client_tls.lua",
      ["resty.client_tls.kong"] = "kong/lua/resty/client_tls/kong.lua",
    },
    lib = {
      -- Deployed as <tree>/lib/lua/5.1/libresty_client_tls.so.
      ["libresty_client_tls"] = "target/release/libresty_client_tls.so",
    },
  },
  copy_directories = { "docs", "kong/shim" },
}
