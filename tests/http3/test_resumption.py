"""Session resumption and 0-RTT over QUIC. Every check that reuse is off stands beside a control
server (same nginx, same settings, reuse not disabled) where the very same client does resume
and does send early data that nginx serves.

Clients that try: `openssl s_client -quic` (-sess_out / -sess_in), and curl, which keeps its
sessions in the process: with `keepalive_requests 1` nginx ends each connection after one
request (HTTP/3 GOAWAY, HTTP/1.1 Connection: close), so each further URL of the same curl run
is a new connection offering the last session it got and, with --tls-earlydata, sending its
request as 0-RTT data. (curl does not always get a fresh ticket from a connection that nginx
ends at once, so a control connection may be a full handshake: the checks below hold for
every connection, and demand at least one resumed 0-RTT connection on the control.)"""

import os
import threading

from tests.harness.clients import new_id, s_client, s_client_pair
from tests.http3.h3 import (Nginx, curl, needs_curl_resumption, nginx_quic_api, quic_server, s_client_quic,
                same_as_tcp, session_max_early_data)
from tests.harness import TestFailure, cases, expect, expect_chain, expect_eq, expect_no_chain, note, pki

# nginx's session cache and stateless tickets both on, 0-RTT accepted: everything that could
# resume a session or take early data is enabled.
SESSION_CONF = "    ssl_session_cache shared:SSL:1m;\n    ssl_session_tickets on;\n"
ONE_REQUEST = "        keepalive_requests 1;\n"
CONNECTIONS = 5


def phase(disable):
    p = pki()
    return {"ca": [p.int, p.root], "depth": 2, "disable": disable}


def session_servers(early_data=True):
    """Ports ctl (control) and dis (disable_session_reuse())."""
    return (SESSION_CONF
            + quic_server("ctl", cert_phase=phase(False), tag="ctl", early_data=early_data,
                          extra=ONE_REQUEST)
            + quic_server("dis", cert_phase=phase(True), tag="dis", early_data=early_data,
                          extra=ONE_REQUEST))


def quic_early_data():
    """nginx's OpenSSL compatibility layer turns early data off on every QUIC connection."""
    return nginx_quic_api() == "native"


def session_run(port, proto, client, n=CONNECTIONS):
    """n requests in one curl run, one connection each, curl offering its latest session and
    0-RTT data on every connection after the first."""
    rs = curl(port, ["/info?n=%d" % i for i in range(n)], proto=proto, client=client, earlydata=True)
    for i, r in enumerate(rs):
        expect_eq(r.new_connections, 1, "%s request %d: a new connection" % (proto, i))
        if proto == "h3":
            expect_eq((r.http_version, r.report["content.http3"]), ("3", "h3"),
                      "request %d over HTTP/3" % i)
    return rs


def resumed(r):
    return r.report["content.reused"] == "r"


def check_full(r, client, verify, what):
    """A full handshake: nothing sent as 0-RTT data, the whole chain, the real verify result."""
    rep = r.report
    expect(r.earlydata == 0, "%s: curl sent %d bytes as 0-RTT data; curl said:\n%s"
           % (what, r.earlydata, "\n".join(l for l in r.stderr.splitlines() if l.startswith("*"))[-3000:]))
    expect_eq(rep["content.session"], "full,localhost", what + ": get_session_info()")
    for prefix in ("access.", "content."):
        expect_eq(rep[prefix + "early_data"], "nil", what + ": %s$ssl_early_data" % prefix)
        expect_eq((rep[prefix + "verify"], rep[prefix + "nginx_verify"]), (verify, verify),
                  what + ": %sverify and $ssl_client_verify" % prefix)
        if client:
            expect_chain(rep, prefix + "chain", client, what)
        else:
            expect_no_chain(rep, prefix + "chain", what)


