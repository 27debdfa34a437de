#!/usr/bin/env python3
"""The nginx parts of tests/packaging/run.sh, on the test harness (tests/harness).

usage: python3 -m tests.packaging.nginx_checks WORKDIR CHECK LUA_PATH LUA_CPATH

LUA_PATH / LUA_CPATH: the `?` templates of an installed tree (make install, luarocks), used
instead of the checkout's lua-bindings/ and target/release/. CHECK:
  installed   the installed module and library load in nginx and do mTLS
  kong        kong/example/nginx.conf (paths pointed at the tree): Kong's call pattern
              through kong.client.tls and through the resty.kong.tls shim
  kong-shim   the shim's phases, errors and signatures, as resty.kong.tls has them
  kong-patterns
              Kong's two call patterns through the shim: current Kong (3.1 on:
              ngx.ssl.verify_client(ca, 0), then resty.kong.tls for reuse and the chain)
              and older Kong (resty.kong.tls.request_client_certificate +
              set_client_ca_list); get_request_ssl_pointer, and get_ssl_pointer on a
              real cosocket
LUA_PATH "default" (with LUA_CPATH "default"): no lua_package_path/cpath lines at all, so
nginx uses its lua module's built-in paths (the Debian package's case).
Exit status 0 when the check passed; the failure is printed otherwise.
"""

import hashlib
import os
import re
import shutil
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

from tests import harness
from tests.harness import TestFailure, clients, expect, expect_eq

EXAMPLE = os.path.join(REPO, "kong", "example", "nginx.conf")
DISABLED = "API disabled in the current context"


def set_lua_paths(conf_text, lua_path, lua_cpath):
    """Point lua_package_path/cpath at the installed tree only (plus the defaults, `;;`,
    where lua-resty-core lives), dropping the checkout's lua-bindings/ and target/.
    "default": remove both lines, leaving the lua module's built-in paths."""
    def line(directive, value):
        if value == "default":
            return lambda m: "%s# %s: the lua module's default" % (m.group(1), directive)
        return lambda m: '%s%s "%s;;";' % (m.group(1), directive, value)
    text, n1 = re.subn(r"^(\s*)lua_package_path\s.*$", line("lua_package_path", lua_path),
                       conf_text, flags=re.M)
    text, n2 = re.subn(r"^(\s*)lua_package_cpath\s.*$", line("lua_package_cpath", lua_cpath),
                       text, flags=re.M)
    if n1 != 1 or n2 != 1:
        raise TestFailure("expected one lua_package_path and one lua_package_cpath line, got %d, %d"
                          % (n1, n2))
    return text


class InstalledNginx(harness.Nginx):
    """harness.Nginx whose Lua paths are the installed tree's."""

    def __init__(self, http_conf, lua_path, lua_cpath, **kw):
        super().__init__(http_conf, **kw)
        with open(self.conf) as f:
            text = set_lua_paths(f.read(), lua_path, lua_cpath)
        with open(self.conf, "w") as f:
            f.write(text)


class ConfNginx(harness.Nginx):
    """harness.Nginx (start, stop, error-log checks) running a whole nginx.conf template of
    ours; its @port:NAME@ and @dir@ placeholders are filled as the harness does."""

    def __init__(self, template, **kw):
        super().__init__("", **kw)
        with open(self.conf, "w") as f:
            f.write(harness.render(template, self.ports, {"dir": self.dir}))


def md5(data):
    return hashlib.md5(data).hexdigest()


def body_fields(response):
    """key=value lines of a response body as a dict of lists."""
    fields = {}
    for line in response.body.decode(errors="replace").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            fields.setdefault(k, []).append(v)
    return fields


def tree_root(lua_path):
    """The directory the installed tree's Lua files live under (first template's dir)."""
    return os.path.dirname(lua_path.split(";")[0])


# -- installed: the module and library from the tree, in nginx -------------------------------------

INSTALLED_SERVER = """\
    server {
        listen 127.0.0.1:@port:main@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate_by_lua_block {
            local tls = require "resty.client_tls"
            local f = assert(io.open("@ca@"))
            local ca = assert(require("ngx.ssl").parse_pem_cert(f:read("*a")))
            f:close()
            assert(tls.request_client_certificate(ca, 2))
            assert(tls.disable_session_reuse())
        }
        location / {
            content_by_lua_block {
                local tls = require "resty.client_tls"
                ngx.say("module=", debug.getinfo(tls.new, "S").source:sub(2))
                for line in io.lines("/proc/self/maps") do
                    local path = line:match("%s(/%S*libresty_client_tls%.so)$")
                    if path then ngx.say("lib=", path) end
                end
                local chain = tls.get_full_client_certificate_chain()
                ngx.say("verify=", tls.get_client_verify())
                ngx.say("chain_md5=", chain and ngx.md5(chain) or "nil")
            }
        }
    }
"""


