"""Resumption attacks against real nginx (issue 5), beyond tests/nginx/test_sessions.py:

- cross-SNI: a session made on SNI a.test, where no client certificate was requested (or
  one from a CA that only a.test trusts), offered with SNI b.test, whose server{} requests
  one: b.test never gets a client certificate through it; get_session_info() reports the
  resumption and a.test, and a plugin guard built on it refuses the request (421);
- disable_session_reuse: the session of a connection that called it is never resumed, on
  its own server{} or on any other server{} of the port, by ticket or by session ID,
  TLS 1.2 and 1.3, shared and builtin caches, tickets on and off; the server issues
  nothing resumable (no ticket, empty session ID);
- every case first proves with a control that the same client does resume there.
"""

import os
import re

from tests.harness.clients import new_id, s_client, s_client_pair
from tests.harness import cases, expect, expect_eq, note, pki
from tests.reliability.relharness import INIT, Nginx, rel_server

CACHES = {"shared": "ssl_session_cache shared:SSL:10m;", "builtin": "ssl_session_cache builtin:1000;"}
TICKETS = {"tickets_on": "ssl_session_tickets on;", "tickets_off": "ssl_session_tickets off;"}
MODES = ("tls1.2", "tls1.2-noticket", "tls1.3")


def mtls(p, disable=False):
    return {"ca": [p.int.cert, p.root.cert], "depth": 2, "disable": disable}


def cross_conf(cache, tickets, layout, a_phase):
    p = pki()
    head = "    %s    %s\n    %s\n" % (INIT, CACHES[cache], TICKETS[tickets])
    servers = rel_server("main", "a.test", "a", cert_phase=a_phase, default=(layout == "a_default"))
    servers += rel_server("main", "b.test", "b", cert_phase=mtls(p))
    if layout == "named":
        servers += rel_server("main", "localhost", "default", default=True)
    return head + servers


def cross_cases():
    out = {}
    for variant in ("no_cert_on_a", "foreign_ca_on_a"):
        for cache in CACHES:
            for tickets in TICKETS:
                for mode in MODES:
                    for layout in ("a_default", "named"):
                        out["%s-%s-%s-%s-%s" % (variant, cache, tickets, mode, layout)] = dict(
                            variant=variant, cache=cache, tickets=tickets, mode=mode, layout=layout)
    return out


def offer(ng, mode, client, first_sni, second_sni, path):
    """A full handshake on first_sni saving the session, then that session offered with
    second_sni (and Host: second_sni) on `path`. Returns the second SClient."""
    sess = os.path.join(ng.dir, "sess-%s.pem" % new_id())
    s_client(ng.ports["main"], first_sni, mode, client, sess_out=sess)
    expect(os.path.exists(sess), "s_client saved no session from %s" % first_sni)
    return s_client(ng.ports["main"], second_sni, mode, client, sess_in=sess, path=path)


@cases(**cross_cases())
def test_cross_sni_never_yields_a_certificate(variant, cache, tickets, mode, layout):
    p = pki()
    if variant == "no_cert_on_a":
        a_phase, client = None, p.good          # b.test would trust this client
    else:
        a_phase, client = {"ca": [p.other_root.cert], "depth": 2}, p.unknown  # only a.test trusts it
    with Nginx(cross_conf(cache, tickets, layout, a_phase)) as ng:
        port = ng.ports["main"]
        # Control: the client resumes a.test's session on a.test, and the guard lets it through.
        _, again = s_client_pair(port, ng.dir, "a.test", mode, client, path="/guarded")
        expect(again.reused, "control: a.test -> a.test not resumed (%s)" % mode)
        r = again.report
        expect_eq(r["session.resumed"], "true", "control get_session_info().resumed")
        expect_eq(r["session.server_name"], "a.test", "control get_session_info().server_name")

        # The attack, unguarded: what b.test's request handlers see.
        s = offer(ng, mode, client, "a.test", "b.test", "/")
        r = s.report
        expect_eq(r["server"], "b", "served by")
        expect_eq(r["reused"], "r" if s.reused else ".", "$ssl_session_reused vs s_client")
        expect_eq(r["session.resumed"], "true" if s.reused else "false",
                  "get_session_info().resumed vs $ssl_session_reused")
        expect_eq(r["verify"], r["nginx_verify"], "get_client_verify() vs $ssl_client_verify")
        if s.reused:
            expect_eq(r["session.server_name"], "a.test", "get_session_info().server_name")
            if variant == "no_cert_on_a":
                expect_eq(r["chain"], "nil", "b.test: client certificate through a.test's session")
                expect_eq(r["verify"], "NONE", "b.test: verify through a.test's session")
            else:
                # a.test's certificate (from a CA b.test does not trust) and a.test's verify
                # result ride along: exactly what the guard below exists for.
                expect_eq(r["chain"], "certs:1", "b.test: leaf only on a resumed session")
                note("UNGUARDED: b.test sees a.test's client certificate with verify=%s", r["verify"])
        else:
            expect_eq(r["session.server_name"], "b.test", "full handshake: session made for b.test")
            expect_eq(r["chain"], "certs:%d" % (1 + len(client.sent_chain)), "b.test full handshake chain")
            expect_eq(r["verify"], p.expected_verify(client, [p.int, p.root], 2), "b.test verify")

        # The attack against the guard (get_session_info() vs Host): refused when resumed.
        s = offer(ng, mode, client, "a.test", "b.test", "/guarded")
        if s.reused:
            expect_eq(s.http_status, 421, "guard on a resumed cross-SNI session")
            expect("session resumed from a.test on b.test" in s.text, "guard's reason")
        else:
            expect_eq(s.http_status, 200, "guard on a full handshake")
        note("%s: a.test session offered with SNI b.test: %s", mode,
             "RESUMED -> guard 421" if s.reused else "full handshake")


