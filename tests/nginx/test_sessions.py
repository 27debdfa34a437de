"""Session resumption: disable_session_reuse() against every nginx cache/ticket setting, always
beside a control server (same settings, reuse not disabled) proving that the very same client
does resume; and resumption across SNI names."""

from tests.harness import (Nginx, cases, expect, expect_chain, expect_eq, expect_no_chain, note, pki,
                     tls_server)
from tests.harness.clients import TLS_MODES, s_client_pair

CACHES = {
    "shared": "ssl_session_cache shared:SSL:1m;",
    "builtin": "ssl_session_cache builtin:1000;",
    "none": "ssl_session_cache none;",    # nginx's default
    "off": "ssl_session_cache off;",
}
TICKETS = {"tickets_on": "ssl_session_tickets on;", "tickets_off": "ssl_session_tickets off;"}
VHOSTS = ("default", "sni")


def control_resumes(cache, tickets, mode):
    """Whether nginx resumes when nothing disables reuse. TLS 1.2 without tickets needs the
    session-ID cache; with tickets (TLS 1.2 offered by the client, TLS 1.3 always) stateless
    tickets do, and with `ssl_session_tickets off` TLS 1.3 falls back to stateful tickets,
    which need the cache too."""
    stateful = cache in ("shared", "builtin")
    if mode == "tls1.2-noticket":
        return stateful
    return tickets == "tickets_on" or stateful


def phase(disable):
    p = pki()
    return {"ca": [p.int, p.root], "depth": 2, "disable": disable}


def session_conf(cache, tickets):
    """http-level cache/ticket settings. Ports: ctl and dis (each its own default server);
    sni: a plain default server with ctl.test and dis.test behind it."""
    return ("    %s\n    %s\n" % (CACHES[cache], TICKETS[tickets])
            + tls_server("ctl", default=True, tag="ctl", cert_phase=phase(False))
            + tls_server("dis", default=True, tag="dis", cert_phase=phase(True))
            + tls_server("sni", "localhost", default=True, tag="default")
            + tls_server("sni", "ctl.test", tag="ctl", cert_phase=phase(False))
            + tls_server("sni", "dis.test", tag="dis", cert_phase=phase(True)))


def target(ng, vhost, kind):
    """(port, SNI name) of the control ("ctl") or disabled ("dis") server."""
    if vhost == "default":
        return ng.ports[kind], "localhost"
    return ng.ports["sni"], kind + ".test"


def session_cases():
    out = {}
    for cache in CACHES:
        for tickets in TICKETS:
            for mode in TLS_MODES:
                if not control_resumes(cache, tickets, mode):
                    continue  # no control possible: "never resumed" would prove nothing
                for vhost in VHOSTS:
                    out["%s-%s-%s-%s" % (cache, tickets, mode, vhost)] = dict(
                        cache=cache, tickets=tickets, mode=mode, vhost=vhost)
    return out


def check_full_handshake(s, client, what, tag):
    report = s.report
    expect(not s.reused, "%s: s_client reports a resumed session" % what)
    expect_eq(report["content.reused"], ".", what + " $ssl_session_reused")
    expect_eq(report["content.server"], tag, what + " server{}")
    expect_eq(report["content.verify"], "SUCCESS", what + " verify")
    expect_chain(report, "content.chain", client, what)


def check_control(ng, vhost, mode, client, what):
    """The control server: the second connection resumes ("Reused," and $ssl_session_reused
    "r"), and then only the leaf is known (CONTRACT)."""
    port, name = target(ng, vhost, "ctl")
    first, second = s_client_pair(port, ng.dir, name, mode, client, path="/info")
    check_full_handshake(first, client, what + ", 1st connection", "ctl")
    report = second.report
    expect(second.reused, "%s, 2nd connection: s_client did not resume (%s)" % (what, second.protocol))
    expect_eq(report["content.reused"], "r", what + ", 2nd connection $ssl_session_reused")
    expect_eq(report["content.verify"], "SUCCESS", what + ", resumed verify")
    expect_chain(report, "content.chain", client.pem(), what + ", resumed (leaf only)")


@cases(**session_cases())
def test_session_reuse(cache, tickets, mode, vhost):
    """Control resumes; the server that disabled reuse never does (its second connection is a
    full handshake with the complete chain); then the control still resumes: the disabling
    touched no other connection (with vhost "sni" all three share one session context)."""
    client = pki().good
    with Nginx(session_conf(cache, tickets)) as ng:
        check_control(ng, vhost, mode, client, "control")

        port, name = target(ng, vhost, "dis")
        first, second = s_client_pair(port, ng.dir, name, mode, client, path="/info",
                                      require_session=False)
        check_full_handshake(first, client, "disabled, 1st connection", "dis")
        if second is None:
            note("disabled: the server issued nothing resumable (no ticket, no session ID)")
        else:
            check_full_handshake(second, client, "disabled, 2nd connection", "dis")
            note("disabled: the session offered was refused (full handshake)")

        check_control(ng, vhost, mode, client, "control after disabled")