def check_installed(lua_path, lua_cpath):
    pki = harness.pki()
    server = pki.server("localhost")
    # "default": the Debian package's tree, where Debian's lua module looks by default.
    root = "/usr/share/lua/5.1" if lua_path == "default" else tree_root(lua_path)
    with InstalledNginx(INSTALLED_SERVER, lua_path, lua_cpath, server_cert=server.cert,
                        server_key=server.key, ca=pki.root.cert) as ng:
        port = ng.ports["main"]
        r = clients.curl_one(port, "/", client=pki.good)
        expect_eq(r.status, 200, "status with a client certificate")
        got = body_fields(r)
        module = got.get("module", ["?"])[0]
        expect(os.path.realpath(module).startswith(os.path.realpath(root) + os.sep),
               "resty.client_tls loaded from %s, not from the tree %s", module, root)
        libs = set(got.get("lib", []))
        expect(len(libs) == 1, "expected one libresty_client_tls.so mapped, got %s", sorted(libs))
        lib = libs.pop()
        expect(not os.path.realpath(lib).startswith(os.path.join(REPO, "target") + os.sep),
               "the library was loaded from the checkout (%s), not from the tree", lib)
        expect_eq(got.get("verify"), ["SUCCESS"], "get_client_verify")
        expect_eq(got.get("chain_md5"), [md5(pki.good.expected_chain())], "chain (md5)")
        r = clients.curl_one(port, "/")
        expect_eq(body_fields(r).get("verify"), ["NONE"], "get_client_verify without a certificate")
        harness.note("module %s, library %s", module, lib)


# -- kong: the example config ---------------------------------------------------------------------

TEST_SERVERS = """
    # -- added by tests/packaging/nginx_checks.py --
    # control: a server without disable_session_reuse, which the client does resume
    server {
        listen 127.0.0.1:@port:control@ ssl;
        server_name localhost;
        ssl_certificate certs/server.pem;
        ssl_certificate_key certs/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:control:1m;
        location / { return 200 "control\\n"; }
    }
"""


def example_template(lua_prefix, extra_servers=""):
    """kong/example/nginx.conf as a harness template: paths into the installed tree, listen
    ports allocated by the harness, nginx kept in the foreground."""
    with open(EXAMPLE) as f:
        text = f.read()
    text = text.replace("/usr/lib/nginx/modules/", harness.nginx_modules_dir() + "/")
    if lua_prefix == "default":
        text = set_lua_paths(text, "default", "default")
    text = re.sub(r'"[^"\n]*"', lambda m: m.group(0).replace("/usr/local/", lua_prefix + "/")
                  if "lua/5.1" in m.group(0) or "kong-shim" in m.group(0) else m.group(0), text)
    for port, name in (("8443", "pdk"), ("8444", "shim")):
        text, n = re.subn(r"listen %s ssl;" % port, "listen 127.0.0.1:@port:%s@ ssl;" % name, text)
        expect(n == 1, "example: no `listen %s ssl;`", port)
    expect("daemon" not in text, "example sets daemon: the harness needs it off")
    text = "%s\ndaemon off;\nmaster_process on;\n" % harness.worker_user() + text
    if extra_servers:
        end = text.rstrip().rfind("}")
        text = text[:end] + extra_servers + text[end:]
    return text


def copy_example_certs(ng):
    pki = harness.pki()
    certs = os.path.join(ng.dir, "certs")
    os.makedirs(certs, exist_ok=True)
    server = pki.server("localhost")
    for src, name in ((server.cert, "server.pem"), (server.key, "server.key"),
                      (pki.int.cert, "int.pem"), (pki.root.cert, "root.pem")):
        shutil.copyfile(src, os.path.join(certs, name))


def example_nginx(lua_prefix, extra_servers=""):
    ng = ConfNginx(example_template(lua_prefix, extra_servers))
    copy_example_certs(ng)
    return ng


def log_lines(ng, pattern):
    return re.findall(pattern, ng.log_text())


