"""The test suite's own set-up (tests/conftest.py): derandomized Hypothesis, the session's persistent
compilation cache shared with subprocesses, and tiers."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def drawn_examples(profile):
    """The examples a small @given test draws under ``profile``."""
    seen = []

    @settings(settings.get_profile(profile), max_examples=20)
    @given(st.lists(st.integers(), max_size=5))
    def draw(values):
        seen.append(values)

    draw()
    return seen


def test_default_hypothesis_profile_draws_the_same_examples_every_run():
    assert settings.get_profile("default").derandomize and settings.get_profile("default").database is None
    assert drawn_examples("default") == drawn_examples("default")
    assert not settings.get_profile("random").derandomize


def cache_entries(prefix: str = ""):
    """The session cache's entries whose names start with ``prefix`` (the other xdist worker writes into
    the same directory at the same time, so a test counts only its own programs' entries)."""
    names = os.listdir(jax.config.jax_compilation_cache_dir)  # pyright: ignore[reportAttributeAccessIssue]
    return {name for name in names if name.startswith(prefix)}


def test_session_compilation_cache_is_shared_through_the_environment():
    """xdist workers and subprocesses read JAX_COMPILATION_CACHE_DIR: it is the directory this process uses."""
    assert jax.config.jax_compilation_cache_dir == os.environ["JAX_COMPILATION_CACHE_DIR"]  # pyright: ignore
    assert Path(os.environ["JAX_COMPILATION_CACHE_DIR"]).is_dir()
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) == 0


def test_a_cached_program_loaded_after_other_compiles_gives_the_compiled_bits(
    no_compilation_cache, fresh_compilation_cache
):
    """An executable loaded from the persistent cache into a process that has compiled other programs
    runs and equals XLA's own compile bit for bit (an earlier store of serialized executables failed
    exactly there: "Function ... not found")."""
    from jax.experimental.compilation_cache import compilation_cache

    x = jax.random.normal(jax.random.key(0), (16, 16))

    def program(x):  # a shape and body no other test compiles
        return jnp.tanh(x @ x.T * 0.37).sum(axis=0) + jnp.sort(x[:, 3]) ** 3

    compiled = np.asarray(jax.jit(program)(x))  # XLA, no cache (the fixture)
    jax.config.update("jax_enable_compilation_cache", True)
    compilation_cache.reset_cache()
    jax.clear_caches()  # forget the in-memory executable
    before = cache_entries("jit_program-")
    jax.jit(program)(x)  # a fresh jit: compiled and written
    written = cache_entries("jit_program-") - before
    assert written
    for k in range(3):  # other programs in between
        jax.jit(lambda y, k=k: jnp.cumsum(y * k, axis=1) - jnp.max(y))(x).block_until_ready()
    jax.clear_caches()
    before = cache_entries("jit_program-")
    loaded = np.asarray(jax.jit(program)(x))
    assert cache_entries("jit_program-") == before  # read, not compiled again
    np.testing.assert_array_equal(loaded, compiled)


def test_a_test_that_starts_a_process_is_in_the_integration_tier(request):
    """conftest.py marks such a test ``integration`` (this one is: it calls ``subprocess.run``)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['JAX_COMPILATION_CACHE_DIR'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert request.node.get_closest_marker("integration") is not None


@pytest.mark.parametrize("tier", ["slow", "integration"])
def test_tiers_are_registered_and_left_out_of_the_default_run(request, tier):
    markers = request.config.getini("markers")
    assert any(line.startswith(f"{tier}:") for line in markers)
    addopts = " ".join(request.config.getini("addopts"))
    assert f"not {tier}" in addopts
