"""Online data: the engine trains on a distribution, a fresh sample at every step.

Step k of member i trains on ``data.sample(fold_in(data_key_i, k), rows)``: the same bits for any
chunking, ensemble size at pinned lanes, split of the run into segments and device count
(tests/test_devices.py); the process is the soft committee machine's SGD (its mean ε_g against
``committee_ode``); and what cannot work is refused before training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.limits.committee import erf_g, generalisation_error


@pytest.fixture(scope="module")
def problem():
    data = jl.teacher_student_stream(4, teachers=2, noise_std=0.1, n_eval=6, n_probe=2, seed=0)
    return jl.TwoLayer(96, 4, "xavier", "tanh"), data


def test_a_stream_is_a_distribution_with_a_fixed_evaluation_sample():
    data = jl.teacher_student_stream(50, teachers=3, noise_std=0.0, n_eval=64, n_probe=5, seed=2)
    assert isinstance(data, jl.OnlineData) and (data.n_eval, data.n_probe, data.dim) == (64, 5, 50)
    np.testing.assert_allclose(data.sampler.w_star @ data.sampler.w_star.T / 50, np.eye(3), atol=1e-12)  # T = I
    x, y = data.sample(jax.random.key(7), 4000)
    # y = Σ_m erf(w*_m·x/√(2D)): the fields ρ = w*·x/√D are N(0, T), so E[y²] = M·(2/π) arcsin(1/2) = M/3
    # (the cross terms vanish, T being diagonal), and x has unit variance per entry.
    assert abs(np.mean(np.asarray(y) ** 2) - 1.0) < 0.06
    assert abs(np.var(np.asarray(x)) - 1.0) < 0.01
    # A key gives one sample; the evaluation sample is the "evaluation" stream of the seed.
    np.testing.assert_array_equal(data.sample(jax.random.key(7), 3)[0], x[:3])
    again = jl.teacher_student_stream(50, teachers=3, n_eval=64, n_probe=5, seed=2)
    np.testing.assert_array_equal(again.x_eval, data.x_eval)
    assert not np.allclose(jl.teacher_student_stream(50, teachers=3, n_eval=64, seed=3).x_eval, data.x_eval)
    # Any model as the teacher.
    model = jl.TwoLayer(8, 50, "xavier", "tanh")
    params = model.init(jax.random.key(1))
    other = jl.teacher_student_stream(50, teacher=model, teacher_params=params, noise_std=0.0, n_eval=16)
    np.testing.assert_allclose(other.y_eval, model.apply(params, other.x_eval), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", ["online", "minibatch"])
def test_chunk_size_and_ensemble_size_do_not_change_a_single_bit(problem, method):
    model, data = problem
    trainer = jl.Trainer(alpha=1.0, method=method, batch_size=3)
    kw = dict(times=[0.5, 1.0], n_members=70, seed=11)
    whole = jl.run_ensemble(model, data, trainer, **kw)
    assert whole.config["program"] == "generic" and whole.config["online_data"]["rows_per_step"] == trainer.batch_size ** (method == "minibatch")
    for chunk in (1, 7):
        part = jl.run_ensemble(model, data, trainer, execution=jl.Execution(chunk_size=chunk), **kw)
        np.testing.assert_array_equal(part.outputs, whole.outputs)
        np.testing.assert_array_equal(part.loss, whole.loss)
    # Member i is the same network in a smaller ensemble at the same lanes (64 by default; and 8).
    small = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=64), **{**kw, "n_members": 5})
    np.testing.assert_array_equal(small.outputs, whole.outputs[:5])
    if method == "online":
        eight = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=8), **kw)
        eight_small = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=8, chunk_size=24),
                                      **{**kw, "n_members": 13})
        np.testing.assert_array_equal(eight_small.outputs, eight.outputs[:13])
    # Members differ from one another, and the stream is not the first one's for all.
    assert np.unique(whole.outputs[:, -1, 0]).size == 70


def test_saved_times_do_not_change_a_single_bit(problem):
    model, data = problem
    trainer = jl.Trainer(alpha=1.0, method="minibatch", batch_size=2)
    kw = dict(n_members=9, seed=5)
    once = jl.run_ensemble(model, data, trainer, times=[5.0], **kw)
    split = jl.run_ensemble(model, data, trainer, times=[0.3, 1.7, 5.0], **kw)
    np.testing.assert_array_equal(split.outputs[:, -1], once.outputs[:, -1])
    assert not np.allclose(split.outputs[:, 0], split.outputs[:, -1])


def test_the_stream_is_the_documented_one(problem):
    """Member 2 trained by hand, step k on the batch sample(fold_in(data_key, k), 1) with data_key the
    second half of its key and the engine's per-leaf rates, gives the engine's outputs: the stream
    is fold_in(member data key, k) and nothing else."""
    from jaxlimit.training.ensemble import member_keys

    model, data = problem
    data32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), data)
    trainer = jl.Trainer(alpha=1.0)
    result = jl.run_ensemble(model, data, trainer, times=[0.25], n_members=3, seed=4)
    init_key, data_key = jax.random.split(member_keys(4, np.arange(3))[2])
    rates = model.learning_rates()

    @jax.jit
    def step(params, k):
        x, y = data32.sample(jax.random.fold_in(data_key, k), 1)
        grads = jax.grad(lambda p: jnp.mean(trainer.loss(model.apply(p, x), y)))(params)
        return jax.tree_util.tree_map(lambda p, g, r: p - trainer.alpha * r * g, params, grads, rates)

    params = model.init(init_key, jnp.float32)
    for k in range(int(result.steps[-1])):
        params = step(params, np.int32(k))
    assert result.steps[-1] == 24
    np.testing.assert_allclose(model.apply(params, data32.x_all), result.outputs[2, -1], rtol=0, atol=1e-5)
    assert np.max(np.abs(result.outputs[2, -1] - result.outputs[2, 0])) > 1e-2  # training moved it
    # The recorded loss is the mean of ½ (y − h)² on the fixed evaluation sample.
    h = result.train_outputs[2, -1]
    np.testing.assert_allclose(result.loss[2, -1], 0.5 * np.mean((np.asarray(data.y_eval) - h) ** 2), rtol=1e-5)


D, K, M, S, ETA = 100, 2, 2, 0.5, 1.0


def _committee_student(dim: int):
    """The soft committee machine ŷ = Σ_k erf(w_k·x/√(2D)), v = 1 fixed, w ~ N(0, s²): with
    time_step 1/D and lr_scale D the engine's step is w ← w + α (1/D)·D·Δ g'(λ) x/√D, the
    committee's w ← w + (η/√D) Δ g'(λ) x exactly at α = η, and t = steps/D is the committee's α."""
    return jl.UserNetwork(lambda key: S * jax.random.normal(key, (K, dim), jnp.float32),
                          lambda w, x: jnp.sum(erf_g(x @ w.T / math.sqrt(dim)), axis=1),
                          time_step=1.0 / dim, lr_scale=float(dim), dim=dim, name="soft committee")


