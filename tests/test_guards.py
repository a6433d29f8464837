"""Guards before and after compute: an unstable step caught before training, divergence said at once
with its cause, and the training method a limit assumes named."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.limits.empirical import empirical_ntk
from jaxlimit.training import ensemble as engine
from jaxlimit.training.guards import STEP_CHECK_MEMBERS, training_method_mismatch

QUIET = jl.Execution(progress=False)

FULL = jl.Trainer(alpha=1.0, method="fullbatch")


@pytest.fixture(scope="module")
def data():
    return jl.synthetic_problem(jax.random.key(0), 6, 3, 1)


def _net(time_step):
    return jl.MLP((16,), dim=3, activation="relu", time_step=time_step)


def test_the_step_check_is_the_top_eigenvalue_of_the_engines_kernel(data):
    """α λ_max(Θ_lr)/M from the first members' empirical NTKs (Θ_lr = dt Θ̂ for the MLP)."""
    net = _net(0.05)
    alpha = 0.7
    keys = engine.member_keys(0, np.arange(STEP_CHECK_MEMBERS))
    expected = []
    for key in keys:
        params = net.init(jax.random.split(key)[0], jnp.float32)  # the generic program's draw
        theta = np.asarray(empirical_ntk(net, params, data.x_train), np.float64)
        expected.append(alpha * net.time_step * np.linalg.eigvalsh(theta)[-1] / data.n_train)
    from jaxlimit.training.guards import step_stability

    record = step_stability(net, data, jl.Trainer(alpha=alpha, method="fullbatch"), keys)
    np.testing.assert_allclose(record["rates"], expected, rtol=1e-4)
    assert record["rate"] == pytest.approx(max(expected), rel=1e-4) and record["stable"]
    # Online SGD: one row per step, so the rate is α max_i Θ_lr(x_i, x_i); minibatch the larger of
    # the mean step's and one row's over B; an optax optimizer is not covered, and said so.
    diagonal = []
    for key in keys:
        params = net.init(jax.random.split(key)[0], jnp.float32)
        theta = np.asarray(empirical_ntk(net, params, data.x_train), np.float64)
        diagonal.append(alpha * net.time_step * np.diag(theta).max())
    online = step_stability(net, data, jl.Trainer(alpha=alpha), keys)
    np.testing.assert_allclose(online["rates"], diagonal, rtol=1e-4)
    batch = step_stability(net, data, jl.Trainer(alpha=alpha, method="minibatch", batch_size=2), keys)
    np.testing.assert_allclose(batch["rates"], np.maximum(expected, np.array(diagonal) / 2), rtol=1e-4)
    import optax

    assert not step_stability(net, data, jl.Trainer(method="optax", optimizer=optax.sgd(0.1)), keys)["checked"]


def test_an_unstable_step_is_refused_before_training(data, monkeypatch):
    def trap(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(engine, "_cached_engine", trap)
    with pytest.raises(jl.InputError) as info:
        jl.run_ensemble(_net(20.0), data, FULL, times=[40.0], n_members=8, seed=0, guards=jl.Guards(step_check="error"))
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "α λ_max/M = 4.36 > 2" in message and "time_step (--step" in message and "alpha" in message
    with pytest.raises(jl.InputError, match="step_check must be one of"):
        jl.Guards(step_check="maybe")


def test_an_unstable_step_warns_and_divergence_is_said_with_its_cause(data):
    with pytest.warns(jl.UnstableStepWarning, match="4.36 > 2") as caught:
        result = jl.run_ensemble(_net(20.0), data, FULL, times=[400.0], n_members=8, seed=0, execution=QUIET)
    assert result.n_diverged >= 4  # ReLU units that die can save a member; most blow up
    divergence = [str(w.message) for w in caught if issubclass(w.category, jl.DivergenceWarning)]
    assert len(divergence) == 2  # said at the first record that shows it, then counted at the end
    text = divergence[-1]
    assert text.startswith(f"{result.n_diverged} of 8 members diverged; likely cause: the step is above the "
                           "stability bound")
    assert result.config["divergence"] == text
    assert result.config["step_check"]["rate"] == pytest.approx(4.363, abs=1e-3)


def test_divergence_is_said_while_training_goes_on(data):
    """The first DivergenceWarning comes from the first chunk's first record, before the other
    chunks train: it counts the members trained so far and the step it saw them at."""
    net = _net(20.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = jl.run_ensemble(net, data, FULL, times=[400.0, 800.0], n_members=32, seed=0,
                                 execution=jl.Execution(lanes=8, chunk_size=8, progress=False),
                                 guards=jl.Guards(step_check="off"))
    said = [str(w.message) for w in caught if issubclass(w.category, jl.DivergenceWarning)]
    assert len(said) == 2 and result.n_diverged > 5
    from jaxlimit.training.guards import diverged_members

    # the first block's members that had diverged at t = 400 (t = 0 is the result's first time)
    first_block = int(diverged_members(result.outputs[:8, :2], result.loss[:8, :2], 1e6).sum())
    assert first_block >= 1
    assert said[0].startswith(f"{first_block} of the first 8 of 32 members diverged by step {net.steps_to(400.0)}")
    assert "training goes on" in said[0]
    assert said[1].startswith(f"{result.n_diverged} of 32 members diverged")


def test_an_unstable_online_step_warns_before_training(data, monkeypatch):
    """Online SGD at three times the one-row bound is flagged before training and diverges; at
    half of it, nothing is said and nothing diverges."""
    net = _net(0.05)
    keys = engine.member_keys(0, np.arange(STEP_CHECK_MEMBERS))
    from jaxlimit.training.guards import step_stability

    unit = step_stability(net, data, jl.Trainer(alpha=1.0), keys)["rate"]
    fast = jl.Trainer(alpha=3 * 2 / unit)
    with pytest.warns(jl.UnstableStepWarning, match=r"α max_i Θ\(x_i, x_i\) = 6 > 2"):
        with pytest.warns(jl.DivergenceWarning):
            result = jl.run_ensemble(net, data, fast, times=[200.0], n_members=8, seed=0, execution=QUIET)
    assert result.n_diverged >= 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calm = jl.run_ensemble(net, data, jl.Trainer(alpha=0.5 * 2 / unit), times=[200.0], n_members=8, seed=0,
                               execution=QUIET)
    assert calm.n_diverged == 0 and calm.config["step_check"]["method"] == "online"


def test_a_stable_step_runs_without_a_word(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = jl.run_ensemble(_net(0.05), data, FULL, times=[1.0], n_members=8, seed=0, execution=QUIET)
    assert result.n_diverged == 0 and result.config["step_check"]["stable"]
    assert result.config["trainer"]["method"] == "fullbatch" and "divergence" not in result.config


def test_training_method_mismatch_names_both_methods():
    reason = training_method_mismatch("online", "fullbatch")
    assert "online SGD" in reason and "Trainer()'s default" in reason and "Trainer(method='fullbatch')" in reason
    assert len(reason.splitlines()) == 1
    assert training_method_mismatch("minibatch", "gradient-flow").startswith("the ensemble was trained by minibatch")
    assert training_method_mismatch("fullbatch", "fullbatch") is None
    assert training_method_mismatch("fullbatch", "gradient-flow") is None
    assert training_method_mismatch("online", None) is None
    assert jl.Trainer().method == "online" and "online SGD" in jl.Trainer.__doc__
