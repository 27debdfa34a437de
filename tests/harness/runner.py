"""The one runner of the Python suites (tests/nginx, tests/reliability, tests/operations,
tests/http3). A suite's run.py lists nothing but its own rules and calls `main()`:

    from tests.harness import runner
    sys.exit(runner.main(__package__, __doc__, applicable=..., prerequisites=...))

usage: python3 -m tests.<kind>.run [--keep] [--list] [--debug-log] [NAME ...]

Tests are the `test_*` functions of the suite's `test_*.py` files, in file and definition
order; `@cases` makes one test per case. NAME selects tests: a full test id
(`test_verify[expired]`), a function name (all its cases) or a module name (`test_sessions`).
Prints PASS/FAIL per test (with its notes) and ends with `N passed, N failed`; exit status 0
only when something ran and nothing failed. A suite's `applicable` rule may set tests aside
as N/A, said in a line `N/A: ...`; when it sets all of them aside the run prints that line,
no result line, and exits 0. Missing prerequisites are a failure, never a skip.
"""

import argparse
import collections
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback

from . import nginx as harness

# id: what PASS/FAIL prints; module, name: the file and function (for selection); fn: the
# test function (suites read attributes of it); call: runs the test (one case of it).
Test = collections.namedtuple("Test", "id module name fn call")


def discover(package):
    """Every test of `package` (e.g. "tests.nginx"), in file and definition order."""
    here = os.path.dirname(importlib.import_module(package).__file__)
    tests = []
    for file in sorted(os.listdir(here)):
        if not (file.startswith("test_") and file.endswith(".py")):
            continue
        module = importlib.import_module("%s.%s" % (package, file[:-3]))
        short = file[:-3]
        for name, fn in vars(module).items():
            if not (name.startswith("test_") and callable(fn)):
                continue
            if getattr(fn, "__module__", None) != module.__name__:
                continue
            cases = getattr(fn, "cases", None)
            if cases is None:
                tests.append(Test(name, short, name, fn, fn))
            else:
                for case, arg in cases.items():
                    tests.append(Test("%s[%s]" % (name, case), short, name, fn,
                                      lambda fn=fn, arg=arg: fn(**arg) if isinstance(arg, dict) else fn(arg)))
    return tests


def select(tests, names):
    """(the tests NAMES select, the names that select nothing); no names: every test."""
    if not names:
        return tests, []
    chosen, unknown = [], []
    for wanted in names:
        hits = [t for t in tests if wanted in (t.id, t.module, t.name)]
        if not hits:
            unknown.append(wanted)
        chosen += [t for t in hits if t not in chosen]
    return chosen, unknown


def run_test(test_id, fn):
    """Runs one test; prints PASS/FAIL, its time, its notes and the failure. True if passed."""
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


def run_tests(tests, tmp_prefix, keep=False, log_level="info",
              prerequisites=harness.missing_prerequisites):
    """Runs (id, callable) pairs in one temp dir and prints the result line; the exit status."""
    missing = prerequisites()
    if missing:
        print("FAIL prerequisites\n    " + "\n    ".join(missing))
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix=tmp_prefix)
    harness.setup_run(tmp, keep=keep, log_level=log_level)
    start = time.monotonic()
    passed = failed = 0
    for test_id, call in tests:
        if run_test(test_id, call):
            passed += 1
        else:
            failed += 1
    print("runtime %.1fs; temp dir %s" % (time.monotonic() - start, tmp if failed or keep else "removed"))
    if not failed and not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed else 1


def main(package, doc, applicable=None, prerequisites=harness.missing_prerequisites, banner=None,
         argv=None):
    """The command line of a suite's run.py.
    applicable(tests) -> (kept tests, why the others are N/A or None): the suite's N/A rule.
    prerequisites() -> [what is missing]; banner() -> a line printed before the run."""
    parser = argparse.ArgumentParser(prog="python3 -m %s.run" % package, description=doc.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="test ids, function names or module names")
    parser.add_argument("--keep", action="store_true", help="keep all temp dirs")
    parser.add_argument("--list", action="store_true", help="list test ids and exit")
    parser.add_argument("--debug-log", action="store_true", help="nginx error_log at debug level")
    args = parser.parse_args(argv)

    tests, unknown = select(discover(package), args.names)
    if args.list:
        for t in tests:
            print(t.id)
        return 0
    if unknown:
        print("no such test: %s (see --list)" % ", ".join(unknown))
        print("0 passed, %d failed" % len(unknown))
        return 1
    if applicable:
        kept, why = applicable(tests)
        if why and len(kept) != len(tests):
            print("N/A: " + why)
        if tests and not kept:
            return 0
        tests = kept
    if banner:
        print(banner())
    prefix = "rct-%s-" % package.rsplit(".", 1)[-1]
    return run_tests([(t.id, t.call) for t in tests], prefix, keep=args.keep,
                     log_level="debug" if args.debug_log else "info", prerequisites=prerequisites)
