"""The package version, in one place: ``aejax.__version__`` and the wheel's metadata both read it."""

__version__ = "0.4.5"
