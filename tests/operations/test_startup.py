"""Broken setups are refused with a clear message before anything is served: a
lua_package_cpath that finds no library, a library built against another OpenSSL than
nginx's, an unreadable CA file. Each is found when init_by_lua loads the module and reads
the CA files: nginx then exits at startup, or refuses a reload and goes on with the
configuration it has. (`nginx -t` cannot see these: init_by_lua does not run under -t.)
Without init_by_lua, the first handshake that loads the module fails with the same message."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess

from tests import harness
from tests.harness import TestFailure, expect, note

from tests.operations import ops


def refused(ng, *needles):
    """Start `ng`, which must fail; returns its output, which must hold every needle."""
    try:
        ng.start()
    except TestFailure:
        out = ng.startup_output()
    else:
        ng.stop()
        raise TestFailure("nginx started:\n" + ng.log_text()[-2000:])
    for needle in needles:
        expect(needle in out, "%r not in nginx's output:\n%s", needle, out[-3000:])
    expect(ng.proc.poll() is not None, "nginx is still running")
    listening = [p for p in ng.ports.values() if ng._listening(p)]
    expect(not listening, "something listens on %s", listening)
    test = subprocess.run([harness.NGINX, "-t", "-p", ng.dir + "/", "-c", ng.conf],
                          capture_output=True, text=True, timeout=30)
    note("nginx -t: exit %d (%s)", test.returncode, test.stderr.strip().splitlines()[-1])
    first = next(l for l in out.splitlines() if "init_by_lua error" in l)
    note("startup: %s", first[first.index("init_by_lua error"):])
    return out


def system_copy():
    """A libresty_client_tls.so the dynamic linker finds on its own (an installed package),
    or None. The module falls back to it when package.cpath finds none, as documented."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    m = re.search(r"^\s*libresty_client_tls\.so\b.*=> (\S+)", out, re.M)
    return m.group(1) if m else None


def fell_back(ng, layout, copy):
    """With a system-wide copy installed, a wrong cpath is no error: the module loads that
    copy. Checked instead of the message, which cannot happen on this machine then."""
    note("%s is installed system-wide: the module falls back to it (no error to see here)", copy)
    with ng:
        with ops.Load(ng.ports["tls"], layout.targets(), full=1, keepalive=0) as load:
            load.wait(lambda r: True, 10)
    ops.expect_clean(load, layout.check)


def test_library_not_on_cpath():
    layout = ops.Layout(ops.scratch(), many=0)
    ng = ops.nginx_for(layout, cpath="/nonexistent-rct/lib?.so;;")
    if system_copy():
        return fell_back(ng, layout, system_copy())
    refused(ng, "resty.client_tls: cannot load libresty_client_tls.so; tried:",
            "/nonexistent-rct/libresty_client_tls.so")


def other_openssl_build(d):
    """The library as if built against another OpenSSL: NEEDED and symbol versions renamed
    (libssl.so.3 -> libssX.so.3, OPENSSL_3.* -> OPENSSM_3.*) next to copies of the system
    libssl/libcrypto renamed the same way (tests/reliability/openssl_mismatch.sh's way)."""
    rename = [os.path.join(ops.REPO, "tests", "reliability", "elf_rename.py")]
    versions = ["--prefix", "OPENSSL_3.=OPENSSM_3."]
    libssl = subprocess.run(["cc", "-print-file-name=libssl.so.3"], capture_output=True, text=True).stdout.strip()
    sys_dir = os.path.dirname(os.path.realpath(libssl)) if os.path.isabs(libssl) else "/usr/lib/x86_64-linux-gnu"
    shutil.copy(os.path.join(sys_dir, "libssl.so.3"), os.path.join(d, "libssX.so.3"))
    shutil.copy(os.path.join(sys_dir, "libcrypto.so.3"), os.path.join(d, "libcryptX.so.3"))
    shutil.copy(harness.LIBRARY, os.path.join(d, "libresty_client_tls.so"))
    for name, rules in (("libssX.so.3", ["--exact", "libssl.so.3=libssX.so.3"]),
                        ("libcryptX.so.3", []), ("libresty_client_tls.so", ["--exact", "libssl.so.3=libssX.so.3"])):
        subprocess.run(["python3", *rename, os.path.join(d, name), *rules,
                        "--exact", "libcrypto.so.3=libcryptX.so.3", *versions], check=True, capture_output=True)
    return sys_dir


