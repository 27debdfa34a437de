"""set_client_verify: accepted and rejected values, the override in later phases, and no leak
into the next request on the same connection (HTTP/1.1 keep-alive, HTTP/2 streams)."""

import re
import urllib.parse

from tests.harness import Nginx, cases, expect_eq, expect_match, pki, tls_server
from tests.harness.clients import curl, curl_one, new_id, nghttp, seen

REJECTED_MESSAGE = ('unknown client verify value: %s accepted values are: '
                    '"SUCCESS", "NONE" or "FAILED:<reason>"')
# pcall'd error() messages may carry a "chunk:line: " prefix.
LOCATION_PREFIX = r"(?:[^\n]*?:\d+: )?"


def mtls_server(http2=False):
    return tls_server("main", cert_phase={"ca": [pki().int, pki().root], "depth": 2},
                      default=True, http2=http2)


def set_path(value, rid):
    return "/info?id=%s&set=%s" % (rid, urllib.parse.quote(value, safe=""))


@cases(success="SUCCESS", none="NONE", failed_reason="FAILED:x", failed_empty="FAILED:",
       failed_text="FAILED:certificate revoked by policy")
def test_set_client_verify_accepted(value):
    """The override is returned by get_client_verify in access, content and log phases, while
    $ssl_client_verify keeps the connection's own result."""
    with Nginx(mtls_server()) as ng:
        rid = new_id()
        report = curl_one(ng.ports["main"], set_path(value, rid), client=pki().good).report
        expect_eq(report.get("set"), "ok", "set_client_verify(%r)" % value)
        log = seen(ng.ports["main"], rid)
        for src, prefix in ((report, "access."), (report, "content."), (log, "log.")):
            expect_eq(src[prefix + "verify"], value, prefix + "get_client_verify()")
            expect_eq(src[prefix + "override"], value, prefix + "ngx.ctx.CLIENT_VERIFY_OVERRIDE")
            expect_eq(src[prefix + "nginx_verify"], "SUCCESS", prefix + "$ssl_client_verify")


@cases(lowercase="success", failed_no_colon="FAILED", empty="", trailing_space="NONE ",
       fail_prefix="FAIL:x", leading_space=" SUCCESS", other="OK")
def test_set_client_verify_rejected(value):
    """A bad value raises Kong's exact message and leaves the connection's value in place."""
    with Nginx(mtls_server()) as ng:
        rid = new_id()
        report = curl_one(ng.ports["main"], set_path(value, rid), client=pki().good).report
        expect_match(report.get("set"),
                     "raise:" + LOCATION_PREFIX + re.escape(REJECTED_MESSAGE % value),
                     "set_client_verify(%r)" % value)
        log = seen(ng.ports["main"], rid)
        for src, prefix in ((report, "access."), (report, "content."), (log, "log.")):
            expect_eq(src[prefix + "verify"], "SUCCESS", prefix + "get_client_verify()")
            expect_eq(src[prefix + "override"], "nil", prefix + "ngx.ctx.CLIENT_VERIFY_OVERRIDE")


def check_no_leak(first, second, first_log, second_log):
    """first request set FAILED:leak; the second one on the same connection must not see it."""
    expect_eq(second["content.conn"], first["content.conn"], "same connection ($connection)")
    expect_eq(first.get("set"), "ok", "set_client_verify on the first request")
    for src, prefix in ((first, "content."), (first_log, "log.")):
        expect_eq(src[prefix + "verify"], "FAILED:leak", "first request " + prefix + "verify")
    for src, prefix in ((second, "access."), (second, "content."), (second_log, "log.")):
        expect_eq(src[prefix + "verify"], "SUCCESS", "second request " + prefix + "verify")


def test_override_no_leak_keepalive():
    """curl with two URLs on one keep-alive connection."""
    with Nginx(mtls_server()) as ng:
        port, ids = ng.ports["main"], (new_id(), new_id())
        first, second = curl(port, [set_path("FAILED:leak", ids[0]), "/info?id=" + ids[1]],
                             client=pki().good)
        expect_eq(second.new_connections, 0, "curl reused the connection")
        expect_eq(second.report["content.conn_requests"], "2", "$connection_requests")
        check_no_leak(first.report, second.report, seen(port, ids[0]), seen(port, ids[1]))


def test_override_no_leak_http2():
    """Two streams of one HTTP/2 connection, one after the other: nghttp (one stream at a
    time) and curl --http2 with two URLs."""
    with Nginx(mtls_server(http2=True)) as ng:
        port = ng.ports["main"]
        ids = (new_id(), new_id())
        first, second = nghttp(port, [set_path("FAILED:leak", ids[0]), "/info?id=" + ids[1]],
                               client=pki().good, sequential=True)
        expect_eq(first["content.http2"], "h2", "nghttp HTTP/2")
        check_no_leak(first, second, seen(port, ids[0]), seen(port, ids[1]))

        ids = (new_id(), new_id())
        first, second = curl(port, [set_path("FAILED:leak", ids[0]), "/info?id=" + ids[1]],
                             client=pki().good, http2=True)
        expect_eq((first.http_version, second.new_connections), ("2", 0), "curl HTTP/2, one connection")
        check_no_leak(first.report, second.report, seen(port, ids[0]), seen(port, ids[1]))
