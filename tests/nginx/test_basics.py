"""Optional mTLS, verification results, CA hints, chains: one request per test, real clients."""

from tests.harness import (Nginx, cases, expect, expect_chain, expect_eq, expect_match, expect_no_chain,
                     note, pki, plain_server, tls_server)
from tests.harness.clients import curl, curl_one, new_id, nghttp, s_client, seen

# Hints and verify store used by most servers below: the intermediate and the root.
STANDARD_CA = ("int", "root")
# Verification stopped by the depth limit. OpenSSL 1.1.1 says "chain too long"; 3.x, whose
# chain building stops at the limit, reports the missing issuer.
DEPTH_EXCEEDED = r"FAILED:(certificate chain too long|unable to get (local )?issuer certificate)"
# A leaf whose issuer is unknown: the first error, then the one the lenient callback ends on.
UNKNOWN_ISSUER = r"FAILED:unable to (get local issuer certificate|verify the first certificate)"


def certs(names):
    """PKI certificates by attribute name; "big_cas:N" stands for N CAs with ~1 KB subjects."""
    out = []
    for n in names:
        if n.startswith("big_cas:"):
            out += pki().big_cas(int(n.split(":")[1]))
        else:
            out.append(getattr(pki(), n))
    return out


def client_of(name):
    return getattr(pki(), name) if name else None


def check_request(port, client, expected_verify, pattern, host="localhost", **curl_kw):
    """One request with `client`: verify and chain as expected in access, content and log.
    `expected_verify` (from `openssl verify`) must agree on NONE/SUCCESS/FAILED; the reason
    is matched by `pattern` only: `openssl verify` stops at the first error where nginx's
    lenient verify callback goes on, so its last error can differ."""
    rid = new_id()
    r = curl_one(port, "/info?id=" + rid, host=host, client=client, **curl_kw)
    report = r.report
    log = seen(port, rid, host=host)
    for src, prefix in ((report, "access."), (report, "content."), (log, "log.")):
        verify = src[prefix + "verify"]
        expect_eq(verify.split(":")[0], expected_verify.split(":")[0],
                  prefix + "verify %r vs openssl verify %r" % (verify, expected_verify))
        expect_match(verify, pattern, prefix + "verify")
        expect_eq(src[prefix + "nginx_verify"], verify, prefix + "verify vs $ssl_client_verify")
        if client:
            expect_chain(src, prefix + "chain", client)
        else:
            expect_no_chain(src, prefix + "chain")
    return report


@cases(
    none=dict(client=None, pattern="NONE"),
    good=dict(client="good", pattern="SUCCESS"),
    good2=dict(client="good2", pattern="SUCCESS"),
    selfsigned=dict(client="selfsigned", pattern=r"FAILED:.*self[- ]signed.*"),
    expired=dict(client="expired", pattern=r"FAILED:.*expired.*"),
    unknown_ca=dict(client="unknown", pattern=UNKNOWN_ISSUER),
    # depth omitted: nginx's ssl_verify_depth (default 1) stands
    good_default_depth=dict(client="good", depth=None, pattern="SUCCESS"),
    good2_default_depth=dict(client="good2", depth=None,
                             pattern=DEPTH_EXCEEDED),
    good2_ssl_verify_depth_3=dict(client="good2", depth=None, conf_depth=3, pattern="SUCCESS"),
    # no CA list: the server{}'s own (empty) store
    good_without_ca=dict(client="good", ca=(), pattern=r"FAILED:unable to get local issuer certificate"),
    # nginx's own optional client verification on the same server{}: its 400 is not triggered
    # by these results, and $ssl_client_verify must still agree
    optional_no_ca_none=dict(client=None, conf="ssl_verify_client optional_no_ca;", pattern="NONE"),
    optional_no_ca_good=dict(client="good", conf="ssl_verify_client optional_no_ca;", pattern="SUCCESS"),
    optional_no_ca_unknown_ca=dict(client="unknown", conf="ssl_verify_client optional_no_ca;",
                                   pattern=UNKNOWN_ISSUER),
)
def test_verify(client, pattern, ca=STANDARD_CA, depth=2, conf_depth=None, conf=""):
    """Handshake always completes; get_client_verify == $ssl_client_verify == `openssl verify`
    on the same certificates; chain byte-exact (or nil) in access, content and log."""
    client = client_of(client)
    phase = {"ca": certs(ca)} if ca else {}
    if depth is not None:
        phase["depth"] = depth
    if conf_depth:
        conf += "ssl_verify_depth %d;" % conf_depth
    expected = pki().expected_verify(client, certs(ca), depth if depth is not None else conf_depth or 1)
    server = tls_server("main", cert_phase=phase, default=True, extra="        %s\n" % conf)
    with Nginx(server) as ng:
        report = check_request(ng.ports["main"], client, expected, pattern)
        note("verify: %s", report["content.verify"])


