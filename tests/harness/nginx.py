"""The nginx part of the test harness (Python 3 stdlib only), shared by every suite under tests/.

- `Nginx(http_conf)`: a throwaway nginx (master + 1 worker) in its own temp dir, on free
  127.0.0.1 ports, stopped by PID, whose error log is checked when the test ends.
- `tls_server()` / `plain_server()`: server{} blocks wired to tests/nginx/lua/rct_test.lua.
- Every nginx has tests/harness/lua on its lua_package_path: `require "rct_harness"` gives the
  Lua helpers every suite shares (reading PEM files into CA stacks, the certificate-phase
  request, "key=value" reports, outcomes kept in lua_shared_dict rct).
- `expect*()`: assertions with readable messages; `note()`: observations printed under the test.
- `cases()`: parametrize a test; tests/harness/runner.py discovers and runs `test_*` functions.

Config templates use `@name@` placeholders: `@port:NAME@` allocates a free port, never one handed
out before in the same run (read it back as `nginx.ports["NAME"]`); other names come from keyword
arguments. A config whose placeholders share a port, or that listens on a fixed port, is refused
before nginx starts. Braces stay literal for nginx and Lua.
"""

import base64
import functools
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .certs import PKI

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(REPO, "target", "release", "libresty_client_tls.so")
LUA_MODULE = os.path.join(REPO, "lua-bindings", "resty", "client_tls.lua")
LUA_HELPERS = os.path.join(REPO, "tests", "nginx", "lua")
# rct_harness.lua: the Lua helpers every suite's own Lua file builds on.
HARNESS_LUA = os.path.join(REPO, "tests", "harness", "lua")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LUA_NGINX_MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")
CLIENT_TOOLS = ("curl", "nghttp", "openssl", "luajit")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# Always a failure in the error log.
FATAL_LOG = re.compile(r"\[(alert|crit|emerg)\]")
# A failure unless the test lists it in `expect_errors`.
ERROR_LOG = re.compile(r"\[error\]|lua entry thread aborted|runtime error:")


class TestFailure(AssertionError):
    pass


# -- run-wide state (set up by the runner) -------------------------------------------------------------

class _Run:
    tmp = None       # temp dir of this run
    pki = None       # PKI shared by all tests of the run
    keep = False     # keep nginx dirs of passing tests too
    log_level = "info"
    notes = None     # list collecting note() lines of the current test


def setup_run(tmp, keep=False, log_level="info"):
    _Run.tmp = tmp
    _Run.log_level = log_level
    _Run.keep = keep
    _Run.pki = PKI(os.path.join(tmp, "pki"))


def pki():
    if _Run.pki is None:
        raise RuntimeError("harness.setup_run() was not called")
    return _Run.pki


def note(fmt, *args):
    """An observation worth showing in the test output (printed under the test name)."""
    line = fmt % args if args else fmt
    if _Run.notes is not None:
        _Run.notes.append(line)
    else:
        print("    note: " + line)


def cases(**named_cases):
    """Parametrize a test: @cases(a=dict(x=1), b=dict(x=2)) gives test_f[a] and test_f[b]."""
    def wrap(fn):
        fn.cases = named_cases
        return fn
    return wrap


# -- prerequisites ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def nginx_modules_dir():
    out = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    m = re.search(r"--modules-path=(\S+)", out)
    return m.group(1) if m else "/usr/lib/nginx/modules"


def nginx_version():
    """(major, minor, patch) of the nginx binary."""
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def lua_module_has_ssl_pointer():
    """Whether this nginx's lua module exports ngx_http_lua_ffi_get_req_ssl_pointer, which
    the PDK layer needs (absent from lua-nginx-module 0.10.13, Debian 11). Read from the
    module file's dynamic symbol names."""
    path = os.path.join(nginx_modules_dir(), "ngx_http_lua_module.so")
    try:
        with open(path, "rb") as f:
            return b"\0ngx_http_lua_ffi_get_req_ssl_pointer\0" in f.read()
    except OSError:
        return False


