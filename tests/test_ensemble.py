"""The ensemble engine: reproducibility, divergence, checkpoints, results files."""

import jax
import numpy as np
import pytest

import jaxlimit as jl


@pytest.fixture(scope="module")
def problem():
    data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
    return jl.TwoLayer(96, 4, "xavier", "tanh"), data


@pytest.mark.parametrize("method", ["online", "minibatch", "fullbatch"])
def test_chunk_size_does_not_change_a_single_bit(problem, method):
    model, data = problem
    trainer = jl.Trainer(alpha=1.0, method=method, batch_size=3)
    kw = dict(times=[0.5, 1.0], n_members=70, seed=11)
    whole = jl.run_ensemble(model, data, trainer, **kw)
    for chunk in (1, 7):
        part = jl.run_ensemble(model, data, trainer, execution=jl.Execution(chunk_size=chunk), **kw)
        np.testing.assert_array_equal(part.outputs, whole.outputs)
        np.testing.assert_array_equal(part.loss, whole.loss)
    # Member i is the same network in a smaller ensemble run at the same lanes.
    small = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=64), **{**kw, "n_members": 5})
    np.testing.assert_array_equal(small.outputs, whole.outputs[:5])
    # And members differ from one another (the test would pass trivially otherwise).
    assert np.unique(whole.outputs[:, -1, 0]).size == 70


@pytest.mark.parametrize("program", ["weights", "pre-activations", "generic"])
def test_saved_times_do_not_change_a_single_bit(problem, program):
    # Segments end at the saved times; the hand-derived programs draw their sample rows
    # SAMPLE_BLOCK (64) steps at a time from the segment's start, so segments of 29, 134 and
    # 317 steps (width 96: t = 0.3, 1.7, 5) cross those blocks at other places than one of 480.
    model, data = problem
    trainer = jl.Trainer(alpha=1.0, method="minibatch", batch_size=2)
    kw = dict(n_members=9, seed=5, execution=jl.Execution(program=program))
    once = jl.run_ensemble(model, data, trainer, times=[5.0], **kw)
    split = jl.run_ensemble(model, data, trainer, times=[0.3, 1.7, 5.0], **kw)
    np.testing.assert_array_equal(split.outputs[:, -1], once.outputs[:, -1])
    assert not np.allclose(split.outputs[:, 0], split.outputs[:, -1])


@pytest.mark.parametrize("width, members, expected", [
    (1024, 64, 16),     # 16 members × (d + 1) × N × 4 B = 576 KiB ≤ 1 MiB < 32 members
    (128, 64, 64),      # the cache allows 227: capped at DEFAULT_LANES["cpu"]
    (8192, 64, 4),      # one member's 288 KiB allows 3: raised to MIN_CPU_LANES
    (1024, 5, 8),       # no wider than the ensemble rounded up to a power of two
])
def test_default_lanes_keep_a_fast_programs_block_in_cache(width, members, expected):
    from jaxlimit.training.ensemble import CPU_BLOCK_CACHE_BYTES

    if jax.default_backend() != "cpu":
        pytest.skip("the cache rule is the CPU's")
    data = jl.synthetic_problem(jax.random.key(0), 16, 8, 0)
    result = jl.run_ensemble(jl.TwoLayer(width, 8, "xavier", "tanh"), data, times=[0.0], n_members=members)
    assert result.config["program"] == "weights" and result.config["lanes"] == expected
    block = expected * 9 * width * 4
    assert block <= CPU_BLOCK_CACHE_BYTES or expected == 4
    # The generic program of the same model keeps the plain CPU default.
    generic = jl.run_ensemble(jl.TwoLayer(width, 8, "xavier", "tanh"), data, times=[0.0], n_members=members,
                              execution=jl.Execution(program="generic"))
    assert generic.config["lanes"] == (8 if members == 5 else 64)


def test_seed_changes_results(problem):
    model, data = problem
    a = jl.run_ensemble(model, data, times=[0.5], n_members=4, seed=1)
    b = jl.run_ensemble(model, data, times=[0.5], n_members=4, seed=2)
    assert not np.allclose(a.outputs, b.outputs)


def test_diverging_members_are_flagged_and_counted():
    data = jl.synthetic_problem(jax.random.key(0), 6, 3, 0)
    # A narrow linear network with a large step: whether it blows up depends on
    # the member's initial weights, so some members diverge and some do not.
    model = jl.TwoLayer(8, 3, "xavier", "identity")
    result = jl.run_ensemble(model, data, jl.Trainer(alpha=15.0), times=[1.0, 5.0],
                             n_members=64, seed=0)
    assert 10 < result.n_diverged < 60
    bad = ~np.isfinite(result.outputs).all(axis=(1, 2)) | (np.abs(result.outputs) > 1e6).any(axis=(1, 2))
    np.testing.assert_array_equal(result.diverged, bad)
    finite = result.finite()
    assert finite.n_members == 64 - result.n_diverged
    assert np.isfinite(finite.outputs).all() and finite.n_diverged == 0
    calm = jl.run_ensemble(model, data, jl.Trainer(alpha=0.5), times=[1.0, 5.0], n_members=64, seed=0)
    assert calm.n_diverged == 0


def test_huge_step_flags_every_member():
    data = jl.synthetic_problem(jax.random.key(0), 6, 3, 0)
    model = jl.TwoLayer(32, 3, "xavier", "tanh")
    result = jl.run_ensemble(model, data, jl.Trainer(alpha=1e6), times=[1.0], n_members=8, seed=0)
    assert result.n_diverged == 8 and result.finite().n_members == 0