def expect_not_resumed(port, tmp, mode, what):
    first, second = clients.s_client_pair(port, tmp, mode=mode, require_session=False)
    expect(not first.reused, "%s %s: first connection reused", what, mode)
    expect(second is None or not second.reused, "%s %s: the session was resumed", what, mode)


def check_kong(lua_prefix):
    pki = harness.pki()
    # A valid client the example's allow-list does not name.
    other = pki.issue("client-other", "other client", pki.int, "client", sent_chain=[pki.int])
    tmp = os.path.join(harness._Run.tmp, "sessions")
    os.makedirs(tmp, exist_ok=True)
    with example_nginx(lua_prefix, TEST_SERVERS) as ng:
        pdk, shim = ng.ports["pdk"], ng.ports["shim"]

        # kong.client.tls: request + disable in ssl_cert, chain and verify in access,
        # set_client_verify in access, the verify result in log.
        r = clients.curl_one(pdk, "/", client=pki.good)
        expect_eq((r.status, r.body), (200, b"hello good client (2 certificates in your chain)\n"),
                  "good client")
        r = clients.curl_one(pdk, "/")
        expect_eq(r.status, 401, "no client certificate")
        r = clients.curl_one(pdk, "/", client=pki.selfsigned)
        expect_eq(r.status, 401, "self-signed client")
        r = clients.curl_one(pdk, "/", client=other)
        expect_eq(r.status, 403, "valid client not in the allow-list")
        logged = harness.wait_for(lambda: len(log_lines(ng, r"client_verify=.*? status=\d+")) >= 4)
        lines = log_lines(ng, r"client_verify=(.*?) status=(\d+)")
        expect(logged, "log phase lines: %s", lines)
        expect_eq(lines[0], ("SUCCESS", "200"), "log phase, good client")
        expect_eq(lines[1], ("NONE", "401"), "log phase, no certificate")
        expect(re.fullmatch(r"FAILED:.*self[- ]signed.*", lines[2][0]) and lines[2][1] == "401",
               "log phase, self-signed client: %s", lines[2])
        expect_eq(lines[3], ("FAILED:subject not allowed", "403"),
                  "log phase, set_client_verify override")

        # resty.kong.tls (the shim): request + set_client_ca_list + disable in ssl_cert,
        # chain in content.
        r = clients.curl_one(shim, "/", client=pki.good)
        expect_eq(r.status, 200, "shim server status")
        expect(r.body == pki.good.expected_chain(), "shim chain differs from the client's: %s",
               harness.pem_summary(r.body))
        r = clients.curl_one(shim, "/")
        expect_eq(r.body, b"no client certificate\n", "shim server without a certificate")
        sc = clients.s_client(shim, client=pki.good)
        expect_eq(sc.ca_names, [pki.int.subject, pki.root.subject], "CA names sent by the shim server")

        # disable_session_reuse through both paths; the control proves the client resumes.
        for mode in ("tls1.3", "tls1.2", "tls1.2-noticket"):
            first, second = clients.s_client_pair(ng.ports["control"], tmp, mode=mode)
            expect(second.reused, "control %s: the client did not resume", mode)
            expect_not_resumed(pdk, tmp, mode, "kong.client.tls")
            expect_not_resumed(shim, tmp, mode, "resty.kong.tls")
        harness.note("log: %s", "; ".join("%s %s" % l for l in lines))


# -- kong-shim: phases, errors, signatures -----------------------------------------------------------

