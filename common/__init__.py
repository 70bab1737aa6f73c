"""clrepro shared package: losses, data, metrics, configs and run records."""

__version__ = "0.1.0"
