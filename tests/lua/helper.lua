-- Shared helpers for the plain-LuaJIT tests of resty.client_tls:
-- a tiny test runner, test certificates made with the openssl CLI, and an
-- in-memory TLS handshake driven through LuaJIT FFI over libssl/libcrypto.
local ffi = require "ffi"

local H = {}

H.repo = assert(os.getenv("RCT_REPO"), "run through tests/lua/run.sh (RCT_REPO unset)")
H.lib_dir = os.getenv("RCT_LIB_DIR") or (H.repo .. "/target/release")
package.path = H.repo .. "/lua-bindings/?.lua;" .. H.repo .. "/tests/lua/?.lua;" .. package.path
package.cpath = H.lib_dir .. "/lib?.so;" .. package.cpath

-- test runner ---------------------------------------------------------------

local passed, failed = 0, 0

function H.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    passed = passed + 1
    print("ok     " .. name)
  else
    failed = failed + 1
    print("FAILED " .. name .. "\n    " .. tostring(err):gsub("\n", "\n    "))
  end
end

function H.skip(name, why)
  print("skip   " .. name .. " (" .. why .. ")")
end

function H.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: expected %s, got %s", what or "value",
                        type(want) == "string" and string.format("%q", want) or tostring(want),
                        type(got) == "string" and string.format("%q", got) or tostring(got)), 2)
  end
end

function H.ok(v, what)
  if not v then
    error((what or "assertion") .. " failed", 2)
  end
  return v
end

-- Calls fn, expects an error containing `needle` (plain text); returns it.
function H.raises(fn, needle)
  local ok, err = pcall(fn)
  if ok then
    error("expected an error containing " .. string.format("%q", needle), 2)
  end
  err = tostring(err)
  if not err:find(needle, 1, true) then
    error(string.format("error %q does not contain %q", err, needle), 2)
  end
  return err
end

local tmpdirs = {}