SHIM_SERVERS = """
    # -- added by tests/packaging/nginx_checks.py --
    server {
        listen 127.0.0.1:@port:phases@ ssl;
        server_name localhost;
        ssl_certificate certs/server.pem;
        ssl_certificate_key certs/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate_by_lua_block {
            local kong_tls = require "resty.kong.tls"
            local chain_ok, chain_err = pcall(kong_tls.get_full_client_certificate_chain)
            local ok, err = pcall(kong_tls.set_client_ca_list)
            ngx.shared.rct:set("cert.chain", tostring(chain_ok) .. " " .. tostring(chain_err))
            ngx.shared.rct:set("cert.ca_nil", tostring(ok) .. " " .. tostring(err))
            -- the old signature, request_client_certificate(no_session_reuse)
            assert(kong_tls.request_client_certificate(true))
            assert(kong_tls.disable_session_reuse())
        }
        location / {
            content_by_lua_block {
                local kong_tls = require "resty.kong.tls"
                local function try(f, ...)
                    local ok, a, b = pcall(f, ...)
                    if not ok then return "raise:" .. tostring(a) end
                    return tostring(a) .. "," .. tostring(b)
                end
                ngx.say("impl=", kong_tls._IMPLEMENTATION)
                ngx.say("same=", tostring(kong_tls == require("resty.client_tls.kong")))
                ngx.say("request=", try(kong_tls.request_client_certificate))
                ngx.say("disable=", try(kong_tls.disable_session_reuse))
                ngx.say("upstream=", try(kong_tls.set_upstream_ssl_verify, true))
                ngx.say("chain_md5=", ngx.md5(kong_tls.get_full_client_certificate_chain() or ""))
                for _, k in ipairs({ "cert.chain", "cert.ca_nil", "hf", "log" }) do
                    ngx.say(k, "=", tostring(ngx.shared.rct:get(k)))
                end
            }
            header_filter_by_lua_block {
                local ok, err = pcall(require("resty.kong.tls").get_full_client_certificate_chain)
                ngx.shared.rct:set("hf", tostring(ok) .. " " .. tostring(err))
            }
            log_by_lua_block {
                local ok, err = pcall(kong.client.tls.set_client_verify, "SUCCESS")
                ngx.shared.rct:set("log", tostring(ok) .. " " .. tostring(err))
            }
        }
    }
    server {
        listen 127.0.0.1:@port:plain@;
        location / {
            content_by_lua_block {
                local chain, err = require("resty.kong.tls").get_full_client_certificate_chain()
                ngx.say("plain=", tostring(chain), ",", tostring(err))
            }
        }
    }
    lua_shared_dict rct 1m;
"""


def check_kong_shim(lua_prefix):
    pki = harness.pki()
    with example_nginx(lua_prefix, SHIM_SERVERS) as ng:
        port = ng.ports["phases"]
        clients.curl_one(port, "/", client=pki.good)   # its log phase fills "log"

        def fetch():
            fields = body_fields(clients.curl_one(port, "/", client=pki.good))
            return fields if fields.get("log", ["nil"]) != ["nil"] else None
        got = harness.wait_for(fetch)
        expect(got, "the log phase stored nothing")
        expect_eq(got.get("impl"), ["resty-client-tls"], "_IMPLEMENTATION")
        expect_eq(got.get("same"), ["true"], "shim returns resty.client_tls.kong")
        for key in ("request", "disable"):
            expect(DISABLED in got[key][0], "%s in content: %s", key, got[key])
        expect(re.search(r"raise:.*set_upstream_ssl_verify: not provided by resty-client-tls \(",
                         got["upstream"][0]), "upstream function: %s", got["upstream"])
        expect_eq(got.get("chain_md5"), [md5(pki.good.expected_chain())], "chain in content")
        expect(got["cert.chain"][0].startswith("false ") and DISABLED in got["cert.chain"][0],
               "chain in ssl_cert: %s", got["cert.chain"])
        expect(got["cert.ca_nil"][0].startswith("false ") and "set_client_ca_list" in got["cert.ca_nil"][0],
               "set_client_ca_list(nil): %s", got["cert.ca_nil"])
        expect(got["hf"][0].startswith("false ") and DISABLED in got["hf"][0],
               "chain in header_filter (resty.kong.tls refuses it): %s", got["hf"])
        expect(got["log"][0].startswith("false ") and "function cannot be called in log phase" in got["log"][0],
               "kong.client.tls.set_client_verify in log: %s", got["log"])
        r = clients.curl_one(ng.ports["plain"], "/", scheme="http")
        expect_eq(body_fields(r).get("plain"),
                  ["nil,connection is not TLS or TLS support for Nginx not enabled"], "plain HTTP")


# -- kong-patterns: Kong's call patterns through the shim ---------------------------------------

