"""Test set-up: four fake CPU devices, configured before anything else uses jax."""

import os

try:
    import jax

    jax.config.update("jax_num_cpu_devices", 4)
except AttributeError:  # jax versions without the jax_num_cpu_devices option
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    import jax
