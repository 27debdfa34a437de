"""Run the HTTP/3 tests (tests/http3/test_*.py) through the shared harness and runner.

usage: python3 -m tests.http3.run [--keep] [--list] [--debug-log] [NAME ...]

Prints PASS/FAIL per test and ends with `N passed, N failed`. On a platform without HTTP/3
(an nginx built without ngx_http_v3_module, such as Debian 11's and 12's, or a curl without
HTTP/3) it prints one line `N/A: <why>` and exits 0: there is nothing to test there. Where
HTTP/3 is there, anything else missing (openssl s_client -quic, the library, ...) is a
failure, never a skip.
"""

import sys

from tests.harness import platform_versions, runner
from tests.http3 import h3


def applicable(tests):
    why = h3.not_applicable()
    if why:
        return [], "%d HTTP/3 tests: %s" % (len(tests), why)
    # Tests that need curl to resume QUIC sessions, where this curl does not: N/A, said so.
    no_reuse = h3.curl_quic_session_reuse()
    if not no_reuse:
        return tests, None
    kept = [t for t in tests if not getattr(t.fn, "needs_curl_resumption", False)]
    return kept, "%d tests need curl to resume QUIC sessions: %s" % (len(tests) - len(kept), no_reuse)


def banner():
    return "platform: %s; nginx QUIC: %s" % (
        platform_versions(),
        "OpenSSL's QUIC API" if h3.nginx_quic_api() == "native" else "nginx's OpenSSL compatibility layer")


if __name__ == "__main__":
    sys.exit(runner.main(__package__, __doc__, applicable=applicable,
                         prerequisites=h3.missing_prerequisites, banner=banner))