def disabled_conf(cache, tickets):
    p = pki()
    return ("    %s    %s\n    %s\n" % (INIT, CACHES[cache], TICKETS[tickets])
            + rel_server("main", "localhost", "default", default=True)
            + rel_server("main", "ctl.test", "ctl", cert_phase=mtls(p))
            + rel_server("main", "dis.test", "dis", cert_phase=mtls(p, disable=True)))


def issued(s):
    """What the server handed the client to resume with: (session ID hex, ticket?, TLS 1.3
    tickets)."""
    sid = re.findall(r"^\s*Session-ID: ?([0-9A-F]*)\s*$", s.text, re.M)
    return (sid[-1] if sid else "", "TLS session ticket:" in s.text,
            s.text.count("Post-Handshake New Session Ticket arrived"))


@cases(**{"%s-%s-%s" % (c, t, m): dict(cache=c, tickets=t, mode=m)
          for c in CACHES for t in TICKETS for m in MODES})
def test_disabled_session_is_never_resumed_anywhere(cache, tickets, mode):
    p = pki()
    client = p.good
    with Nginx(disabled_conf(cache, tickets)) as ng:
        port = ng.ports["main"]
        # Control: the same client resumes ctl.test (same settings, reuse not disabled).
        first, again = s_client_pair(port, ng.dir, "ctl.test", mode, client)
        expect(again.reused, "control: ctl.test not resumed (%s)" % mode)
        sid, ticket, tickets13 = issued(first)
        expect(sid or ticket or tickets13, "control: nothing resumable issued")

        sess = os.path.join(ng.dir, "dis-%s.pem" % new_id())
        first = s_client(port, "dis.test", mode, client, sess_out=sess)
        report = first.report
        expect_eq(report["server"], "dis", "served by")
        expect_eq(report["chain"], "certs:2", "full chain on the disabled connection")
        sid, ticket, tickets13 = issued(first)
        expect_eq((sid, ticket, tickets13), ("", False, 0),
                  "disabled: (session ID, TLS 1.2 ticket, TLS 1.3 tickets) issued")
        if not os.path.exists(sess):
            note("%s: disabled: nothing resumable issued (no session saved by s_client)", mode)
            return
        for sni in ("dis.test", "ctl.test", "localhost"):
            s = s_client(port, sni, mode, client, sess_in=sess)
            expect(not s.reused, "disabled session resumed with SNI %s" % sni)
            r = s.report
            expect_eq(r["reused"], ".", sni + " $ssl_session_reused")
            expect_eq(r["session.resumed"], "false", sni + " get_session_info().resumed")
        note("%s: disabled session offered to dis.test, ctl.test, localhost: never resumed", mode)


def test_guard_lets_same_host_resumption_through():
    """No false positive: a resumed mTLS session on its own host passes the guard (leaf
    only, original verify result), in TLS 1.2 and 1.3."""
    p = pki()
    with Nginx(disabled_conf("shared", "tickets_on")) as ng:
        for mode in MODES:
            _, again = s_client_pair(ng.ports["main"], ng.dir, "ctl.test", mode, p.good, path="/guarded")
            expect(again.reused, "%s: not resumed" % mode)
            r = again.report
            expect_eq((r["session.resumed"], r["session.server_name"], r["chain"], r["verify"]),
                      ("true", "ctl.test", "certs:1", "SUCCESS"), mode + " resumed on its own host")
