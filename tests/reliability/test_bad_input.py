"""Bad input through real nginx (issue 5): every kind of misuse gets a clear error (a raised
Lua error or nil, err) and nothing crashes: the worker keeps its pid and the error log has
no [alert]/[crit]/[emerg]. Each case prints its observed result as a `note:` line, the
source of the README's bad-input table."""

import os
import re
import socket
import ssl
import subprocess

from tests.harness.clients import SClient, curl_one, s_client
from tests.harness import TestFailure, expect, expect_eq, note, pki
from tests.reliability.relharness import INIT, LOCATIONS, Nginx, run_client, worker_pids

from tests import harness


def big_cert(name, ous, cn=None):
    """A self-signed CA whose subject (and so issuer) has `ous` 64-byte OUs: about
    2 * 75 * ous bytes of DER. Returns the PEM path."""
    d = pki().dir
    path = os.path.join(d, "%s.pem" % name)
    if not os.path.exists(path):
        subj = "/O=resty-client-tls tests" + "".join("/OU=%s%04d" % ("x" * 60, i) for i in range(ous))
        subj += "/CN=%s" % (cn or name)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", path[:-4] + ".key", "-subj", subj, "-days", "30",
                        "-out", path], check=True, capture_output=True)
    return path


def der_len(pem_path):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"], capture_output=True, check=True)
    return len(out.stdout)


def bundle(name, paths):
    path = os.path.join(pki().dir, name)
    with open(path, "wb") as f:
        for p in paths:
            with open(p, "rb") as g:
                f.write(g.read())
    return path


def bad_locations():
    return LOCATIONS + """\
        location = /bad {
            set_by_lua_block $rel_unused { return require("rel_test").bad_set_phase() }
            content_by_lua_block { require("rel_test").bad_content() }
        }
        location = /dump {
            content_by_lua_block { require("rel_test").dump_bad() }
        }
"""


def bad_conf(big_ca):
    p = pki()
    phase = {"ca": [p.int.cert, p.root.cert], "depth": 2, "big_ca": big_ca}
    lines = []
    for i, name in enumerate(("localhost", "args.test", "bigca.test", "chain.test")):
        cert = p.server(name)
        lines.append("""    server {
        listen 127.0.0.1:@port:main@ ssl%s;
        server_name %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        set $rel_server %s;
        ssl_certificate_by_lua_block { require("rel_test").bad_cert_phase(%s) }
%s    }
""" % (" default_server" if i == 0 else "", name, cert.cert, cert.key, name,
           harness.lua_value(phase), bad_locations()))
    plain = """    server {
        listen 127.0.0.1:@port:plain@;
        location / { content_by_lua_block { require("rel_test").plain_content() } }
        location = /dump { content_by_lua_block { require("rel_test").dump_bad() } }
    }
"""
    return "    %s" % INIT + "".join(lines) + plain


def dump(ng):
    r = curl_one(ng.ports["plain"], "/dump", scheme="http")
    return dict(line.split("=", 1) for line in r.body.decode().splitlines() if "=" in line)


