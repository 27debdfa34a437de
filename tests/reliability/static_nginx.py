"""The OpenSSL-copy guard in nginx binaries that embed OpenSSL statically (built by
static_nginx.sh). Uses tests/harness with another nginx binary.

usage: python3 -m tests.reliability.static_nginx --lib LIB --same NGINX_3 --other NGINX_111 [--fixed-lib LIB_111]
         [--handshakes N]

- --same: nginx with a static OpenSSL of the library's series. `require` works in
  init_by_lua and in the request; N handshakes with a client certificate each report
  SUCCESS, as $ssl_client_verify does, and the exact chain; LD_DEBUG=bindings shows every
  OpenSSL reference of the library bound to the nginx executable.
- --other: nginx with a static OpenSSL 1.1.1. LD_DEBUG=bindings shows the split (most
  references to nginx, the ones 1.1.1 lacks to the system libssl.so.3/libcrypto.so.3);
  `require` in init_by_lua stops nginx with the guard's message; in a request, `require`
  raises it and every C function given the request's SSL* returns -1 with it.
- --fixed-lib: the library built against a shared build of the same 1.1.1 source (the
  documented fix), in the --other nginx: works as in --same.
Prints PASS/FAIL per test and ends with exactly "N passed, N failed".
"""

import argparse
import glob
import os
import re
import sys
import tempfile
import traceback

from tests.harness import TestFailure, expect, expect_eq, pki
from tests.harness import nginx as harness  # NGINX is swapped below, where the harness reads it
from tests.harness.clients import curl_one

REPO = harness.REPO

INIT_REQUIRE = 'init_by_lua_block { require "resty.client_tls" }\n'

# One mTLS server (certificate phase asks for a certificate, verified against
# ssl_trusted_certificate: no CA list, so ngx.ssl.parse_pem_cert is not needed, which
# Debian's lua module cannot do in an nginx with OpenSSL 1.1.1) and one probe server
# without a certificate phase.
SERVERS = r"""
    server {
        listen 127.0.0.1:@port:mtls@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_trusted_certificate @root@;
        ssl_certificate_by_lua_block {
            local ok, err = require("resty.client_tls").request_client_certificate(nil, 2)
            if not ok then ngx.log(ngx.ERR, "request_client_certificate: ", err) end
        }
        location / {
            content_by_lua_block {
                local tls = require("resty.client_tls").new()
                local chain, err = tls.get_full_client_certificate_chain()
                ngx.say("verify=", tls.get_client_verify())
                ngx.say("nginx_verify=", ngx.var.ssl_client_verify)
                ngx.print(chain or ("chain=nil " .. tostring(err)))
            }
        }
    }
    server {
        listen 127.0.0.1:@port:probe@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /require {
            content_by_lua_block {
                local ok, err = pcall(require, "resty.client_tls")
                ngx.print(ok and "loaded" or tostring(err))
            }
        }
        location = /ffi {
            content_by_lua_block {
                local ffi = require "ffi"
                local base = require "resty.core.base"
                pcall(ffi.cdef, [[
                    void *ngx_http_lua_ffi_get_req_ssl_pointer(void *r, const char **err);
                    int resty_client_tls_openssl_check(const char **err);
                    int resty_client_tls_request_client_certificate(void *ssl, void *ca, int depth, const char **err);
                    int resty_client_tls_disable_session_reuse(void *ssl, const char **err);
                    int resty_client_tls_get_full_client_certificate_chain(void *ssl, char *buf, size_t *len, const char **err);
                    int resty_client_tls_get_client_verify(void *ssl, char *buf, size_t *len, const char **err);
                ]])
                local lib = ffi.load("@lib@")
                local errp = ffi.new("const char *[1]")
                local ssl = ffi.C.ngx_http_lua_ffi_get_req_ssl_pointer(base.get_request(), errp)
                assert(ssl ~= nil, "no SSL*")
                local buf, len = ffi.new("char[256]"), ffi.new("size_t[1]")
                local function call(name, f)
                    errp[0] = nil
                    len[0] = 256
                    local rc = f()
                    ngx.say(name, "=", rc, " ", errp[0] ~= nil and ffi.string(errp[0]) or "")
                end
                call("openssl_check", function() return lib.resty_client_tls_openssl_check(errp) end)
                call("request_client_certificate", function()
                    return lib.resty_client_tls_request_client_certificate(ssl, nil, -1, errp) end)
                call("disable_session_reuse", function()
                    return lib.resty_client_tls_disable_session_reuse(ssl, errp) end)
                call("get_full_client_certificate_chain", function()
                    return lib.resty_client_tls_get_full_client_certificate_chain(ssl, buf, len, errp) end)
                call("get_client_verify", function()
                    return lib.resty_client_tls_get_client_verify(ssl, buf, len, errp) end)
            }
        }
    }
"""

