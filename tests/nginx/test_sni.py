"""Several server{} blocks on one port chosen by SNI (the mTLS ones not the default), and HTTP/2."""

from tests.harness import Nginx, cases, expect_chain, expect_eq, expect_no_chain, note, pki, tls_server
from tests.harness.clients import curl, curl_one, nghttp, s_client


def vhosts_conf():
    """a.test: default, no certificate requested; b.test and *.wild.test: mTLS, with different
    CA hints; b.test also disables session reuse."""
    p = pki()
    return (tls_server("main", "a.test", default=True, tag="a")
            + tls_server("main", "b.test", tag="b",
                         cert_phase={"ca": [p.int, p.root], "depth": 2, "disable": True})
            + tls_server("main", "*.wild.test", tag="wild",
                         cert_phase={"ca": [p.root], "depth": 2}))


def test_sni_vhosts():
    """Each SNI name reaches its own server{}; only the mTLS ones see the client's chain and
    send their own CA hints."""
    p = pki()
    expectations = {  # host: (server tag, CA names in the CertificateRequest or None)
        "a.test": ("a", None),
        "b.test": ("b", [p.int.subject, p.root.subject]),
        "x.wild.test": ("wild", [p.root.subject]),
        "y.wild.test": ("wild", [p.root.subject]),
    }
    with Nginx(vhosts_conf()) as ng:
        port = ng.ports["main"]
        for host, (tag, ca_names) in expectations.items():
            report = curl_one(port, "/info", host=host, client=p.good).report
            expect_eq(report["content.server"], tag, host + " served by")
            expect_eq(report["content.sni"], host, host + " $ssl_server_name")
            if ca_names is None:
                expect_eq(report["content.verify"], "NONE", host + " verify")
                expect_no_chain(report, "content.chain", host)
            else:
                expect_eq(report["content.verify"], "SUCCESS", host + " verify")
                expect_chain(report, "content.chain", p.good, host)
            expect_eq(report["content.nginx_verify"], report["content.verify"], host + " $ssl_client_verify")
            for mode in ("tls1.2", "tls1.3"):
                s = s_client(port, host, mode, path="/info")
                expect_eq(s.ca_names, ca_names, "%s %s acceptable CA names" % (host, mode))
                expect_eq(s.report["content.server"], tag, "%s %s served by" % (host, mode))


def test_host_differs_from_sni():
    """HTTP/1.1 on a connection negotiated for SNI a.test with Host: b.test. nginx serves it
    from b.test's server{}, whose certificate phase never ran on this connection: b.test must
    see no certificate (plugins have to compare Host and SNI themselves)."""
    with Nginx(vhosts_conf()) as ng:
        for mode in ("tls1.2", "tls1.3"):
            s = s_client(ng.ports["main"], "a.test", mode, client=pki().good, path="/info", host="b.test")
            report = s.report
            expect_eq(report["content.sni"], "a.test", mode + " SNI")
            expect_eq(report["content.verify"], "NONE", mode + " verify on b.test's server{}")
            expect_no_chain(report, "content.chain", mode)
            note("%s: SNI a.test + Host b.test served by server{} %r, verify %s",
                 mode, report["content.server"], report["content.verify"])


@cases(good=dict(client="good"), long=dict(client="long"))
def test_http2_chain(client):
    """HTTP/2 (nghttp, then curl --http2): the chain and verify result on a stream."""
    client = getattr(pki(), client)
    conf = tls_server("main", default=True, http2=True,
                      cert_phase={"ca": [pki().root], "depth": 9})
    with Nginx(conf) as ng:
        port = ng.ports["main"]
        [report] = nghttp(port, ["/info"], client=client)
        r = curl_one(port, "/info", client=client, http2=True)
        expect_eq(r.http_version, "2", "curl negotiated HTTP/2")
        for tool, rep in (("nghttp", report), ("curl", r.report)):
            expect_eq(rep["content.http2"], "h2", tool + " $http2")
            expect_eq(rep["content.verify"], "SUCCESS", tool + " verify")
            expect_chain(rep, "content.chain", client, tool)
            expect_chain(rep, "access.chain", client, tool)


def test_http2_without_cert():
    """HTTP/2 without a client certificate: NONE and nil on every stream."""
    conf = tls_server("main", default=True, http2=True, cert_phase={"ca": [pki().root]})
    with Nginx(conf) as ng:
        reports = nghttp(ng.ports["main"], ["/info", "/info?second"])
        expect_eq(len(reports), 2, "responses")
        for rep in reports:
            expect_eq(rep["content.verify"], "NONE", "verify")
            expect_no_chain(rep, "content.chain")
        r = curl(ng.ports["main"], ["/info"], http2=True)[0]
        expect_eq(r.report["content.verify"], "NONE", "curl --http2 verify")
