"""A thin layer over tests/harness for tests/reliability: server{} blocks wired to
tests/reliability/lua/rel_test.lua, and an Nginx with a few options of its own."""

import os
import re
import subprocess

from tests.harness import lua_value, pki  # noqa: F401
from tests.harness import nginx as harness  # STOP_TIMEOUT: read where valgrind_nginx.py sets it

HERE = os.path.dirname(os.path.abspath(__file__))

REL_LUA = os.path.join(HERE, "lua")

# Put rel_test.lua on the path (the harness's lua_package_path is fixed; init_by_lua runs
# in the master, whose package.path the workers inherit).
INIT = 'init_by_lua_block { package.path = "%s/?.lua;" .. package.path }\n' % REL_LUA

LOCATIONS = """\
        location / {
            content_by_lua_block { require("rel_test").report() }
        }
        location /guarded {
            access_by_lua_block { require("rel_test").guard() }
            content_by_lua_block { require("rel_test").report() }
        }
"""


class Nginx(harness.Nginx):
    """harness.Nginx plus two options of our own, kept here so that changes to the shared
    harness do not change what these tests check: `log_level` (the error_log level) and
    `allow_alerts` (regexes of [alert]/[crit]/[emerg] lines a test provokes on purpose)."""

    def __init__(self, http_conf, main_conf="", expect_errors=(), log_level=None, allow_alerts=(),
                 lib_dir=None, master_off=False, **values):
        self._rel_master_off = master_off
        self._rel_level = log_level
        self._rel_lib_dir = lib_dir
        self._rel_allow = [re.compile(a) for a in allow_alerts]
        super().__init__(http_conf, main_conf=main_conf, expect_errors=expect_errors, **values)
        self._rel_patch()

    def _write_conf(self):
        super()._write_conf()
        self._rel_patch()

    def _rel_patch(self):
        with open(self.conf) as f:
            text = f.read()
        if self._rel_level:
            text = re.sub(r"(?m)^(error_log \S+) \w+;", r"\1 %s;" % self._rel_level, text, count=1)
        if self._rel_master_off:  # one process: nginx and its worker are the same
            text = text.replace("master_process on;", "master_process off;")
        if self._rel_lib_dir:  # load libresty_client_tls.so from another build
            text = re.sub(r'lua_package_cpath "[^"]*";', 'lua_package_cpath "%s/lib?.so;;";'
                          % self._rel_lib_dir, text, count=1)
        with open(self.conf, "w") as f:
            f.write(text)

    def log_problems(self):
        return [p for p in super().log_problems() if not any(a.search(p) for a in self._rel_allow)]

    def stop(self):
        """With master_off (nginx under valgrind), a SIGQUIT that lands just before
        epoll_wait blocks is only acted on at the next event: wake nginx up with a
        connection until it exits."""
        if not self._rel_master_off or self.proc is None or self.proc.poll() is not None:
            return super().stop()
        import signal
        import socket
        import time
        self.proc.send_signal(signal.SIGQUIT)
        deadline = time.monotonic() + harness.STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.proc.wait(2)
                return None
            except subprocess.TimeoutExpired:
                for port in self.ports.values():
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    except OSError:
                        pass
        return super().stop()


def children(pid):
    """Pids whose parent is `pid` (from /proc: no procps needed)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/status" % entry) as f:
                    if "\nPPid:\t%d\n" % pid in f.read():
                        out.append(int(entry))
            except OSError:
                pass
    return sorted(out)


def worker_pids(ng, timeout=5.0):
    """The pids of nginx's worker processes, once there is at least one."""
    return harness.wait_for(lambda: children(ng.proc.pid), timeout)


def run_client(args, stdin=None, timeout=30):
    """A client command whose failure is an observation, not an error."""
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)


def rel_server(port, server_name, tag, cert_phase=None, default=False, extra="", locations=LOCATIONS):
    """A TLS server{} on @port:<port>@ whose certificate phase runs rel_test.cert_phase."""
    cert = pki().server(server_name)
    lines = [
        "listen 127.0.0.1:@port:%s@ ssl%s;" % (port, " default_server" if default else ""),
        "server_name %s;" % server_name,
        "ssl_certificate %s;" % cert.cert,
        "ssl_certificate_key %s;" % cert.key,
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "set $rel_server %s;" % tag,
    ]
    if cert_phase is not None:
        lines.append('ssl_certificate_by_lua_block { require("rel_test").cert_phase(%s) }'
                     % lua_value(cert_phase))
    return "    server {\n" + "".join("        %s\n" % l for l in lines) + extra + locations + "    }\n"