# An LD_DEBUG=bindings line for a versioned OpenSSL reference: file, target, symbol, version.
OPENSSL_REF = re.compile(r"binding file (\S+) \[0\] to (\S+) \[0\]: normal symbol `([^']+)' \[(OPENSSL_[^\]]+)\]")


class Nginx(harness.Nginx):
    """harness.Nginx with another binary, another library, and LD_DEBUG=bindings."""

    def __init__(self, binary, lib, http_conf, **kw):
        self.binary, self.lib = binary, lib
        super().__init__(http_conf, **kw)

    def _write_conf(self):
        super()._write_conf()
        with open(self.conf) as f:
            conf = f.read()
        default = 'lua_package_cpath "%s/target/release/lib?.so;;";' % REPO
        assert default in conf, "the harness changed its lua_package_cpath line"
        conf = conf.replace(default, 'lua_package_cpath "%s/lib?.so;;";' % os.path.dirname(self.lib))
        with open(self.conf, "w") as f:
            f.write(conf)

    def _start_once(self):
        harness.NGINX = self.binary
        os.environ["LD_DEBUG"] = "bindings"
        os.environ["LD_DEBUG_OUTPUT"] = os.path.join(self.dir, "ld")
        try:
            return super()._start_once()
        finally:
            harness.NGINX = self.default_nginx
            del os.environ["LD_DEBUG"], os.environ["LD_DEBUG_OUTPUT"]

    default_nginx = harness.NGINX

    def library_bindings(self):
        """{target object: [OpenSSL symbols]} of the library's references, from LD_DEBUG."""
        out = {}
        real_lib = os.path.realpath(self.lib)
        for path in glob.glob(os.path.join(self.dir, "ld.*")):
            with open(path, errors="replace") as f:
                for m in OPENSSL_REF.finditer(f.read()):
                    if os.path.realpath(m.group(1)) == real_lib:
                        out.setdefault(m.group(2), set()).add(m.group(3))
        return {k: sorted(v) for k, v in out.items()}


def servers(lib):
    p = pki()
    server = p.server("localhost")
    return SERVERS.replace("@server_cert@", server.cert).replace("@server_key@", server.key) \
        .replace("@root@", p.root.cert).replace("@lib@", lib)


def check_works(binary, lib, handshakes):
    """require at init and per request; `handshakes` mTLS handshakes: SUCCESS and the chain."""
    good = pki().good
    expected_chain = good.expected_chain()
    with Nginx(binary, lib, INIT_REQUIRE + servers(lib)) as ng:
        bindings = ng.library_bindings()
        harness.note("the library's OpenSSL references bound to: %s",
                     ", ".join("%s (%d)" % (k, len(v)) for k, v in bindings.items()))
        expect(list(bindings) == [binary],
               "every OpenSSL reference of the library must bind to %s: %s" % (binary, bindings))
        r = curl_one(ng.ports["probe"], "/require")
        expect_eq(r.body.decode(), "loaded", "require in a request")
        ok = 0
        for i in range(handshakes):
            r = curl_one(ng.ports["mtls"], "/?n=%d" % i, client=good)
            body = r.body
            head, _, chain = body.partition(b"nginx_verify=SUCCESS\n")
            expect_eq(r.status, 200, "status")
            expect_eq(head, b"verify=SUCCESS\n", "get_client_verify (then $ssl_client_verify)")
            expect(chain == expected_chain, "handshake %d: chain differs: %r" % (i, body[:300]))
            ok += 1
        harness.note("%d of %d handshakes: SUCCESS and the exact chain", ok, handshakes)