PATTERN_SERVERS = """
    init_by_lua_block {
        -- A "plugin configuration": the CAs to hint and verify against, parsed once.
        local f = assert(io.open("@ca_file@"))
        kong_ca = assert(require("ngx.ssl").parse_pem_cert(f:read("*a")))
        f:close()

        -- What the content handlers below report, one key=value per line.
        function rct_kong_report()
            local kong_tls = require "resty.kong.tls"
            local tls = require "resty.client_tls"
            local chain, err = kong_tls.get_full_client_certificate_chain()
            ngx.say("impl=", kong_tls._IMPLEMENTATION)
            ngx.say("module=", debug.getinfo(kong_tls.get_ssl_pointer, "S").source:sub(2))
            ngx.say("chain_md5=", chain and ngx.md5(chain) or "nil")
            ngx.say("chain_err=", tostring(err))
            ngx.say("var_verify=", ngx.var.ssl_client_verify)
            ngx.say("pdk_verify=", tls.new().get_client_verify())
            local p, perr = kong_tls.get_request_ssl_pointer()
            ngx.say("pointer_type=", tostring(p and require("ffi").typeof(p)), ",", tostring(perr))
            local via = p and tls.ssl.get_full_client_certificate_chain(p)
            ngx.say("pointer_chain_md5=", via and ngx.md5(via) or "nil")
            ngx.say("cert_phase_pointer=", tostring(ngx.shared.rct:get("cert_phase_pointer")))

            local sock = ngx.socket.tcp()
            sock:settimeout(5000)
            assert(sock:connect("127.0.0.1", @port:upstream@))
            assert(sock:sslhandshake(nil, "localhost", false))
            ngx.say("sock_method=", type(sock.getsslpointer))
            local ok, sp, serr = pcall(kong_tls.get_ssl_pointer, sock)
            if ok then
                local v = sp and tls.ssl.get_session_info(sp)
                ngx.say("sock=pointer ", tostring(sp ~= nil), " ", tostring(serr),
                        " resumed=", tostring(v and v.resumed))
            else
                ngx.say("sock=raise ", tostring(sp))
            end
            sock:close()
        end
    }

    # Kong 3.1 and later: kong.client.tls.request_client_certificate(ca) is
    # ngx.ssl.verify_client(ca, 0); reuse and the chain come from resty.kong.tls.
    server {
        listen 127.0.0.1:@port:current@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:current:1m;
        ssl_certificate_by_lua_block {
            local kong_tls = require "resty.kong.tls"
            assert(require("ngx.ssl").verify_client(kong_ca, 0))
            assert(kong_tls.disable_session_reuse())
            local p, err = kong_tls.get_request_ssl_pointer()
            ngx.shared.rct:set("cert_phase_pointer", tostring(p ~= nil) .. " " .. tostring(err))
        }
        location / {
            content_by_lua_block { rct_kong_report() }
        }
    }

    # Kong 1.3 to 3.0, and plugins written against lua-kong-nginx-module 0.3:
    # resty.kong.tls.request_client_certificate() then set_client_ca_list(ca).
    server {
        listen 127.0.0.1:@port:older@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:older:1m;
        ssl_certificate_by_lua_block {
            local kong_tls = require "resty.kong.tls"
            assert(kong_tls.request_client_certificate())
            assert(kong_tls.set_client_ca_list(kong_ca))
            assert(kong_tls.disable_session_reuse())
        }
        location / {
            content_by_lua_block { rct_kong_report() }
        }
    }

    # A TLS server for the cosocket of get_ssl_pointer, and a plain one.
    server {
        listen 127.0.0.1:@port:upstream@ ssl;
        server_name localhost;
        ssl_certificate @server_cert@;
        ssl_certificate_key @server_key@;
        location / { return 200 "upstream\\n"; }
    }
    server {
        listen 127.0.0.1:@port:plain@;
        location / {
            content_by_lua_block {
                local p, err = require("resty.kong.tls").get_request_ssl_pointer()
                ngx.say("pointer=", tostring(p), ",", tostring(err))
            }
        }
    }

"""

# lua-kong-nginx-module's tls.lua functions that the drop-in does not provide.
NOT_PROVIDED = ("set_upstream_cert_and_key", "set_upstream_ssl_trusted_store",
                "set_upstream_ssl_verify", "set_upstream_ssl_verify_depth",
                "set_upstream_ssl_sans_dnsnames", "set_upstream_ssl_sans_uris",
                "disable_proxy_ssl")


