-- resty.client_tls outside nginx: loading, argument checks, the low layer on
-- an SSL* that has not done a handshake, and the cdef/header parity.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

-- pointer types as other libraries name them (lua-resty-openssl: OPENSSL_STACK)
ffi.cdef[[
struct stack_st;
struct ssl_st;
struct rct_test_ssl;
]]

local tls

test("module loads with package.cpath pointing at the library directory", function()
  tls = require "resty.client_tls"
  eq(type(tls), "table", "module")
  eq(type(tls.ssl), "table", "low layer")
  -- a second require (and a second cdef of the same functions) is harmless
  package.loaded["resty.client_tls"] = nil
  local again = require "resty.client_tls"
  eq(type(again.ssl.get_client_verify), "function", "reloaded module")
end)

test("a missing library raises an error naming every path tried", function()
  local saved_cpath = package.cpath
  package.loaded["resty.client_tls"] = nil
  package.cpath = "/nonexistent/lib?.so"
  local err = raises(function() require "resty.client_tls" end, "cannot load libresty_client_tls.so")
  package.cpath = saved_cpath
  package.loaded["resty.client_tls"] = tls
  ok(err:find("/nonexistent/libresty_client_tls.so", 1, true), "template path listed")
  ok(not err:find("liblib", 1, true), "no lib-prefixed name from a lib?.so template")
  package.loaded["resty.client_tls"] = nil
  package.cpath = "/nonexistent/?.so"
  local err2 = raises(function() require "resty.client_tls" end, "cannot load libresty_client_tls.so")
  package.cpath = saved_cpath
  package.loaded["resty.client_tls"] = tls
  ok(err2:find("/nonexistent/resty_client_tls.so", 1, true), "bare name from a ?.so template")
  ok(err2:find("/nonexistent/libresty_client_tls.so", 1, true), "lib-prefixed name from a ?.so template")
  ok(err:find('ffi.load("resty_client_tls")', 1, true), "linker fallback listed")
end)

test("public API shape", function()
  for _, n in ipairs({ "request_client_certificate", "disable_session_reuse",
                       "get_full_client_certificate_chain", "get_client_verify",
                       "is_valid_client_verify", "get_session_info" }) do
    eq(type(tls.ssl[n]), "function", "tls.ssl." .. n)
  end
  local pdk = { "request_client_certificate", "disable_session_reuse",
                "get_full_client_certificate_chain", "set_client_verify",
                "get_client_verify", "get_session_info" }
  local t1, t2 = tls.new(), tls.new()
  ok(t1 ~= t2, "new() returns a fresh table")
  for _, n in ipairs(pdk) do
    eq(type(tls[n]), "function", "tls." .. n)
    eq(t1[n], tls[n], "new()." .. n)
  end
  eq(t1.new, nil, "new() table has no new")
end)

test("is_valid_client_verify", function()
  local v = tls.ssl.is_valid_client_verify
  local cases = {
    { "SUCCESS", true }, { "NONE", true }, { "FAILED:", true },
    { "FAILED:unable to get local issuer certificate", true },
    { "FAILED:x\0y", true },
    { "FAILED", false }, { "failed:x", false }, { "success", false }, { "", false },
    { "SUCCESS ", false }, { " NONE", false }, { "NONE\0", false }, { "SUCCESSX", false },
    { "FAILED;x", false },
  }
  for _, c in ipairs(cases) do
    eq(v(c[1]), c[2], string.format("is_valid_client_verify(%q)", c[1]))
  end
  for _, x in ipairs({ 1, true, {}, ffi.new("int[1]") }) do
    eq(v(x), false, "is_valid_client_verify(" .. type(x) .. ")")
  end
  eq(v(nil), false, "is_valid_client_verify(nil)")
end)

test("NULL or nil ssl gives nil, err from every low-layer function", function()
  local null = ffi.cast("void *", 0)
  for _, ssl in ipairs({ null, ffi.cast("struct rct_test_ssl *", 0) }) do
    for _, f in ipairs({ "request_client_certificate", "disable_session_reuse",
                         "get_full_client_certificate_chain", "get_client_verify",
                         "get_session_info" }) do
      local r, err = tls.ssl[f](ssl)
      eq(r, nil, f .. " result")
      eq(err, "ssl is NULL", f .. " err")
    end
  end
  local r, err = tls.ssl.get_client_verify(nil)
  eq(r, nil, "nil ssl result")
  eq(err, "ssl is NULL", "nil ssl err")
end)

