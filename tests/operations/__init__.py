"""The operations tests: `python3 -m tests.operations.run` (see README.md)."""
