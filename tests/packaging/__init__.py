"""The packaging checks: `bash tests/packaging/run.sh`."""
