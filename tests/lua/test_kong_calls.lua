-- What the Kong drop-in's calls do to a real handshake (test_kong.lua covers the
-- drop-in's surface: which functions exist, their errors, the pointer getters).
-- resty.kong.tls (kong/shim -> kong/lua/resty/client_tls/kong.lua) against the
-- stand-in for nginx of test_pdk.lua: a fake `ngx`, a fake resty.core.base and the
-- ngx_http_lua_ffi_get_req_ssl_pointer shim. Kong's certificate phase calls
-- request_client_certificate(), set_client_ca_list(stack) and disable_session_reuse();
-- its later phases get_full_client_certificate_chain(). Each call's effect is checked
-- where the client or OpenSSL sees it: the CA names received, the verify store, the
-- session not resumed, the chain returned.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

package.path = H.repo .. "/kong/shim/?.lua;" .. H.repo .. "/kong/lua/?.lua;" .. package.path

-- global, for ffi.C; kept referenced, or the GC would unload it
local shim = ffi.load(assert(os.getenv("RCT_SHIM"), "RCT_SHIM unset"), true)

local phase = "init"
local current_r = nil
_G.ngx = {
  get_phase = function() return phase end,
  ctx = {},
  config = { subsystem = "http", ngx_lua_version = tonumber(os.getenv("RCT_NGX_LUA_VERSION")) },
}
package.preload["resty.core.base"] = function()
  return { get_request = function() return current_r end }
end

local kong_tls = require "resty.kong.tls"
local tls = require "resty.client_tls"

-- a new "request": fresh ngx.ctx, and r pointing at ssl (nil: plain HTTP)
local function request(ssl, p)
  ngx.ctx = {}
  phase = p
  current_r = ffi.new("void *[1]")
  current_r[0] = ssl
end

local certs = H.make_certs()
local CLIENT = { client_cert = certs.client_chain, client_key = certs.dir .. "/client.key" }
local CHAIN_PHASES = { "rewrite", "access", "content", "balancer", "log" }
local INTER, ROOT = "/CN=RCT Test Intermediate CA", "/CN=RCT Test Root CA"

-- One handshake whose certificate phase runs `cert_phase(ssl)` (phase ssl_cert, the
-- connection's SSL* as the request's); returns the server and client SSL*.
local function handshake(cert_phase, opts, sctx, cctx)
  if not sctx then
    sctx, cctx = H.new_ctxs(certs, opts or CLIENT)
  end
  H.on_cert = function(ssl)
    request(ssl, "ssl_cert")
    cert_phase(ssl)
  end
  local okc, s, c = pcall(H.handshake, sctx, cctx, opts and opts.handshake)
  H.on_cert = nil
  if not okc then
    error(s, 0)
  end
  return s, c
end

local function names(c)
  return table.concat(H.client_ca_names(c), "|")
end

test("Kong's certificate phase: the client sees set_client_ca_list's names; its chain comes back",
     function()
  local lists = {
    { { certs.pem.inter, certs.pem.root }, INTER .. "|" .. ROOT },
    { { certs.pem.root }, ROOT },
    { { certs.pem.root, certs.pem.inter, certs.pem.root }, ROOT .. "|" .. INTER },
  }
  for _, l in ipairs(lists) do
    local st = H.x509_stack(l[1])
    local s, c = handshake(function()
      eq(kong_tls.request_client_certificate(), true, "request_client_certificate()")
      eq(kong_tls.set_client_ca_list(st), true, "set_client_ca_list(stack)")
      eq(kong_tls.disable_session_reuse(), true, "disable_session_reuse()")
    end)
    eq(names(c), l[2], "CA names the client received")
    for _, p in ipairs(CHAIN_PHASES) do
      request(s, p)
      eq(kong_tls.get_full_client_certificate_chain(), certs.pem.client_chain, "chain in " .. p)
    end
    -- The list is also the connection's verify store (the SSL_CTX's trusts nothing).
    request(s, "access")
    eq(tls.get_client_verify(), "SUCCESS", "verified against the list")
  end
end)

test("set_client_ca_list replaces what request_client_certificate(list) set", function()
  local first, second = H.x509_stack({ certs.pem.inter }), H.x509_stack({ certs.pem.root })
  local _, c = handshake(function()
    assert(kong_tls.request_client_certificate(first))
    assert(kong_tls.set_client_ca_list(second))
  end)
  eq(names(c), ROOT, "the second list's names only")
end)