def check_resumed(r, client, verify, proto, what):
    """A resumed connection of the control. Its request went as 0-RTT data that nginx took
    (curl's count of early bytes is positive), except over QUIC through the compatibility
    layer, which refuses it. A QUIC request in 0-RTT data is served at once, before the
    client's Finished can arrive: $ssl_early_data is "1" in access and content. (Over TCP
    nginx may read the Finished in the same pass, so $ssl_early_data there can be either.)
    What the request sees: the session's own client certificate (the leaf only, as on every
    resumed session) and verify result, equal to $ssl_client_verify."""
    rep = r.report
    quic_early = proto == "h3" and quic_early_data()
    if proto == "tcp" or quic_early:
        expect(r.earlydata > 0, "%s: curl's 0-RTT data was not taken (%d)" % (what, r.earlydata))
    else:
        expect(r.earlydata <= 0, "%s: 0-RTT data taken through the compatibility layer" % what)
    expect_eq(rep["content.session"], "resumed,localhost", what + ": get_session_info()")
    for prefix in ("access.", "content."):
        if proto == "h3":
            expect_eq(rep[prefix + "early_data"], "1" if quic_early else "nil",
                      what + ": %s$ssl_early_data" % prefix)
        expect_eq((rep[prefix + "verify"], rep[prefix + "nginx_verify"]), (verify, verify),
                  what + ": %sverify and $ssl_client_verify" % prefix)
        if client:
            expect_chain(rep, prefix + "chain", client.pem(), what + " (leaf only)")
        else:
            expect_no_chain(rep, prefix + "chain", what)


def check_control(rs, client, verify, proto, what):
    """Each connection either a full handshake or resumed with 0-RTT, checked as such; at least
    one of each. (The first is full, unless curl retried its request on a new connection
    after one that nginx had closed: that one can resume.) Returns the number resumed."""
    n = 0
    for i, r in enumerate(rs, start=1):
        where = "%s, %s connection %d" % (what, proto, i)
        if resumed(r):
            check_resumed(r, client, verify, proto, where)
            n += 1
        else:
            check_full(r, client, verify, where)
    expect(n > 0, "%s: none of %d %s connections resumed (control)" % (what, len(rs), proto))
    expect(n < len(rs), "%s: no full handshake among %d %s connections" % (what, len(rs), proto))
    expect("SSL reusing session" in rs[0].stderr, "%s: curl never offered a session" % what)
    return n


def test_s_client_quic_resumption():
    """openssl s_client -quic -alpn h3 saves the session of a first connection and offers it on
    a second. Control: resumed ("Reused,"), and its ticket lets the client send 0-RTT data
    (QUIC's limit, 0xffffffff; 0 through the compatibility layer, which takes no early data).
    disable_session_reuse(): the server issues no ticket (s_client has nothing to save, so
    nothing to offer: no resumption, no 0-RTT data). The control still resumes afterwards."""
    client = pki().good
    with Nginx(session_servers()) as ng:
        limit = session_max_early_data(control_resumes(ng, client, "control"))
        expect_eq(limit, 0xffffffff if quic_early_data() else 0,
                  "control: the early-data limit of the QUIC session ticket")
        sess = os.path.join(ng.dir, "dis.pem")
        first = s_client_quic(ng.ports["dis"], client=client, sess_out=sess)
        expect(not first.reused, "disabled: first connection resumed")
        expect(not os.path.exists(sess), "disabled: the server issued a session ticket")
        control_resumes(ng, client, "control after disabled")
        note("disabled: no ticket issued; control: resumed, ticket's early-data limit %d", limit)


def control_resumes(ng, client, what):
    """s_client -quic on the control: a ticket, and the session resumed. Returns its file."""
    sess = os.path.join(ng.dir, "ctl-%s.pem" % new_id())
    first = s_client_quic(ng.ports["ctl"], client=client, sess_out=sess)
    expect(not first.reused, what + ": first connection resumed")
    expect(os.path.exists(sess), what + ": s_client got no session ticket")
    second = s_client_quic(ng.ports["ctl"], client=client, sess_in=sess)
    expect(second.reused, what + ": the session was not resumed (control)")
    return sess


