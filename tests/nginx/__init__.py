"""The nginx integration tests: `python3 -m tests.nginx.run` (see README.md)."""
