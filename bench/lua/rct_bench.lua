-- The benchmark's Lua side inside nginx: the candidate (resty.client_tls), B1 (the
-- nginx-style C baseline, bench/b1.c built as libb1.so, called through the FFI the way
-- lua-kong-nginx-module's Lua wrapper calls its C), B2 (the chain to PEM in pure LuaJIT
-- FFI over libssl, lua-resty-openssl style), and the per-call timing loop.
local ffi = require "ffi"
local tls = require "resty.client_tls"
local ngx_ssl = require "ngx.ssl"
local base = require "resty.core.base"

local C = ffi.C
local ffi_str = ffi.string
local get_request = base.get_request
local concat = table.concat
local tonumber = tonumber

ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } rct_bench_timespec;
int rct_bench_clock_gettime(int clk, rct_bench_timespec *ts) __asm__("clock_gettime");
void *rct_bench_req_ssl(void *r) __asm__("ngx_http_lua_ffi_get_req_ssl_pointer");

int b1_request_client_certificate(void *ssl, void *ca_certs, int depth, const char **err);
int b1_disable_session_reuse(void *ssl, const char **err);
int b1_get_full_client_certificate_chain(void *ssl, char *buf, size_t *buf_len, const char **err);

typedef struct rct_bench_bio rct_bench_bio;
const void *BIO_s_mem(void);
rct_bench_bio *BIO_new(const void *method);
int BIO_free(rct_bench_bio *bio);
long BIO_ctrl(rct_bench_bio *bio, int cmd, long larg, void *parg);
int PEM_write_bio_X509(rct_bench_bio *bio, void *x509);
void *SSL_get1_peer_certificate(const void *ssl);
void *SSL_get_peer_cert_chain(const void *ssl);
void X509_free(void *x509);
int OPENSSL_sk_num(const void *sk);
void *OPENSSL_sk_value(const void *sk, int i);
const void *TLS_server_method(void);
void *SSL_CTX_new(const void *method);
void *SSL_new(void *ctx);
void SSL_free(void *ssl);
void SSL_set_accept_state(void *ssl);
void SSL_CTX_free(void *ctx);
]]

local _M = {}

local B1 -- the libb1.so namespace, kept for the life of the module
local CA = {}

--- init_worker: load libb1.so and parse the CA lists once (Kong keeps its parsed CA
-- chains in a cache; both sides get the same STACK_OF(X509)* each handshake).
function _M.init(b1_path, pki_dir)
  B1 = ffi.load(b1_path)
  for _, n in ipairs({ 1, 10, 100 }) do
    local f = assert(io.open(pki_dir .. "/ca" .. n .. ".pem"))
    local pem = f:read("*a")
    f:close()
    CA[n] = assert(ngx_ssl.parse_pem_cert(pem))
  end
end

local errp = ffi.new("const char *[1]")
local sizep = ffi.new("size_t[1]")

-- ---- certificate phase ----------------------------------------------------------

-- The certificate phase of each contender with the CA list `ca`: request + disable reuse.
local function candidate_cert(ca)
  local ok, err = tls.request_client_certificate(ca, 3)
  if not ok then
    ngx.log(ngx.ERR, "request_client_certificate: ", err)
    return ngx.exit(ngx.ERROR)
  end
  ok, err = tls.disable_session_reuse()
  if not ok then
    ngx.log(ngx.ERR, "disable_session_reuse: ", err)
    return ngx.exit(ngx.ERROR)
  end
end

local function b1_cert(ca)
  local ssl = C.rct_bench_req_ssl(get_request())
  if B1.b1_request_client_certificate(ssl, ca, 3, errp) ~= 0
     or B1.b1_disable_session_reuse(ssl, errp) ~= 0
  then
    ngx.log(ngx.ERR, "b1: ", ffi_str(errp[0]))
    return ngx.exit(ngx.ERROR)
  end
end

function _M.cert_candidate(n)
  return candidate_cert(CA[n])
end

function _M.cert_b1(n)
  return b1_cert(CA[n])
end

-- ---- the chain ------------------------------------------------------------------

local candidate_chain = tls.get_full_client_certificate_chain

