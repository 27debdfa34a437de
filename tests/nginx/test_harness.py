"""The harness's port allocation: no port is handed out twice in a run, and a config that gives
one port to two placeholders, or listens on a port the harness did not hand out, fails loudly
before nginx starts (nginx would fail with "a duplicate default server", or silently merge two
server blocks). No nginx is started here."""

import contextlib

from tests.harness import nginx as harness  # patched below: the module the harness reads
from tests.harness import Nginx, TestFailure, expect, expect_eq, render


@contextlib.contextmanager
def patched(name, value):
    """harness.<name> replaced by value for the block."""
    old = getattr(harness, name)
    setattr(harness, name, value)
    try:
        yield
    finally:
        setattr(harness, name, old)


def expect_failure(fn, needle):
    try:
        fn()
    except TestFailure as e:
        expect(needle in str(e), "the failure %r does not say %r", str(e), needle)
        return str(e)
    raise TestFailure("expected a failure saying %r" % needle)


def test_a_port_the_kernel_gives_again_is_not_handed_out_again():
    # A kernel that gives the same port again once its socket is closed (as Linux may):
    # privileged numbers, which bind(0) never returns, so no real allocation is affected.
    given = iter([1, 1, 2, 1, 2, 2, 3])
    with patched("_kernel_port", lambda: next(given)):
        got = [harness.free_port() for _ in range(3)]
    expect_eq(got, [1, 2, 3], "ports handed out")


def test_real_ports_are_distinct_across_configs():
    # Many two-placeholder configs, as a run makes them: every port differs from every other.
    seen = []
    for _ in range(150):
        ports = {}
        render("listen 127.0.0.1:@port:a@ ssl default_server; listen 127.0.0.1:@port:b@ ssl;", ports, {})
        seen += ports.values()
    expect_eq(len(set(seen)), len(seen), "distinct ports among %d" % len(seen))


def test_one_port_for_two_placeholders_fails_loudly():
    with patched("free_port", lambda: 4242):
        err = expect_failure(lambda: render("@port:main@ @port:other@", {}, {}),
                             "gives one port to several placeholders")
    expect("4242 for @port:main@, @port:other@" in err, "names the port and both placeholders: %s", err)
    # A port already in `ports` (a second render of the same config) counts too.
    with patched("free_port", lambda: 4243):
        expect_failure(lambda: render("@port:b@", {"a": 4243}, {}), "4243 for @port:a@, @port:b@")


def test_a_config_reusing_a_port_fails_before_nginx_starts():
    # Through Nginx itself: the config is refused when written, nginx never runs.
    with patched("free_port", lambda: 4244):
        expect_failure(lambda: Nginx("server { listen 127.0.0.1:@port:a@; }\n"
                                     "server { listen 127.0.0.1:@port:b@; }\n"),
                       "4244 for @port:a@, @port:b@")
    expect_failure(lambda: Nginx("server { listen 127.0.0.1:@port:a@; }\n"
                                 "server {\n    listen 127.0.0.1:8080 ssl;\n}\n"),
                   "listens on port(s) 8080, not allocated by the harness")
    expect_failure(lambda: Nginx("server {\n    listen 8443;\n}\n"), "port(s) 8443")


def test_one_placeholder_in_several_server_blocks_is_one_port():
    # Two server{} blocks on one port on purpose (SNI tests): one name, one port, accepted.
    ng = Nginx("server { listen 127.0.0.1:@port:main@ ssl default_server; }\n"
               "server { listen 127.0.0.1:@port:main@ ssl; }\n"
               "server { listen 127.0.0.1:@port:plain@; }\n")
    expect_eq(sorted(ng.ports), ["main", "plain"], "placeholders")
    expect(ng.ports["main"] != ng.ports["plain"], "two names, two ports: %r", ng.ports)
    with open(ng.conf) as f:
        expect_eq(f.read().count("127.0.0.1:%d ssl" % ng.ports["main"]), 2, "main's listens")
