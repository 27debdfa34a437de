-- The PDK layer of resty.client_tls against a stand-in for nginx: a fake
-- `ngx` (get_phase, ctx, config), a fake resty.core.base (get_request) and a
-- shim library exporting ngx_http_lua_ffi_get_req_ssl_pointer (ngx_shim.c),
-- whose fake request is a `void *[1]` holding the connection's SSL*.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

-- global, for ffi.C; kept referenced, or the GC would unload it
local shim = ffi.load(assert(os.getenv("RCT_SHIM"), "RCT_SHIM unset"), true)
local version = tonumber(os.getenv("RCT_NGX_LUA_VERSION"))

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

local tls = require "resty.client_tls"
local kong_tls = tls.new()

-- a new "request": fresh ngx.ctx, and r pointing at ssl (nil: plain HTTP)
local function request(ssl, p)
  ngx.ctx = {}
  phase = p
  current_r = ffi.new("void *[1]")
  current_r[0] = ssl
end

local certs = H.make_certs()
local sctx, cctx = H.new_ctxs(certs, { client_cert = certs.client_chain,
                                       client_key = certs.dir .. "/client.key" })

local CERT = "ssl_cert"
local READ = { "rewrite", "access", "content", "balancer", "header_filter", "body_filter", "log" }
local SET = { "rewrite", "access", "content", "balancer" }
local READ_NAMES = table.concat(READ, ", ")
local SET_NAMES = table.concat(SET, ", ")
local ALL = { "init", "init_worker", "ssl_cert", "ssl_session_fetch", "ssl_session_store",
              "ssl_client_hello", "set", "rewrite", "server_rewrite", "access", "content",
              "balancer", "header_filter", "body_filter", "log", "timer", "exit_worker" }