-- B1 through the FFI, as lua-kong-nginx-module's wrapper does: a 10240-byte first
-- buffer, a retry with the size returned on AGAIN.
local b1_buf_size = 10240
local b1_buf = ffi.new("char[?]", b1_buf_size)
local function b1_chain()
  local r = get_request()
  if not r then
    error("no request found")
  end
  local ssl = C.rct_bench_req_ssl(r)
  if ssl == nil then
    return nil, "connection is not TLS"
  end
  sizep[0] = b1_buf_size
  local rc = B1.b1_get_full_client_certificate_chain(ssl, b1_buf, sizep, errp)
  if rc == -2 then
    b1_buf_size = tonumber(sizep[0])
    b1_buf = ffi.new("char[?]", b1_buf_size)
    rc = B1.b1_get_full_client_certificate_chain(ssl, b1_buf, sizep, errp)
  end
  if rc == 0 then
    return ffi_str(b1_buf, sizep[0])
  end
  if rc == -5 then
    return nil
  end
  return nil, "error while obtaining client certificate chain"
end

-- B2: the same in pure LuaJIT FFI over libssl, lua-resty-openssl style (x509:to_PEM
-- writes each certificate through a memory BIO; the PEMs are concatenated). It frees
-- each BIO at once instead of leaving it to the GC, which only makes it faster.
local BIO_CTRL_INFO = 3
local charpp = ffi.new("char *[1]")
local function to_pem(x509)
  local bio = C.BIO_new(C.BIO_s_mem())
  if bio == nil then
    return nil
  end
  if C.PEM_write_bio_X509(bio, x509) ~= 1 then
    C.BIO_free(bio)
    return nil
  end
  local len = C.BIO_ctrl(bio, BIO_CTRL_INFO, 0, charpp)
  local s = ffi_str(charpp[0], len)
  C.BIO_free(bio)
  return s
end

local parts = {}
local function b2_chain()
  local r = get_request()
  if not r then
    error("no request found")
  end
  local ssl = C.rct_bench_req_ssl(r)
  if ssl == nil then
    return nil, "connection is not TLS"
  end
  local leaf = C.SSL_get1_peer_certificate(ssl)
  if leaf == nil then
    return nil
  end
  local pem = to_pem(leaf)
  C.X509_free(leaf)
  if not pem then
    return nil, "PEM_write_bio_X509 failed"
  end
  parts[1] = pem
  local n = 1
  local chain = C.SSL_get_peer_cert_chain(ssl)
  if chain ~= nil then
    for i = 0, C.OPENSSL_sk_num(chain) - 1 do
      local p = to_pem(C.OPENSSL_sk_value(chain, i))
      if not p then
        return nil, "PEM_write_bio_X509 failed"
      end
      n = n + 1
      parts[n] = p
    end
  end
  return concat(parts, "", 1, n)
end

local impls = { candidate = candidate_chain, b1 = b1_chain, b2 = b2_chain }

-- The candidate's low layer on the request's SSL*: what the set phase may call (the
-- PDK functions refuse it, as Kong's do).
local low_chain = tls.ssl.get_full_client_certificate_chain
local function low_candidate_chain()
  return low_chain(C.rct_bench_req_ssl(get_request()))
end
local set_impls = { candidate = low_candidate_chain, b1 = b1_chain }

--- set_by_lua: the chain as a variable's value, for `return 200 $var` (no Lua
-- coroutine per request, the cheapest way to run Lua in a request).
function _M.chain_value(impl)
  return set_impls[impl]() or ""
end

--- content: the chain as the response body. With a Content-Length, as nginx's
-- `return` sends L's constant body: without it nginx sends the body chunked and the
-- final chunk in a second TLS record and write.
local header = ngx.header
local print = ngx.print
function _M.chain(impl)
  local pem, err = impls[impl]()
  if not pem then
    ngx.status = 500
    ngx.say(err or "no client certificate")
    return
  end
  header.content_length = #pem
  print(pem)
end

-- ---- per-call cost inside nginx -------------------------------------------------

