#!/usr/bin/env python3
"""Run the HTTP/3 tests (tests/http3/test_*.py) through tests/nginx's harness and runner.

usage: run.py [--keep] [--list] [NAME ...]

Prints PASS/FAIL per test and ends with `N passed, N failed`. On a platform without HTTP/3
(an nginx built without ngx_http_v3_module, such as Debian 11's and 12's, or a curl without
HTTP/3) it prints one line `N/A: <why>` and exits 0: there is nothing to test there. Where
HTTP/3 is there, anything else missing (openssl s_client -quic, the library, ...) is a
failure, never a skip.
"""

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)

import h3  # noqa: E402  (puts tests/nginx on the path)
import harness  # noqa: E402

# tests/nginx/run.py (run_test(), select()), under another name than this file's.
_spec = importlib.util.spec_from_file_location("nginx_run", os.path.join(h3.REPO, "tests", "nginx", "run.py"))
nginx_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx_run)


def discover():
    tests = []
    for file in sorted(os.listdir(HERE)):
        if not (file.startswith("test_") and file.endswith(".py")):
            continue
        module = importlib.import_module(file[:-3])
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and callable(fn)) or fn.__module__ != module.__name__:
                continue
            cases = getattr(fn, "cases", None)
            if cases is None:
                tests.append((name, module.__name__, name, fn))
            else:
                for case, arg in cases.items():
                    tests.append(("%s[%s]" % (name, case), module.__name__, name,
                                  lambda fn=fn, arg=arg: fn(**arg) if isinstance(arg, dict) else fn(arg)))
    return tests


def main(argv):
    keep = "--keep" in argv
    names = [a for a in argv if not a.startswith("--")]
    tests, unknown = nginx_run.select(discover(), names)
    if "--list" in argv:
        for t in tests:
            print(t[0])
        return 0
    if unknown:
        print("no such test: %s (see --list)" % ", ".join(unknown))
        print("0 passed, %d failed" % len(unknown))
        return 1
    why = h3.not_applicable()
    if why:
        print("N/A: %d HTTP/3 tests: %s" % (len(tests), why))
        return 0
    # Tests that need curl to resume QUIC sessions, where this curl does not: N/A, said so.
    no_reuse = h3.curl_quic_session_reuse()
    if no_reuse:
        kept = [t for t in tests if not getattr(getattr(sys.modules[t[1]], t[2]),
                                                "needs_curl_resumption", False)]
        if len(kept) != len(tests):
            print("N/A: %d tests need curl to resume QUIC sessions: %s" % (len(tests) - len(kept), no_reuse))
        tests = kept
    missing = h3.missing_prerequisites()
    if missing:
        print("FAIL prerequisites\n    " + "\n    ".join(missing))
        print("0 passed, 1 failed")
        return 1
    print("platform: %s; nginx QUIC: %s" % (
        harness.platform_versions() if hasattr(harness, "platform_versions") else "?",
        "OpenSSL's QUIC API" if h3.nginx_quic_api() == "native" else "nginx's OpenSSL compatibility layer"))
    tmp = tempfile.mkdtemp(prefix="rct-http3-")
    harness.setup_run(tmp, keep=keep)
    start = time.monotonic()
    passed = failed = 0
    for test_id, _module, _name, fn in tests:
        if nginx_run.run_test(test_id, fn):
            passed += 1
        else:
            failed += 1
    print("runtime %.1fs; temp dir %s" % (time.monotonic() - start, tmp if failed or keep else "removed"))
    if not failed and not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and tests else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