@cases(without_cert=dict(client=None), good=dict(client="good"))
def test_optional_mtls_s_client(client):
    """openssl s_client, with and without a certificate, against a server that requests one."""
    client = client_of(client)
    phase = {"ca": certs(STANDARD_CA), "depth": 2}
    with Nginx(tls_server("main", cert_phase=phase, default=True)) as ng:
        for mode in ("tls1.2", "tls1.3"):
            s = s_client(ng.ports["main"], mode=mode, client=client, path="/info")
            report = s.report
            expect_eq(report["content.verify"], "SUCCESS" if client else "NONE", mode + " verify")
            expect_eq(report["content.nginx_verify"], report["content.verify"], mode + " $ssl_client_verify")
            expect_eq(report["content.protocol"], s.protocol, "protocol seen by nginx")
            if client:
                expect_chain(report, "content.chain", client, mode)
            else:
                expect_no_chain(report, "content.chain", mode)


@cases(
    int_root_int=dict(ca=("int", "root", "int"), names=("int", "root")),
    root_int_root=dict(ca=("root", "int", "root"), names=("root", "int")),
    one=dict(ca=("other_root",), names=("other_root",)),
    no_ca=dict(ca=None, names=None),
    # about 45 KB of names: fits the 65535-byte field
    large=dict(ca=("big_cas:40",), names=("big_cas:40",)),
)
def test_ca_hints(ca, names):
    """The CertificateRequest's CA names, as openssl s_client prints them: the caller's order,
    each subject once; none when request_client_certificate() gets no CA list. The CA stack
    is garbage-collected right after the call (rct_test.cert_phase) and the handshake still
    sees it."""
    phase = {"ca": certs(ca)} if ca else {}
    expected = [c.subject for c in certs(names)] if names else None
    with Nginx(tls_server("main", cert_phase=phase, default=True)) as ng:
        for mode in ("tls1.2", "tls1.3"):
            s = s_client(ng.ports["main"], mode=mode, path="/info")
            expect_eq(s.ca_names, expected, mode + " acceptable CA names")
            expect_eq(s.report["content.verify"], "NONE", mode + " verify without a certificate")


@cases(
    # a second call replaces the first: hints and verify store
    replaced=dict(first=("other_root",), ca=STANDARD_CA, names=STANDARD_CA, verify="SUCCESS"),
    # more than 65535 bytes of names (80 x ~1.1 KB): an error, and nothing changes
    too_large=dict(first=None, ca=("big_cas:80",), names=None, verify="NONE"),
    too_large_after_a_call=dict(first=STANDARD_CA, ca=("big_cas:80",), names=STANDARD_CA,
                                verify="SUCCESS"),
)
def test_request_twice(first, ca, names, verify):
    """request_client_certificate(first) then request_client_certificate(ca) in one
    certificate phase. A failing call returns nil, err and leaves the connection exactly as
    it was: no certificate requested, or the first call's hints and store."""
    phase = {"ca": certs(ca), "depth": 2}
    if first:
        phase["ca_first"] = certs(first)
    too_large = len(ca) == 1 and ca[0] == "big_cas:80"
    expected_names = [c.subject for c in certs(names)] if names else None
    errors = [r"request_client_certificate failed: .+"] if too_large else []
    with Nginx(tls_server("main", cert_phase=phase, default=True), expect_errors=errors) as ng:
        port = ng.ports["main"]
        for mode in ("tls1.2", "tls1.3"):
            expect_eq(s_client(port, mode=mode, path="/info").ca_names, expected_names,
                      mode + " acceptable CA names")
        report = curl_one(port, "/info", client=pki().good).report
        expect_eq(report["content.verify"], verify, "verify for the good client")
        if verify == "NONE":
            expect_no_chain(report, "content.chain")
        else:
            expect_chain(report, "content.chain", pki().good)
        log = ng.log_text()
    if too_large:
        note("error: %s", log.split("request_client_certificate failed: ", 1)[1].split(", context:")[0])


