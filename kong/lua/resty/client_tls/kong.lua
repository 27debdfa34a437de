--- lua-kong-nginx-module's `resty.kong.tls`, on top of `resty.client_tls`, for an
-- OpenResty (or Debian nginx + lua module) built without lua-kong-nginx-module.
-- See docs/kong.md.
--
-- Kong's PDK (`kong.client.tls`) does `require "resty.kong.tls"`. Make that
-- name resolve to this module in one of two ways:
--
--   * put `<prefix>/share/resty-client-tls/kong-shim/?.lua` first on
--     `lua_package_path` (Kong: the `lua_package_path` setting of kong.conf);
--     that directory holds a one-line `resty/kong/tls.lua` returning this module
--     (the Debian package installs that file on the default path instead);
--   * or, before anything requires it (init_by_lua):
--     `package.loaded["resty.kong.tls"] = require "resty.client_tls.kong"`.
--
-- Same names, phases, returns and errors as resty.kong.tls:
--
--   request_client_certificate([ca_certs])  ssl_cert   --> true | nil, err
--   set_client_ca_list(ca_certs)            ssl_cert   --> true | nil, err
--   disable_session_reuse()                 ssl_cert   --> true | nil, err
--   get_full_client_certificate_chain()     rewrite, access, content, balancer, log
--                                                      --> pem | nil | nil, err
--   get_request_ssl_pointer()               any phase with a request --> SSL* | nil, err
--   get_ssl_pointer(sock)                   where the cosocket lives --> SSL* | nil, err
--
-- A call of the first four in another phase raises "API disabled in the current
-- context". The first two are the 2019-2022 API (lua-kong-nginx-module removed them
-- when Kong moved to ngx.ssl.verify_client); current Kong calls the last four.
-- get_ssl_pointer needs a lua-nginx-module that exposes a cosocket's SSL*
-- (tcpsock:getsslpointer(), lua-nginx-module 0.10.30 / lua-resty-core 0.1.33); on
-- older ones it raises, saying so. Every other function of resty.kong.tls (the
-- upstream and stream ones) raises "<name>: not provided by resty-client-tls (<why>)":
-- they need nginx patches that no library can supply, so they never fail silently open.
-- @module resty.client_tls.kong

local client_tls = require "resty.client_tls"
local ffi = require "ffi"

local C = ffi.C
local error = error
local pcall = pcall
local rawget = rawget
local tostring = tostring
local type = type

-- lua-nginx-module's ngx_http_lua_ffi_get_req_ssl_pointer under aliases of our own
-- (asm labels), one per C signature: `(r)` before 0.10.29, `(r, const char **err)`
-- from 0.10.29 on. Aliases leave the real name free for ngx.ssl to declare with its
-- own arity. Functions only, so a second load never clashes.
ffi.cdef[[
void *rct_kong_req_ssl_pointer_r(void *r)
    __asm__("ngx_http_lua_ffi_get_req_ssl_pointer");
void *rct_kong_req_ssl_pointer_r_err(void *r, const char **err)
    __asm__("ngx_http_lua_ffi_get_req_ssl_pointer");
]]

local _M = {
  _VERSION = client_tls._VERSION,
  -- Tells this module apart from lua-kong-nginx-module's resty.kong.tls.
  _IMPLEMENTATION = "resty-client-tls",
}

local DISABLED = "API disabled in the current context"
local NO_SSL = "no ssl object"   -- resty.kong.tls's words for "not a TLS connection"

-- resty.kong.tls's own phase lists (narrower than resty.client_tls's PDK layer,
-- which also allows header_filter and body_filter for the chain).
local CERT_PHASES = { ssl_cert = true }
local CHAIN_PHASES = {
  rewrite = true, access = true, content = true, balancer = true, log = true,
}

--- `ngx`, wherever this lua-nginx-module keeps it (0.10.13 keeps it in each
-- request's globals, not in _G); raises outside OpenResty.
local function get_ngx(level)
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" then
    ngx = getfenv(0).ngx
  end
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" then
    error("resty.client_tls.kong needs OpenResty (no ngx here)", level + 1)
  end
  return ngx
end

local function check_phase(allowed)
  if not allowed[get_ngx(3).get_phase()] then
    error(DISABLED, 3)
  end
end


--- Asks (does not require) the client for a certificate.
-- `ca_certs` (optional): a `STACK_OF(X509)*` cdata (`ngx.ssl.parse_pem_cert`,
-- a lua-resty-openssl `x509.chain` `.ctx`) or the chain object: its subjects
-- become the CA DN hints and its certificates the verify store of this
-- connection. A boolean is accepted and ignored (lua-kong-nginx-module's old
-- `request_client_certificate(no_session_reuse)` signature, which ignored it too).
-- The verify depth is the connection's (`ssl_verify_depth`), as with Kong's C code.
function _M.request_client_certificate(ca_certs)
  check_phase(CERT_PHASES)
  if type(ca_certs) == "boolean" then
    ca_certs = nil
  end
  return client_tls.request_client_certificate(ca_certs)
end


--- Sends `ca_list`'s subjects as the CA DN hints. The library has one call for
-- hints and verify store together, so this also requests the certificate and
-- makes `ca_list` the connection's verify store: Kong calls it right after
-- `request_client_certificate()`, where that is the same thing.
function _M.set_client_ca_list(ca_list)
  check_phase(CERT_PHASES)
  if ca_list == nil then
    error("bad argument #1 to 'set_client_ca_list' (STACK_OF(X509)* cdata expected, got nil)", 2)
  end
  return client_tls.request_client_certificate(ca_list)
end


--- No resumption of this connection's session (tickets and session IDs,
-- TLS 1.2 and 1.3).
function _M.disable_session_reuse()
  check_phase(CERT_PHASES)
  return client_tls.disable_session_reuse()