def missing_prerequisites():
    """Everything the suite needs that is not there, as human-readable lines."""
    problems = []
    if not os.access(NGINX, os.X_OK):
        problems.append("nginx not found (Debian: apt-get install nginx)")
    else:
        modules = nginx_modules_dir()
        for mod in LUA_NGINX_MODULES:
            if not os.path.exists(os.path.join(modules, mod)):
                problems.append("%s/%s missing (Debian: apt-get install libnginx-mod-http-lua)"
                                % (modules, mod))
    for tool in CLIENT_TOOLS:
        if not shutil.which(tool):
            problems.append("%s not found on PATH (Debian packages: curl, nghttp2-client, openssl, "
                            "luajit2)" % tool)
    if not os.path.exists(LIBRARY):
        problems.append("%s missing: run `cargo build --release`" % LIBRARY)
    if not os.path.exists(LUA_MODULE):
        problems.append("%s missing" % LUA_MODULE)
    return problems


# -- nginx -----------------------------------------------------------------------------------------

def worker_user():
    """The `user` line of every throwaway nginx (the harness's, the demo's, the packaging
    checks', the soak's): the worker runs as whoever runs the tests, so it reads every file
    a test points it at wherever that lives. Without it, nginx started by root runs its
    worker as `nobody`, which cannot enter a checkout in /root or in any `mktemp -d`
    directory (both 0700): `require` then fails in the worker and every TLS handshake
    ends in an internal-error alert. Not root: nginx cannot switch users and already runs
    its worker as the invoking user, so there is no line (nginx would warn about it)."""
    if os.geteuid() != 0:
        return ""
    return "user %s %s;" % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)


NGINX_CONF = """\
load_module @modules@/ndk_http_module.so;
load_module @modules@/ngx_http_lua_module.so;
@worker_user@
daemon off;
master_process on;
worker_processes 1;
pid @dir@/nginx.pid;
error_log @dir@/error.log @log_level@;
@main_conf@
events {
    worker_connections 256;
}
http {
    log_format rct '$remote_addr "$request" $status sni=$ssl_server_name '
                   'proto=$ssl_protocol reused=$ssl_session_reused verify="$ssl_client_verify"';
    access_log @dir@/access.log rct;
    client_body_temp_path @dir@/tmp-body;
    proxy_temp_path @dir@/tmp-proxy;
    fastcgi_temp_path @dir@/tmp-fastcgi;
    uwsgi_temp_path @dir@/tmp-uwsgi;
    scgi_temp_path @dir@/tmp-scgi;
    lua_package_path "@repo@/lua-bindings/?.lua;@lua_helpers@/?.lua;@harness_lua@/?.lua;;";
    lua_package_cpath "@repo@/target/release/lib?.so;;";
    lua_shared_dict rct 1m;

@http_conf@
}
"""

PLACEHOLDER = re.compile(r"@([a-z_]+)(?::([A-Za-z0-9_]+))?@")


# -- ports ------------------------------------------------------------------------------------------
#
# A port is free when the kernel gives it to bind(("127.0.0.1", 0)), but once that socket is
# closed the kernel may give the same port again, to the next placeholder of the same config
# (nginx then fails with "a duplicate default server", or, without default_server, silently
# merges two server blocks into one) or to an nginx started while the first still runs. So
# every port handed out is remembered for the life of the process (a run of run.py, of the
# reliability runner, of the soak or of the packaging checks) and never handed out again.
# Another process may still take a port between free_port() and nginx's bind(): Nginx.start()
# then tries again with new ports.

_ports_lock = threading.Lock()
_handed_out = set()
PORT_ATTEMPTS = 1000


