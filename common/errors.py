"""User-facing errors: the entry points print these as one line and exit with status 2."""

from __future__ import annotations


class ClreproError(Exception):
    """Base class of every error caused by bad input (arguments, configs, data files)."""


class ConfigError(ClreproError):
    """A config file or override has an unknown key or a value of the wrong type."""


class DataError(ClreproError):
    """A dataset is unknown, missing, corrupt, or cannot be downloaded."""


class RecordError(ClreproError):
    """A run record or reported-numbers file is malformed or would be overwritten."""