function H.done()
  for _, d in ipairs(tmpdirs) do
    os.execute("rm -rf '" .. d .. "'")
  end
  print(string.format("RESULT %d %d", passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

-- Runs handler n times the way nginx runs a request handler (each call in a
-- new coroutine resumed from C), with jit.v logging. Returns the log lines
-- that are trace aborts with a reason other than LuaJIT's plain refusal to
-- start a root trace in a function that returns to a Lua caller ("leaving
-- loop in root trace": the caller's trace inlines it) or a GC finalizer that
-- happened to run while a trace was recorded ("error thrown or hook called
-- during recording": recording is retried; seen once in ~10 runs, from the
-- ffi.gc finalizers of earlier tests), and the whole log.
function H.jit_check(handler, n)
  local log = os.tmpname()
  local v = require "jit.v"
  -- Run the finalizers of earlier tests' garbage now, not during trace recording (where
  -- they abort a recording; enough of those and LuaJIT compiles the callees as root
  -- traces of their own instead of the handler).
  collectgarbage("collect")
  collectgarbage("collect")
  jit.flush()
  v.on(log)
  for _ = 1, n do
    local co = coroutine.create(handler)
    local ok, err = coroutine.resume(co)
    if not ok then
      v.off()
      os.remove(log)
      error(err, 2)
    end
  end
  v.off()
  local text = H.read(log)
  os.remove(log)
  local bad = {}
  for line in text:gmatch("[^\n]+") do
    if line:find("TRACE ---", 1, true) and line:find("client_tls.lua", 1, true)
       and not line:find("leaving loop in root trace", 1, true)
       and not line:find("error thrown or hook called during recording", 1, true) then
      bad[#bad + 1] = line
    end
  end
  return bad, text
end

-- Whether jit_check's log shows the module's code compiled: in the handler's root trace
-- (`<file>:N return`, the module's functions inlined), or in root traces of the module's
-- own functions. Which of the two LuaJIT picks depends on which function's hot counter
-- fills first, and those counters are shared by hash of the bytecode address, which
-- changes from run to run (seen: about 1 run in 15 on trixie's LuaJIT); both are fine.
function H.compiled(log, file)
  return log:find("%[TRACE +%d+ " .. file:gsub("%.", "%%.") .. ":%d+ return%]") ~= nil
      or log:find("%[TRACE +%d+ client_tls%.lua:%d+ return%]") ~= nil
end

-- files and processes ---------------------------------------------------------

function H.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function H.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

function H.sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  if ok ~= 0 and ok ~= true then
    error("command failed: " .. cmd)
  end
end

function H.tmpdir()
  local p = io.popen("mktemp -d /tmp/rct-lua.XXXXXX")
  local d = p:read("*l")
  p:close()
  assert(d and d:match("^/tmp/rct%-lua%.[%w]+$"), "mktemp failed")
  tmpdirs[#tmpdirs + 1] = d  -- removed by H.done()
  return d
end

-- certificates ------------------------------------------------------------------

local CNF = [[
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.test,DNS:b.test
]]

-- Makes root -> intermediate -> client, a self-signed client, a server cert
-- and six filler CA certs (RSA-4096, one key) to push a chain past 10240 bytes.
-- Returns { dir = ..., <name> = path, pem = { <name> = text } }.
function H.make_certs()
  local d = H.tmpdir()
  local c = { dir = d, pem = {} }
  H.write(d .. "/openssl.cnf", CNF)
  local o = "openssl"
  local cnf = " -config " .. d .. "/openssl.cnf "
  local ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
  local function self_signed(name, cn, ext, key_opt)
    local key = key_opt or (ec .. "-keyout " .. d .. "/" .. name .. ".key ")
    H.sh(o .. " req" .. cnf .. "-x509" .. key .. "-out " .. d .. "/" .. name
         .. ".pem -subj '/CN=" .. cn .. "' -days 3650"
         .. " -extensions " .. ext)
  end
  local serial = 10
  local function signed(name, cn, ext, ca)
    serial = serial + 1
    H.sh(o .. " req" .. cnf .. "-new" .. ec .. "-keyout " .. d .. "/" .. name .. ".key -out "
         .. d .. "/" .. name .. ".csr -subj '/CN=" .. cn .. "'")
    H.sh(o .. " x509 -req -in " .. d .. "/" .. name .. ".csr -CA " .. d .. "/" .. ca
         .. ".pem -CAkey " .. d .. "/" .. ca .. ".key -set_serial " .. serial
         .. " -days 3650 -extfile " .. d .. "/openssl.cnf -extensions " .. ext
         .. " -out " .. d .. "/" .. name .. ".pem")
  end
  self_signed("root", "RCT Test Root CA", "v3_ca")
  signed("inter", "RCT Test Intermediate CA", "v3_ca", "root")
  signed("client", "RCT Test Client", "v3_client", "inter")
  self_signed("selfclient", "RCT Self-signed Client", "v3_client")
  self_signed("server", "a.test", "v3_server")
  H.sh(o .. " genrsa -out " .. d .. "/filler.key 4096")
  for i = 1, 6 do
    self_signed("filler" .. i, "RCT Filler CA " .. i, "v3_ca", " -key " .. d .. "/filler.key ")
  end
  for _, n in ipairs({ "root", "inter", "client", "selfclient", "server",
                       "filler1", "filler2", "filler3", "filler4", "filler5", "filler6" }) do
    c[n] = d .. "/" .. n .. ".pem"
    c.pem[n] = H.read(c[n])
  end
  -- client certificate files as sent: leaf + intermediate, and a >10 KB one
  c.client_chain = d .. "/client_chain.pem"
  H.write(c.client_chain, c.pem.client .. c.pem.inter)
  local big = c.pem.client .. c.pem.inter
  for i = 1, 6 do
    big = big .. c.pem["filler" .. i]
  end
  c.client_big = d .. "/client_big.pem"
  H.write(c.client_big, big)
  c.pem.client_chain, c.pem.client_big = c.pem.client .. c.pem.inter, big
  return c
end

-- OpenSSL through FFI (test-side only; the module never declares these) ---------

ffi.cdef[[
void *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(void *a);
int BIO_new_bio_pair(void **bio1, size_t writebuf1, void **bio2, size_t writebuf2);
void *PEM_read_bio_X509(void *bp, void *x, void *cb, void *u);
void X509_free(void *x);
void *OPENSSL_sk_new_null(void);
int OPENSSL_sk_push(void *st, const void *data);
int OPENSSL_sk_num(const void *st);
void *OPENSSL_sk_value(const void *st, int i);
void OPENSSL_sk_pop_free(void *st, void (*func)(void *));
char *X509_NAME_oneline(const void *a, char *buf, int size);
unsigned long ERR_get_error(void);
void ERR_error_string_n(unsigned long e, char *buf, size_t len);

const void *TLS_server_method(void);
const void *TLS_client_method(void);
void *SSL_CTX_new(const void *meth);
void SSL_CTX_free(void *ctx);
int SSL_CTX_use_certificate_chain_file(void *ctx, const char *file);
int SSL_CTX_use_PrivateKey_file(void *ctx, const char *file, int type);
long SSL_CTX_ctrl(void *ctx, int cmd, long larg, void *parg);
long SSL_CTX_callback_ctrl(void *ctx, int cmd, void (*fp)(void));
int SSL_CTX_set_session_id_context(void *ctx, const unsigned char *sid_ctx, unsigned int len);
uint64_t SSL_CTX_set_options(void *ctx, uint64_t op);
void SSL_CTX_set_cert_cb(void *c, int (*cb)(void *ssl, void *arg), void *arg);
void *SSL_new(void *ctx);
void SSL_free(void *ssl);
void SSL_set_bio(void *s, void *rbio, void *wbio);
void SSL_set_accept_state(void *s);
void SSL_set_connect_state(void *s);
int SSL_do_handshake(void *s);
int SSL_get_error(const void *s, int ret);
int SSL_read(void *s, void *buf, int num);
int SSL_shutdown(void *s);
long SSL_ctrl(void *s, int cmd, long larg, void *parg);
void *SSL_get1_session(void *s);
int SSL_set_session(void *s, void *session);
void SSL_SESSION_free(void *session);
int SSL_session_reused(const void *s);
void *SSL_get_client_CA_list(const void *s);
]]

-- The OpenSSL the library was linked against, whatever its soname (libssl.so.3,
-- libssl.so.1.1): loading the library into the global namespace brings its libssl
-- and libcrypto with it, and ffi.C then resolves their symbols.
H.lib_global = ffi.load(H.lib_dir .. "/libresty_client_tls.so", true)
local crypto = ffi.C
local ssl = ffi.C
H.crypto, H.libssl = crypto, ssl

local TLS1_2_VERSION = 0x0303
local SSL_CTRL_SET_MAX_PROTO_VERSION = 124
local SSL_CTRL_SET_TLSEXT_HOSTNAME = 55
local SSL_OP_NO_TICKET = 0x4000ULL
local SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE = 2, 3

function H.ossl_err()
  local e = crypto.ERR_get_error()
  if e == 0 then
    return "no OpenSSL error"
  end
  local b = ffi.new("char[256]")
  crypto.ERR_error_string_n(e, b, 256)
  while crypto.ERR_get_error() ~= 0 do end
  return ffi.string(b)
end

-- A STACK_OF(X509)* holding the certificates of the given PEM texts, in order,
-- freed (with its certificates) by the GC, like resty.openssl's chain.ctx.
function H.x509_stack(pems)
  local st = ffi.gc(crypto.OPENSSL_sk_new_null(), function(p)
    crypto.OPENSSL_sk_pop_free(p, crypto.X509_free)
  end)
  for _, pem in ipairs(pems) do
    local bio = crypto.BIO_new_mem_buf(pem, #pem)
    local x = crypto.PEM_read_bio_X509(bio, nil, nil, nil)
    crypto.BIO_free(bio)
    assert(x ~= nil, "PEM_read_bio_X509: " .. H.ossl_err())
    assert(crypto.OPENSSL_sk_push(st, x) > 0)
  end
  return st
end

-- The one certificate callback of every server SSL_CTX made here; it runs
-- H.on_cert(ssl) (like ssl_certificate_by_lua) and keeps any error for later.
H.on_cert, H.cert_cb_error = nil, nil
local cert_cb = ffi.cast("int (*)(void *, void *)", function(s)
  if H.on_cert then
    local ok, err = pcall(H.on_cert, s)
    if not ok then
      H.cert_cb_error = err
    end
  end
  return 1
end)

-- Accepts every server name, as nginx's does: without such a callback OpenSSL
-- does not record the SNI in the server's session.
local SSL_CTRL_SET_TLSEXT_SERVERNAME_CB = 53
local servername_cb = ffi.cast("int (*)(void *, int *, void *)", function() return 0 end)

-- opts: cert, key (server), client_cert, client_key (client), tls12 (cap both
-- at TLS 1.2), no_ticket (client offers no tickets).
function H.new_ctxs(c, opts)
  opts = opts or {}
  local s = ffi.gc(ssl.SSL_CTX_new(ssl.TLS_server_method()), ssl.SSL_CTX_free)
  assert(ssl.SSL_CTX_use_certificate_chain_file(s, c.server) == 1, H.ossl_err())
  assert(ssl.SSL_CTX_use_PrivateKey_file(s, c.dir .. "/server.key", 1) == 1, H.ossl_err())
  assert(ssl.SSL_CTX_set_session_id_context(s, "rct", 3) == 1)
  ssl.SSL_CTX_set_cert_cb(s, cert_cb, nil)
  ssl.SSL_CTX_callback_ctrl(s, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                            ffi.cast("void (*)(void)", servername_cb))
  local cl = ffi.gc(ssl.SSL_CTX_new(ssl.TLS_client_method()), ssl.SSL_CTX_free)
  if opts.client_cert then
    assert(ssl.SSL_CTX_use_certificate_chain_file(cl, opts.client_cert) == 1, H.ossl_err())
    assert(ssl.SSL_CTX_use_PrivateKey_file(cl, opts.client_key, 1) == 1, H.ossl_err())
  end
  if opts.tls12 then
    ssl.SSL_CTX_ctrl(s, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_2_VERSION, nil)
    ssl.SSL_CTX_ctrl(cl, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_2_VERSION, nil)
  end
  if opts.no_ticket then
    ssl.SSL_CTX_set_options(cl, SSL_OP_NO_TICKET)
  end
  return s, cl
end

-- An SSL* freed by the GC.
function H.new_ssl(ctx)
  return ffi.gc(ssl.SSL_new(ctx), ssl.SSL_free)
end

local function step(s)
  local rc = ssl.SSL_do_handshake(s)
  if rc == 1 then
    return true
  end
  local e = ssl.SSL_get_error(s, rc)
  if e ~= SSL_ERROR_WANT_READ and e ~= SSL_ERROR_WANT_WRITE then
    error("SSL_do_handshake: error " .. e .. ": " .. H.ossl_err(), 3)
  end
  return false
end

-- Runs a full handshake over a BIO pair. Returns the server and client SSL*
-- (both GC-owned). opts.sni: server name; opts.session: client session to offer.
function H.handshake(sctx, cctx, opts)
  opts = opts or {}
  local s, c = H.new_ssl(sctx), H.new_ssl(cctx)
  local b = ffi.new("void *[2]")
  assert(crypto.BIO_new_bio_pair(b, 0, b + 1, 0) == 1)
  ssl.SSL_set_bio(c, b[0], b[0])
  ssl.SSL_set_bio(s, b[1], b[1])
  ssl.SSL_set_connect_state(c)
  ssl.SSL_set_accept_state(s)
  if opts.sni then
    ssl.SSL_ctrl(c, SSL_CTRL_SET_TLSEXT_HOSTNAME, 0, ffi.cast("void *", opts.sni))
  end
  if opts.session then
    assert(ssl.SSL_set_session(c, opts.session) == 1)
  end
  H.cert_cb_error = nil
  local cdone, sdone = false, false
  for _ = 1, 20 do
    cdone = cdone or step(c)
    sdone = sdone or step(s)
    if cdone and sdone then
      break
    end
  end
  if H.cert_cb_error then
    error("certificate callback: " .. tostring(H.cert_cb_error), 2)
  end
  assert(cdone and sdone, "handshake did not finish")
  -- let the client read TLS 1.3 tickets (the read itself just wants more data)
  local rb = ffi.new("char[16]")
  ssl.SSL_read(c, rb, 16)
  return s, c
end
-- Callbacks into Lua must not run under a JIT-compiled C call.
jit.off(H.handshake, true)
jit.off(step, true)

-- Clean close on both sides, so the sessions stay resumable.
function H.close(s, c)
  ssl.SSL_shutdown(c)
  ssl.SSL_shutdown(s)
end

function H.session(c)
  return ffi.gc(ssl.SSL_get1_session(c), ssl.SSL_SESSION_free)
end

-- The CA names a client received in CertificateRequest, as X509_NAME_oneline.
function H.client_ca_names(c)
  local st = ssl.SSL_get_client_CA_list(c)
  local names = {}
  if st == nil then
    return names
  end
  local b = ffi.new("char[512]")
  for i = 0, crypto.OPENSSL_sk_num(st) - 1 do
    names[#names + 1] = ffi.string(crypto.X509_NAME_oneline(crypto.OPENSSL_sk_value(st, i), b, 512))
  end
  return names
end

return H
