"""The tests' XLA backend optimization level (tests/conftest.py): set once for the session and the
processes it starts, from AEJAX_TEST_XLA_BACKEND_OPT, and a bad value named; likewise the legacy
fusion emitters on jaxlib 0.10 (AEJAX_TEST_XLA_FUSION_EMITTERS)."""

import os

import pytest
from conftest import BACKEND_OPT_ENV, FUSION_EMITTERS_ENV, _backend_optimization_level, _legacy_fusion_emitters


def test_the_session_compiles_at_the_level_asked_for():
    level = os.environ.get(BACKEND_OPT_ENV, "0")
    if level == "default":
        pytest.skip(f"{BACKEND_OPT_ENV}=default: XLA's own level")
    assert "--xla_backend_optimization_level=" in os.environ.get("XLA_FLAGS", "")


def test_a_bad_level_is_named(monkeypatch):
    monkeypatch.setenv(BACKEND_OPT_ENV, "fast")
    monkeypatch.setenv("XLA_FLAGS", "")
    with pytest.raises(ValueError, match=r"AEJAX_TEST_XLA_BACKEND_OPT must be 0, 1, 2, 3 or 'default', got 'fast'"):
        _backend_optimization_level()


def test_a_level_in_xla_flags_is_left_alone(monkeypatch):
    monkeypatch.setenv(BACKEND_OPT_ENV, "0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=3")
    _backend_optimization_level()
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=3"
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    _backend_optimization_level()
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"


def test_legacy_fusion_emitters_only_on_jaxlib_0_10(monkeypatch):
    monkeypatch.delenv(FUSION_EMITTERS_ENV, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=1")
    _legacy_fusion_emitters("0.12.1")
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=1"  # an unknown flag would abort XLA
    _legacy_fusion_emitters("0.10.2")
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false"
    _legacy_fusion_emitters("0.10.2")  # named once, never twice
    assert os.environ["XLA_FLAGS"].count("fusion_emitters") == 1


def test_fusion_emitters_default_or_a_bad_choice_named(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv(FUSION_EMITTERS_ENV, "default")
    _legacy_fusion_emitters("0.10.2")
    assert os.environ["XLA_FLAGS"] == ""
    monkeypatch.setenv(FUSION_EMITTERS_ENV, "off")
    with pytest.raises(ValueError, match=r"AEJAX_TEST_XLA_FUSION_EMITTERS must be 'legacy' or 'default', got 'off'"):
        _legacy_fusion_emitters("0.10.2")
