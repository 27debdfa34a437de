#!/usr/bin/env python3
"""nginx + LuaJIT + libresty_client_tls under valgrind memcheck: one nginx process
(master_process off) runs N full handshakes with client certificates through every Lua
function (request with a cached and with a freshly parsed CA list, disable_session_reuse,
chain, verify, set_client_verify, get_session_info, misuse in pcall), then stops
gracefully; memcheck's leak report is read at exit.

Fails when a loss record (definitely or indirectly lost) or a memcheck error has a frame in
libresty_client_tls. What nginx, LuaJIT and OpenSSL themselves leave is reported, not judged.
usage: python3 -m tests.reliability.valgrind_nginx [HANDSHAKES]   (default 300; about 30 s)"""

import os
import re
import socket
import ssl
import sys
import tempfile

from tests.harness import expect, note, pki, runner
from tests.harness import nginx as harness  # NGINX and the timeouts are set below, where the harness reads them
from tests.reliability.relharness import INIT, Nginx

LOCATIONS = """\
        location / {
            access_by_lua_block {
                local tls = require("resty.client_tls").new()
                assert(tls.get_session_info())
                if ngx.var.arg_set then tls.set_client_verify("FAILED:override") end
                assert(not pcall(tls.request_client_certificate))
            }
            content_by_lua_block {
                local tls = require("resty.client_tls").new()
                local chain = tls.get_full_client_certificate_chain()
                local v = tls.get_client_verify()
                collectgarbage()
                ngx.say("verify=", v, " chain=", chain and #chain or 0)
            }
            log_by_lua_block {
                local tls = require("resty.client_tls").new()
                tls.get_full_client_certificate_chain()
            }
        }
"""


def conf(p):
    cert = p.server("localhost")
    ca = os.path.join(p.dir, "vg-ca.pem")
    with open(ca, "wb") as f:
        f.write(p.int.pem() + p.root.pem())
    os.chmod(ca, 0o644)
    phase = ('local ssl = require "ngx.ssl"; local tls = require("resty.client_tls").new(); '
             'local f = io.open("%s"); local pem = f:read("*a"); f:close(); '
             'local ca = assert(ssl.parse_pem_cert(pem)); '
             'assert(tls.request_client_certificate(ca, 2)); ca = nil; collectgarbage(); '
             'if math.random() < 0.5 then assert(tls.disable_session_reuse()) end' % ca)
    return ("    %s    ssl_session_cache shared:SSL:1m;\n" % INIT
            + "    server {\n        listen 127.0.0.1:@port:main@ ssl default_server;\n"
            + "        ssl_certificate %s;\n        ssl_certificate_key %s;\n" % (cert.cert, cert.key)
            + "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            + "        ssl_certificate_by_lua_block { %s }\n" % phase + LOCATIONS + "    }\n")


def traffic(port, n):
    p = pki()
    for i in range(n):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.maximum_version = ssl.TLSVersion.TLSv1_3 if i % 2 else ssl.TLSVersion.TLSv1_2
        if i % 5:
            c.load_cert_chain(p.good.bundle, p.good.key)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
            with c.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"GET /%s HTTP/1.0\r\nHost: localhost\r\n\r\n" % (b"?set=1" if i % 3 == 0 else b""))
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                expect(b"200 OK" in data and b"verify=" in data, "response %d: %r" % (i, data[-200:]))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    tmp = tempfile.mkdtemp(prefix="rct-vg-nginx-")
    vlog = os.path.join(tmp, "valgrind.log")
    wrapper = os.path.join(tmp, "nginx-under-valgrind")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=memcheck --leak-check=full "
                "--show-leak-kinds=definite,indirect --num-callers=40 --log-file=%s.%%p %s \"$@\"\n"
                % (vlog, harness.NGINX))
    os.chmod(wrapper, 0o755)
    if not os.environ.get("RCT_NO_VALGRIND"):  # (RCT_NO_VALGRIND=1: the same run without valgrind)
        harness.NGINX = wrapper      # this process only: the harness starts nginx through it
    harness.START_TIMEOUT = 120.0
    harness.STOP_TIMEOUT = 300.0     # the leak check runs at exit

    def test():
        p = pki()
        with Nginx(conf(p), master_off=True) as ng:
            traffic(ng.ports["main"], n)
        text = open("%s.%d" % (vlog, ng.proc.pid)).read()
        records = re.split(r"\n==\d+== \n", text)
        ours_lost = [r for r in records if re.search(r"are (definitely|indirectly) lost", r)
                     and "libresty_client_tls" in r]
        ours_err = [r for r in records if re.search(r"(Invalid|uninitialised|Mismatched|overlap)", r)
                    and "libresty_client_tls" in r]
        summary = {k: re.findall(r"%s: ([\d,]+) bytes" % k, text) for k in
                   ("definitely lost", "indirectly lost", "possibly lost")}
        errors = re.findall(r"ERROR SUMMARY: ([\d,]+) errors", text)
        access_errors = re.findall(r"== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
                                   r"Syscall param|Mismatched free|Source and destination overlap)", text)
        heap = re.findall(r"total heap usage: ([^\n]*)", text)
        note("nginx+LuaJIT under memcheck, %d handshakes: loss records / errors with a "
             "libresty_client_tls frame: %d / %d; whole process: definitely lost %s B (nginx's "
             "ngx_set_environment), indirectly lost %s B, possibly lost %s B (nginx pools, LuaJIT), "
             "%d invalid accesses or uninitialised uses; heap: %s", n, len(ours_lost), len(ours_err),
             (summary["definitely lost"] or ["0"])[-1], (summary["indirectly lost"] or ["0"])[-1],
             (summary["possibly lost"] or ["0"])[-1], len(access_errors), (heap or ["?"])[-1])
        for r in (ours_lost + ours_err)[:3]:
            note(r[:3000])
        expect(not ours_lost and not ours_err, "memcheck found problems in libresty_client_tls: see %s" % vlog)
        expect(errors, "no valgrind summary: nginx did not exit cleanly (see %s)" % vlog)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)

    rc = runner.run_tests([("nginx+LuaJIT under valgrind memcheck", test)], "rct-reliability-")
    return rc


if __name__ == "__main__":
    sys.exit(main())