def test_library_built_against_another_openssl():
    d = ops.scratch()
    other_openssl_build(d)
    layout = ops.Layout(ops.scratch(), many=0)
    ng = ops.nginx_for(layout, cpath="%s/lib?.so;;" % d)
    # The loader finds the renamed copies through LD_LIBRARY_PATH, read once at nginx's start.
    saved = os.environ.get("LD_LIBRARY_PATH")
    os.environ["LD_LIBRARY_PATH"] = d
    try:
        refused(ng, "resty.client_tls: refusing to mix OpenSSL copies",
                os.path.join(d, "libssX.so.3"))
    finally:
        if saved is None:
            del os.environ["LD_LIBRARY_PATH"]
        else:
            os.environ["LD_LIBRARY_PATH"] = saved


def unreadable(kind, path):
    if kind == "missing":
        os.remove(path)
    elif kind == "directory":  # unreadable by anyone, root included (chmod 000 is not)
        os.remove(path)
        os.mkdir(path)
    elif kind == "not_pem":
        with open(path, "w") as f:
            f.write("# generation 2\nnot a certificate\n")


@harness.cases(missing=dict(kind="missing"), directory=dict(kind="directory"), not_pem=dict(kind="not_pem"))
def test_unreadable_ca_file_at_startup(kind):
    layout = ops.Layout(ops.scratch(), many=0)
    path = layout.files["b"]
    unreadable(kind, path)
    ng = ops.nginx_for(layout)
    refused(ng, "init_by_lua error: ", "CA file " + path if kind == "not_pem" else "cannot read CA file " + path)


@harness.cases(missing=dict(kind="missing"), directory=dict(kind="directory"), not_pem=dict(kind="not_pem"))
def test_unreadable_ca_file_at_reload(kind):
    """The reload is refused: the workers it has keep serving the lists they hold, and once
    the file is fixed the next reload takes it."""
    layout = ops.Layout(ops.scratch(), many=0)
    path = layout.files["b"]
    needle = "CA file " + path if kind == "not_pem" else "cannot read CA file " + path
    with ops.nginx_for(layout, workers=2, expect_errors=["init_by_lua error: .*" + needle]) as ng:
        old = ng.wait_workers()
        with ops.Load(ng.ports["tls"], layout.targets(), full=2, keepalive=1) as load:
            unreadable(kind, path)
            ng.signal(signal.SIGHUP)
            expect(harness.wait_for(lambda: needle in ng.log_text(), ops.WAIT),
                   "no error about %s in the log after the reload:\n%s", path, ng.log_text()[-2000:])
            expect(sorted(ng.workers()) == sorted(old), "workers %s after the refused reload, before %s",
                   ng.workers(), old)
            mark = load.count()
            expect(load.wait(lambda r: r.pid in old, 100, mark), "the old workers stopped serving")
            if os.path.isdir(path):
                os.rmdir(path)
            ops.write_ca_file(path, [harness.pki().other_root])
            ng.signal(signal.SIGHUP)
            new = ng.wait_workers(exclude=old)
            expect(load.wait(lambda r: r.pid in new, 50, load.count()), "the new workers serve nothing")
        note("%s", load.summary())
        ops.expect_clean(load, layout.check)


def test_library_missing_without_init_by_lua():
    """Loaded only in the certificate phase: nginx starts (nothing loads the module before a
    handshake), and every handshake fails with the message in the error log."""
    server = harness.pki().server("localhost")
    conf = """\
    server {
        listen 127.0.0.1:@port:tls@ ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_certificate_by_lua_block { require("resty.client_tls").request_client_certificate() }
        location / { return 200; }
    }
""" % (server.cert, server.key)
    copy = system_copy()
    with ops.Nginx(conf, workers=1, cpath="/nonexistent-rct/lib?.so;;",
                   expect_errors=[] if copy else ["resty.client_tls: cannot load libresty_client_tls.so"]) as ng:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        outcomes = []
        for _ in range(3):  # each one fails, each with the message
            try:
                with socket.create_connection(("127.0.0.1", ng.ports["tls"]), timeout=ops.CLIENT_TIMEOUT) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost"):
                        outcomes.append("handshake done")
            except ssl.SSLError as e:
                outcomes.append(repr(e))
        note("client: %s", outcomes[-1])
        if copy:
            note("%s is installed system-wide: the module falls back to it (no error to see here)", copy)
            expect(outcomes == ["handshake done"] * 3, "handshakes with the system copy: %s", outcomes)
            return
        expect("handshake done" not in outcomes, "a handshake succeeded without the library: %s", outcomes)
        lines = [l for l in ng.log_text().splitlines() if "cannot load libresty_client_tls.so" in l]
        note("log: %s", lines[0][lines[0].index("[error]"):] if lines else "nothing")
        # Every handshake says why, not only the first ("loop or previous error loading
        # module" would fail the test as an unexpected error).
        expect(len(lines) == 3, "%d of 3 handshakes logged the reason", len(lines))
