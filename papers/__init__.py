"""Paper folders: each is a self-contained package run as ``python -m papers.<name>``."""