def test_ca_lists_by_sni():
    """One server{} choosing a CA list per SNI name: 3 lists that decide verification, and 18
    one-CA lists (more than the 16 a worker's CA-list cache keeps), each handshake twice in
    round robin. Every handshake gets its own hints and verify store, never another's."""
    p = pki()
    lists = {"one.wild.test": ([p.int, p.root], "SUCCESS"),
             "two.wild.test": ([p.other_root], "FAILED:"),
             "three.wild.test": ([p.root, p.int], "SUCCESS")}
    for i, ca in enumerate(p.big_cas(18)):
        lists["big%d.wild.test" % i] = ([ca], "FAILED:")
    phase = {"by_sni": {name: {"ca": ca, "depth": 2} for name, (ca, _) in lists.items()}}
    with Nginx(tls_server("main", "*.wild.test", cert_phase=phase, default=True)) as ng:
        for _ in range(2):
            for name, (ca, verify) in lists.items():
                s = s_client(ng.ports["main"], name, "tls1.3", client=p.good, path="/info")
                expect_eq(s.ca_names, [c.subject for c in ca], name + " acceptable CA names")
                expect(s.report["content.verify"].startswith(verify), "%s: verify %r, expected %s..."
                       % (name, s.report["content.verify"], verify))


def test_long_chain():
    """A leaf + 8 intermediates with 4096-bit keys (about 17 KB of PEM, more than the 10240-byte
    first buffer): byte-exact in access, content and log over HTTP/1.1, and over HTTP/2."""
    long = pki().long
    expect(len(long.expected_chain()) > 10240, "the long chain must exceed 10240 bytes")
    phase = {"ca": [pki().root], "depth": 9}
    expected = pki().expected_verify(long, [pki().root], 9)
    conf = tls_server("main", cert_phase=phase, default=True, http2=True)
    with Nginx(conf) as ng:
        check_request(ng.ports["main"], long, expected, "SUCCESS")
        [report] = nghttp(ng.ports["main"], ["/info"], client=long)
        expect_eq(report["content.http2"], "h2", "protocol")
        expect_chain(report, "content.chain", long, "HTTP/2")
        note("chain: %d bytes, verify: %s", len(long.expected_chain()), report["content.verify"])


def test_long_chain_default_depth():
    """Without a depth argument the long chain fails verification (depth 1), yet the handshake
    completes and the whole chain is still returned."""
    long = pki().long
    expected = pki().expected_verify(long, [pki().root], 1)
    with Nginx(tls_server("main", cert_phase={"ca": [pki().root]}, default=True)) as ng:
        report = check_request(ng.ports["main"], long, expected, DEPTH_EXCEEDED)
        note("verify at depth 1: %s (openssl verify: %s)", report["content.verify"], expected)


def test_plain_http():
    """Over plain HTTP the chain and verify calls return nil, err (never raise, never crash),
    in content and log phases, and the same worker keeps serving."""
    with Nginx(plain_server("plain")) as ng:
        port = ng.ports["plain"]
        rid = new_id()
        first, second = curl(port, ["/info?id=" + rid, "/info"], scheme="http")
        log = seen(port, rid, scheme="http")
        for src, prefix in ((first.report, "access."), (first.report, "content."), (log, "log.")):
            expect_match(src[prefix + "chain"], r"err:.+", prefix + "chain")
            expect_match(src[prefix + "verify"], r"err:.+", prefix + "verify")
        expect_eq(second.report["content.worker"], first.report["content.worker"], "worker pid")
        note("chain: %s; verify: %s", first.report["content.chain"], first.report["content.verify"])