# README row label, key, expected observed-result pattern
EXPECTED = [
    ("`request_client_certificate(\"-----BEGIN...\")` (string as ca_certs)", "ca_string",
     r"raise:bad argument #1 to 'request_client_certificate' \(ca_certs must be .*got string\)"),
    ("`request_client_certificate({})` (table as ca_certs)", "ca_table", r"raise:bad argument #1.*table without a cdata 'ctx'.*"),
    ("`request_client_certificate({ctx = \"x\"})`", "ca_table_ctx_string", r"raise:bad argument #1.*"),
    ("`request_client_certificate(42)` (number as ca_certs)", "ca_number", r"raise:bad argument #1.*got number\)"),
    ("`request_client_certificate(true)`", "ca_boolean", r"raise:bad argument #1.*got boolean\)"),
    ("`request_client_certificate(ffi.new(\"int[4]\"))` (wrong cdata type)", "ca_cdata_array",
     r"raise:bad argument #1.*non-pointer ctype<int \[4\]>\)"),
    ("`request_client_certificate(ffi.new(\"int64_t\", 1))` (wrong cdata type)", "ca_cdata_int64",
     r"raise:bad argument #1.*non-pointer ctype<int64_t>\)"),
    ("`request_client_certificate(ffi.cast(\"void *\", 0))` (NULL cdata)", "ca_cdata_null",
     r"raise:bad argument #1.*NULL pointer.*"),
    ("`request_client_certificate(nil, \"2\")` (depth a string)", "depth_string", r"raise:bad argument #2.*depth.*"),
    ("`request_client_certificate(nil, 1.5)`", "depth_fraction", r"raise:bad argument #2.*depth.*"),
    ("`get_full_client_certificate_chain()` in ssl_cert", "wrong_phase_chain_in_ssl_cert",
     r"raise:function cannot be called in ssl_cert phase \(only in: rewrite, access, content, balancer, header_filter, body_filter, log\)"),
    ("`set_client_verify(\"SUCCESS\")` in ssl_cert", "wrong_phase_set_verify_in_ssl_cert",
     r"raise:function cannot be called in ssl_cert phase.*"),
    ("`get_session_info()` in ssl_cert", "wrong_phase_session_info_in_ssl_cert",
     r"raise:function cannot be called in ssl_cert phase \(only in: rewrite, access, content, balancer, header_filter, body_filter, log\)"),
    ("`get_full_client_certificate_chain()` in set (set_by_lua)", "wrong_phase_chain_in_set",
     r"raise:function cannot be called in set phase \(only in: rewrite, access, content, balancer, header_filter, body_filter, log\)"),
    ("`get_session_info()` in set (set_by_lua)", "wrong_phase_session_info_in_set",
     r"raise:function cannot be called in set phase.*"),
    ("`request_client_certificate()` in content", "wrong_phase_request_in_content",
     r"raise:function cannot be called in content phase \(only in: ssl_cert\)"),
    ("`disable_session_reuse()` in content", "wrong_phase_disable_in_content",
     r"raise:function cannot be called in content phase \(only in: ssl_cert\)"),
    ("`set_client_verify(nil)`", "set_verify_nil", r"raise:bad argument #1 to 'set_client_verify' \(string expected, got nil\)"),
    ("`set_client_verify(42)`", "set_verify_number", r"raise:bad argument #1 to 'set_client_verify' \(string expected, got number\)"),
    ("`set_client_verify(\"bogus\")`", "set_verify_bogus",
     r"raise:unknown client verify value: bogus accepted values are: \"SUCCESS\", \"NONE\" or \"FAILED:<reason>\""),
    ("low layer `ssl.get_client_verify(nil)` (NULL ssl)", "low_ssl_nil", r"nil,ssl is NULL"),
    ("low layer `ssl.get_client_verify(\"x\")` (string as SSL*)", "low_ssl_string", r"raise:bad argument #1.*SSL\* cdata expected, got string\)"),
    ("low layer `ssl.get_full_client_certificate_chain({})`", "low_ssl_table", r"raise:bad argument #1.*got table\)"),
    ("low layer `ssl.is_valid_client_verify(42)`", "low_is_valid_number", r"ok:false"),
    ("`get_full_client_certificate_chain()` on a plain-HTTP request", "plain_chain",
     r"nil,connection is not TLS or TLS support for Nginx not enabled"),
    ("`get_client_verify()` on a plain-HTTP request", "plain_verify", r"nil,connection is not TLS.*"),
    ("`get_session_info()` on a plain-HTTP request", "plain_session_info", r"nil,connection is not TLS.*"),
]


def test_bad_arguments_phases_and_plain_http():
    p = pki()
    big = [big_cert("bigca-%d" % i, 480) for i in range(2)]
    with Nginx(bad_conf(big), log_level="info") as ng:
        pids = worker_pids(ng)
        port = ng.ports["main"]
        for sni in ("args.test", "localhost"):
            r = s_client(port, sni, "tls1.3", p.good, path="/bad")
            expect_eq(r.report["verify"], "SUCCESS", sni + ": the handshake went on after the misuse")
        curl_one(ng.ports["plain"], "/", scheme="http")
        seen = dump(ng)
        for label, key, pattern in EXPECTED:
            got = seen.get(key)
            expect(got is not None and re.fullmatch(pattern, got, re.S),
                   "%s: observed %r, expected /%s/" % (key, got, pattern))
            note("| %s | %s |", label, got.replace("|", "\\|"))
        # Plain HTTP to the TLS port.
        r = curl_one(port, "/", scheme="http")
        expect_eq(r.status, 400, "plain HTTP to the TLS port")
        note("| plain HTTP request to the TLS port | nginx answers 400 (\"The plain HTTP request was sent to HTTPS port\") |")
        expect_eq(worker_pids(ng), pids, "worker pids (a crash restarts the worker)")