test("request_client_certificate without a list, and with Kong's old boolean argument", function()
  for _, arg in ipairs({ "none", true, false }) do
    local s, c = handshake(function()
      if arg == "none" then
        eq(kong_tls.request_client_certificate(), true, "request_client_certificate()")
      else
        eq(kong_tls.request_client_certificate(arg), true, "request_client_certificate(bool)")
      end
    end)
    eq(names(c), "", "no CA names (" .. tostring(arg) .. ")")
    request(s, "access")
    eq(kong_tls.get_full_client_certificate_chain(), certs.pem.client_chain, "chain")
    local v = tls.get_client_verify()
    ok(v:find("^FAILED:"), "nothing trusted, so not verified: " .. v)
  end
end)

test("no client certificate: nil; a request without TLS: nil, err", function()
  local s = handshake(function() assert(kong_tls.request_client_certificate()) end, {})
  request(s, "access")
  local pem, err = kong_tls.get_full_client_certificate_chain()
  eq(pem, nil, "chain")
  eq(err, nil, "no error")
  request(nil, "access")
  pem, err = kong_tls.get_full_client_certificate_chain()
  eq(pem, nil, "chain without TLS")
  eq(err, "connection is not TLS or TLS support for Nginx not enabled", "err without TLS")
end)

-- disable_session_reuse: the first connection's session, offered again, is resumed
-- in the control and not once disabled.
for _, case in ipairs({
  { name = "TLS 1.3", opts = {} },
  { name = "TLS 1.2 tickets", opts = { tls12 = true } },
  { name = "TLS 1.2 session IDs", opts = { tls12 = true, no_ticket = true } },
}) do
  test(case.name .. ": disable_session_reuse() stops resumption (control resumes)", function()
    for _, disable in ipairs({ false, true }) do
      local sctx, cctx = H.new_ctxs(certs, { tls12 = case.opts.tls12, no_ticket = case.opts.no_ticket,
                                             client_cert = CLIENT.client_cert,
                                             client_key = CLIENT.client_key })
      local st = H.x509_stack({ certs.pem.root })
      local s1, c1 = handshake(function()
        assert(kong_tls.request_client_certificate())
        assert(kong_tls.set_client_ca_list(st))
        if disable then
          assert(kong_tls.disable_session_reuse())
        end
      end, nil, sctx, cctx)
      local sess = H.session(c1)
      H.close(s1, c1)
      local s2 = H.handshake(sctx, cctx, { session = sess })
      eq(H.libssl.SSL_session_reused(s2) == 1, not disable,
         disable and "a disabled session was resumed" or "control: the session must resume")
    end
  end)
end

test("phases: resty.kong.tls's own lists and message", function()
  local s = handshake(function() assert(kong_tls.request_client_certificate()) end)
  local st = H.x509_stack({ certs.pem.root })
  local cases = {
    { "request_client_certificate", { ssl_cert = true } },
    { "set_client_ca_list", { ssl_cert = true }, st },
    { "disable_session_reuse", { ssl_cert = true } },
    -- narrower than resty.client_tls's PDK layer: no header_filter, body_filter
    { "get_full_client_certificate_chain",
      { rewrite = true, access = true, content = true, balancer = true, log = true } },
  }
  for _, c in ipairs(cases) do
    for _, p in ipairs({ "init", "init_worker", "ssl_cert", "ssl_client_hello", "set", "rewrite",
                         "access", "content", "balancer", "header_filter", "body_filter", "log",
                         "timer" }) do
      request(s, p)
      if c[2][p] then
        if p ~= "ssl_cert" then  -- the handshake is over: the setters would say so
          local okc, err = pcall(kong_tls[c[1]], c[3])
          ok(okc, c[1] .. " in " .. p .. ": " .. tostring(err))
        end
      else
        local err = raises(function() kong_tls[c[1]](c[3]) end, "API disabled in the current context")
        ok(err:find("test_kong_calls.lua:", 1, true), "reported at the caller: " .. err)
      end
    end
  end
end)

test("set_client_ca_list(nil) raises", function()
  local s = H.new_ssl((H.new_ctxs(certs)))
  request(s, "ssl_cert")
  raises(function() kong_tls.set_client_ca_list() end, "bad argument #1 to 'set_client_ca_list'")
  raises(function() kong_tls.set_client_ca_list("pem") end, "ca_certs must be nil")
end)

assert(shim)
H.done()