def test_online_committee_machine_follows_the_order_parameter_ode():
    """512 students at D = 100, K = M = 2, η = 1, σ = 0: the mean ε_g at α = 1 and 3 (before the
    plateau, where the escape's amplified fluctuations would dominate) within 4 standard errors of
    committee_ode from Q0 = s² I, R0 = 0 (the starts' mean). The finite-D bias of the mean, measured
    with the exact order-parameter chain at 4000 students, is below 0.3 of these standard errors."""
    data = jl.teacher_student_stream(D, teachers=M, n_eval=16, seed=0)

    def eps_g(w, w0, data):  # ε_g of the order parameters Q = w wᵀ/D, R = w w*ᵀ/D, T = I
        w_star = data.sampler.w_star.astype(w.dtype)
        return generalisation_error(w @ w.T / D, w @ w_star.T / D, jnp.eye(M, dtype=w.dtype))

    result = jl.run_ensemble(_committee_student(D), data, jl.Trainer(alpha=ETA), times=[1.0, 3.0],
                             n_members=512, seed=0, observables={"eps": eps_g})
    np.testing.assert_array_equal(result.steps, [0, 100, 300])
    ode = jl.committee_ode(S**2 * np.eye(K), np.zeros((K, M)), np.eye(M), lr=ETA)
    expected = np.asarray(ode.generalisation_error(result.times))
    eps = result.observables["eps"]
    se = eps.std(axis=0, ddof=1) / math.sqrt(eps.shape[0])
    z = (eps.mean(axis=0) - expected) / se
    assert np.all(np.abs(z) < 4), (eps.mean(axis=0), expected, z)
    # The check has teeth: ε_g falls by a factor ≈ 10 over these times, and the ODE of a learning
    # rate 20 % off is many standard errors away at α = 3.
    assert expected[0] / expected[-1] > 5
    off = np.asarray(jl.committee_ode(S**2 * np.eye(K), np.zeros((K, M)), np.eye(M), lr=1.2 * ETA)
                     .generalisation_error(result.times))
    assert abs(eps.mean(axis=0)[-1] - off[-1]) / se[-1] > 8


