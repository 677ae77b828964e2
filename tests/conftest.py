"""Test set-up: four fake CPU devices, configured before anything else uses jax; a float64 fixture."""

import os

import pytest

try:
    import jax

    jax.config.update("jax_num_cpu_devices", 4)
except AttributeError:  # jax versions without the jax_num_cpu_devices option
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import jax


@pytest.fixture(scope="module")
def x64():
    """Run a test module with jax's float64 mode on, restoring the previous mode afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
