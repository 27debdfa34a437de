--- The client-certificate part of lua-kong-nginx-module's `resty.kong.tls`,
-- on top of `resty.client_tls`, for an OpenResty (or Debian nginx + lua
-- module) built without lua-kong-nginx-module. See docs/kong.md.
--
-- Kong's PDK (`kong.client.tls`) does `require "resty.kong.tls"`. Make that
-- name resolve to this module in one of two ways:
--
--   * put `<prefix>/share/resty-client-tls/kong-shim/?.lua` first on
--     `lua_package_path` (Kong: the `lua_package_path` setting of kong.conf);
--     that directory holds a one-line `resty/kong/tls.lua` returning this module;
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
--
-- A call in another phase raises "API disabled in the current context".
-- The upstream (proxy-side) functions of resty.kong.tls need nginx patches
-- that no library can supply: they raise, never fail silently open.
-- @module resty.client_tls.kong

local client_tls = require "resty.client_tls"

local ngx = ngx
local error = error
local type = type

local _M = {
  _VERSION = client_tls._VERSION,
  -- Tells this module apart from lua-kong-nginx-module's resty.kong.tls.
  _IMPLEMENTATION = "resty-client-tls",
}

local DISABLED = "API disabled in the current context"

-- resty.kong.tls's own phase lists (narrower than resty.client_tls's PDK layer,
-- which also allows header_filter and body_filter for the chain).
local CERT_PHASES = { ssl_cert = true }
local CHAIN_PHASES = {
  rewrite = true, access = true, content = true, balancer = true, log = true,
}

local function check_phase(allowed)
  local get_phase = type(ngx) == "table" and ngx.get_phase
  if not get_phase then
    error("resty.client_tls.kong needs OpenResty (no ngx here)", 3)
  end
  if not allowed[get_phase()] then
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


local function unsupported(name)
  return function()
    error("resty.kong.tls." .. name .. " needs lua-kong-nginx-module: resty-client-tls"
          .. " provides only the client-certificate functions", 2)
  end
end

_M.set_upstream_cert_and_key = unsupported("set_upstream_cert_and_key")
_M.set_upstream_ssl_trusted_store = unsupported("set_upstream_ssl_trusted_store")
_M.set_upstream_ssl_verify = unsupported("set_upstream_ssl_verify")
_M.set_upstream_ssl_verify_depth = unsupported("set_upstream_ssl_verify_depth")
_M.disable_proxy_ssl = unsupported("disable_proxy_ssl")


return _M
