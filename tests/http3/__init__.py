"""The HTTP/3 tests: `python3 -m tests.http3.run` (see README.md)."""
