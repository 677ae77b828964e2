"""The version is single-sourced: aejax/_version.py feeds both ``aejax.__version__`` and the installed metadata."""

import importlib.metadata
import re

import aejax
from aejax import _version


def test_version_is_single_sourced():
    assert aejax.__version__ is _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d*)*", aejax.__version__), aejax.__version__


def test_installed_metadata_matches_the_package():
    """Fails on a stale install after a version bump: reinstall (``pip install -e .``) to refresh the metadata."""
    assert importlib.metadata.version("aejax") == aejax.__version__
