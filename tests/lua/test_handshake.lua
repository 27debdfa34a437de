-- The low layer of resty.client_tls across real in-memory TLS handshakes
-- (LuaJIT FFI over libssl, BIO pairs). The server's certificate callback
-- stands in for ssl_certificate_by_lua.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok, raises = H.test, H.eq, H.ok, H.raises

local tls = require "resty.client_tls"
local S = tls.ssl
local certs = H.make_certs()
local key = function(n) return certs.dir .. "/" .. n .. ".key" end

local function with_cert(on_cert, fn)
  H.on_cert = on_cert
  local okc, err = pcall(fn)
  H.on_cert = nil
  if not okc then
    error(err, 0)
  end
end

for _, proto in ipairs({ "TLS 1.3", "TLS 1.2" }) do
  local tls12 = proto == "TLS 1.2"

  test(proto .. ": no certificate requested: chain nil, verify NONE", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_chain,
                                           client_key = key("client") })
    local s, c = H.handshake(sctx, cctx)
    local pem, err = S.get_full_client_certificate_chain(s)
    eq(pem, nil, "chain")
    eq(err, nil, "chain err")
    eq(S.get_client_verify(s), "NONE", "verify")
    eq(#H.client_ca_names(c), 0, "CA names")
  end)

  test(proto .. ": CA list (intermediate, root) as a chain object: SUCCESS, exact PEM", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_chain,
                                           client_key = key("client") })
    local chain = { stack_of = "X509", ctx = H.x509_stack({ certs.pem.inter, certs.pem.root }) }
    local s, c
    with_cert(function(ssl) assert(S.request_client_certificate(ssl, chain)) end, function()
      s, c = H.handshake(sctx, cctx)
    end)
    eq(table.concat(H.client_ca_names(c), "|"),
       "/CN=RCT Test Intermediate CA|/CN=RCT Test Root CA", "CA names, caller's order")
    eq(S.get_full_client_certificate_chain(s), certs.pem.client_chain, "chain PEM")
    eq(S.get_client_verify(s), "SUCCESS", "verify")
  end)

  test(proto .. ": CA list is de-duplicated", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_chain,
                                           client_key = key("client") })
    local st = H.x509_stack({ certs.pem.root, certs.pem.inter, certs.pem.root })
    local s, c
    with_cert(function(ssl) assert(S.request_client_certificate(ssl, st)) end, function()
      s, c = H.handshake(sctx, cctx)
    end)
    eq(table.concat(H.client_ca_names(c), "|"),
       "/CN=RCT Test Root CA|/CN=RCT Test Intermediate CA", "CA names")
    eq(S.get_client_verify(s), "SUCCESS", "verify")
  end)

  test(proto .. ": depth 0 with the root only: FAILED:<reason>", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_chain,
                                           client_key = key("client") })
    local s
    with_cert(function(ssl)
      assert(S.request_client_certificate(ssl, H.x509_stack({ certs.pem.root }), 0))
    end, function()
      s = H.handshake(sctx, cctx)
    end)
    local v = S.get_client_verify(s)
    ok(v:find("^FAILED:.+"), "verify: " .. v)
    eq(S.get_full_client_certificate_chain(s), certs.pem.client_chain, "chain is still returned")
  end)

  test(proto .. ": no CA list: unknown issuer gives FAILED, handshake still succeeds", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_chain,
                                           client_key = key("client") })
    local s
    with_cert(function(ssl) assert(S.request_client_certificate(ssl)) end, function()
      s = H.handshake(sctx, cctx)
    end)
    eq(S.get_client_verify(s), "FAILED:unable to get local issuer certificate", "verify")
    eq(S.get_full_client_certificate_chain(s), certs.pem.client_chain, "chain PEM")
  end)

  test(proto .. ": self-signed client certificate: FAILED:self-signed certificate", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.selfclient,
                                           client_key = key("selfclient") })
    local s
    with_cert(function(ssl)
      assert(S.request_client_certificate(ssl, H.x509_stack({ certs.pem.root })))
    end, function()
      s = H.handshake(sctx, cctx)
    end)
    local v = S.get_client_verify(s)
    ok(v:find("^FAILED:self[- ]signed certificate"), "verify: " .. v)
    eq(S.get_full_client_certificate_chain(s), certs.pem.selfclient, "leaf-only chain")
  end)

  test(proto .. ": client without a certificate: chain nil, verify NONE", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12 })
    local s
    with_cert(function(ssl)
      assert(S.request_client_certificate(ssl, H.x509_stack({ certs.pem.root })))
    end, function()
      s = H.handshake(sctx, cctx)
    end)
    local pem, err = S.get_full_client_certificate_chain(s)
    eq(pem, nil, "chain")
    eq(err, nil, "chain err")
    eq(S.get_client_verify(s), "NONE", "verify")
  end)

  test(proto .. ": a chain over 10240 bytes comes back whole (AGAIN then OK)", function()
    local sctx, cctx = H.new_ctxs(certs, { tls12 = tls12, client_cert = certs.client_big,
                                           client_key = key("client") })
    local s
    with_cert(function(ssl) assert(S.request_client_certificate(ssl)) end, function()
      s = H.handshake(sctx, cctx)
    end)
    ok(#certs.pem.client_big > 10240, "test chain is " .. #certs.pem.client_big .. " bytes")
    eq(S.get_full_client_certificate_chain(s), certs.pem.client_big, "big chain PEM")
    eq(S.get_full_client_certificate_chain(s), certs.pem.client_big, "again, grown buffer")
  end)
end

-- Session resumption ------------------------------------------------------------------
-- Each case does a first handshake (disable_session_reuse in the certificate
-- callback, or not: the control case), closes cleanly, then offers the
-- session on a second connection to the same SSL_CTX.

local function resume(opts, disable)
  local sctx, cctx = H.new_ctxs(certs, { tls12 = opts.tls12, no_ticket = opts.no_ticket,
                                         client_cert = certs.client_chain,
                                         client_key = key("client") })
  local s1, c1
  with_cert(function(ssl)
    assert(S.request_client_certificate(ssl, H.x509_stack({ certs.pem.inter, certs.pem.root })))
    if disable then
      assert(S.disable_session_reuse(ssl))
    end
  end, function()
    s1, c1 = H.handshake(sctx, cctx, { sni = "a.test" })
  end)
  local info1 = assert(S.get_session_info(s1))
  eq(info1.resumed, false, "first connection resumed")
  eq(info1.server_name, "a.test", "first connection server_name")
  local sess = H.session(c1)
  H.close(s1, c1)
  local cert_cb_ran = false
  local s2
  with_cert(function() cert_cb_ran = true end, function()
    s2 = H.handshake(sctx, cctx, { sni = "b.test", session = sess })
  end)
  local info2 = assert(S.get_session_info(s2))
  eq(info2.resumed, H.libssl.SSL_session_reused(s2) == 1, "get_session_info agrees with OpenSSL")
  return info2, cert_cb_ran, s2
end

for _, case in ipairs({
  { name = "TLS 1.3", opts = {} },
  { name = "TLS 1.2 tickets", opts = { tls12 = true } },
  { name = "TLS 1.2 session IDs", opts = { tls12 = true, no_ticket = true } },
}) do
  test(case.name .. " resumption control: resumed without disable_session_reuse", function()
    local info, cert_cb_ran, s = resume(case.opts, false)
    eq(info.resumed, true, "resumed")
    eq(info.server_name, "a.test", "the session keeps its first SNI")
    eq(cert_cb_ran, false, "certificate callback on a resumed connection")
    local pem = S.get_full_client_certificate_chain(s)
    ok(pem == nil or pem:sub(1, #certs.pem.client) == certs.pem.client,
       "resumed chain starts with the leaf (or is nil)")
    eq(S.get_client_verify(s), "SUCCESS", "verify result carried by the session")
  end)

  test(case.name .. ": disable_session_reuse stops resumption", function()
    local info, cert_cb_ran = resume(case.opts, true)
    eq(info.resumed, false, "resumed")
    eq(cert_cb_ran, true, "certificate callback ran on the full handshake")
  end)
end

-- The chain cache: one encoding per distinct chain, shared by connections ------------

test("chains are shared between connections by content, within the byte limit", function()
  local function conn(cert, keyname)
    local sctx, cctx = H.new_ctxs(certs, { client_cert = cert, client_key = key(keyname) })
    local s
    with_cert(function(ssl) assert(S.request_client_certificate(ssl)) end,
              function() s = H.handshake(sctx, cctx) end)
    return s
  end
  local before = tls.cache_limit("chain")
  ok(before > 0, "a default limit")
  tls.cache_limit("chain", 0)
  eq(S.get_full_client_certificate_chain(conn(certs.client_chain, "client")), certs.pem.client_chain,
     "limit 0: still the exact chain")
  eq(select(2, tls.cache_usage("chain")), 0, "limit 0: nothing kept")
  eq(tls.cache_limit("chain", before), 0, "limit restored, previous returned")
  local a = conn(certs.client_chain, "client")
  eq(S.get_full_client_certificate_chain(a), certs.pem.client_chain, "first connection")
  local one, n = tls.cache_usage("chain")
  eq(n, 1, "one chain cached")
  ok(one > #certs.pem.client_chain, "its cost counts the PEM and the DER: " .. one)
  eq(S.get_full_client_certificate_chain(conn(certs.client_chain, "client")), certs.pem.client_chain,
     "another connection, same client")
  local again, n2 = tls.cache_usage("chain")
  eq(again, one, "shared: the same bytes")
  eq(n2, 1, "shared: still one entry")
  eq(S.get_full_client_certificate_chain(conn(certs.selfclient, "selfclient")), certs.pem.selfclient,
     "another client")
  eq(select(2, tls.cache_usage("chain")), 2, "two distinct chains")
  -- Room for one chain only: the next insertion drops the least recently used.
  tls.cache_limit("chain", one + 100)
  eq(S.get_full_client_certificate_chain(conn(certs.client_chain, "client")), certs.pem.client_chain,
     "after the limit changed")
  local bytes, m = tls.cache_usage("chain")
  ok(bytes <= one + 100 and m <= 1, "within the limit: " .. bytes .. " bytes, " .. m .. " entries")
  -- A chain larger than the limit is returned, not kept.
  eq(S.get_full_client_certificate_chain(conn(certs.client_big, "client")), certs.pem.client_big,
     "a chain over the limit")
  ok(tls.cache_usage("chain") <= one + 100, "still within the limit")
  -- The first connection keeps its own reference: the evicted encoding is still right.
  eq(S.get_full_client_certificate_chain(a), certs.pem.client_chain, "first connection, again")
  tls.cache_limit("chain", before)
  raises(function() tls.cache_limit("chains", 1) end, '"ca" or "chain" expected')
  raises(function() tls.cache_limit("ca", -1) end, "a byte count expected")
end)

-- JIT: the per-request getters compile without aborts ------------------------------------

test("low-layer getters compile into the caller's trace (no NYI)", function()
  local sctx, cctx = H.new_ctxs(certs, { client_cert = certs.client_chain,
                                         client_key = key("client") })
  local s
  with_cert(function(ssl) assert(S.request_client_certificate(ssl, H.x509_stack({ certs.pem.root }))) end,
            function() s = H.handshake(sctx, cctx) end)
  local n = 0
  local chain_fn, verify_fn, valid_fn = S.get_full_client_certificate_chain, S.get_client_verify,
                                        S.is_valid_client_verify
  local function handler()
    local pem = chain_fn(s)
    local v = verify_fn(s)
    if valid_fn(v) and #pem > 0 then
      n = n + 1
    end
  end
  local bad, log = H.jit_check(handler, 1000)
  eq(n, 1000, "calls")
  ok(#bad == 0, "trace aborts:\n" .. table.concat(bad, "\n"))
  ok(H.compiled(log, "test_handshake.lua"),
     "the handler or the module's functions were compiled:\n" .. log)
end)

H.done()
