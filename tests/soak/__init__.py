"""The soak: `bash tests/soak/run.sh --short | --long` (see soak.py)."""
