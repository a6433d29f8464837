"""Test-wide settings: float64 available (limits are solved in it, as on the
command line); ensembles still pass float32 explicitly."""

import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True)
def _restore_environment():
    """``jaxlimit.cli.main`` called in-process sets XLA_FLAGS and JAX_ENABLE_X64 as the
    command line does; put the environment back so later subprocesses see the CI's own."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
