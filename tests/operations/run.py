#!/usr/bin/env python3
"""Run the operations tests (tests/operations/test_*.py): nginx as it is run in production,
with several workers, reloads, binary upgrades, killed workers, lua_code_cache off and
broken setups, driven by real TLS clients.

usage: run.py [--keep] [--list] [NAME ...]

NAME selects tests (a test id, a function name or a module name). Prints PASS/FAIL per test
and ends with `N passed, N failed`; exit status 0 only when nothing failed. On a lua module
without ngx_http_lua_ffi_get_req_ssl_pointer (Debian 11) every test is N/A (0 passed,
0 failed): they all drive the PDK layer.
"""

import argparse
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ops  # noqa: E402  (puts tests/nginx on the path)
import harness  # noqa: E402

# tests/nginx/run.py, whose run_test prints PASS/FAIL and the notes (loaded by path: this
# file is a "run" module too).
_spec = importlib.util.spec_from_file_location("nginx_run", os.path.join(ops.REPO, "tests", "nginx", "run.py"))
nginx_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx_run)


def discover(names):
    tests = []
    for file in sorted(os.listdir(HERE)):
        if not (file.startswith("test_") and file.endswith(".py")):
            continue
        module = importlib.import_module(file[:-3])
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and callable(fn)) or fn.__module__ != module.__name__:
                continue
            cases = getattr(fn, "cases", None)
            items = [(name, fn)] if cases is None else [
                ("%s[%s]" % (name, c), (lambda fn=fn, a=a: fn(**a))) for c, a in cases.items()]
            for test_id, call in items:
                if not names or any(n in (test_id, name, module.__name__) for n in names):
                    tests.append((test_id, call))
    return tests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--keep", action="store_true", help="keep all temp dirs")
    parser.add_argument("--list", action="store_true", help="list test ids and exit")
    args = parser.parse_args()
    tests = discover(args.names)
    if args.list:
        for t in tests:
            print(t[0])
        return 0
    if args.names and not tests:
        print("no such test: %s (see --list)\n0 passed, 1 failed" % " ".join(args.names))
        return 1
    if not harness.lua_module_has_ssl_pointer():
        print("N/A: %d tests need the lua module's ngx_http_lua_ffi_get_req_ssl_pointer, "
              "which this one lacks" % len(tests))
        print("0 passed, 0 failed")
        return 0
    missing = harness.missing_prerequisites()
    if missing:
        print("FAIL prerequisites\n    " + "\n    ".join(missing))
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="rct-operations-")
    harness.setup_run(tmp, keep=args.keep)
    start = time.monotonic()
    passed = failed = 0
    for test_id, fn in tests:
        if nginx_run.run_test(test_id, fn):
            passed += 1
        else:
            failed += 1
    print("runtime %.1fs; temp dir %s" % (time.monotonic() - start,
                                          tmp if failed or args.keep else "removed"))
    if not failed and not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