def _kernel_port():
    """A port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port():
    """A free 127.0.0.1 port that this process has never handed out before."""
    with _ports_lock:
        for _ in range(PORT_ATTEMPTS):
            port = _kernel_port()
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise TestFailure("no free port the harness has not handed out already (%d tries, %d handed out)"
                      % (PORT_ATTEMPTS, len(_handed_out)))


def check_ports(ports):
    """Fail loudly when two @port:NAME@ names of one config have the same port."""
    names = {}
    for name, port in ports.items():
        names.setdefault(port, []).append(name)
    shared = ["%d for %s" % (port, ", ".join("@port:%s@" % n for n in sorted(ns)))
              for port, ns in sorted(names.items()) if len(ns) > 1]
    if shared:
        raise TestFailure("nginx config gives one port to several placeholders: %s" % "; ".join(shared))


LISTEN_PORT = re.compile(r"^\s*listen\s+(?:\S*:)?(\d+)[\s;]", re.M)


def check_listen_ports(text, ports):
    """Fail loudly when a config listens on a port the harness did not hand out for it (a
    fixed port may be anybody's), or gives one port to several placeholders."""
    check_ports(ports)
    ours = set(ports.values())
    stray = sorted({int(p) for p in LISTEN_PORT.findall(text)} - ours)
    if stray:
        raise TestFailure("nginx config listens on port(s) %s, not allocated by the harness (use "
                          "@port:NAME@)" % ", ".join(map(str, stray)))


def render(template, ports, values):
    """Replace @port:NAME@ (allocating ports into `ports`) and @name@ (from `values`). Raises
    TestFailure when `ports` ends up with one port under two names."""
    def sub(m):
        key, arg = m.group(1), m.group(2)
        if key == "port" and arg:
            if arg not in ports:
                ports[arg] = free_port()
            return str(ports[arg])
        if arg is None and key in values:
            return str(values[key])
        raise KeyError("unknown placeholder %s in nginx config" % m.group(0))
    text = PLACEHOLDER.sub(sub, template)
    check_ports(ports)
    return text


class Nginx:
    """A throwaway nginx. Use as a context manager: started on enter; on exit stopped (SIGQUIT,
    then SIGKILL) and its error log checked: [alert]/[crit]/[emerg] always fail the test,
    [error] and Lua errors fail it unless matched by a regex in `expect_errors`."""

    def __init__(self, http_conf, main_conf="", expect_errors=(), **values):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=_Run.tmp)
        self.ports = {}
        self.expect_errors = [re.compile(e) for e in expect_errors]
        self.proc = None
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        self._templates = (http_conf, main_conf, values)
        self._write_conf()

    def _write_conf(self):
        """Render the config, allocating fresh ports."""
        http_conf, main_conf, values = self._templates
        self.ports.clear()
        http_conf = render(http_conf, self.ports, values)
        main_conf = render(main_conf, self.ports, values)
        text = render(NGINX_CONF, self.ports, {
            "modules": nginx_modules_dir(), "worker_user": worker_user(),
            "dir": self.dir, "log_level": _Run.log_level,
            "repo": REPO, "lua_helpers": LUA_HELPERS, "harness_lua": HARNESS_LUA,
            "main_conf": main_conf, "http_conf": http_conf,
        })
        check_listen_ports(text, self.ports)
        with open(self.conf, "w") as f:
            f.write(text)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        stop_problem = self.stop()
        problems = ([stop_problem] if stop_problem else []) + self.log_problems()
        if exc_type is None and problems:
            raise TestFailure("nginx (%s):\n  %s" % (self.dir, "\n  ".join(problems)))
        if exc_type is not None:
            for p in problems:
                note("nginx: " + p)
            note("nginx dir kept: " + self.dir)
        elif not _Run.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def start(self, attempts=3):
        """Start nginx and wait for all its ports. A port taken by someone else between
        free_port() and nginx's bind() means new ports and another try."""
        for attempt in range(attempts):
            if attempt:
                self._write_conf()
                os.remove(self.error_log)
            if self._start_once():
                return
        raise TestFailure("nginx could not bind its ports in %d attempts:\n%s"
                          % (attempts, self.startup_output()))

    def _start_once(self):
        out = open(os.path.join(self.dir, "stderr.log"), "wb")
        # Own session: a SIGKILL fallback can reach the workers through the process group.
        # -e (the log before the config is read) exists from nginx 1.19.5; older ones log
        # there to their compiled-in path until the config's error_log takes over.
        early_log = ["-e", self.error_log] if nginx_version() >= (1, 19, 5) else []
        self.proc = subprocess.Popen([NGINX, "-p", self.dir + "/", "-c", self.conf, *early_log],
                                     stdout=out, stderr=out, start_new_session=True)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        pid_file = os.path.join(self.dir, "nginx.pid")
        # nginx writes its pid file only after binding every listen socket, so a port that
        # answers before that may belong to someone else.
        ready = [lambda: os.path.exists(pid_file)] + [
            lambda port=port: self._listening(port) for port in self.ports.values()]
        for check in ready:
            while not check():
                if self.proc.poll() is not None:
                    if "Address already in use" in self.log_text():
                        return False
                    raise TestFailure("nginx exited with %s at startup:\n%s"
                                      % (self.proc.returncode, self.startup_output()))
                if time.monotonic() > deadline:
                    self.stop()
                    raise TestFailure("nginx did not start listening within %.0fs:\n%s"
                                      % (START_TIMEOUT, self.startup_output()))
                time.sleep(0.02)
        return True

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def startup_output(self):
        return self.read(os.path.join(self.dir, "stderr.log")) + self.log_text()

    def stop(self):
        """Stop nginx; return a problem description if it needed SIGKILL, else None."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(STOP_TIMEOUT)
            return None
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return "nginx did not stop within %.0fs of SIGQUIT: killed" % STOP_TIMEOUT

    @staticmethod
    def read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_text(self):
        return self.read(self.error_log)

    def log_problems(self):
        problems = []
        for line in self.log_text().splitlines():
            if FATAL_LOG.search(line):
                problems.append("error log: " + line)
            elif ERROR_LOG.search(line) and not any(e.search(line) for e in self.expect_errors):
                problems.append("unexpected error in log: " + line)
        for e in self.expect_errors:
            if not e.search(self.log_text()):
                problems.append("expected error not logged: " + e.pattern)
        return problems


# -- server blocks -----------------------------------------------------------------------------

REPORT_LOCATIONS = """\
        location / {
            access_by_lua_block { require("rct_test").access() }
            content_by_lua_block { require("rct_test").content() }
            log_by_lua_block { require("rct_test").log() }
        }
        location = /seen {
            content_by_lua_block { require("rct_test").seen() }
        }
