"""The reliability tests: `bash tests/reliability/run.sh` (see README.md)."""