MESSAGE_PARTS = (
    "refusing to mix OpenSSL copies",
    "another ABI series (3.x vs 1.1)",
    "SSL_get0_peer_certificate",
    "ERR_get_error_all",
    "libssl.so.3",
    "build and install that same OpenSSL source",
)


def check_message(msg, binary, what):
    for part in MESSAGE_PARTS + (binary,):
        expect(part in msg, "%s: %r not in the message:\n%s" % (what, part, msg))


def check_refuses(binary, lib):
    # 1. require in init_by_lua: nginx must not start, and must say why.
    ng = Nginx(binary, lib, INIT_REQUIRE + servers(lib))
    try:
        ng.start()
        raise TestFailure("nginx started although init_by_lua requires the module")
    except TestFailure as e:
        out = ng.startup_output()
        if "started although" in str(e):
            raise
    finally:
        ng.stop()
    bindings = ng.library_bindings()
    harness.note("the library's OpenSSL references bound to: %s",
                 "; ".join("%s (%s)" % (k, ", ".join(v) if len(v) < 5 else "%d symbols" % len(v))
                           for k, v in bindings.items()))
    expect(binary in bindings and len(bindings) > 1,
           "expected the split the guard is for (some references to nginx, some elsewhere): %s" % bindings)
    m = re.search(r"init_by_lua error: (.*)", out)
    expect(m is not None, "no init_by_lua error in:\n%s" % out)
    check_message(out, binary, "init_by_lua")
    harness.note("init_by_lua: %s", m.group(1))
    # 2. In a request: require raises it, and every C function refuses with it.
    with Nginx(binary, lib, servers(lib)) as ng:
        r = curl_one(ng.ports["probe"], "/require")
        msg = r.body.decode()
        check_message(msg, binary, "require in a request")
        r = curl_one(ng.ports["probe"], "/ffi")
        lines = r.body.decode().splitlines()
        expect_eq(len(lines), 5, "five C calls: %r" % lines)
        first = None
        for line in lines:
            name, _, rest = line.partition("=")
            rc, _, err = rest.partition(" ")
            expect_eq(rc, "-1", name)
            check_message(err, binary, name)
            first = first or err
            expect_eq(err, first, name + ": the same message")
        harness.note("every C function returned -1 with the message")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--same", required=True)
    ap.add_argument("--other", required=True)
    ap.add_argument("--fixed-lib")
    ap.add_argument("--handshakes", type=int, default=int(os.environ.get("HANDSHAKES", "50")))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rct-static-")
    os.chmod(tmp, 0o755)
    harness.setup_run(tmp)
    tests = [
        ("static OpenSSL of the same series (%s): require and %d mTLS handshakes work"
         % (os.path.basename(a.same), a.handshakes), lambda: check_works(a.same, a.lib, a.handshakes)),
        ("static OpenSSL 1.1.1 (%s): refused at init_by_lua, at require and by every C function"
         % os.path.basename(a.other), lambda: check_refuses(a.other, a.lib)),
    ]
    if a.fixed_lib:
        tests.append(("the fix: library built against the same 1.1.1 source, in %s: works"
                      % os.path.basename(a.other), lambda: check_works(a.other, a.fixed_lib, a.handshakes)))
    passed = failed = 0
    for name, fn in tests:
        harness._Run.notes = []
        try:
            fn()
            print("PASS " + name)
            passed += 1
        except Exception as e:  # noqa: BLE001
            print("FAIL " + name)
            print("    " + ("".join(traceback.format_exception_only(type(e), e)) if isinstance(e, TestFailure)
                            else traceback.format_exc()).strip().replace("\n", "\n    "))
            failed += 1
        for n in harness._Run.notes:
            print("    note: " + n)
    if not failed:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