test("a non-cdata ssl raises", function()
  for _, x in ipairs({ "ssl", 1, {}, true }) do
    raises(function() tls.ssl.get_client_verify(x) end,
           "bad argument #1 to 'get_client_verify' (SSL* cdata expected, got " .. type(x) .. ")")
    raises(function() tls.ssl.request_client_certificate(x) end,
           "bad argument #1 to 'request_client_certificate'")
  end
  -- A cdata that is not a pointer would be read as an SSL* and crash the worker.
  raises(function() tls.ssl.get_client_verify(ffi.new("int[1]")) end,
         "(SSL* cdata expected, got non-pointer ctype<int [1]>)")
  raises(function() tls.ssl.disable_session_reuse(ffi.new("uint64_t", 7)) end,
         "(SSL* cdata expected, got non-pointer ctype<uint64_t>)")
end)

test("ca_certs of a wrong type raises a clear error", function()
  local null = ffi.cast("void *", 0)
  local rq = tls.ssl.request_client_certificate
  local prefix = "bad argument #2 to 'request_client_certificate' (ca_certs must be nil,"
             .. " a STACK_OF(X509)* cdata or a resty.openssl x509.chain object, got "
  raises(function() rq(null, "-----BEGIN CERTIFICATE-----") end, prefix .. "string)")
  raises(function() rq(null, 42) end, prefix .. "number)")
  raises(function() rq(null, true) end, prefix .. "boolean)")
  raises(function() rq(null, false) end, prefix .. "boolean)")
  raises(function() rq(null, print) end, prefix .. "function)")
  raises(function() rq(null, {}) end, prefix .. "a table without a cdata 'ctx')")
  raises(function() rq(null, { ctx = "x" }) end, prefix .. "a table without a cdata 'ctx')")
  raises(function() rq(null, ffi.new("int64_t", 5)) end, prefix .. "non-pointer ctype<int64_t>)")
  raises(function() rq(null, ffi.new("char[4]")) end, prefix .. "non-pointer ctype<char [4]>)")
  raises(function() rq(null, { ctx = ffi.new("int[1]") }) end, prefix .. "non-pointer")
  -- Pointers of other types than void * or an OpenSSL stack are refused too.
  raises(function() rq(null, ffi.cast("char *", "x")) end, prefix .. "ctype<char *>)")
  raises(function() rq(null, ffi.cast("int *", null)) end, prefix .. "ctype<int *>)")
  raises(function() rq(null, null) end,
         "bad argument #2 to 'request_client_certificate' (ca_certs is a NULL pointer;"
         .. " pass nil to send no CA list)")
  raises(function() rq(null, { ctx = ffi.cast("struct stack_st *", 0) }) end,
         "(ca_certs is a NULL pointer;")
  -- the error is reported at the caller's line
  local err = raises(function() rq(null, "x") end, "test_low_layer.lua:")
  ok(not err:find("client_tls.lua", 1, true), "error position is the caller's: " .. err)
end)

test("depth of a wrong type raises", function()
  local null = ffi.cast("void *", 0)
  local rq = tls.ssl.request_client_certificate
  for _, d in ipairs({ "1", 1.5, 2 ^ 31, -2 ^ 31 - 1, 0 / 0, math.huge, true, {} }) do
    raises(function() rq(null, nil, d) end,
           "bad argument #3 to 'request_client_certificate' (depth must be nil or an integer")
  end
  -- valid depths reach the library, which then rejects the NULL ssl
  for _, d in ipairs({ -1, 0, 1, 100, 2 ^ 31 - 1, -2 ^ 31 }) do
    local r, err = rq(null, nil, d)
    eq(r, nil, "depth " .. d)
    eq(err, "ssl is NULL", "depth " .. d)
  end
end)