def test_times_and_steps(problem):
    model, data = problem
    result = jl.run_ensemble(model, data, times=[0.25, 1.0], n_members=2, seed=0)
    np.testing.assert_array_equal(result.times, [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(result.steps, [0, 24, 96])  # ⌊N t⌋ with N = 96
    assert result.outputs.shape == (2, 3, 8) and result.loss.shape == (2, 3)
    # The recorded loss is the mean over training points of ½ (y − h)².
    h = result.train_outputs
    np.testing.assert_allclose(result.loss, 0.5 * np.mean((np.asarray(data.y_train) - h) ** 2, -1),
                               rtol=1e-5)


def test_result_save_load_roundtrip(problem, tmp_path):
    model, data = problem
    result = jl.run_ensemble(model, data, times=[0.5], n_members=3, seed=0,
                             observables={"move": jl.rms_parameter_change})
    path = result.save(tmp_path / "run.npz")
    back = jl.EnsembleResult.load(path)
    np.testing.assert_array_equal(back.outputs, result.outputs)
    np.testing.assert_array_equal(back.observables["move"], result.observables["move"])
    assert back.config == result.config and back.n_train == result.n_train
    with pytest.raises(jl.InputError, match="cannot read"):
        jl.EnsembleResult.load(tmp_path / "missing.npz")


def test_parameter_movement_observable_scales_like_theory():
    # Over unit time, Xavier parameters move O(N^{-1/2}) and mean-field ones O(1).
    data = jl.synthetic_problem(jax.random.key(0), 6, 3, 0)
    moves = {}
    for scaling in ("xavier", "mean-field"):
        for n in (64, 1024):
            r = jl.run_ensemble(jl.TwoLayer(n, 3, scaling, "tanh"), data, times=[1.0], n_members=8,
                                seed=0, observables={"move": jl.rms_parameter_change})
            moves[scaling, n] = r.observables["move"][:, -1].mean()
    xavier_slope = np.log(moves["xavier", 1024] / moves["xavier", 64]) / np.log(16)
    mf_slope = np.log(moves["mean-field", 1024] / moves["mean-field", 64]) / np.log(16)
    assert abs(xavier_slope + 0.5) < 0.15, xavier_slope
    assert abs(mf_slope) < 0.15, mf_slope


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_members=0), "ensemble size"),
    (dict(n_members=4, times=[1.0, 0.5]), "increasing"),
    (dict(n_members=4, times=[float("nan")]), "finite"),
    (dict(n_members=4, execution={"chunk_size": 0}), "chunk_size"),
    (dict(n_members=4, execution={"lanes": 0}), "lanes"),
    (dict(n_members=4, execution={"program": "turbo"}), "unknown program"),
    (dict(n_members=4, execution={"memory_budget": 1e-12}), "memory_budget"),
    (dict(n_members=4, execution={"devices": []}), "devices"),
    (dict(n_members=4, execution={"progress": "yes"}), "progress"),
    (dict(n_members=4, guards={"divergence_threshold": 0}), "divergence_threshold"),
    (dict(n_members=4, guards={"step_check": "maybe"}), "step_check must be one of"),
    (dict(n_members=4, checkpoint={"directory": ""}), "checkpoint directory"),
    (dict(n_members=4, checkpoint={"directory": "x", "fresh": 1}), "fresh"),
    (dict(n_members=4, execution="fast"), "execution must be a jaxlimit Execution"),
    (dict(n_members=4, checkpoint="dir"), "checkpoint must be a jaxlimit Checkpoint"),
])
def test_bad_engine_options(problem, kwargs, match):
    """Each option object refuses a bad field when it is built; run_ensemble refuses anything else."""
    model, data = problem
    kwargs.setdefault("times", [0.5])
    kinds = {"execution": jl.Execution, "checkpoint": jl.Checkpoint, "guards": jl.Guards}
    with pytest.raises(jl.InputError, match=match):
        for name, kind in kinds.items():
            if isinstance(kwargs.get(name), dict):
                kwargs[name] = kind(**kwargs[name])
        jl.run_ensemble(model, data, **kwargs)


def test_model_and_data_dimensions_must_agree(problem):
    _, data = problem
    with pytest.raises(jl.InputError, match="dimension"):
        jl.run_ensemble(jl.TwoLayer(8, 3), data, times=[0.5], n_members=2)


def test_width_streams_do_not_nest():
    from jaxlimit.streams import stream_key
    from jaxlimit.training.ensemble import member_keys

    def first_member(width, seed):
        return jl.TwoLayer(width, 4, "mean-field", "tanh").init(member_keys(seed, np.arange(1))[0])

    # One stream for two widths: the narrow network is the first half of the wide one.
    narrow, wide = first_member(64, 3), first_member(128, 3)
    np.testing.assert_array_equal(wide.w[:64], narrow.w)
    # Width streams give unrelated networks, reproducibly.
    k64, k128 = stream_key(3, "members", 64), stream_key(3, "members", 128)
    np.testing.assert_array_equal(jax.random.key_data(k64), jax.random.key_data(stream_key(3, "members", 64)))
    narrow, wide = first_member(64, k64), first_member(128, k128)
    assert abs(np.corrcoef(np.ravel(wide.w[:64]), np.ravel(narrow.w))[0, 1]) < 0.2