@cases(
    # one shared session cache for the whole http{}: nginx keeps the ticket keys in it, so
    # both server{} blocks (same certificate, same session ID context) take each other's tickets
    http_level_cache=dict(separate=False),
    # a cache (and so ticket keys) per server{}
    cache_per_server=dict(separate=True),
)
def test_other_servers_session_offered(separate):
    """The limit of disable_session_reuse(): it keeps this connection's session from being
    resumed, but a session that another server{} made, offered to this one, is resumed
    without this server's certificate phase running (the same over TCP). Over QUIC exactly
    as over TCP; with a session cache per server{} the foreign session is refused."""
    client = pki().good
    if separate:
        conf = (quic_server("ctl", cert_phase=phase(False), tag="ctl", early_data=True,
                            extra="        ssl_session_cache shared:CTL:1m;\n")
                + quic_server("dis", cert_phase=phase(True), tag="dis", early_data=True,
                              extra="        ssl_session_cache shared:DIS:1m;\n"))
    else:
        conf = session_servers()
    with Nginx(conf) as ng:
        quic = s_client_quic(ng.ports["dis"], client=client,
                             sess_in=control_resumes(ng, client, "control"))
        tcp_sess = os.path.join(ng.dir, "ctl-tcp.pem")
        s_client(ng.ports["ctl"], mode="tls1.3", client=client, sess_out=tcp_sess, path="/info")
        expect(os.path.exists(tcp_sess), "TCP control: no session")
        tcp = s_client(ng.ports["dis"], mode="tls1.3", client=client, sess_in=tcp_sess, path="/info")
        expect_eq(quic.reused, tcp.reused, "the control's session offered to the disabled "
                  "server: resumed over QUIC vs over TCP")
        if tcp.reused:
            expect_eq(tcp.report["content.server"], "dis", "server{} of the resumed connection")
            expect_chain(tcp.report, "content.chain", client.pem(), "resumed (leaf only)")
        if separate:
            expect(not quic.reused, "a session of another server{} with its own cache resumed")
        note("control's session offered to the disabled server: %s over QUIC and TCP",
             "RESUMED" if quic.reused else "refused")


@needs_curl_resumption
@cases(h3="h3", tcp="tcp")
def test_resumption_and_0rtt(proto):
    """curl --tls-earlydata, five connections to each server. Control: connections resume and
    send their request as 0-RTT data, which nginx serves (not over QUIC through the
    compatibility layer). disable_session_reuse(): five full handshakes, curl never had a
    session to offer, so it sent no early data; the whole chain every time."""
    client = pki().good
    with Nginx(session_servers()) as ng:
        ctl = session_run(ng.ports["ctl"], proto, client)
        n = check_control(ctl, client, "SUCCESS", proto, "control")
        dis = session_run(ng.ports["dis"], proto, client)
        for i, r in enumerate(dis, start=1):
            check_full(r, client, "SUCCESS", "disabled, %s connection %d" % (proto, i))
        expect("SSL reusing session" not in dis[0].stderr,
               "curl offered a session to the disabled server: it got a ticket")
        note("%s control: %d of %d connections resumed, with %s bytes of 0-RTT data; "
             "disabled: %d full handshakes, no ticket to offer", proto, n, len(ctl),
             "+".join(str(r.earlydata) for r in ctl if resumed(r)), len(dis))


