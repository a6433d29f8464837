"""Test-wide settings: float64 available (limits are solved in it, as on the
command line); ensembles still pass float32 explicitly."""

import os

import jax
import pytest

# The suite keeps JAX's one CPU device in its own processes and the helpers it starts, as it
# always ran (the command line still sets up one device per core itself);
# tests/test_devices.py checks what ``import jaxlimit`` does without this.
os.environ.setdefault("JAXLIMIT_CPU_CORES", "0")
jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def _restore_environment():
    """``jaxlimit.cli.main`` called in-process sets XLA_FLAGS and JAX_ENABLE_X64 as the
    command line does; put the environment back so later subprocesses see the CI's own."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