local ts = ffi.new("rct_bench_timespec")
local CLOCK_THREAD_CPUTIME_ID = 3
local function cpu_ns()
  C.rct_bench_clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local function loop(f, n)
  local len = 0
  for _ = 1, n do
    local s = f()
    len = len + #s
  end
  return len
end

--- content: ?impl=candidate|b1|b2&n=N[&jitlog=PATH]: the CPU time of N calls, in ns
-- per call, after a warm-up; the three must return the same chain.
function _M.percall()
  local args = ngx.req.get_uri_args()
  local f = impls[args.impl]
  local n = tonumber(args.n) or 10000
  local want = candidate_chain()
  if not f or f() ~= want or b2_chain() ~= want or b1_chain() ~= want then
    ngx.status = 500
    ngx.say("bad impl, or the implementations disagree")
    return
  end
  local jitv
  if args.jitlog then
    jit.flush() -- drop compiled traces, so jit.v sees them all compiled again
    jitv = require "jit.v"
    jitv.start(args.jitlog)
  end
  loop(f, 2000) -- warm-up: let the JIT compile
  local t0 = cpu_ns()
  local total = loop(f, n)
  local t1 = cpu_ns()
  if jitv then
    jitv.off()
  end
  ngx.say("ns_per_call=", string.format("%.1f", (t1 - t0) / n), " bytes=", total / n)
end

-- ---- many tenants: one CA list per tenant, rotated over handshakes ----------------

-- TENANT[i]: the i-th list (the root plus 4 of the tenant CAs), each parsed on its own
-- from its own PEM as a multi-tenant gateway keeps them (no X509 shared between lists).
local TENANT, tenants_k, tenant_i = {}, 1, 0

--- init_worker: the first `max` lists: every 4-combination of the tenant CAs in
-- lexicographic order, each with the root first.
function _M.init_tenants(pki_dir, max)
  local function read(path)
    local f = assert(io.open(path))
    local s = f:read("*a")
    f:close()
    return s
  end
  local root = read(pki_dir .. "/root.pem")
  local t = {}
  for i = 1, 24 do
    t[i] = read(pki_dir .. "/tenants/t" .. i .. ".pem")
  end
  local n = 0
  for a = 1, 21 do
    for b = a + 1, 22 do
      for c = b + 1, 23 do
        for d = c + 1, 24 do
          n = n + 1
          TENANT[n] = assert(ngx_ssl.parse_pem_cert(root .. t[a] .. t[b] .. t[c] .. t[d]))
          if n == max then
            return
          end
        end
      end
    end
  end
end

--- /tenants?k=K: rotate over the first K lists from now on; each list is first passed
-- once to request_client_certificate on a throwaway SSL, so the measurement sees the
-- steady state of a worker that has met every tenant.
function _M.set_tenants(k)
  assert(k and k >= 1 and k <= #TENANT, "k out of range")
  tenants_k, tenant_i = k, 0
  local ctx = C.SSL_CTX_new(C.TLS_server_method())
  for i = 1, k do
    local ssl = C.SSL_new(ctx)
    C.SSL_set_accept_state(ssl)
    assert(tls.ssl.request_client_certificate(ssl, TENANT[i], 3))
    C.SSL_free(ssl)
  end
  C.SSL_CTX_free(ctx)
  local bytes, entries = tls.cache_usage("ca")
  ngx.say("k=", k, " ca_cache_bytes=", bytes, " ca_cache_entries=", entries)
end

local function next_tenant()
  tenant_i = tenant_i % tenants_k + 1
  return TENANT[tenant_i]
end

function _M.tenant_candidate()
  return candidate_cert(next_tenant())
end

function _M.tenant_b1()
  return b1_cert(next_tenant())
end

--- /memory: what the memory measurement's request does (the chain and the verify
-- result, as a plugin would), answering with a constant body.
function _M.memory_request()
  local pem = tls.get_full_client_certificate_chain()
  local v = tls.get_client_verify()
  if not pem or v ~= "SUCCESS" then
    ngx.log(ngx.ERR, "memory request: chain ", tostring(pem and #pem), ", verify ", tostring(v))
    return ngx.exit(500)
  end
  ngx.header["Content-Length"] = 2
  ngx.print("ok")
end

return _M