def cross_sni_conf(a_phase):
    """One port: a.test (default server{}) and b.test (mTLS, disables reuse, trusts root)."""
    return ("    ssl_session_cache shared:SSL:1m;\n    ssl_session_tickets on;\n"
            + tls_server("main", "a.test", default=True, tag="a", cert_phase=a_phase)
            + tls_server("main", "b.test", tag="b", cert_phase=phase(True)))


def cross_sni(ng, mode, client):
    """Control (a.test -> a.test must resume), then a.test's session offered to b.test."""
    port = ng.ports["main"]
    _, again = s_client_pair(port, ng.dir, "a.test", mode, client, path="/info")
    expect(again.reused, "control: %s session on a.test was not resumed on a.test" % mode)
    first, second = s_client_pair(port, ng.dir, "a.test", mode, client, path="/info",
                                  second_servername="b.test")
    expect_eq(first.report["content.server"], "a", "1st connection server{}")
    report = second.report
    expect_eq(report["content.server"], "b", "2nd connection (SNI b.test) server{}")
    expect_eq(report["content.reused"], "r" if second.reused else ".",
              "$ssl_session_reused vs s_client")
    expect_eq(report["content.nginx_verify"], report["content.verify"],
              "get_client_verify() vs $ssl_client_verify on b.test")
    note("%s: session from a.test offered to b.test: %s; b.test saw $ssl_server_name=%s, "
         "verify=%s, chain=%s, get_session_info()=%s", mode,
         "RESUMED" if second.reused else "not resumed (full handshake)", report["content.sni"],
         report["content.verify"], "nil" if report["content.chain"] == "nil" else "present",
         report["content.session"])
    check_session_info(report, second.reused, "a.test" if second.reused else "b.test")
    return second.reused, report


def check_session_info(report, resumed, server_name):
    """get_session_info() (beyond Kong's API: the cross-host resumption helper) gives what a plugin needs
    to refuse a session made for another host: whether it was resumed and its original SNI."""
    if report["content.session"] == "unsupported":
        note("the module has no get_session_info(): not checked")
        return
    expect_eq(report["content.session"], "%s,%s" % ("resumed" if resumed else "full", server_name),
              "get_session_info() on b.test")


@cases(**{m: m for m in TLS_MODES})
def test_cross_sni_resumption(mode):
    """Cross-host resumption: a full handshake on SNI a.test without a client certificate, then that
    session offered with SNI b.test, whose server{} requests one. Resumed: b.test sees no
    certificate at all. Not resumed: a real handshake with b.test's own verification."""
    client = pki().good
    with Nginx(cross_sni_conf(None)) as ng:
        resumed, report = cross_sni(ng, mode, client)
        if resumed:
            expect_eq(report["content.verify"], "NONE", "b.test verify after resumption")
            expect_no_chain(report, "content.chain", "b.test after resumption")
        else:
            expect_eq(report["content.verify"], "SUCCESS", "b.test verify after a full handshake")
            expect_chain(report, "content.chain", client, "b.test after a full handshake")


@cases(**{m: m for m in TLS_MODES})
def test_cross_sni_resumption_foreign_cert(mode):
    """Cross-host resumption, CVE-2025-23419 class: a.test trusts another CA and accepts a certificate from
    it; a.test's session is then offered to b.test, which trusts only the test root. Records
    what b.test sees; the module must report the connection's real state (equal to
    $ssl_client_verify, leaf only when resumed)."""
    client = pki().unknown
    with Nginx(cross_sni_conf({"ca": [pki().other_root], "depth": 2})) as ng:
        resumed, report = cross_sni(ng, mode, client)
        if resumed:
            expect_chain(report, "content.chain", client.pem(), "b.test after resumption")
            if report["content.verify"] == "SUCCESS":
                note("%s: BYPASS: b.test got a.test's verified certificate (%s) from another CA "
                     "without its certificate phase running", mode, client.subject)
        else:
            allowed = pki().expected_verify_any(client, [pki().int, pki().root], 2)
            expect(report["content.verify"] in allowed, "b.test verify after a full handshake: %r not in %r"
                   % (report["content.verify"], sorted(allowed)))
