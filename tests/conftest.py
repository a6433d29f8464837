"""Test-wide settings: float64 available (limits are solved in it, as on the
command line); ensembles still pass float32 explicitly."""

import jax

jax.config.update("jax_enable_x64", True)
