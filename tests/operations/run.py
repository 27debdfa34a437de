"""Run the operations tests (tests/operations/test_*.py): nginx as it is run in production,
with several workers, reloads, binary upgrades, killed workers, lua_code_cache off and
broken setups, driven by real TLS clients.

usage: python3 -m tests.operations.run [--keep] [--list] [--debug-log] [NAME ...]

NAME selects tests (a test id, a function name or a module name). Prints PASS/FAIL per test
and ends with `N passed, N failed`; exit status 0 only when nothing failed. On a lua module
without ngx_http_lua_ffi_get_req_ssl_pointer (Debian 11) every test is N/A: they all drive
the PDK layer.
"""

import sys

from tests.harness import lua_module_has_ssl_pointer, runner


def applicable(tests):
    if lua_module_has_ssl_pointer():
        return tests, None
    return [], ("%d tests need the lua module's ngx_http_lua_ffi_get_req_ssl_pointer, "
                "which this one lacks" % len(tests))


if __name__ == "__main__":
    sys.exit(runner.main(__package__, __doc__, applicable=applicable))
