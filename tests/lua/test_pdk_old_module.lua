-- The PDK layer in an nginx whose lua module lacks ngx_http_lua_ffi_get_req_ssl_pointer
-- (lua-nginx-module 0.10.13, Debian 11): `require` works, every PDK call raises one
-- clear error naming the minimum version, and the explicit-SSL layer still works.
-- Plain LuaJIT exports no such symbol, so no shim is loaded here.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

ok(not pcall(function() return ffi.C.ngx_http_lua_ffi_get_req_ssl_pointer end),
   "this process must not export ngx_http_lua_ffi_get_req_ssl_pointer")

local phase = "ssl_cert"
_G.ngx = {
  get_phase = function() return phase end,
  ctx = {},
  config = { subsystem = "http", ngx_lua_version = 10013 },
}
package.preload["resty.core.base"] = function()
  return { get_request = function() return ffi.new("void *[1]") end }
end

local tls
test("require works without the pointer function", function()
  tls = require "resty.client_tls"
  ok(type(tls.request_client_certificate) == "function", "PDK functions are present")
end)

local NEEDLE = "lua-nginx-module 0.10.13 does not export ngx_http_lua_ffi_get_req_ssl_pointer"
test("every PDK call raises the same clear error, naming the minimum version", function()
  local calls = {
    { "ssl_cert", function() return tls.request_client_certificate() end },
    { "ssl_cert", function() return tls.disable_session_reuse() end },
    { "access", function() return tls.get_full_client_certificate_chain() end },
    { "access", function() return tls.get_client_verify() end },
    { "access", function() return tls.set_client_verify("NONE") end },
  }
  for i, c in ipairs(calls) do
    phase = c[1]
    local err = raises(c[2], NEEDLE)
    ok(err:find("0.10.23 or newer", 1, true), "call " .. i .. " names the minimum: " .. err)
    ok(err:find("resty.client_tls\").ssl", 1, true), "call " .. i .. " names what still works: " .. err)
    ok(not err:find("undefined symbol", 1, true), "no raw LuaJIT error: " .. err)
  end
end)

test("the explicit-SSL layer still works: a real handshake through tls.ssl", function()
  local certs = H.make_certs()
  local sctx, cctx = H.new_ctxs(certs, { client_cert = certs.client_chain,
                                         client_key = certs.dir .. "/client.key" })
  local ca = H.x509_stack({ certs.pem.inter, certs.pem.root })
  H.on_cert = function(s)
    assert(tls.ssl.request_client_certificate(s, ca, 3))
  end
  local s, c = H.handshake(sctx, cctx)
  H.on_cert = nil
  eq(tls.ssl.get_full_client_certificate_chain(s), certs.pem.client_chain, "chain PEM")
  eq(tls.ssl.get_client_verify(s), "SUCCESS", "verify")
  H.close(s, c)
end)

H.done()
