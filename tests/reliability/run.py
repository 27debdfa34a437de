"""Run the reliability tests against real nginx (tests/reliability/test_*.py): resumption
attacks and bad input. tests/reliability/run.sh runs them with its other steps.

usage: python3 -m tests.reliability.run [--keep] [--list] [--debug-log] [NAME ...]

Prints PASS/FAIL per test and ends with `N passed, N failed`; exit status 0 only when
nothing failed.
"""

import sys

from tests.harness import runner

if __name__ == "__main__":
    sys.exit(runner.main(__package__, __doc__))