def check_kong_patterns(lua_path, lua_cpath):
    from tests.nginx.test_basics import DEPTH_EXCEEDED  # the FAILED: strings of depth 0, per OpenSSL
    pki = harness.pki()
    server = pki.server("localhost")
    ca_file = os.path.join(harness._Run.tmp, "kong-ca.pem")
    with open(ca_file, "wb") as f:
        for c in (pki.int, pki.root):
            with open(c.cert, "rb") as src:
                f.write(src.read())
    tmp = os.path.join(harness._Run.tmp, "sessions")
    os.makedirs(tmp, exist_ok=True)
    with InstalledNginx(PATTERN_SERVERS, lua_path, lua_cpath, server_cert=server.cert,
                        server_key=server.key, ca_file=ca_file) as ng:
        good_md5 = md5(pki.good.expected_chain())
        for name, verify in (("current", DEPTH_EXCEEDED),
                             ("older", "|".join(map(re.escape, sorted(
                                 pki.expected_verify_any(pki.good, [pki.int, pki.root])))))):
            port = ng.ports[name]
            r = clients.curl_one(port, "/", client=pki.good)
            expect_eq(r.status, 200, "%s: status" % name)
            got = body_fields(r)
            expect_eq(got["impl"], ["resty-client-tls"], "%s: resty.kong.tls is the shim" % name)
            expect_eq(got["chain_md5"], [good_md5], "%s: chain through resty.kong.tls" % name)
            expect_eq(got["chain_err"], ["nil"], "%s: chain error" % name)
            expect(re.fullmatch(verify, got["var_verify"][0]),
                   "%s: $ssl_client_verify %s, expected %s", name, got["var_verify"], verify)
            expect_eq(got["pdk_verify"], got["var_verify"], "%s: new().get_client_verify()" % name)
            expect_eq(got["pointer_chain_md5"], [good_md5],
                      "%s: chain read through get_request_ssl_pointer()" % name)
            expect(got["pointer_type"][0].startswith("ctype<void *>,nil"),
                   "%s: get_request_ssl_pointer: %s", name, got["pointer_type"])
            # the cosocket: a clear error on a lua module without tcpsock:getsslpointer()
            if got["sock_method"] == ["nil"]:
                expect(re.match(r"raise .*get_ssl_pointer: not available with this "
                                r"lua-nginx-module: .*0\.10\.30", got["sock"][0]),
                       "%s: get_ssl_pointer on a cosocket: %s", name, got["sock"])
            else:
                expect(got["sock"][0].startswith("pointer true nil resumed=false"),
                       "%s: get_ssl_pointer with tcpsock:getsslpointer(): %s", name, got["sock"])
            harness.note("%s: resty.kong.tls from %s, verify %s; cosocket: %s", name,
                         got["module"][0], got["var_verify"][0], got["sock"][0])

            r = clients.curl_one(port, "/")
            got = body_fields(r)
            expect_eq((got["chain_md5"], got["chain_err"], got["var_verify"]),
                      (["nil"], ["nil"], ["NONE"]), "%s: no client certificate" % name)
            sc = clients.s_client(port, client=pki.good)
            expect_eq(sc.ca_names, [pki.int.subject, pki.root.subject], "%s: CA names sent" % name)
            for mode in ("tls1.3", "tls1.2", "tls1.2-noticket"):
                expect_not_resumed(port, tmp, mode, name)
        expect_eq(body_fields(clients.curl_one(ng.ports["current"], "/", client=pki.good))
                  ["cert_phase_pointer"], ["true nil"], "get_request_ssl_pointer in ssl_cert")
        r = clients.curl_one(ng.ports["plain"], "/", scheme="http")
        expect_eq(body_fields(r).get("pointer"), ["nil,no ssl object"], "plain HTTP pointer")


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    workdir, check, lua_path, lua_cpath = argv[1:]
    missing = [p for p in harness.missing_prerequisites() if "libresty_client_tls" not in p]
    if missing:
        print("prerequisites missing:\n  " + "\n  ".join(missing))
        return 1
    os.makedirs(workdir, exist_ok=True)
    harness.setup_run(workdir)
    harness._Run.notes = []
    # lua_prefix: the tree's PREFIX, for the example's /usr/local paths.
    lua_prefix = re.sub(r"/share/lua/5\.1/\?\.lua$", "", lua_path.split(";")[0])
    try:
        if check == "installed":
            check_installed(lua_path, lua_cpath)
        elif check == "kong":
            check_kong(lua_prefix)
        elif check == "kong-shim":
            check_kong_shim(lua_prefix)
        elif check == "kong-patterns":
            check_kong_patterns(lua_path, lua_cpath)
        else:
            print("unknown check %s" % check, file=sys.stderr)
            return 2
        ok = True
    except AssertionError as e:
        print(str(e) or traceback.format_exc())
        ok = False
    except Exception:
        print(traceback.format_exc())
        ok = False
    for line in harness._Run.notes:
        print("note: " + line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
