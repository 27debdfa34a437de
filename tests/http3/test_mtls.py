"""Optional mTLS over HTTP/3: one server{} listening on TCP and QUIC on the same port number;
every request is made over both, and QUIC must give the module exactly what TCP gives it."""

import subprocess
import urllib.parse

from tests.harness.clients import client_cert_args, new_id, s_client, seen
from tests.nginx.test_basics import UNKNOWN_ISSUER, certs
from tests.http3.h3 import (Nginx, curl_one, expect_h3, h3_requests, quic_server, s_client_quic,
                            same_as_tcp)
from tests.harness import (cases, expect, expect_chain, expect_eq, expect_match, expect_no_chain,
                     lua_value, note, pki)

STANDARD_CA = ("int", "root")


def both(port, path_of, client=None):
    """The same request (path_of(rid)) over QUIC, then over TCP; each with its log-phase
    report (fetched over TCP). Returns ((h3 response, h3 report + log), (tcp ..., ...))."""
    out = []
    for proto in ("h3", "tcp"):
        rid = new_id()
        r = curl_one(port, path_of(rid), proto=proto, client=client)
        report = dict(r.report)
        report.update(seen(port, rid))
        out.append((r, report))
    return out


@cases(
    none=dict(client=None, pattern="NONE"),
    good=dict(client="good", pattern="SUCCESS"),
    selfsigned=dict(client="selfsigned", pattern=r"FAILED:.*self[- ]signed.*"),
    expired=dict(client="expired", pattern=r"FAILED:.*expired.*"),
    unknown_ca=dict(client="unknown", pattern=UNKNOWN_ISSUER),
    # leaf + intermediate verified at nginx's ssl_verify_depth (1): the depth is exceeded
    good2_default_depth=dict(client="good2", depth=None,
                             pattern=r"FAILED:(certificate chain too long|unable to get (local )?"
                                     r"issuer certificate)"),
    # leaf + 8 intermediates, 4096-bit keys: ~17 KB of client certificates in QUIC CRYPTO frames
    long_chain=dict(client="long", ca=("root",), depth=9, pattern="SUCCESS"),
)
def test_verify(client, pattern, ca=STANDARD_CA, depth=2):
    """No certificate, a valid chain, a self-signed, an expired and an unknown-CA certificate:
    the handshake completes; get_client_verify() == $ssl_client_verify, matching `openssl
    verify`; the chain byte-exact (or nil) in access, content and log; over QUIC exactly as
    over TCP."""
    client = getattr(pki(), client) if client else None
    phase = {"ca": certs(ca)}
    if depth is not None:
        phase["depth"] = depth
    expected = pki().expected_verify(client, certs(ca), depth or 1)
    with Nginx(quic_server("main", cert_phase=phase)) as ng:
        (r3, h3), (_, tcp) = both(ng.ports["main"], lambda rid: "/info?id=" + rid, client)
        expect_h3(r3, "QUIC request")
        for prefix in ("access.", "content.", "log."):
            verify = h3[prefix + "verify"]
            expect_match(verify, pattern, "QUIC " + prefix + "verify")
            expect_eq(verify.split(":")[0], expected.split(":")[0],
                      "QUIC %sverify %r vs openssl verify %r" % (prefix, verify, expected))
            expect_eq(h3[prefix + "nginx_verify"], verify, "QUIC %sverify vs $ssl_client_verify"
                      % prefix)
            if client:
                expect_chain(h3, prefix + "chain", client, "QUIC")
            else:
                expect_no_chain(h3, prefix + "chain", "QUIC")
        same_as_tcp(h3, tcp, "verify")
        note("QUIC and TCP: %s", h3["content.verify"])


@cases(
    int_root_int=dict(ca=("int", "root", "int"), names=("int", "root")),
    root_int=dict(ca=("root", "int"), names=("root", "int")),
    one=dict(ca=("other_root",), names=("other_root",)),
    no_ca=dict(ca=None, names=None),
    # about 45 KB of names in one CertificateRequest: larger than QUIC's anti-amplification
    # allowance (3 x the client's first datagrams), so it crosses several round trips
    large=dict(ca=("big_cas:40",), names=("big_cas:40",)),
)
def test_ca_hints(ca, names):
    """The CA names of the CertificateRequest as a QUIC client receives them (openssl s_client
    -quic), equal to what a TCP client receives (openssl s_client, TLS 1.3): the caller's
    order, each subject once, none without a CA list."""
    phase = {"ca": certs(ca)} if ca else {}
    expected = [c.subject for c in certs(names)] if names else None
    with Nginx(quic_server("main", cert_phase=phase)) as ng:
        port = ng.ports["main"]
        quic = s_client_quic(port, linger=0)
        expect_eq(quic.protocol, "TLSv1.3", "QUIC handshake protocol")
        expect_eq(quic.ca_names, expected, "acceptable CA names over QUIC")
        tcp = s_client(port, mode="tls1.3", path="/info")
        expect_eq(tcp.ca_names, quic.ca_names, "CA names over TCP vs over QUIC")
        r = curl_one(port, "/info", proto="h3")
        expect_h3(r, "QUIC request")
        expect_eq(r.report["content.verify"], "NONE", "verify without a certificate")
        note("%s CA name(s) over QUIC, as over TCP", len(expected) if expected else "no")


def set_path(value, rid):
    return "/info?id=%s&set=%s" % (rid, urllib.parse.quote(value, safe=""))