end


--- PEM of the client certificate followed by the chain it sent; `nil` when it
-- sent none; `nil, err` on a connection without TLS or on failure. On a resumed
-- session OpenSSL keeps only the client certificate: the result is that
-- certificate alone (resty.kong.tls returns nil there).
function _M.get_full_client_certificate_chain()
  check_phase(CHAIN_PHASES)
  return client_tls.get_full_client_certificate_chain()
end


-- get_request_ssl_pointer ---------------------------------------------------------

local get_request          -- resty.core.base.get_request, on first use
local req_ssl_err_arg      -- true: call the (r, err) signature
local req_errp = ffi.new("const char *[1]")

--- Resolves what get_request_ssl_pointer needs, once; raises with a clear message
-- when this lua-nginx-module lacks the pointer function.
local function req_ssl_init()
  local ngx = get_ngx(3)
  local cfg = type(ngx.config) == "table" and ngx.config or {}
  if cfg.subsystem ~= "http" then
    error("get_request_ssl_pointer: resty-client-tls supports the http subsystem only", 3)
  end
  local v = cfg.ngx_lua_version
  if not pcall(function() return C.rct_kong_req_ssl_pointer_r end) then
    local have = type(v) == "number"
        and string.format("lua-nginx-module %d.%d.%d", math.floor(v / 1000000),
                          math.floor(v / 1000) % 1000, v % 1000)
        or "this lua-nginx-module"
    error("get_request_ssl_pointer: " .. have .. " does not export"
          .. " ngx_http_lua_ffi_get_req_ssl_pointer; use lua-nginx-module 0.10.23 or newer", 3)
  end
  local ok, base = pcall(require, "resty.core.base")
  if not ok then
    error("get_request_ssl_pointer: cannot load resty.core.base: " .. tostring(base), 3)
  end
  -- Unknown version: the 2-argument call, harmless on the 1-argument function too
  -- (x86-64 and AArch64 pass both in registers; see resty.client_tls).
  req_ssl_err_arg = type(v) ~= "number" or v >= 10029
  get_request = base.get_request
end

--- The current request's (or handshake's) `SSL*` as a `void *` cdata, or
-- `nil, "no ssl object"` on a connection without TLS. Any phase with a request
-- (ssl_cert included); raises "no request found" elsewhere, as resty.kong.tls does.
-- The pointer is valid for this connection only: keep it no longer without SSL_up_ref.
function _M.get_request_ssl_pointer()
  if not get_request then
    req_ssl_init()
  end
  local r = get_request()
  if not r then
    error("no request found", 2)
  end
  local ssl
  if req_ssl_err_arg then
    req_errp[0] = nil
    ssl = C.rct_kong_req_ssl_pointer_r_err(r, req_errp)
  else
    ssl = C.rct_kong_req_ssl_pointer_r(r)
  end
  if ssl == nil then
    return nil, NO_SSL
  end
  return ssl
end


-- get_ssl_pointer --------------------------------------------------------------

local NO_SOCK_SSL = "get_ssl_pointer: not available with this lua-nginx-module: it exposes"
  .. " no cosocket SSL* (tcpsock:getsslpointer() arrived in lua-nginx-module 0.10.30 and"
  .. " lua-resty-core 0.1.33, OpenResty 1.29.2.3); resty.kong.tls gets it from"
  .. " lua-kong-nginx-module's C code, which this nginx does not have"

--- A cosocket's `SSL*` after its `sslhandshake()`, or `nil, err`. Stock
-- lua-nginx-module exposes one only from 0.10.30 on (lua-resty-core 0.1.33 adds
-- the `tcpsock:getsslpointer()` method); this calls that method when the
-- cosocket has it and raises with a clear message when it does not.
function _M.get_ssl_pointer(sock)
  if type(sock) ~= "table" or sock[1] == nil then
    error("bad argument #1 to 'get_ssl_pointer' (cosocket expected, got "
          .. (type(sock) == "table" and "a table that is not a cosocket" or type(sock)) .. ")", 2)
  end
  local method = sock.getsslpointer
  if type(method) ~= "function" then
    error(NO_SOCK_SSL, 2)
  end
  local ssl, err = method(sock)
  if ssl == nil then
    return nil, err or NO_SSL
  end
  return ssl
end


-- what resty-client-tls does not provide ----------------------------------------------

local UPSTREAM = "it configures the TLS connection to the upstream server, which only"
  .. " lua-kong-nginx-module's patches to nginx's upstream code can reach"

--- Every function of current lua-kong-nginx-module's resty.kong.tls that is not
-- above, and why. Each raises at the caller, never "attempt to call a nil value".
local NOT_PROVIDED = {
  set_upstream_cert_and_key = UPSTREAM,
  set_upstream_ssl_trusted_store = UPSTREAM,
  set_upstream_ssl_verify = UPSTREAM,
  set_upstream_ssl_verify_depth = UPSTREAM,
  set_upstream_ssl_sans_dnsnames = UPSTREAM,
  set_upstream_ssl_sans_uris = UPSTREAM,
  disable_proxy_ssl = "it is a stream-subsystem function that turns off TLS to the"
    .. " upstream through lua-kong-nginx-module's nginx patches; resty-client-tls"
    .. " supports the http subsystem and the client side only",
}

for name, why in pairs(NOT_PROVIDED) do
  local msg = name .. ": not provided by resty-client-tls (" .. why .. ")"
  _M[name] = function()
    error(msg, 2)
  end
end


return _M
