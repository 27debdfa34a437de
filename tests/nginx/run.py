#!/usr/bin/env python3
"""Run the nginx integration tests (tests/nginx/test_*.py).

usage: run.py [--keep] [--list] [--debug-log] [NAME ...]

NAME selects tests: a full test id (`test_verify[expired]`), a function name (all its cases)
or a module name (`test_sessions`). Prints PASS/FAIL per test and ends with `N passed, N failed`;
exit status 0 only when nothing failed. Missing prerequisites (nginx, its lua module, curl,
nghttp, openssl, luajit, the built library) are a failure, never a skip.
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import harness  # noqa: E402


def discover():
    """[(test id, module name, function name, callable)] in file and definition order."""
    tests = []
    for file in sorted(os.listdir(HERE)):
        if not (file.startswith("test_") and file.endswith(".py")):
            continue
        module = importlib.import_module(file[:-3])
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and callable(fn)):
                continue
            if getattr(fn, "__module__", None) != module.__name__:
                continue
            cases = getattr(fn, "cases", None)
            if cases is None:
                tests.append((name, module.__name__, name, fn))
            else:
                for case, arg in cases.items():
                    tests.append(("%s[%s]" % (name, case), module.__name__, name,
                                  lambda fn=fn, arg=arg: fn(**arg) if isinstance(arg, dict) else fn(arg)))
    return tests


def select(tests, names):
    if not names:
        return tests, []
    chosen, unknown = [], []
    for wanted in names:
        hits = [t for t in tests if wanted in (t[0], t[1], t[2])]
        if not hits:
            unknown.append(wanted)
        chosen += [t for t in hits if t not in chosen]
    return chosen, unknown


def run_test(test_id, fn):
    harness._Run.notes = []
    start = time.monotonic()
    try:
        fn()
        failure = None
    except AssertionError as e:
        failure = str(e) or traceback.format_exc()
    except Exception:
        failure = traceback.format_exc()
    elapsed = time.monotonic() - start
    print("%s %s (%.1fs)" % ("FAIL" if failure else "PASS", test_id, elapsed))
    for line in harness._Run.notes:
        print("    note: " + line)
    if failure:
        print("    " + failure.rstrip().replace("\n", "\n    "))
    harness._Run.notes = None
    sys.stdout.flush()
    return failure is None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="test ids, function names or module names")
    parser.add_argument("--keep", action="store_true", help="keep all temp dirs")
    parser.add_argument("--list", action="store_true", help="list test ids and exit")
    parser.add_argument("--debug-log", action="store_true", help="nginx error_log at debug level")
    args = parser.parse_args()

    tests, unknown = select(discover(), args.names)
    # test_old_module checks the one thing an nginx without the SSL-pointer function can do
    # (a clear error); every other test needs that function. Which set runs depends on the
    # lua module, and the run says so.
    has_pointer = harness.lua_module_has_ssl_pointer()
    kept = [t for t in tests if (t[1] == "test_old_module") != has_pointer]
    if len(kept) != len(tests) and not args.list:
        print("N/A: %d tests %s (this lua module %s ngx_http_lua_ffi_get_req_ssl_pointer)"
              % (len(tests) - len(kept),
                 "for lua modules without it" if has_pointer else "need it",
                 "exports" if has_pointer else "lacks"))
    tests = kept
    if args.list:
        for t in tests:
            print(t[0])
        return 0
    if unknown:
        print("no such test: %s (see --list)" % ", ".join(unknown))
        print("0 passed, %d failed" % len(unknown))
        return 1

    missing = harness.missing_prerequisites()
    if missing:
        print("FAIL prerequisites\n    " + "\n    ".join(missing))
        print("0 passed, 1 failed")
        return 1

    tmp = tempfile.mkdtemp(prefix="rct-nginx-")
    harness.setup_run(tmp, keep=args.keep, log_level="debug" if args.debug_log else "info")
    start = time.monotonic()
    passed = failed = 0
    for test_id, _module, _name, fn in tests:
        if run_test(test_id, fn):
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
