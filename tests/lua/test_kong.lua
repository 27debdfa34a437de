-- The Kong drop-in (resty.client_tls.kong, loaded as resty.kong.tls through the shim)
-- against a stand-in for nginx (fake `ngx`, fake resty.core.base, ngx_shim.c), and
-- Kong's phase checker, which inside Kong judges by ngx.ctx.KONG_PHASE, not by
-- ngx.get_phase().
--
-- With RCT_SHIM set (a library exporting ngx_http_lua_ffi_get_req_ssl_pointer) the
-- whole file runs; without it, only what an nginx whose lua module lacks that function
-- (Debian 11's 0.10.13) sees.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

local shim_path = os.getenv("RCT_SHIM")
local shim = shim_path and ffi.load(shim_path, true)  -- global, for ffi.C; kept referenced
local version = tonumber(os.getenv("RCT_NGX_LUA_VERSION"))

package.path = H.repo .. "/kong/shim/?.lua;" .. H.repo .. "/kong/lua/?.lua;" .. package.path

local phase = "init"
local current_r = nil
_G.ngx = {
  get_phase = function() return phase end,
  ctx = {},
  config = { subsystem = "http", ngx_lua_version = version },
}
package.preload["resty.core.base"] = function()
  return { get_request = function() return current_r end }
end

-- a new "request": fresh ngx.ctx (Kong's phase in it, if given), r pointing at ssl
local function request(ssl, p, kong_phase)
  ngx.ctx = { KONG_PHASE = kong_phase }
  phase = p
  current_r = ffi.new("void *[1]")
  current_r[0] = ssl
end

local kong_tls = require "resty.kong.tls"
local tls = require "resty.client_tls"

-- Every function of resty.kong.tls in current lua-kong-nginx-module
-- (lualib/resty/kong/tls.lua, the version with get_ssl_pointer, get_request_ssl_pointer
-- and the SANs setters; README "Methods"), plus the two that Kong's PDK called until
-- Kong 3.1 (removed from lua-kong-nginx-module in 2022).
local CURRENT = {
  "disable_session_reuse", "get_full_client_certificate_chain", "get_ssl_pointer",
  "get_request_ssl_pointer", "set_upstream_cert_and_key", "set_upstream_ssl_trusted_store",
  "set_upstream_ssl_verify", "set_upstream_ssl_verify_depth",
  "set_upstream_ssl_sans_dnsnames", "set_upstream_ssl_sans_uris", "disable_proxy_ssl",
}
local PROVIDED = {
  disable_session_reuse = true, get_full_client_certificate_chain = true,
  get_ssl_pointer = true, get_request_ssl_pointer = true,
}
local OLD = { "request_client_certificate", "set_client_ca_list" }

test("the shim is resty.client_tls.kong", function()
  eq(kong_tls, require "resty.client_tls.kong", "module")
  eq(kong_tls._IMPLEMENTATION, "resty-client-tls", "_IMPLEMENTATION")
  eq(kong_tls._VERSION, tls._VERSION, "_VERSION")
end)

test("every resty.kong.tls function exists; the unprovided ones say so, naming themselves", function()
  local names = {}
  for _, n in ipairs(CURRENT) do names[#names + 1] = n end
  for _, n in ipairs(OLD) do names[#names + 1] = n; PROVIDED[n] = true end
  for _, p in ipairs({ "access", "ssl_cert", "balancer", "init_worker" }) do
    request(nil, p)
    for _, name in ipairs(names) do
      eq(type(kong_tls[name]), "function", name)
      local okc, err = pcall(function() local a, b = kong_tls[name](nil, nil); return a, b end)
      err = tostring(err)
      if PROVIDED[name] then
        ok(not err:find("not provided", 1, true), name .. " is provided, got: " .. err)
      else
        ok(not okc, name .. " must raise in " .. p)
        ok(err:find(name .. ": not provided by resty-client-tls (", 1, true),
           name .. ": message " .. err)
        ok(err:find("test_kong.lua:", 1, true), name .. ": reported at the caller: " .. err)
        ok(err:sub(-1) == ")", name .. ": the reason is closed: " .. err)
      end
    end
  end
end)

test("get_ssl_pointer: a clear error where the cosocket has no getsslpointer()", function()
  request(nil, "content")
  -- a cosocket of lua-nginx-module < 0.10.30: [1] is its userdata, no getsslpointer
  local sock = setmetatable({ newproxy() }, { __index = { connect = function() end } })
  local err = raises(function() kong_tls.get_ssl_pointer(sock) end,
                     "get_ssl_pointer: not available with this lua-nginx-module")
  ok(err:find("0.10.30", 1, true) and err:find("0.1.33", 1, true), "names the versions: " .. err)
  ok(err:find("test_kong.lua:", 1, true), "reported at the caller: " .. err)
  for _, bad in ipairs({ 1, "sock", true }) do
    raises(function() kong_tls.get_ssl_pointer(bad) end,
           "bad argument #1 to 'get_ssl_pointer' (cosocket expected, got " .. type(bad))
  end
  raises(function() kong_tls.get_ssl_pointer({}) end, "a table that is not a cosocket")
  raises(function() kong_tls.get_ssl_pointer() end, "cosocket expected, got nil")
end)

test("get_ssl_pointer: uses tcpsock:getsslpointer() where the cosocket has it", function()
  -- a stand-in for lua-resty-core 0.1.33's method (no such nginx here to test with)
  local p = ffi.cast("void *", 0x1234)
  local seen
  local mt = { __index = { getsslpointer = function(self) seen = self; return p end } }
  local sock = setmetatable({ newproxy() }, mt)
  local got, err = kong_tls.get_ssl_pointer(sock)
  eq(got, p, "pointer")
  eq(err, nil, "err")
  eq(seen, sock, "called as a method")
  mt.__index.getsslpointer = function() return nil, "closed" end
  got, err = kong_tls.get_ssl_pointer(sock)
  eq(got, nil, "pointer of a closed socket")
  eq(err, "closed", "its error")
  mt.__index.getsslpointer = function() return nil end
  got, err = kong_tls.get_ssl_pointer(sock)
  eq(err, "no ssl object", "error when the method gives none")
end)

if not shim then
  -- lua-nginx-module 0.10.13: no ngx_http_lua_ffi_get_req_ssl_pointer
  test("get_request_ssl_pointer: one clear error naming the minimum version", function()
    ok(not pcall(function() return ffi.C.ngx_http_lua_ffi_get_req_ssl_pointer end),
       "this process must not export ngx_http_lua_ffi_get_req_ssl_pointer")
    ngx.config.ngx_lua_version = 10013
    request(nil, "access")
    for _ = 1, 2 do
      local err = raises(function() kong_tls.get_request_ssl_pointer() end,
                         "get_request_ssl_pointer: lua-nginx-module 0.10.13 does not export"
                         .. " ngx_http_lua_ffi_get_req_ssl_pointer; use lua-nginx-module"
                         .. " 0.10.23 or newer")
      ok(err:find("test_kong.lua:", 1, true), "reported at the caller: " .. err)
    end
  end)
  H.done()
  return
end

local certs = H.make_certs()
local sctx, cctx = H.new_ctxs(certs, { client_cert = certs.client_chain,
                                       client_key = certs.dir .. "/client.key" })
local ca = H.x509_stack({ certs.pem.inter, certs.pem.root })

test("get_request_ssl_pointer: the handshake's SSL*, in ssl_cert and after", function()
  local seen
  H.on_cert = function(s)
    request(s, "ssl_cert")
    local p, err = kong_tls.get_request_ssl_pointer()
    eq(err, nil, "err")
    seen = p
    eq(ffi.cast("uintptr_t", p), ffi.cast("uintptr_t", s), "pointer in ssl_cert")
    -- usable with the explicit-SSL layer, as Kong's callers use it with lua-resty-openssl
    assert(tls.ssl.request_client_certificate(p, ca))
  end
  local s, c = H.handshake(sctx, cctx)
  H.on_cert = nil
  ok(seen ~= nil, "the certificate phase ran")
  for _, p in ipairs({ "rewrite", "access", "content", "header_filter", "log" }) do
    request(s, p)
    local ptr = kong_tls.get_request_ssl_pointer()
    eq(ffi.cast("uintptr_t", ptr), ffi.cast("uintptr_t", s), "pointer in " .. p)
    eq(tls.ssl.get_full_client_certificate_chain(ptr), certs.pem.client_chain, "chain via it")
  end
  H.close(s, c)
end)

test("get_request_ssl_pointer: nil, 'no ssl object' on plain HTTP; raises with no request", function()
  request(nil, "access")
  local p, err = kong_tls.get_request_ssl_pointer()
  eq(p, nil, "pointer")
  eq(err, "no ssl object", "err")
  current_r = nil
  phase = "timer"
  local e = raises(function() kong_tls.get_request_ssl_pointer() end, "no request found")
  ok(e:find("test_kong.lua:", 1, true), "reported at the caller: " .. e)
end)

-- Kong's phase checker ----------------------------------------------------------------
--
-- A stand-in for kong.pdk.private.phases as Kong's PDK uses it: each Kong phase a bit,
-- the current one in ngx.ctx.KONG_PHASE, set by Kong's runloop (which runs plugin
-- handlers of several Kong phases inside one nginx phase); a refused call raises
-- "function cannot be called in <phase> phase (only in: <phases>)".
local KONG_PHASES = { "init_worker", "certificate", "rewrite", "access", "response",
                      "balancer", "header_filter", "body_filter", "log", "admin_api" }
local K = {}
for i, name in ipairs(KONG_PHASES) do K[name] = bit.lshift(1, i - 1) end

local function kong_check(...)
  local current = ngx.ctx.KONG_PHASE
  if not current then
    error("no phase in ngx.ctx.KONG_PHASE", 3)
  end
  local names, mask = {}, 0
  for _, name in ipairs({ ... }) do
    names[#names + 1] = name
    mask = bit.bor(mask, K[name])
  end
  if bit.band(mask, current) == 0 then
    local cur = "?"
    for name, b in pairs(K) do if b == current then cur = name end end
    error("function cannot be called in " .. cur .. " phase (only in: "
          .. table.concat(names, ", ") .. ")", 3)
  end
end

-- A stand-in for Kong's kong.client.tls (the 1.3 - 3.0 shape: everything through
-- resty.kong.tls, which here is the shim), each function checked by Kong's checker.
local kong_pdk_tls = {
  request_client_certificate = function()
    kong_check("certificate")
    return kong_tls.request_client_certificate()
  end,
  disable_session_reuse = function()
    kong_check("certificate")
    return kong_tls.disable_session_reuse()
  end,
  get_full_client_certificate_chain = function()
    kong_check("rewrite", "access", "response", "balancer", "header_filter", "body_filter", "log")
    return kong_tls.get_full_client_certificate_chain()
  end,
}

test("inside Kong: Kong's checker, then the shim's own check against ngx.get_phase()", function()
  H.on_cert = function(s)
    request(s, "ssl_cert", K.certificate)
    eq(kong_pdk_tls.request_client_certificate(), true, "request")
    eq(kong_pdk_tls.disable_session_reuse(), true, "disable")
  end
  local s, c = H.handshake(sctx, cctx)
  H.on_cert = nil
  request(s, "access", K.access)
  eq(kong_pdk_tls.get_full_client_certificate_chain(), certs.pem.client_chain, "chain in access")

  -- Kong refuses first, with its message: the shim is never reached.
  request(s, "ssl_cert", K.access)
  raises(function() kong_pdk_tls.request_client_certificate() end,
         "function cannot be called in access phase (only in: certificate)")
  -- Kong allows (its phase list has header_filter), nginx's phase does not
  -- (resty.kong.tls refuses header_filter): the shim answers as resty.kong.tls would.
  request(s, "header_filter", K.header_filter)
  raises(function() kong_pdk_tls.get_full_client_certificate_chain() end,
         "API disabled in the current context")
  -- Kong's phase says certificate, nginx's is access: the shim refuses.
  request(s, "access", K.certificate)
  raises(function() kong_pdk_tls.disable_session_reuse() end, "API disabled in the current context")
  H.close(s, c)
end)

test("new() inside Kong: judged by ngx.get_phase() alone; KONG_PHASE is ignored and kept", function()
  local pdk = tls.new()
  local s, c = H.handshake(sctx, cctx)
  -- Kong's phase would refuse set_client_verify (log); nginx's (access) allows it.
  request(s, "access", K.log)
  eq(pdk.set_client_verify("FAILED:kong says no"), nil, "set_client_verify")
  eq(pdk.get_client_verify(), "FAILED:kong says no", "override read back")
  eq(ngx.ctx.KONG_PHASE, K.log, "KONG_PHASE untouched")
  -- Kong's phase would allow it (access); nginx's (log) refuses, with the PDK message.
  request(s, "log", K.access)
  raises(function() pdk.set_client_verify("SUCCESS") end,
         "function cannot be called in log phase (only in: rewrite, access, content, balancer)")
  -- Kong's "response" phase runs in an nginx phase; that nginx phase decides.
  request(s, "content", K.response)
  eq(pdk.get_client_verify(), "NONE", "verify in Kong's response phase, nginx content")
  request(s, "header_filter", K.response)
  eq(pdk.get_full_client_certificate_chain(), nil, "chain in header_filter (no certificate sent)")
  H.close(s, c)
end)

H.done()
