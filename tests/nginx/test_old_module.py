"""An nginx whose lua module lacks ngx_http_lua_ffi_get_req_ssl_pointer (lua-nginx-module
0.10.13, Debian 11): `require "resty.client_tls"` works, and every PDK call, in the
certificate phase and in a request, raises one clear error naming the minimum
lua-nginx-module version, instead of crashing or LuaJIT's "undefined symbol". run.py runs
this module only on such an nginx (the platform matrix's bullseye leg)."""

from tests.harness import Nginx, expect, expect_eq, pki
from tests.harness.clients import curl_one

MESSAGE = "does not export ngx_http_lua_ffi_get_req_ssl_pointer, which the PDK functions need: " \
          "use lua-nginx-module 0.10.23 or newer"


def server():
    cert = pki().server("localhost")
    return """
    lua_shared_dict rct_old 1m;
    server {
        listen 127.0.0.1:@port:main@ ssl;
        server_name localhost;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_certificate_by_lua_block {
            local tls = require "resty.client_tls"
            local ok, err = pcall(tls.request_client_certificate)
            ngx.shared.rct_old:set("cert", tostring(ok) .. " " .. tostring(err))
            ok, err = pcall(tls.disable_session_reuse)
            ngx.shared.rct_old:set("disable", tostring(ok) .. " " .. tostring(err))
        }
        location / {
            content_by_lua_block {
                local tls = require "resty.client_tls"
                local d = ngx.shared.rct_old
                ngx.say("cert=", d:get("cert"))
                ngx.say("disable=", d:get("disable"))
                for _, f in ipairs({ "get_full_client_certificate_chain", "get_client_verify" }) do
                    local ok, err = pcall(tls[f])
                    ngx.say(f, "=", tostring(ok), " ", tostring(err))
                end
                ngx.say("valid=", tostring(tls.ssl.is_valid_client_verify("SUCCESS")))
            }
        }
    }
""" % (cert.cert, cert.key)


def test_pdk_calls_raise_a_clear_error():
    with Nginx(server()) as ng:
        r = curl_one(ng.ports["main"], "/", client=pki().good)
        expect_eq(r.status, 200, "status (the handshake went on after the errors)")
        lines = dict(l.split("=", 1) for l in r.body.decode().splitlines() if "=" in l)
        for key in ("cert", "disable", "get_full_client_certificate_chain", "get_client_verify"):
            value = lines.get(key, "")
            expect(value.startswith("false ") and MESSAGE in value, "%s: %r lacks the clear error" % (key, value))
            expect("undefined symbol" not in value, "%s: raw LuaJIT error %r" % (key, value))
        expect_eq(lines.get("valid"), "true", "the explicit-SSL layer loads and answers")