@cases(success="SUCCESS", none="NONE", failed_reason="FAILED:x", failed_empty="FAILED:",
       rejected_lowercase="success", rejected_no_colon="FAILED")
def test_set_client_verify(value):
    """set_client_verify(value) in access: the override in access, content and log while
    $ssl_client_verify keeps the connection's result; a bad value raises Kong's message and
    changes nothing. Over QUIC exactly as over TCP."""
    accepted = value in ("SUCCESS", "NONE") or value.startswith("FAILED:")
    phase = {"ca": certs(STANDARD_CA), "depth": 2}
    with Nginx(quic_server("main", cert_phase=phase)) as ng:
        (r3, h3), (_, tcp) = both(ng.ports["main"], lambda rid: set_path(value, rid), pki().good)
        expect_h3(r3, "QUIC request")
        if accepted:
            expect_eq(h3.get("set"), "ok", "set_client_verify(%r) over QUIC" % value)
        else:
            expect_match(h3.get("set"), r"raise:.*unknown client verify value: %s accepted values "
                         r"are: .*" % value, "set_client_verify(%r) over QUIC" % value)
        for prefix in ("access.", "content.", "log."):
            expect_eq(h3[prefix + "verify"], value if accepted else "SUCCESS",
                      "QUIC " + prefix + "get_client_verify()")
            expect_eq(h3[prefix + "nginx_verify"], "SUCCESS", "QUIC " + prefix + "$ssl_client_verify")
        same_as_tcp(h3, tcp, "set_client_verify")
        expect_eq(h3.get("set"), tcp.get("set"), "set_client_verify outcome, QUIC vs TCP")


def test_override_no_leak_between_streams():
    """Two requests on one QUIC connection (two HTTP/3 streams): the first sets FAILED:leak,
    the second must see the connection's own SUCCESS."""
    phase = {"ca": certs(STANDARD_CA), "depth": 2}
    with Nginx(quic_server("main", cert_phase=phase)) as ng:
        port, ids = ng.ports["main"], (new_id(), new_id())
        first, second = h3_requests(port, [set_path("FAILED:leak", ids[0]), "/info?id=" + ids[1]],
                                    client=pki().good)
        expect_h3(first, "first request")
        expect_h3(second, "second request")
        for r, rid, want in ((first, ids[0], "FAILED:leak"), (second, ids[1], "SUCCESS")):
            log = seen(port, rid)
            for src, prefix in ((r.report, "content."), (log, "log.")):
                expect_eq(src[prefix + "verify"], want, "%s %sget_client_verify()" % (rid, prefix))
        expect_chain(second.report, "content.chain", pki().good, "second request")


def test_same_port_tcp_and_quic_connections_apart():
    """Clients with different certificates on TCP and QUIC at the same time-ish: each request
    sees its own connection's certificate, never the other transport's."""
    phase = {"ca": certs(STANDARD_CA), "depth": 2}
    with Nginx(quic_server("main", cert_phase=phase)) as ng:
        port = ng.ports["main"]
        for _ in range(3):
            q = curl_one(port, "/info", proto="h3", client=pki().good)
            t = curl_one(port, "/info", proto="tcp", client=pki().selfsigned)
            n = curl_one(port, "/info", proto="h3")
            expect_chain(q.report, "content.chain", pki().good, "QUIC good")
            expect_chain(t.report, "content.chain", pki().selfsigned, "TCP selfsigned")
            expect_no_chain(n.report, "content.chain", "QUIC without certificate")
            expect(q.report["content.verify"] == "SUCCESS" and n.report["content.verify"] == "NONE",
                   "verify: QUIC good %s, QUIC none %s" % (q.report["content.verify"],
                                                           n.report["content.verify"]))


def test_certificate_phase_must_not_yield_over_quic():
    """A certificate phase that yields (ngx.sleep here; a cosocket or a semaphore wait alike)
    before calling the module: over TCP the handshake waits for it and the module works; over
    QUIC nginx fails the handshake (its QUIC code takes the pause for an error). So over HTTP/3
    the certificate phase must run without yielding (the CA list parsed beforehand)."""
    phase = {"ca": certs(STANDARD_CA), "depth": 2}
    block = ('ssl_certificate_by_lua_block { ngx.sleep(0.01) require("rct_test").cert_phase(%s) }'
             % lua_value(phase))
    conf = quic_server("main", extra="        %s\n" % block)
    # logged at [crit] by nginx 1.29+, at [error] before
    failed = r"SSL_do_handshake\(\) failed while loading SSL certificate by lua"
    with Nginx(conf, expect_errors=[failed], allow_crit=[failed]) as ng:
        port = ng.ports["main"]
        r = curl_one(port, "/info", proto="tcp", client=pki().good)
        expect_eq(r.report["content.verify"], "SUCCESS", "TCP, yielding certificate phase: verify")
        expect_chain(r.report, "content.chain", pki().good, "TCP, yielding certificate phase")
        proc = subprocess.run(["curl", "-sS", "-k", "--http3-only", "--max-time", "10",
                               "--resolve", "localhost:%d:127.0.0.1" % port, *client_cert_args(pki().good),
                               "https://localhost:%d/info" % port], capture_output=True, text=True)
        expect(proc.returncode != 0, "QUIC handshake with a yielding certificate phase succeeded: "
               "docs/http3.md says it fails")
        note("QUIC: curl exit %d: %s", proc.returncode, proc.stderr.strip().splitlines()[-1][:120])