def test_refusals_before_training(problem):
    model, data = problem
    kw = dict(times=[0.5], n_members=2)
    with pytest.raises(jl.InputError, match="full batch.*no meaning on a distribution"):
        jl.run_ensemble(model, data, jl.Trainer(method="fullbatch"), **kw)
    import optax

    with pytest.raises(jl.InputError, match="no meaning on a distribution"):
        jl.run_ensemble(model, data, jl.Trainer(method="optax", optimizer=optax.sgd(0.1), batch_size=0), **kw)
    with pytest.raises(jl.InputError, match="finite training set"):
        jl.run_ensemble(model, data, execution=jl.Execution(program="weights"), **kw)
    with pytest.raises(jl.InputError, match="dimension"):
        jl.run_ensemble(jl.TwoLayer(8, 5), data, **kw)
    good = lambda key, n: (jax.random.normal(key, (n, 4)), jnp.zeros(n))  # noqa: E731
    # Wrong shapes, checked with jax.eval_shape before anything is drawn.
    for bad, match in (
        (lambda key, n: (jax.random.normal(key, (n, 3)), jnp.zeros(n)), r"x of shape \(1, 4\)"),
        (lambda key, n: (jax.random.normal(key, (n, 4)), jnp.zeros((n, 1))), r"y of shape \(1,\)"),
        (lambda key, n: (jax.random.normal(key, (1, 4)), jnp.zeros(1)), r"x of shape \(3, 4\)"),
        (lambda key, n: jax.random.normal(key, (n, 4)), "failed|must return"),
        (lambda key, n: (jnp.arange(4 * n).reshape(n, 4), jnp.zeros(n)), "real"),
    ):
        with pytest.raises(jl.InputError, match=match):
            jl.online_data(bad, 4)
    # NaN in the evaluation sample (drawn once when the data are built).
    with pytest.raises(jl.InputError, match="NaN"):
        jl.online_data(lambda key, n: (jnp.full((n, 4), jnp.nan), jnp.zeros(n)), 4)
    # A sampler right for 1 and 3 rows but not for the engine's batch of 5: refused by the engine.
    odd = jl.online_data(lambda key, n: (jax.random.normal(key, (min(n, 3), 4)), jnp.zeros(min(n, 3))), 4, n_eval=3)
    with pytest.raises(jl.InputError, match=r"shape \(5, 4\)"):
        jl.run_ensemble(model, odd, jl.Trainer(method="minibatch", batch_size=5), **kw)
    ok = jl.online_data(good, 4, n_eval=5, name="mine")
    assert jl.run_ensemble(model, ok, **kw).outputs.shape == (2, 2, 5)
    with pytest.raises(jl.InputError, match="teacher_params"):
        jl.teacher_student_stream(4, teacher=model)
    with pytest.raises(jl.InputError, match="noise_std"):
        jl.teacher_student_stream(4, noise_std=-1.0)


def test_a_checkpointed_run_resumes_to_the_same_bits(problem, tmp_path):
    """The fingerprint covers the sampler; a run extended to a later time resumes from the saved
    state and gives the bits of a run without a checkpoint."""
    model, data = problem
    kw = dict(n_members=12, seed=3, execution=jl.Execution(lanes=4))
    jl.run_ensemble(model, data, times=[0.5], checkpoint=jl.Checkpoint(tmp_path), **kw)
    resumed = jl.run_ensemble(model, data, times=[0.5, 1.0], checkpoint=jl.Checkpoint(tmp_path), **kw)
    plain = jl.run_ensemble(model, data, times=[0.5, 1.0], **kw)
    np.testing.assert_array_equal(resumed.outputs, plain.outputs)
    other = jl.teacher_student_stream(4, teachers=2, noise_std=0.1, n_eval=6, n_probe=2, seed=1)
    elsewhere = jl.run_ensemble(model, other, times=[0.5], checkpoint=jl.Checkpoint(tmp_path), **kw)
    assert elsewhere.config["checkpoint"]["fingerprint"] != resumed.config["checkpoint"]["fingerprint"]