"""


def lua_value(v):
    """A Python value as a Lua literal (dicts, lists, str, int, bool, Cert -> its PEM path)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_value(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("[%s] = %s" % (lua_value(k), lua_value(x)) for k, x in v.items()) + "}"
    if hasattr(v, "cert"):
        return json.dumps(v.cert)
    raise TypeError("no Lua literal for %r" % (v,))


def tls_server(port, server_name="localhost", cert_phase=None, default=False, http2=False,
               tag=None, extra="", locations=REPORT_LOCATIONS):
    """A TLS server{} on @port:<port>@. cert_phase: options for rct_test.cert_phase
    (ca = [Cert...], depth, disable, request) or None for no ssl_certificate_by_lua."""
    server_cert = pki().server(server_name)
    listen = "listen 127.0.0.1:@port:%s@ ssl%s%s;" % (
        port, " http2" if http2 else "", " default_server" if default else "")
    lines = [
        listen,
        "server_name %s;" % server_name,
        "ssl_certificate %s;" % server_cert.cert,
        "ssl_certificate_key %s;" % server_cert.key,
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "set $rct_server %s;" % (tag or server_name),
    ]
    if cert_phase is not None:
        lines.append('ssl_certificate_by_lua_block { require("rct_test").cert_phase(%s) }'
                     % lua_value(cert_phase))
    return ("    server {\n" + "".join("        %s\n" % l for l in lines)
            + extra + locations + "    }\n")


def plain_server(port, tag="plain", locations=REPORT_LOCATIONS):
    return ("    server {\n        listen 127.0.0.1:@port:%s@;\n        set $rct_server %s;\n%s    }\n"
            % (port, tag, locations))


# -- reports and assertions -----------------------------------------------------------------------

def parse_reports(text):
    """key=value lines, each report ended by a line "end", as a list of dicts."""
    reports, current = [], {}
    for line in text.splitlines():
        if line == "end":
            reports.append(current)
            current = {}
        elif "=" in line:
            k, v = line.split("=", 1)
            current[k] = v
    return reports


def pem_summary(data):
    """A short description of PEM bytes for failure messages."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", data, re.S)
    subjects = []
    for b in blocks:
        out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=b, capture_output=True)
        subjects.append(out.stdout.decode().strip().removeprefix("subject="))
    return "%d bytes, %d certs: %s" % (len(data), len(blocks), "; ".join(subjects))


def chain_of(report, key):
    """The PEM bytes in report[key] ("pem:<base64>"), or the raw value (nil, err:...)."""
    value = report.get(key)
    if value is None:
        raise TestFailure("report has no %r: %r" % (key, report))
    if value.startswith("pem:"):
        return base64.b64decode(value[4:])
    return value


def expect(cond, fmt, *args):
    if not cond:
        raise TestFailure(fmt % args if args else fmt)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


def expect_match(actual, pattern, what):
    if actual is None or not re.fullmatch(pattern, actual):
        raise TestFailure("%s: %r does not match /%s/" % (what, actual, pattern))


def expect_chain(report, key, expected, what=""):
    """report[key] is exactly the PEM bytes `expected` (bytes) or the Cert's expected chain."""
    if not isinstance(expected, bytes):
        expected = expected.expected_chain()
    got = chain_of(report, key)
    if got != expected:
        got_desc = pem_summary(got) if isinstance(got, bytes) else repr(got)
        raise TestFailure("%s%s: chain differs\n  expected %s\n  got      %s"
                          % (what + " " if what else "", key, pem_summary(expected), got_desc))


def expect_no_chain(report, key, what=""):
    got = chain_of(report, key)
    if got != "nil":
        desc = pem_summary(got) if isinstance(got, bytes) else repr(got)
        raise TestFailure("%s%s: expected nil (no client certificate), got %s"
                          % (what + " " if what else "", key, desc))


def wait_for(fn, timeout=3.0, interval=0.05):
    """Call fn until it returns a truthy value; return it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def platform_versions():
    """What this machine runs, as one line: nginx, lua-nginx-module (ngx.config.ngx_lua_version,
    read by an nginx whose init_by_lua writes it and exits: `nginx -t` skips init_by_lua),
    lua-resty-core, LuaJIT and OpenSSL."""
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    tmp = tempfile.mkdtemp(prefix="rct-versions-")
    try:
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("error_log %s/error.log;\n" % tmp
                    + "load_module %s/ndk_http_module.so;\n" % nginx_modules_dir()
                    + "load_module %s/ngx_http_lua_module.so;\n" % nginx_modules_dir()
                    + "pid %s/nginx.pid;\ndaemon off;\nmaster_process off;\n" % tmp
                    + "events {}\nhttp {\n"
                    + "    init_by_lua_block {\n"
                    + "        local v = ngx.config.ngx_lua_version\n"
                    + "        local core = 'none'\n"
                    + "        local ok, base = pcall(require, 'resty.core.base')\n"
                    + "        if ok and base.version then core = tostring(base.version) end\n"
                    + "        local f = io.open('%s/versions', 'w')\n" % tmp
                    + "        f:write(string.format('RCTV %d.%d.%d %s %s', v / 1000000,"
                    + " v / 1000 % 1000, v % 1000, core, jit.version))\n"
                    + "        f:close()\n"
                    + "        os.exit(0)\n"
                    + "    }\n}\n")
        subprocess.run([NGINX, "-p", tmp + "/", "-c", conf], capture_output=True, timeout=20)
        m = re.search(r"RCTV (\S+) (\S+) (.+)", Nginx.read(os.path.join(tmp, "versions")))
        lua, core, luajit = m.groups() if m else ("?", "?", "?")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    nginx = ".".join(map(str, nginx_version()))
    openssl = first_line(["openssl", "version"]).split(" ")[1] if shutil.which("openssl") else "?"
    return "nginx %s, lua-nginx-module %s, lua-resty-core %s, %s, OpenSSL %s" % (
        nginx, lua, core, luajit.strip(), openssl)

