--- Kong's `kong.client.tls` operations for OpenResty, over libresty_client_tls.
--
-- Two layers in one module:
--
-- **Low layer** (`tls.ssl`, plain LuaJIT, no `ngx` needed): every function
-- takes an explicit `SSL*` cdata (any pointer type; `nil` or NULL is answered
-- with `nil, "ssl is NULL"` by the library).
--
--    local tls = require "resty.client_tls"
--    tls.ssl.request_client_certificate(ssl [, ca_certs [, depth]]) --> true | nil, err
--    tls.ssl.disable_session_reuse(ssl)                             --> true | nil, err
--    tls.ssl.get_full_client_certificate_chain(ssl)                 --> pem | nil | nil, err
--    tls.ssl.get_client_verify(ssl)     --> "NONE" | "SUCCESS" | "FAILED:<reason>" | nil, err
--    tls.ssl.is_valid_client_verify(v)  --> boolean (false for a non-string)
--    tls.ssl.get_session_info(ssl)      --> { resumed = bool, server_name = str|nil } | nil, err
--
-- **PDK layer** (inside nginx, http subsystem; the Kong PDK signatures, each
-- phase-checked against `ngx.get_phase()`, working on the current request's SSL*):
--
--    tls.request_client_certificate([ca_certs [, depth]])  ssl_cert      --> true | nil, err
--    tls.disable_session_reuse()                           ssl_cert      --> true | nil, err
--    tls.get_full_client_certificate_chain()   rewrite .. log            --> pem | nil | nil, err
--    tls.set_client_verify(v)                  rewrite, access, content, balancer --> nothing
--    tls.get_client_verify()                   rewrite .. log            --> string | nil, err
--    tls.get_session_info()                    rewrite .. log            --> table | nil, err
--    tls.new()                                 any: a fresh table of the six functions above
--    tls.cache_limit(which [, bytes])          any: the byte limit of the "ca" or "chain" cache
--    tls.cache_usage(which)                    any: --> bytes, entries of this worker's cache
--
-- "rewrite .. log" = rewrite, access, content, balancer, header_filter,
-- body_filter, log. A call in another phase raises
-- `function cannot be called in <phase> phase (only in: <phases>)`.
--
-- Conventions: misuse (wrong phase, wrong argument type, bad `set_client_verify`
-- value, PDK call outside OpenResty) raises a Lua error; a runtime failure
-- returns `nil, err`; "no client certificate" (DECLINED) is a bare `nil`.
--
-- `ca_certs`: `nil` (no CA hints, connection's verify store kept), a
-- `STACK_OF(X509)*` cdata (`ngx.ssl.parse_pem_cert()`, a lua-resty-openssl
-- `x509.chain` object's `.ctx`), or the `x509.chain` object itself (a table
-- whose `ctx` is a cdata pointer). Only `void *` and pointers to OpenSSL
-- stack types are taken: another pointer type (`char *`, `int *`), a string,
-- a number or a table without `ctx` raises, and so does a NULL
-- pointer: a caller passing a cdata means to send hints, so silently sending
-- none would hide a bug (pass `nil` for "no CA list"). A `void *` is trusted to
-- be a STACK_OF(X509)*: LuaJIT cannot tell what it points to (a private key from
-- ngx.ssl.parse_pem_priv_key passed here would crash the worker). The library copies what
-- it keeps, so the object only has to live during the call; it does (see
-- `ca_arg`). `depth`: integer, default -1 = keep the connection's verify depth
-- (nginx's `ssl_verify_depth`, default 1).
--
-- On a request that is not over TLS, the PDK functions other than
-- set_client_verify return
-- `nil, "connection is not TLS or TLS support for Nginx not enabled"`.
-- `get_client_verify()` returns `ngx.ctx.CLIENT_VERIFY_OVERRIDE` first when
-- `set_client_verify()` stored one (also on a plain-HTTP request).
--
-- Loading: the library is searched along `package.cpath` (each template's `?`
-- replaced by `resty_client_tls`, then by `libresty_client_tls`, so
-- `lua_package_cpath "<repo>/target/release/lib?.so;;"` works), then by
-- `ffi.load("resty_client_tls")` (system linker path). At `require` time the
-- module checks that the library shares the process's OpenSSL and raises the
-- library's message (naming both versions) if not. A failed `require` can be
-- retried: every later `require` raises the same message again.
-- @module resty.client_tls

local module_name = ...  -- the name require() loads this file under

local ffi = require "ffi"

local C = ffi.C
local ffi_str = ffi.string
local ffi_new = ffi.new
local istype = ffi.istype
local typeof = ffi.typeof
local error = error
local type = type
local tostring = tostring
local tonumber = tonumber
local find = string.find
local pcall = pcall

-- Functions only (no struct/typedef), so a second require or another module's
-- declarations never clash. OpenSSL pointers are `void *`: it takes ngx.ssl's
-- `void *` and lua-resty-openssl's `OPENSSL_STACK *`, and (unlike `const void *`)
-- refuses a Lua string. The two `rct_*` aliases name lua-nginx-module's
-- `ngx_http_lua_ffi_get_req_ssl_pointer` through asm labels, one per C
-- signature: declaring the real name would fix its arity for every module in
-- the VM (LuaJIT keeps the first declaration), and ngx.ssl declares it itself.
ffi.cdef[[
int resty_client_tls_openssl_check(const char **err);
const char *resty_client_tls_version(void);
int resty_client_tls_request_client_certificate(void *ssl, void *ca_certs,
                                                int depth, const char **err);
int resty_client_tls_disable_session_reuse(void *ssl, const char **err);
int resty_client_tls_get_full_client_certificate_chain(void *ssl, char *buf,
                                                       size_t *buf_len, const char **err);
int resty_client_tls_get_client_verify(void *ssl, char *buf, size_t *buf_len,
                                       const char **err);
int resty_client_tls_is_valid_client_verify(const char *v, size_t len);
int resty_client_tls_get_session_info(void *ssl, int *resumed, char *buf,
                                      size_t *buf_len, const char **err);
size_t resty_client_tls_cache_limit(int which, size_t bytes);
size_t resty_client_tls_cache_usage(int which, size_t *entries);

void *rct_get_req_ssl_pointer_r(void *r)
    __asm__("ngx_http_lua_ffi_get_req_ssl_pointer");
void *rct_get_req_ssl_pointer_r_err(void *r, const char **err)
    __asm__("ngx_http_lua_ffi_get_req_ssl_pointer");
]]

-- Equal to ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DECLINED.
local OK, ERROR, AGAIN, DECLINED = 0, -1, -2, -5

local LIB = "resty_client_tls"
local NOT_TLS = "connection is not TLS or TLS support for Nginx not enabled"

--- Raises an error that stops the module from loading. require() leaves a
-- sentinel in package.loaded after a failed load, on which lua-resty-core's
-- require raises "loop or previous error loading module" ever after (in nginx,
-- on every later handshake of the worker): dropping it makes every later
-- require raise this message again.
local function load_error(msg)
  if type(module_name) == "string" then
    package.loaded[module_name] = nil
  end
  error(msg, 0)
end


--- Finds and loads the shared library; see "Loading" above.
local function load_lib()
  local tried = {}
  for template in package.cpath:gmatch("[^;]+") do
    -- "?" and "lib?" in each template, without "liblib..." from a "lib?.so" one.
    local names = template:find("lib%?[^/]*$") and { LIB } or { LIB, "lib" .. LIB }
    for _, name in ipairs(names) do
      local path = template:gsub("%?", name)
      local f = io.open(path, "rb")
      if f then
        f:close()
        local ok, lib = pcall(ffi.load, path)
        if ok then
          return lib
        end
        tried[#tried + 1] = path .. " (" .. tostring(lib) .. ")"
      else
        tried[#tried + 1] = path
      end
    end
  end
  local ok, lib = pcall(ffi.load, LIB)
  if ok then
    return lib
  end
  tried[#tried + 1] = "ffi.load(\"" .. LIB .. "\") (" .. tostring(lib) .. ")"
  load_error("resty.client_tls: cannot load lib" .. LIB .. ".so; tried:\n\t"
             .. table.concat(tried, "\n\t"))
end

-- Kept in an upvalue for the life of the module: LuaJIT unloads an ffi.load
-- library when its namespace is collected. Never cache single
-- C functions from it; index `clib` at each call (LuaJIT's advice).
local clib = load_lib()

-- Scratch cells shared by all calls: nginx runs one request at a time per VM
-- and nothing here yields between a C call and reading its outputs.
local errp = ffi_new("const char *[1]")
local sizep = ffi_new("size_t[1]")
local resumedp = ffi_new("int[1]")

do
  local ok, rc = pcall(function() return clib.resty_client_tls_openssl_check(errp) end)
  if not ok then
    load_error("resty.client_tls: the library lacks resty_client_tls_openssl_check ("
               .. tostring(rc) .. ")")
  end
  if rc ~= OK then
    -- The C message starts "resty-client-tls: "; ours says the module's name once.
    local msg = errp[0] ~= nil and ffi_str(errp[0]):gsub("^resty%-client%-tls: ", "")
    load_error("resty.client_tls: " .. (msg or "OpenSSL copy check failed"))
  end
end


-- Grow-only output buffer, first 10240 bytes (Kong's DEFAULT_CERT_CHAIN_SIZE).
local buf_size = 10240
local buf = ffi_new("char[?]", buf_size)

local CHAIN, VERIFY, SESSION = 1, 2, 3

local function call_getter(which, ssl)
  sizep[0] = buf_size
  if which == CHAIN then
    return clib.resty_client_tls_get_full_client_certificate_chain(ssl, buf, sizep, errp)
  elseif which == VERIFY then
    return clib.resty_client_tls_get_client_verify(ssl, buf, sizep, errp)
  end
  return clib.resty_client_tls_get_session_info(ssl, resumedp, buf, sizep, errp)
end

--- Runs one buffer-protocol getter: a second call only after AGAIN, into a
-- buffer grown to the size it reported; never a loop (none to abort a trace).
local function fetch(which, ssl)
  local rc = call_getter(which, ssl)
  if rc == AGAIN then
    local n = tonumber(sizep[0])
    if n > buf_size then
      buf = ffi_new("char[?]", n)
      buf_size = n
    end
    rc = call_getter(which, ssl)
    if rc == AGAIN then
      return nil, "output size kept changing"
    end
  end
  if rc == OK then
    return ffi_str(buf, sizep[0])
  end
  if rc == DECLINED then
    return nil
  end
  if rc == ERROR then
    return nil, errp[0] ~= nil and ffi_str(errp[0]) or "unknown error"
  end
  return nil, "unexpected return code " .. tostring(rc)
end

local function ok_or_err(rc)
  if rc == OK then
    return true
  end
  return nil, errp[0] ~= nil and ffi_str(errp[0]) or "unknown error"
end


-- Argument checks. They raise at level 3: helper -> API function -> caller.

local voidp_t = typeof("void *")
local ctype_kind = {}  -- ctype id -> "stack" | "pointer" | false, filled on first sight

--- What a cdata is, for the argument checks: "void" (void *, as ngx.ssl and
-- ngx_http_lua_ffi_get_req_ssl_pointer give), "stack" (a pointer to an OpenSSL stack
-- type, as lua-resty-openssl's chain.ctx), "pointer" (any other data pointer) or false
-- (not a pointer: a number, an array, a struct).
local function cdata_kind(x)
  if istype(voidp_t, x) then
    return "void"
  end
  local ct = typeof(x)
  local id = tonumber(ct)
  local kind = ctype_kind[id]
  if kind == nil then
    local name = tostring(ct)                         -- e.g. "ctype<struct stack_st *>"
    if not find(name, "*>", 1, true) then
      kind = false
    elseif find(name, "stack", 1, true) or find(name, "STACK", 1, true) then
      kind = "stack"
    else
      kind = "pointer"
    end
    ctype_kind[id] = kind
  end
  return kind
end

--- Raises unless `ssl` is nil or a pointer cdata (an array or a number would be read
-- as an SSL* and crash the worker).
local function check_ssl(ssl, fname)
  local t = type(ssl)
  if t == "nil" then
    return
  end
  if t ~= "cdata" then
    error("bad argument #1 to '" .. fname .. "' (SSL* cdata expected, got " .. t .. ")", 3)
  end
  if not cdata_kind(ssl) then
    error("bad argument #1 to '" .. fname .. "' (SSL* cdata expected, got non-pointer "
          .. tostring(typeof(ssl)) .. ")", 3)
  end
end

local CA_EXPECTED = " (ca_certs must be nil, a STACK_OF(X509)* cdata or a"
                    .. " resty.openssl x509.chain object, got "

--- Returns the `STACK_OF(X509)*` to pass (or nil), raising on anything else.
-- Anchoring: the finalizer that frees the stack sits on the
-- cdata itself (`ffi.gc` in ngx.ssl and lua-resty-openssl; LuaJIT runs no
-- __gc for tables), and that cdata is returned here and passed straight to
-- the C function, so it stays reachable until the call returns. The library
-- copies what it keeps, so the caller may drop it right after.
local function ca_arg(ca, fname, argn)
  local t = type(ca)
  if t == "nil" then
    return nil
  end
  local p = ca
  if t == "table" then
    p = ca.ctx
    if type(p) ~= "cdata" then
      error("bad argument #" .. argn .. " to '" .. fname .. "'" .. CA_EXPECTED
            .. "a table without a cdata 'ctx')", 3)
    end
  elseif t ~= "cdata" then
    error("bad argument #" .. argn .. " to '" .. fname .. "'" .. CA_EXPECTED .. t .. ")", 3)
  end
  local kind = cdata_kind(p)
  if kind ~= "void" and kind ~= "stack" then
    error("bad argument #" .. argn .. " to '" .. fname .. "'" .. CA_EXPECTED
          .. (kind and "" or "non-pointer ") .. tostring(typeof(p)) .. ")", 3)
  end
  if p == nil then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (ca_certs is a NULL pointer;"
          .. " pass nil to send no CA list)", 3)
  end
  return p
end

local function depth_arg(depth, fname, argn)
  if depth == nil then
    return -1
  end
  if type(depth) ~= "number" or depth % 1 ~= 0
     or depth < -2147483648 or depth > 2147483647
  then
    error("bad argument #" .. argn .. " to '" .. fname .. "' (depth must be nil or an"
          .. " integer, got " .. tostring(depth) .. ")", 3)
  end
  return depth
end


--- Low layer: explicit SSL*, plain LuaJIT.
-- @section low

local ssl_api = {}

--- Asks (does not require) the client for a certificate; call it during the
-- handshake, before the server's CertificateRequest (nginx: ssl_cert phase).
function ssl_api.request_client_certificate(ssl, ca_certs, depth)
  check_ssl(ssl, "request_client_certificate")
  local ca = ca_arg(ca_certs, "request_client_certificate", 2)
  local d = depth_arg(depth, "request_client_certificate", 3)
  return ok_or_err(clib.resty_client_tls_request_client_certificate(ssl, ca, d, errp))
end

--- Stops this connection's session from being resumed (tickets and IDs).
function ssl_api.disable_session_reuse(ssl)
  check_ssl(ssl, "disable_session_reuse")
  return ok_or_err(clib.resty_client_tls_disable_session_reuse(ssl, errp))
end

--- PEM of the client certificate, then the rest of the chain it sent.
function ssl_api.get_full_client_certificate_chain(ssl)
  check_ssl(ssl, "get_full_client_certificate_chain")
  return fetch(CHAIN, ssl)
end

--- nginx's $ssl_client_verify (without OCSP) for this connection.
function ssl_api.get_client_verify(ssl)
  check_ssl(ssl, "get_client_verify")
  return fetch(VERIFY, ssl)
end

--- Session facts: `{ resumed = boolean, server_name = string|nil }`, where
-- server_name is the SNI the session was first established under; on a
-- resumed connection it may differ from the SNI/Host of this one (compare them
-- to refuse cross-host resumption). Or `nil, err`.
local function session_info(ssl)
  local name, err = fetch(SESSION, ssl)
  if not name then
    return nil, err or "no session info"
  end
  return { resumed = resumedp[0] ~= 0, server_name = name ~= "" and name or nil }
end

function ssl_api.get_session_info(ssl)
  check_ssl(ssl, "get_session_info")
  return session_info(ssl)
end

--- true for "SUCCESS", "NONE" or "FAILED:<reason>" (reason may be empty).
local function is_valid_client_verify(v)
  if type(v) ~= "string" then
    return false
  end
  return clib.resty_client_tls_is_valid_client_verify(v, #v) == 1
end
ssl_api.is_valid_client_verify = is_valid_client_verify




--- PDK layer: the current request's SSL*, phase checks (needs OpenResty).
-- @section pdk

local function phase_set(list)
  local set = {}
  for i = 1, #list do
    set[list[i]] = true
  end
  return set, table.concat(list, ", ")
end

local CERT_PHASES, CERT_NAMES = phase_set({ "ssl_cert" })
local READ_PHASES, READ_NAMES = phase_set({ "rewrite", "access", "content", "balancer",
                                            "header_filter", "body_filter", "log" })
local SET_PHASES, SET_NAMES = phase_set({ "rewrite", "access", "content", "balancer" })

-- Filled by pdk_init() on the first PDK call, so plain LuaJIT can load us.
local ngx, get_phase, get_request
local req_ssl_err_arg = true  -- ngx_http_lua_ffi_get_req_ssl_pointer has `err`
-- The oldest lua-nginx-module the PDK layer is tested with.
local MIN_NGX_LUA = "0.10.23"

local function pdk_init()
  ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" then
    -- An older lua-nginx-module keeps `ngx` in each request's globals table, not
    -- in _G (seen with 0.10.13).
    ngx = getfenv(0).ngx
  end
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    ngx = nil
    error("resty.client_tls: the PDK functions need OpenResty (no ngx here);"
          .. " use require(\"resty.client_tls\").ssl.* with an explicit SSL*", 4)
  end
  local cfg = type(ngx.config) == "table" and ngx.config or {}
  if cfg.subsystem ~= "http" then
    error("resty.client_tls: the PDK functions support the http subsystem only", 4)
  end
  -- lua-nginx-module exports ngx_http_lua_ffi_get_req_ssl_pointer since before
  -- 0.10.23 (the oldest version tested); 0.10.13 (Debian 11) lacks it. Resolving
  -- the symbol now turns its absence into one clear error instead of LuaJIT's
  -- "undefined symbol" on every call.
  local v = cfg.ngx_lua_version
  if not pcall(function() return C.rct_get_req_ssl_pointer_r end) then
    local have = type(v) == "number"
        and string.format("lua-nginx-module %d.%d.%d", math.floor(v / 1000000), math.floor(v / 1000) % 1000, v % 1000)
        or "this lua-nginx-module"
    error("resty.client_tls: " .. have .. " does not export ngx_http_lua_ffi_get_req_ssl_pointer,"
          .. " which the PDK functions need: use lua-nginx-module " .. MIN_NGX_LUA
          .. " or newer; the explicit-SSL functions (require(\"resty.client_tls\").ssl.*)"
          .. " still work", 4)
  end
  local ok, base = pcall(require, "resty.core.base")
  if not ok then
    error("resty.client_tls: cannot load resty.core.base: " .. tostring(base), 4)
  end
  -- `(r)` before lua-nginx-module 0.10.29, `(r, const char **err)` from then
  -- on: each is called through the alias with its exact C signature. With no
  -- version known, the 2-argument form is used; that is harmless on a 1-argument
  -- callee too under the SysV x86-64 and AAPCS64 calling conventions: both
  -- arguments travel in registers (rdi/rsi, x0/x1), the callee never reads the
  -- second one, and the caller owns the stack, so nothing is left unbalanced.
  req_ssl_err_arg = type(v) ~= "number" or v >= 10029
  get_request = base.get_request
  get_phase = ngx.get_phase
end

--- Raises unless ngx.get_phase() is in `allowed` (Kong's message format).
local function check_phase(allowed, names)
  if not get_phase then
    pdk_init()
  end
  local phase = get_phase()
  if not allowed[phase] then
    error("function cannot be called in " .. tostring(phase)
          .. " phase (only in: " .. names .. ")", 3)
  end
end

--- The current request's SSL*, or nil on a connection without TLS (the 0.10.29+
-- `err` text is not used: NOT_TLS says the same on every version).
local function req_ssl()
  local r = get_request()
  if not r then
    error("no request found", 3)
  end
  local ssl
  if req_ssl_err_arg then
    errp[0] = nil
    ssl = C.rct_get_req_ssl_pointer_r_err(r, errp)
  else
    ssl = C.rct_get_req_ssl_pointer_r(r)
  end
  if ssl == nil then
    return nil
  end
  return ssl
end

local _M = { _VERSION = "0.2.0", ssl = ssl_api }

--- Asks the client for a certificate (ssl_cert phase). `ca_certs`: see above;
-- `depth`: optional verify depth beyond Kong's signature.
function _M.request_client_certificate(ca_certs, depth)
  check_phase(CERT_PHASES, CERT_NAMES)
  local ca = ca_arg(ca_certs, "request_client_certificate", 1)
  local d = depth_arg(depth, "request_client_certificate", 2)
  local ssl = req_ssl()
  if not ssl then
    return nil, NOT_TLS
  end
  return ok_or_err(clib.resty_client_tls_request_client_certificate(ssl, ca, d, errp))
end

--- Disables session resumption for this connection (ssl_cert phase).
function _M.disable_session_reuse()
  check_phase(CERT_PHASES, CERT_NAMES)
  local ssl = req_ssl()
  if not ssl then
    return nil, NOT_TLS
  end
  return ok_or_err(clib.resty_client_tls_disable_session_reuse(ssl, errp))
end

--- PEM chain the client sent; nil when it sent none.
function _M.get_full_client_certificate_chain()
  check_phase(READ_PHASES, READ_NAMES)
  local ssl = req_ssl()
  if not ssl then
    return nil, NOT_TLS
  end
  return fetch(CHAIN, ssl)
end

--- Overrides the verify result reported for this request (Kong's semantics).
function _M.set_client_verify(v)
  check_phase(SET_PHASES, SET_NAMES)
  if type(v) ~= "string" then
    error("bad argument #1 to 'set_client_verify' (string expected, got "
          .. type(v) .. ")", 2)
  end
  if not is_valid_client_verify(v) then
    error("unknown client verify value: " .. v .. " accepted values are:"
          .. " \"SUCCESS\", \"NONE\" or \"FAILED:<reason>\"", 2)
  end
  ngx.ctx.CLIENT_VERIFY_OVERRIDE = v
end

--- The override if set, else the connection's $ssl_client_verify value.
function _M.get_client_verify()
  check_phase(READ_PHASES, READ_NAMES)
  local v = ngx.ctx.CLIENT_VERIFY_OVERRIDE
  if v ~= nil then
    return v
  end
  local ssl = req_ssl()
  if not ssl then
    return nil, NOT_TLS
  end
  return fetch(VERIFY, ssl)
end

--- Session facts of this request's connection (see tls.ssl.get_session_info).
function _M.get_session_info()
  check_phase(READ_PHASES, READ_NAMES)
  local ssl = req_ssl()
  if not ssl then
    return nil, NOT_TLS
  end
  return session_info(ssl)
end

--- The per-worker caches, bounded in bytes (see the C header): `which` is "ca" (the CA
-- lists of request_client_certificate) or "chain" (the encoded client chains).
-- @section caches

local CACHES = { ca = 0, chain = 1 }
local entriesp = ffi_new("size_t[1]")
local QUERY = ffi.cast("size_t", -1)  -- (size_t)-1: read the limit, change nothing

local function cache_id(which, fname)
  local id = CACHES[which]
  if not id then
    error("bad argument #1 to '" .. fname .. "' (\"ca\" or \"chain\" expected, got "
          .. tostring(which) .. ")", 3)
  end
  return id
end

--- Sets the byte limit of a cache (process-wide: call it in init_by_lua) and returns the
-- previous one; without `bytes`, only returns the current limit. 0 turns the cache off.
function _M.cache_limit(which, bytes)
  local id = cache_id(which, "cache_limit")
  if bytes == nil then
    return tonumber(clib.resty_client_tls_cache_limit(id, QUERY))
  end
  if type(bytes) ~= "number" or bytes < 0 or bytes % 1 ~= 0 or bytes >= 2^53 then
    error("bad argument #2 to 'cache_limit' (a byte count expected, got " .. tostring(bytes) .. ")", 2)
  end
  return tonumber(clib.resty_client_tls_cache_limit(id, bytes))
end

--- Bytes (an estimate) and entries the calling worker's cache holds now.
function _M.cache_usage(which)
  local id = cache_id(which, "cache_usage")
  local bytes = clib.resty_client_tls_cache_usage(id, entriesp)
  return tonumber(bytes), tonumber(entriesp[0])
end


--- A fresh table of the PDK functions: `kong.client.tls = require("resty.client_tls").new()`.
function _M.new()
  return {
    request_client_certificate = _M.request_client_certificate,
    disable_session_reuse = _M.disable_session_reuse,
    get_full_client_certificate_chain = _M.get_full_client_certificate_chain,
    set_client_verify = _M.set_client_verify,
    get_client_verify = _M.get_client_verify,
    get_session_info = _M.get_session_info,
  }
end

return _M