def test_ca_list_over_the_hint_limit():
    """Two CAs whose names take ~75 KB: nil, err in the certificate phase; the handshake
    goes on without a certificate request; the client sees no CA names."""
    p = pki()
    big = [big_cert("bigca-%d" % i, 480) for i in range(2)]
    with Nginx(bad_conf(big)) as ng:
        for mode in ("tls1.2", "tls1.3"):
            s = s_client(ng.ports["main"], "bigca.test", mode, p.good)
            r = s.report
            expect_eq((r["verify"], r["chain"]), ("NONE", "nil"), mode + ": no certificate requested")
            expect_eq(s.ca_names, None, mode + ": CA names sent")
        got = dump(ng)["ca_over_hint_limit"]
        expect(got.startswith("nil,CA DN hints exceed the 65535-byte"), got)
        sizes = sum(der_len(b) for b in big)
        note("| CA list of 2 certificates with ~%d KB of subject names (over the 65535-byte hint limit) "
             "| `%s`; the handshake goes on without a CertificateRequest (s_client: \"No client certificate "
             "CA names sent\"), TLS 1.2 and 1.3 |", sizes // 2048, got)


def test_100kb_client_chain():
    """A client sending ~90 KB of chain: accepted, returned byte for byte (the Lua buffer grows
    from 10 KB). ~110 KB: OpenSSL's 100 KB max_cert_list refuses the handshake; nginx logs it
    at info level; the worker lives on."""
    p = pki()
    parts = [big_cert("bigchain-%d" % i, 190) for i in range(4)]
    small = bundle("chain-90k.pem", parts[:3])
    large = bundle("chain-110k.pem", parts)
    wire = lambda paths: sum(der_len(x) for x in paths) + der_len(p.good.cert)  # noqa: E731
    with Nginx(bad_conf([p.root.cert]), log_level="info") as ng:
        pids = worker_pids(ng)
        port = ng.ports["main"]
        for mode in ("tls1.2", "tls1.3"):
            args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "chain.test",
                    "-ign_eof", "-tls1_3" if mode == "tls1.3" else "-tls1_2",
                    "-cert", p.good.cert, "-key", p.good.key, "-cert_chain", small]
            proc = run_client(args, stdin=b"GET / HTTP/1.0\r\nHost: chain.test\r\n\r\n")
            r = SClient(proc.stdout.decode(errors="replace")).report
            expect_eq(r["chain"], "certs:4", mode + " 90 KB chain")
            import base64
            want = open(p.good.cert, "rb").read() + open(small, "rb").read()
            got = base64.b64decode(r["chain_b64"])
            expect(got == want, "%s: chain not byte-exact (%d vs %d bytes)" % (mode, len(got), len(want)))
            args[-1] = large
            proc = run_client(args, stdin=b"GET / HTTP/1.0\r\nHost: chain.test\r\n\r\n")
            text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
            expect("HTTP/1." not in text, mode + ": the 110 KB chain got a response")
        log = ng.log_text()
        refused = [l for l in log.splitlines() if "excessive message size" in l]
        expect(refused, "no 'excessive message size' in the error log")
        level = re.search(r"\[(\w+)\]", refused[0]).group(1)
        expect_eq(worker_pids(ng), pids, "worker pids")
        note("| client chain of %d bytes (leaf + 3 CAs with big names) | accepted; "
             "`get_full_client_certificate_chain()` returns all %d PEM bytes byte for byte "
             "(the Lua buffer grows from 10240), TLS 1.2 and 1.3 |", wire(parts[:3]), len(want))
        note("| client chain of %d bytes | OpenSSL refuses the handshake (100 KB `max_cert_list`): "
             "nginx logs `[%s] ... excessive message size ... while SSL handshaking`; the worker "
             "lives on |", wire(parts), level)