test("PDK functions raise a clear error outside OpenResty", function()
  ok(rawget(_G, "ngx") == nil, "no ngx in plain LuaJIT")
  for _, f in ipairs({ "request_client_certificate", "disable_session_reuse",
                       "get_full_client_certificate_chain", "get_client_verify",
                       "get_session_info" }) do
    local err = raises(function() tls[f]() end,
                       "resty.client_tls: the PDK functions need OpenResty (no ngx here)")
    ok(err:find("test_low_layer.lua:", 1, true), "reported at the caller: " .. err)
  end
  raises(function() tls.set_client_verify("SUCCESS") end, "need OpenResty")
  raises(function() tls.new().get_client_verify() end, "need OpenResty")
end)

-- An SSL* from SSL_new, before any handshake --------------------------------------

local certs = H.make_certs()
local libssl = H.libssl

test("un-handshaken SSL*: request_client_certificate accepts every ca_certs form", function()
  local sctx = H.new_ctxs(certs)
  local s = H.new_ssl(sctx)
  local rq = tls.ssl.request_client_certificate
  local st = H.x509_stack({ certs.pem.inter, certs.pem.root })
  local r, err = rq(s, nil)
  eq(r, true, "nil ca_certs: " .. tostring(err))
  eq(rq(s, st), true, "OPENSSL_STACK-like void* cdata")
  eq(rq(s, st, 2), true, "with a depth")
  eq(rq(s, ffi.cast("struct stack_st *", st)), true, "struct stack_st * cdata")
  local chain = { stack_of = "X509", ctx = ffi.cast("struct stack_st *", st) }
  eq(rq(s, chain), true, "x509.chain-like table")
  eq(rq(s, { ctx = st }, -1), true, "table with a void* ctx")
  eq(rq(s, H.x509_stack({}), 0), true, "empty stack")
  -- a typed SSL* works as well as a void *
  eq(rq(ffi.cast("struct ssl_st *", s), st), true, "struct ssl_st * ssl")
end)

test("un-handshaken SSL*: the caller's stack may be collected right after the call", function()
  local sctx = H.new_ctxs(certs)
  local s = H.new_ssl(sctx)
  for _ = 1, 50 do
    eq(tls.ssl.request_client_certificate(s, { ctx = H.x509_stack({ certs.pem.root }) }), true,
       "request with a temporary chain")
    collectgarbage()
  end
end)

test("un-handshaken SSL*: disable_session_reuse, chain, verify, session info", function()
  local sctx = H.new_ctxs(certs)
  local s = H.new_ssl(sctx)
  eq(tls.ssl.disable_session_reuse(s), true, "disable_session_reuse")
  eq(tls.ssl.disable_session_reuse(s), true, "disable_session_reuse twice")
  local pem, err = tls.ssl.get_full_client_certificate_chain(s)
  eq(pem, nil, "chain (no peer certificate: DECLINED)")
  eq(err, nil, "chain err")
  eq(tls.ssl.get_client_verify(s), "NONE", "client verify")
  local info = tls.ssl.get_session_info(s)
  eq(type(info), "table", "session info")
  eq(info.resumed, false, "resumed")
  eq(info.server_name, nil, "server_name")
end)

-- cdef parity with the generated header ------------------------------------------------

local header = H.repo .. "/include/resty_client_tls.h"
local hf = io.open(header, "rb")
if not hf then
  H.skip("cdef declares every header function with the same arity", "no " .. header)
else
  local htext = hf:read("*a")
  hf:close()
  test("cdef declares every header function with the same arity", function()
    local function arities(text)
      local t = {}
      text = text:gsub("/%*.-%*/", ""):gsub("//[^\n]*", "")
      for name, params in text:gmatch("(resty_client_tls_[%w_]+)%s*(%b())") do
        local inner = params:sub(2, -2)
        local n = 0
        if not inner:match("^%s*void%s*$") and inner:match("%S") then
          n = select(2, inner:gsub(",", ",")) + 1
        end
        t[name] = n
      end
      return t
    end
    local src = H.read(H.repo .. "/lua-bindings/resty/client_tls.lua")
    local cdef = arities(src:match("ffi%.cdef%[%[(.-)%]%]"))
    local hdr = arities(htext)
    local count = 0
    for name, n in pairs(hdr) do
      count = count + 1
      eq(cdef[name], n, "parameters of " .. name .. " in the Lua cdef")
    end
    ok(count >= 6, "header functions found: " .. count)
    for name in pairs(cdef) do
      ok(hdr[name], name .. " is declared in the Lua cdef but not in the header")
    end
  end)
end

H.done()