local function member(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

test("phase checks: Kong's message, in every phase outside each list", function()
  local s = H.new_ssl(sctx)
  local cases = {
    { "request_client_certificate", { CERT }, CERT },
    { "disable_session_reuse", { CERT }, CERT },
    { "get_full_client_certificate_chain", READ, READ_NAMES },
    { "get_client_verify", READ, READ_NAMES },
    { "get_session_info", READ, READ_NAMES },
    { "set_client_verify", SET, SET_NAMES, "SUCCESS" },
  }
  for _, c in ipairs(cases) do
    for _, p in ipairs(ALL) do
      request(s, p)
      local f = kong_tls[c[1]]
      if member(c[2], p) then
        local okc, err = pcall(f, c[4])
        ok(okc, c[1] .. " in " .. p .. ": " .. tostring(err))
      else
        local err = raises(function() f(c[4]) end,
                           "function cannot be called in " .. p .. " phase (only in: "
                           .. c[3] .. ")")
        ok(err:find("test_pdk.lua:", 1, true), "reported at the caller: " .. err)
      end
    end
  end
end)

test("certificate phase: request_client_certificate and disable_session_reuse", function()
  local st = H.x509_stack({ certs.pem.inter, certs.pem.root })
  H.on_cert = function(ssl)
    request(ssl, "ssl_cert")
    eq(tls.request_client_certificate({ ctx = st }, 2), true, "request")
    eq(tls.disable_session_reuse(), true, "disable")
  end
  local s, c = H.handshake(sctx, cctx)
  H.on_cert = nil
  eq(table.concat(H.client_ca_names(c), "|"),
     "/CN=RCT Test Intermediate CA|/CN=RCT Test Root CA", "CA names sent")

  for _, p in ipairs(READ) do
    request(s, p)
    eq(tls.get_full_client_certificate_chain(), certs.pem.client_chain, "chain in " .. p)
    eq(tls.get_client_verify(), "SUCCESS", "verify in " .. p)
    eq(tls.get_session_info().resumed, false, "session info in " .. p)
  end
end)

test("argument errors are raised at the caller, with PDK argument numbers", function()
  request(nil, "ssl_cert")
  raises(function() tls.request_client_certificate("pem") end,
         "bad argument #1 to 'request_client_certificate' (ca_certs must be nil")
  raises(function() tls.request_client_certificate(nil, "1") end,
         "bad argument #2 to 'request_client_certificate' (depth must be nil or an integer")
  local err = raises(function() tls.request_client_certificate(ffi.cast("void *", 0)) end,
                     "(ca_certs is a NULL pointer;")
  ok(err:find("test_pdk.lua:", 1, true), "reported at the caller: " .. err)
end)

test("set_client_verify: Kong's validation and messages; override per request", function()
  local s, c = H.handshake(sctx, cctx)  -- no certificate requested
  request(s, "access")
  eq(tls.get_client_verify(), "NONE", "connection's value")
  eq(tls.get_full_client_certificate_chain(), nil, "no chain (DECLINED)")
  for _, v in ipairs({ "SUCCESS", "NONE", "FAILED:", "FAILED:revoked" }) do
    eq(tls.set_client_verify(v), nil, "set_client_verify returns nothing")
    eq(ngx.ctx.CLIENT_VERIFY_OVERRIDE, v, "stored in ngx.ctx")
    eq(tls.get_client_verify(), v, "override read back")
  end
  for _, v in ipairs({ "FAILED", "success", "", "NONE " }) do
    local err = raises(function() tls.set_client_verify(v) end,
                       "unknown client verify value: " .. v .. " accepted values are:"
                       .. " \"SUCCESS\", \"NONE\" or \"FAILED:<reason>\"")
    ok(err:find("test_pdk.lua:", 1, true), "reported at the caller: " .. err)
  end
  for _, v in ipairs({ 1, true, {} }) do
    raises(function() tls.set_client_verify(v) end,
           "bad argument #1 to 'set_client_verify' (string expected, got " .. type(v) .. ")")
  end
  raises(function() tls.set_client_verify() end, "(string expected, got nil)")
  eq(ngx.ctx.CLIENT_VERIFY_OVERRIDE, "FAILED:revoked", "a rejected value changes nothing")
  -- the next request on the same connection starts without the override
  request(s, "rewrite")
  eq(tls.get_client_verify(), "NONE", "override does not leak to the next request")
end)

test("plain-HTTP request: nil, err from the chain, verify and session info", function()
  for _, p in ipairs(READ) do
    request(nil, p)
    for _, f in ipairs({ "get_full_client_certificate_chain", "get_client_verify",
                         "get_session_info" }) do
      local v, err = tls[f]()
      eq(v, nil, f .. " in " .. p)
      eq(err, "connection is not TLS or TLS support for Nginx not enabled", f .. " err")
    end
  end
  request(nil, "access")
  tls.set_client_verify("FAILED:x")
  eq(tls.get_client_verify(), "FAILED:x", "an override is returned even without TLS")
  request(nil, "ssl_cert")  -- cannot really happen; still no crash
  local r, err = tls.disable_session_reuse()
  eq(r, nil, "disable without TLS")
  eq(err, "connection is not TLS or TLS support for Nginx not enabled", "disable err")
end)

test("no request found", function()
  phase = "access"
  current_r = nil
  raises(function() tls.get_client_verify() end, "no request found")
end)

test("PDK getters compile into the handler's trace (no NYI)", function()
  local st = H.x509_stack({ certs.pem.inter, certs.pem.root })
  local s
  H.on_cert = function(ssl)
    request(ssl, "ssl_cert")
    assert(tls.request_client_certificate(st))
  end
  s = H.handshake(sctx, cctx)
  H.on_cert = nil
  request(s, "access")
  local r = current_r
  local n = 0
  local function handler()
    ngx.ctx = {}
    local pem = kong_tls.get_full_client_certificate_chain()
    local v = kong_tls.get_client_verify()
    kong_tls.set_client_verify("FAILED:x")
    if v == "SUCCESS" and #pem > 0 and kong_tls.get_client_verify() == "FAILED:x" then
      n = n + 1
    end
  end
  local bad, log = H.jit_check(handler, 1000)
  eq(n, 1000, "calls")
  eq(current_r, r, "request unchanged")
  ok(#bad == 0, "trace aborts:\n" .. table.concat(bad, "\n"))
  ok(H.compiled(log, "test_pdk.lua"),
     "the handler or the module's functions were compiled:\n" .. log)
end)

assert(shim)
H.done()
