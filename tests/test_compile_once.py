"""Compile once: a repeated identical call compiles nothing new, and a width sweep compiles the
training program once per distinct shape (once per width) and the limit's solver once.

Compilations are counted, never timed (:func:`jaxlimit.devices.compilations`: JAX's
backend-compile monitoring event, one per compiled program, with its name); the engine's three
compiled functions are named ``jit(init)``, ``jit(advance)`` and ``jit(record)``, diffrax's solve
``jit(diffeqsolve)``.
"""

import jax.numpy as jnp
import pytest

import jaxlimit as jl
from jaxlimit.devices import compilations
from jaxlimit.experiments import run
from jaxlimit.experiments.sweep_xavier.config import SweepXavierConfig

ENGINE = ("jit(init)", "jit(advance)", "jit(record)")


def test_a_repeated_identical_call_compiles_nothing():
    # Settings no other test uses, so the first call is the first compilation in this process.
    def call():
        data = jl.synthetic_problem(jl.stream_key(3, "data"), n_train=5, dim=3, n_probe=2)
        model = jl.MLP((7, 7), dim=3, activation="relu", W_std=1.3, b_std=0.1, time_step=0.05)
        trainer = jl.Trainer(alpha=0.37, method="fullbatch")
        return jl.run_ensemble(model, data, trainer, times=[0.5, 1.0], n_members=6, seed=0, dtype=jnp.float32,
                               execution=jl.Execution(progress=False))

    with compilations() as first:
        one = call()
    assert all(first.count[name] == 1 for name in ENGINE), dict(first.count)  # it sees the engine compile
    with compilations() as second:
        two = call()
    assert second.total == 0, f"the second identical call compiled {dict(second.count)}"
    assert (one.outputs == two.outputs).all()


@pytest.fixture(scope="module")
def sweep_compilations():
    config = SweepXavierConfig(widths=(8, 16), ensemble=8, points=3, probes=1, t_max=0.5, n_times=2,
                               no_progress=True, seed=11)
    with compilations() as seen:
        report = run(config)
    assert report.metrics["widths"] == [8, 16]
    return seen.count


def test_a_width_sweep_compiles_the_training_program_once_per_width(sweep_compilations):
    assert {name: sweep_compilations[name] for name in ENGINE} == {name: 2 for name in ENGINE}


def test_a_width_sweep_compiles_the_limit_path_solver_once(sweep_compilations):
    # Each width's members are set against their own limit paths, solved by diffrax on the same
    # kernels and times: one compiled solve serves every width.
    assert sweep_compilations["jit(diffeqsolve)"] == 1, dict(sweep_compilations)
