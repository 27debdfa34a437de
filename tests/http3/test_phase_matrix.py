"""Every API function called from every phase of a request made over HTTP/3, with the
client's chain read wherever the documented phases allow it; the outcome of each
(phase, function) pair must equal the outcome over TCP. Reuses tests/nginx/test_phases.py's
configuration and its judgement of each outcome."""

import base64

from tests.nginx import test_phases as tcp_phases
from tests.http3.h3 import Nginx, curl, curl_one, h3_requests, quic_server
from tests.harness import TestFailure, expect_eq, note, pki, wait_for

CHAIN_READERS = ("get_full_client_certificate_chain", "get_client_verify")


def record_phases(proto):
    """One handshake + /phases + /balancer over `proto`; {"phase|function": outcome}."""
    server = quic_server("main", locations=tcp_phases.LOCATIONS,
                         cert_phase={"ca": [pki().int, pki().root], "depth": 2, "try_all": True},
                         extra="        ssl_client_hello_by_lua_block { %s }\n" % tcp_phases.TRY)
    with Nginx(tcp_phases.HTTP_CONF % {"try": tcp_phases.TRY, "server": server},
               reports=False) as ng:
        port = ng.ports["main"]
        if proto == "h3":
            r1, r2 = h3_requests(port, ["/phases", "/balancer"], client=pki().good)
        else:
            r1, r2 = curl(port, ["/phases", "/balancer"], proto=proto, client=pki().good)
        expect_eq((r1.status, r2.status), (200, 200), proto + ": status of /phases and /balancer")
        if proto == "h3":
            expect_eq((r1.http_version, r2.http_version), ("3", "3"), "HTTP versions")

        def dump():  # the timer may run late; /dump itself goes over TCP
            text = curl_one(port, "/dump", proto="tcp").body.decode()
            results = dict(line.split("=", 1) for line in text.splitlines())
            complete = all("%s|request_client_certificate" % p in results for p in tcp_phases.PHASES)
            return results if complete else None
        results = wait_for(dump)
        if results is None:
            raise TestFailure("%s: not every phase recorded its calls" % proto)
    return results


def test_phase_matrix_h3():
    """All 5 functions x 13 phases over HTTP/3: right where allowed (the chain byte-exact in
    rewrite, access, content, balancer, header_filter, body_filter and log), the phase error
    elsewhere; and every outcome equal to the TCP run's."""
    h3 = record_phases("h3")
    chain = "pem:" + base64.b64encode(pki().good.expected_chain()).decode()
    problems = []
    for phase in tcp_phases.PHASES:
        for fn in sorted(tcp_phases.ALLOWED):
            problem = tcp_phases.outcome_problem(fn, phase, h3.get("%s|%s" % (phase, fn)), chain)
            if problem:
                problems.append("HTTP/3: %s in %s: %s" % (fn, phase, problem))
    if problems:
        raise TestFailure("\n".join(problems))
    tcp = record_phases("tcp")
    keys = sorted(set(h3) | set(tcp))
    diffs = ["%s: QUIC %s, TCP %s" % (k, h3.get(k, "-")[:60], tcp.get(k, "-")[:60])
             for k in keys if h3.get(k) != tcp.get(k)]
    if diffs:
        raise TestFailure("phase outcomes differ between QUIC and TCP:\n  " + "\n  ".join(diffs))
    read = sorted(p for p in tcp_phases.PHASES if h3.get(p + "|get_full_client_certificate_chain") == chain)
    note("chain read over HTTP/3 in: %s", ", ".join(read))
    note("%d phase/function pairs, QUIC == TCP", len(keys))