@needs_curl_resumption
def test_0rtt_requests_see_their_own_session():
    """Three curl runs at once against the control server: a good client, a self-signed
    client and one without a certificate, five connections each. Every request, whether in
    0-RTT data or not, sees its own session's certificate and verify result (leaf only when
    resumed), never another connection's."""
    p = pki()
    clients = {"good": (p.good, "SUCCESS"),
               "selfsigned": (p.selfsigned, p.expected_verify(p.selfsigned, [p.int, p.root], 2)),
               "none": (None, "NONE")}
    with Nginx(session_servers()) as ng:
        results, errors = {}, []

        def one(name):
            try:
                results[name] = session_run(ng.ports["ctl"], "h3", clients[name][0])
            except Exception as e:  # reported below, in the test's thread
                errors.append("%s: %s" % (name, e))
        threads = [threading.Thread(target=one, args=(n,)) for n in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise TestFailure("\n".join(errors))
        early = []
        for name, rs in sorted(results.items()):
            cert, verify = clients[name]
            check_control(rs, cert, verify, "h3", name)
            early.append("%s %d" % (name, sum(r.earlydata > 0 for r in rs)))
        note("requests served from 0-RTT data: %s; each saw its own session's certificate",
             ", ".join(early))


@needs_curl_resumption
def test_quic_equals_tcp_for_sessions():
    """The first full handshake and the first resumed connection of the control, and the
    connections of the disabled server: the transport-free fields of their reports are the
    same over QUIC and over TCP."""
    client = pki().good
    with Nginx(session_servers()) as ng:
        runs = {(kind, proto): session_run(ng.ports[kind], proto, client)
                for kind in ("ctl", "dis") for proto in ("h3", "tcp")}
    full = [[r for r in runs["ctl", proto] if not resumed(r)] for proto in ("h3", "tcp")]
    expect(full[0] and full[1], "control: no full handshake")
    pairs = [("control, full handshake", full[0][0], full[1][0])]
    res = [[r for r in runs["ctl", proto] if resumed(r)] for proto in ("h3", "tcp")]
    expect(res[0] and res[1], "control: no resumed connection over %s"
           % ("QUIC" if not res[0] else "TCP"))
    pairs.append(("control, resumed", res[0][0], res[1][0]))
    pairs += [("disabled, connection %d" % (i + 1), a, b)
              for i, (a, b) in enumerate(zip(runs["dis", "h3"], runs["dis", "tcp"]))]
    for what, a, b in pairs:
        same_as_tcp(a.report, b.report, what)
        if quic_early_data() or what != "control, resumed":
            expect_eq(a.earlydata > 0, b.earlydata > 0, what + ": 0-RTT data taken, QUIC vs TCP")


def test_cross_sni_session_over_quic():
    """A session made on SNI a.test (no client certificate) offered over QUIC with SNI b.test,
    whose server{} requests a certificate and disables reuse, on the same port: the outcome
    (resumed or not) equals the same attempt over TCP with TLS 1.3; if resumed, b.test sees
    no certificate, never a.test's connection's."""
    conf = (SESSION_CONF
            + quic_server("main", "a.test", tag="a", early_data=True)
            + quic_server("main", "b.test", tag="b", cert_phase=phase(True), default=False,
                          early_data=True))
    with Nginx(conf) as ng:
        port = ng.ports["main"]
        sess = os.path.join(ng.dir, "a.pem")
        s_client_quic(port, "a.test", sess_out=sess)
        expect(os.path.exists(sess), "a.test issued no session ticket over QUIC")
        again = s_client_quic(port, "a.test", sess_in=sess)
        expect(again.reused, "control: a.test's session was not resumed on a.test")
        quic = s_client_quic(port, "b.test", client=pki().good, sess_in=sess)
        _, tcp = s_client_pair(port, ng.dir, "a.test", "tls1.3", pki().good,
                               second_servername="b.test", path="/info")
        expect_eq(quic.reused, tcp.reused, "a.test's session offered to b.test: resumed over QUIC "
                  "vs over TCP")
        if tcp.reused:
            expect_eq(tcp.report["content.verify"], "NONE", "b.test after resumption (TCP)")
        note("a.test's session offered to b.test: %s, over QUIC as over TCP",
             "resumed" if quic.reused else "refused (full handshake)")


@needs_curl_resumption
def test_no_0rtt_without_ssl_early_data():
    """Without `ssl_early_data on` the control resumes but takes no 0-RTT data, over QUIC as
    over TCP: the 0-RTT results above come from the directive, not from the client."""
    with Nginx(session_servers(early_data=False)) as ng:
        for proto in ("h3", "tcp"):
            rs = session_run(ng.ports["ctl"], proto, pki().good)
            n = 0
            for i, r in enumerate(rs[1:], start=2):
                if resumed(r):
                    n += 1
                    expect(r.earlydata <= 0, "%s connection %d: 0-RTT data taken (%d bytes)"
                           % (proto, i, r.earlydata))
                    expect_eq(r.report["content.early_data"], "nil", "%s connection %d: "
                              "$ssl_early_data" % (proto, i))
            expect(n > 0, "%s: no connection resumed (control)" % proto)