def aborts(port):
    """Clients giving up at each point of the handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(pki().good.bundle, pki().good.key)
    done = []
    for kind in ("connect-close", "half-hello", "hello-then-close", "hello-read-flight-close",
                 "garbage", "rst"):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        if kind == "half-hello":
            raw.sendall(hello[: len(hello) // 2])
        elif kind == "hello-then-close":
            raw.sendall(hello)
        elif kind == "hello-read-flight-close":
            raw.sendall(hello)
            raw.recv(65536)  # ServerHello .. CertificateRequest: the certificate phase ran
        elif kind == "garbage":
            raw.sendall(b"\x16\x03\x01\x00\x05garbage-not-tls" * 10)
        elif kind == "rst":
            raw.sendall(hello)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        raw.close()
        done.append(kind)
    return done


def test_client_aborts_mid_handshake():
    p = pki()
    with Nginx(bad_conf([p.root.cert]), log_level="info") as ng:
        pids = worker_pids(ng)
        port = ng.ports["main"]
        for _ in range(20):
            kinds = aborts(port)
        r = s_client(port, "localhost", "tls1.3", p.good).report
        expect_eq(r["verify"], "SUCCESS", "a normal client afterwards")
        expect_eq(worker_pids(ng), pids, "worker pids")
        info = sorted(set(re.sub(r"^.*?\[info\] \d+#\d+: \*\d+ ", "", l).split(" while ")[0][:90]
                          for l in ng.log_text().splitlines() if "[info]" in l and "SSL" in l))
        note("| client aborting mid-handshake (%s; 20 rounds) | the worker lives on (same pid), the next "
             "handshake works; nginx logs only [info]: %s |", ", ".join(kinds),
             "; ".join("`%s`" % i for i in info[:4]))


DANGEROUS = {
    "ca_char_pointer": 'ssl_certificate_by_lua_block { require("rel_test").dangerous("ca_char_pointer") }',
    "ca_private_key_pointer": 'ssl_certificate_by_lua_block { require("rel_test").dangerous("ca_private_key_pointer", "%s") }',
    "low_ssl_int_array": None,
}


def test_pointer_of_another_type_is_not_detectable():
    """Pointers of another C type pass the Lua checks (LuaJIT cannot tell what a `void *`
    points to). Records what happens, each in a throwaway nginx: this documents the one
    misuse that is not answered by a clear error."""
    p = pki()
    key = os.path.join(p.dir, "readable-for-nobody.key")
    with open(p.server("localhost").key, "rb") as f, open(key, "wb") as g:
        g.write(f.read())
    os.chmod(key, 0o644)
    for kind, phase in DANGEROUS.items():
        if phase and "%s" in phase:
            phase = phase % key
        cert = p.server("localhost")
        conf = ("    %s" % INIT + """    server {
        listen 127.0.0.1:@port:main@ ssl default_server;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        %s
        location / { content_by_lua_block {
            %s
            ngx.say("alive")
        } }
    }
""" % (cert.cert, cert.key, phase or "",
       'require("rel_test").dangerous("low_ssl_int_array")' if phase is None else ""))
        with Nginx(conf, allow_alerts=(r"exited on signal",)) as ng:
            pids = worker_pids(ng)
            try:
                answered = "HTTP %s" % curl_one(ng.ports["main"], "/").status
            except TestFailure as e:
                answered = "no response (%s)" % str(e).splitlines()[0].split(":")[0]
            harness.wait_for(lambda: "exited on signal" in ng.log_text(), 1.0)
            log = ng.log_text()
            crashed = worker_pids(ng) != pids or "exited on signal" in log
            sig = re.search(r"exited on signal (\d+)", log)
            why = [l for l in log.splitlines() if "memory allocation" in l or "panicked" in l]
            expect(ng.proc.poll() is None and worker_pids(ng), "%s: the master lives on with a worker" % kind)
        note("| %s | %s |", kind, ("worker CRASHED (signal %s%s), master restarted it; client: %s"
                                   % (sig.group(1) if sig else "?", "; stderr: " + why[0] if why else "",
                                      answered)) if crashed else "no crash; client: %s" % answered)
