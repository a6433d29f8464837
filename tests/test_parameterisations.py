"""Parameterisations as data (abc exponents, presets) and the coordinate check (docs/parameterisations.md)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit.data import make_dataset
from jaxlimit.errors import InputError
from jaxlimit.training.coord_check import coord_check
from jaxlimit.models.mlp import MLP, Dense
from jaxlimit.models.parameterisation import (
    LayerScaling, Parameterisation, first_step_exponents, get_parameterisation, two_layer, two_layer_apply,
    two_layer_learning_rates,
)
from jaxlimit.models.two_layer import TwoLayer, TwoLayerParams
from jaxlimit.training import Execution, Trainer, run_ensemble


# --- the presets reproduce today's models ------------------------------------------------------------------


class _TodaysMLP(MLP):
    """The deep MLP's init and apply as they were before parameterisations (verbatim)."""

    def init(self, key, dtype=jnp.float32):
        layers = []
        for k, (n_out, n_in) in zip(jax.random.split(key, self.depth + 1), self._sizes()):
            k_w, k_b = jax.random.split(k)
            w = jax.random.normal(k_w, (n_out, n_in), jnp.float32).astype(dtype)
            b = jax.random.normal(k_b, (n_out,), jnp.float32).astype(dtype) if self.b_std > 0 else None
            layers.append(Dense(w, b))
        return tuple(layers)

    def apply(self, params, x):
        h = x
        for i, layer in enumerate(params):
            z = (self.W_std / math.sqrt(h.shape[-1])) * (h @ layer.W.T)
            if layer.b is not None:
                z = z + self.b_std * layer.b
            h = self.activation(z) if i < self.depth else z
        return h[:, 0]

    def learning_rates(self):
        return tuple(Dense(self.time_step, self.time_step if self.b_std > 0 else None) for _ in range(self.depth + 1))


def _data(dim, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, dim))
    return make_dataset(x[:4], np.sin(x[:4, 0]), x[4:])


def _same_function(a, b, dim, key=jax.random.key(5)):
    """init, apply, the loss gradient and the learning rates agree bit for bit: everything the
    training engine uses from a model."""
    pa, pb = a.init(key), b.init(key)
    for u, v in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        np.testing.assert_array_equal(u, v)
    x = jax.random.normal(jax.random.key(6), (5, dim), jnp.float32)
    np.testing.assert_array_equal(a.apply(pa, x), b.apply(pb, x))
    ga = jax.grad(lambda p: jnp.sum(jnp.sin(a.apply(p, x))))(pa)
    gb = jax.grad(lambda p: jnp.sum(jnp.sin(b.apply(p, x))))(pb)
    for u, v in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        np.testing.assert_array_equal(u, v)
    assert jax.tree_util.tree_leaves(a.learning_rates()) == jax.tree_util.tree_leaves(b.learning_rates())


def test_ntk_preset_trains_bit_for_bit_as_todays_mlp():
    data = _data(3)
    kw = dict(widths=(24, 17), dim=3, activation="relu", W_std=1.4, b_std=0.1, time_step=0.05)
    assert MLP(**kw) == MLP(**kw, parameterisation="ntk")
    runs = [run_ensemble(m, data, Trainer(alpha=0.5, method="fullbatch"), times=[0.0, 0.25], n_members=2,
                         seed=7, dtype=jnp.float32)
            for m in (MLP(**kw, parameterisation="ntk"), _TodaysMLP(**kw))]
    assert np.all(np.isfinite(runs[0].outputs))
    assert np.abs(runs[0].outputs[:, -1] - runs[0].outputs[:, 0]).max() > 1e-3  # it trained
    np.testing.assert_array_equal(runs[0].outputs, runs[1].outputs)
    np.testing.assert_array_equal(runs[0].loss, runs[1].loss)
    deeper = dict(widths=(16, 9, 16), dim=5, activation="erf", W_std=1.1, b_std=0.0, time_step=0.1)
    _same_function(MLP(**deeper, parameterisation="ntk"), _TodaysMLP(**deeper), 5)


class _AbcTwoLayer(TwoLayer):
    """TwoLayer's forward and learning rates computed from the abc exponents of :func:`two_layer`."""

    def apply(self, params, x):
        return two_layer_apply(two_layer(self.gamma), params.c, params.w, x, self.activation)

    def learning_rates(self):
        c, w = two_layer_learning_rates(two_layer(self.gamma), self.width)
        return TwoLayerParams(c=c, w=w)


def test_two_layer_family_is_the_abc_family_on_two_layers():
    """TwoLayer(γ = 1) and the abc network, both through the engine's generic program (which calls apply and
    learning_rates): the same bits. (TwoLayer's hand-derived program, the engine's default for it, agrees with
    the generic one to float32 rounding, 1.5e-8 here, not bit for bit.)"""
    data = _data(2)
    runs = [run_ensemble(model, data, Trainer(alpha=0.3, method="online"), times=[0.0, 1.0], n_members=2, seed=3,
                         dtype=jnp.float32, execution=Execution(program=program))
            for model, program in ((TwoLayer(40, 2, 1.0, "tanh"), "generic"), (_AbcTwoLayer(40, 2, 1.0, "tanh"), "generic"))]
    assert np.abs(runs[0].outputs[:, -1] - runs[0].outputs[:, 0]).max() > 1e-3
    np.testing.assert_array_equal(runs[0].outputs, runs[1].outputs)
    for gamma in (0.5, 0.75):
        _same_function(TwoLayer(40, 2, gamma, "tanh"), _AbcTwoLayer(40, 2, gamma, "tanh"), 2)


def test_mean_field_preset_is_the_two_layer_gamma_one_on_the_abc_clock():
    """Same a and b; the project's clock (N steps per unit time at rate n^{-c_step}) is one abc step at
    rate n^{1 - c_step}: c_abc = c_step − 1 = −1. And μP is the mean-field preset moved by the symmetry."""
    mf, tl = get_parameterisation("mean-field").layers(1), two_layer(1.0).layers(1)
    for m, t in zip(mf, tl):
        assert (m.a, m.b) == (t.a, t.b)
        assert m.c_sgd == t.c_sgd - 1.0
    mup = get_parameterisation("mup")
    moved = get_parameterisation("mean-field").shifted("output", -1.0, "sgd").shifted("hidden", -0.5, "sgd")
    for layer in ("input", "hidden", "output"):
        a, b = getattr(moved, layer), getattr(mup, layer)
        assert (a.a, a.b, a.c_sgd, a.c_adam) == (b.a, b.b, b.c_sgd, b.c_adam)


# --- exponents ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,optimizer,expected", [
    ("mup", "sgd", (0, 0, (0, 0))), ("mup", "adam", (0, 0, (0, 0))),
    ("mean-field", "sgd", (0, 0, (0, 0))), ("mean-field", "adam", (0, 0, (0, 0))),
    ("ntk", "sgd", (-0.5, -0.5, (0, 0))), ("ntk", "adam", (-0.5, -0.5, (0, 0))),
    ("standard", "sgd", (-0.5, 0.5, (1, 1.5))), ("standard", "adam", (0, 1, (1, 2))),
])
def test_first_step_exponents_of_the_presets(name, optimizer, expected):
    """Changes of z^1, z^2 and the output after one step (docs/parameterisations.md's table)."""
    change = first_step_exponents(get_parameterisation(name), 2, optimizer)["change"]
    assert (change[0][0], change[1][0], change[2]) == expected
    assert change[0][0] == change[0][1] and change[1][0] == change[1][1]


def test_zero_readout_freezes_the_hidden_layers_at_the_first_step():
    e = first_step_exponents(get_parameterisation("mup").with_zero_readout(), 2, "sgd")
    assert e["change"][0] == e["change"][1] == (-math.inf, -math.inf) and e["change"][2] == (0, 0)
    assert e["activation"][2][0] == -math.inf  # the output starts at zero


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="unknown parameterisation"):
        get_parameterisation("mupp")
    with pytest.raises(InputError, match="at least two distinct widths"):
        coord_check("mup", widths=(64,))
    huge = Parameterisation("huge", LayerScaling(0, 0, 0, 0), LayerScaling(0, 0.5, 0, 0), LayerScaling(0, 40, 0, 0))
    with pytest.raises(InputError, match="float32"):
        coord_check(huge, widths=(64, 128))
    with pytest.raises(InputError, match="unknown optimizer"):
        coord_check("mup", optimizer="lion")


# --- the coordinate check ------------------------------------------------------------------------------------
# A 3-layer MLP (two hidden layers), widths 64…512, 4 networks each, fixed seeds.

WIDTHS = (64, 128, 256, 512)
_RESULTS: dict = {}


def _check(parameterisation, optimizer):
    key = (parameterisation if isinstance(parameterisation, str) else parameterisation.name, optimizer)
    if key not in _RESULTS:
        _RESULTS[key] = coord_check(parameterisation, optimizer=optimizer, widths=WIDTHS, depth=2, seeds=4, seed=0)
    return _RESULTS[key]


def _slope(result, layer, quantity="change", step=1):
    c = result.slope(layer, quantity, step)
    return c.fit.slope, c.fit.slope_ci


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mup_keeps_every_coordinate_of_order_one(optimizer):
    r = _check("mup", optimizer)
    assert r.verdict == {"mup": "consistent", "parameterisation": "consistent"}
    assert r.first_problem is None
    for c in r.checks:
        if c.quantity != "activation" or c.layer != "output":
            lo, hi = c.fit.slope_ci
            assert abs(c.fit.slope) < 0.15 and lo - 0.1 <= 0 <= hi + 0.1, (c.layer, c.quantity, c.step, c.fit)


def test_standard_sgd_blows_up_like_the_square_root_of_the_width_in_the_hidden_layer():
    r = _check("standard", "sgd")
    assert r.verdict == {"mup": "inconsistent", "parameterisation": "consistent"}
    slope, (lo, hi) = _slope(r, "hidden 2")
    assert abs(slope - 0.5) < 0.15 and lo - 0.1 <= 0.5 <= hi + 0.1 and lo > 0.2
    slope, (lo, hi) = _slope(r, "output")
    assert 0.8 < slope < 1.6 and lo > 0.5  # between the first-order n and the relu product's n^{3/2}
    assert r.slope("hidden 2", "change", 1).mup == r.slope("output", "change", 1).mup == "inconsistent"


def test_standard_adam_is_inconsistent_with_mup_and_names_the_hidden_layer():
    r = _check("standard", "adam")
    assert r.verdict == {"mup": "inconsistent", "parameterisation": "consistent"}
    assert r.first_problem[:2] == ("hidden 2", "blows up")
    slope, (lo, hi) = _slope(r, "hidden 2")
    assert abs(slope - 1.0) < 0.1 and lo - 0.1 <= 1.0 <= hi + 0.1
    slope, (lo, hi) = _slope(r, "output")
    assert 1.1 < slope < 2.1 and lo > 1.0  # from the first-order n and n^{3/2} towards the relu product's n²
    assert abs(_slope(r, "input")[0]) < 0.1  # the input layer's Adam step is width-free


def test_ntk_feature_updates_vanish_like_the_inverse_square_root_of_the_width():
    r = _check("ntk", "sgd")
    assert r.verdict == {"mup": "inconsistent", "parameterisation": "consistent"}
    assert r.first_problem[:2] == ("input", "freezes")
    for layer in ("input", "hidden 2"):
        for step in (1, 3):
            slope, (lo, hi) = _slope(r, layer, step=step)
            assert abs(slope + 0.5) < 0.15 and lo - 0.1 <= -0.5 <= hi + 0.1 and hi < -0.2
    assert abs(_slope(r, "output")[0]) < 0.2


def test_mup_with_the_standard_readout_is_caught():
    """μP's rates with the readout left at variance 1/n (PyTorch's default): the output's update and the
    hidden layers' changes then grow like n^{1/2}."""
    mup = get_parameterisation("mup")
    wrong = Parameterisation("mup, standard readout", mup.input, mup.hidden,
                             LayerScaling(0, 0.5, mup.output.c_sgd, mup.output.c_adam), mup.bias)
    r = _check(wrong, "sgd")
    assert r.verdict["mup"] == "inconsistent"
    assert r.verdict["parameterisation"] == "consistent"
    assert r.first_problem[:2] == ("input", "blows up")
    assert abs(_slope(r, "hidden 2")[0] - 0.5) < 0.15


# --- the command --------------------------------------------------------------------------------------------


def test_command_writes_two_verdicts_and_names_the_layer(tmp_path):
    from jaxlimit import cli

    out = tmp_path / "report"
    code = cli.main(["coord-check", "--parameterisation", "standard", "--optimizer", "adam", "--widths", "32,64,128",
                     "--steps", "1", "--ensemble", "3", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == {"mup": "inconsistent", "parameterisation": "consistent"}
    assert report["metrics"]["first_problem_layer"] == "hidden 2"
    assert report["metrics"]["first_problem"] == "blows up"
    layer = report["metrics"]["layers"]["hidden 2"]["change"]["step_1"]
    assert layer["mup"] == "inconsistent" and layer["predicted"] == [1.0, 1.0]
    assert (out / "coord_change.png").exists() and (out / "slopes.csv").exists()


@pytest.mark.parametrize("argv,fragment", [
    (["--widths", "64"], "--widths must have 2 to"),
    (["--parameterisation", "sp"], "--parameterisation must be one of"),
    (["--optimizer", "lion"], "--optimizer must be one of"),
    (["--widths", "64,2048", "--ensemble", "1"], "--ensemble must be at least 2"),
])
def test_command_refuses_bad_input(argv, fragment, capsys, tmp_path, monkeypatch):
    from tests.helpers.refusal import assert_refused

    assert_refused(["coord-check", *argv], fragment, capsys, tmp_path, monkeypatch)


# --- a user's network with declared exponents ---------------------------------------------------------------


class _UserMLP:
    """A user's 3-layer equinox MLP in width-free units (N(0, 1) entries, the input layer's 1/√d in its
    forward pass), drawn as :class:`MLP` draws (the same keys give the same entries), returning its layers'
    outputs (z^1, z^2, f) for the per-layer check."""

    @staticmethod
    def family(dim=8):
        import equinox as eqx

        from jaxlimit.models.user import from_equinox

        class Net(eqx.Module):
            w1: jax.Array
            w2: jax.Array
            w3: jax.Array

            def __init__(self, width, key):
                shapes = ((width, dim), (width, width), (1, width))
                self.w1, self.w2, self.w3 = (jax.random.normal(jax.random.split(k)[0], shape, jnp.float32)
                                             for k, shape in zip(jax.random.split(key, 3), shapes))

            def __call__(self, x):
                z1 = (1.0 / math.sqrt(dim)) * (self.w1 @ x)
                z2 = self.w2 @ jax.nn.relu(z1)
                return z1, z2, self.w3 @ jax.nn.relu(z2)

        return lambda n: from_equinox(lambda key: Net(n, key), dim=dim)


USER_ROLES = {".w1": "input", ".w2": "hidden", ".w3": "output"}
USER_NAMES = ("input", "hidden 2", "output")


def test_user_network_declared_mup_gives_the_mup_verdict_and_the_mlps_sizes():
    """The equinox MLP declared μP, moved by the symmetry on the hidden layer ((a, b, c) = (1/4, 1/4, −1/2),
    so that every exponent is used), against the MLP's μP check above (same widths, seeds and draws): the
    declared exponents are applied by the MLP's rule and the symmetry changes neither the function nor
    its training, so every layer's sizes agree to float32 rounding, and so do the per-layer verdicts."""
    p = get_parameterisation("mup").shifted("hidden", 0.25, "sgd")
    user = coord_check(p, network=_UserMLP.family(), roles=USER_ROLES, layer_names=USER_NAMES, optimizer="sgd",
                       widths=WIDTHS, seeds=4, seed=0)
    mlp = _check("mup", "sgd")
    assert user.verdict == {"mup": "consistent", "parameterisation": "consistent"}
    assert user.first_problem is None
    assert {c.quantity for c in user.checks} == {"activation", "change"}  # a user's layer has no separable update
    np.testing.assert_allclose(user.sizes[..., :2], mlp.sizes[..., :2], rtol=1e-4)
    for c in user.checks:
        m = mlp.slope(c.layer, c.quantity, c.step)
        assert (c.mup, c.parameterisation) == (m.mup, m.parameterisation)
        assert c.fit.slope == pytest.approx(m.fit.slope, abs=1e-3)


def test_the_same_user_network_under_standard_is_inconsistent_and_names_the_hidden_layer():
    r = coord_check("standard", optimizer="adam", network=_UserMLP.family(), roles=USER_ROLES,
                    layer_names=USER_NAMES, widths=(32, 128, 512), seeds=3, steps=1)
    assert r.verdict == {"mup": "inconsistent", "parameterisation": "consistent"}
    assert r.first_problem[:2] == ("hidden 2", "blows up")
    slope, (lo, hi) = _slope(r, "hidden 2")
    assert abs(slope - 1.0) < 0.15 and lo > 0.5  # Adam: the hidden change grows like n
    assert r.slope("hidden 2", "change").mup == "inconsistent"
    assert r.slope("input", "change").mup == "consistent"


def test_user_network_declaration_is_checked_before_training():
    family = _UserMLP.family()
    with pytest.raises(InputError, match=r"no role declared for the leaves \.w3"):
        coord_check("mup", network=family, roles={".w1": "input", ".w2": "hidden"}, widths=(32, 64))
    with pytest.raises(InputError, match="unknown role 'readout'"):
        coord_check("mup", network=family, roles={**USER_ROLES, ".w3": "readout"}, widths=(32, 64))
    with pytest.raises(InputError, match=r"leaves the network does not have: \.w4"):
        coord_check("mup", network=family, roles={**USER_ROLES, ".w4": "bias"}, widths=(32, 64))
    with pytest.raises(InputError, match="needs its leaves' roles"):
        coord_check("mup", network=family, widths=(32, 64))
    with pytest.raises(InputError, match="at least two distinct widths"):
        coord_check("mup", network=family, roles=USER_ROLES, widths=(64,))


def test_an_init_apply_pair_is_trained_by_the_declared_rule():
    """θ_ℓ(0) = n^{-b} θ̃_ℓ (0 for a zero readout), forward leaf n^{-a} θ_ℓ, rate n^{-c}: on a pure init/apply
    pair with a dict of leaves, μP with a zero readout, and a width-free ("fixed") readout bias."""
    from jaxlimit.models.scaled import declare
    from jaxlimit.models.user import UserNetwork

    def family(n):
        def init(key):
            k1, k2 = jax.random.split(key)
            return {"w": jax.random.normal(k1, (n, 3)), "v": jax.random.normal(k2, (n,)), "c": jnp.ones(())}

        def apply(p, x):
            z = x @ p["w"].T
            return z, jax.nn.relu(z) @ p["v"] + p["c"]

        return UserNetwork(init, apply, dim=3)

    n, key, x = 16, jax.random.key(3), jnp.ones((2, 3))
    p = get_parameterisation("mean-field").with_zero_readout()  # a = (0, ·, 1): the readout's multiplier is 1/n
    scaled = declare(family, p, {"['w']": "input", "['v']": "output", "['c']": "fixed"})
    init, layers, rates = scaled.program(n, "sgd")
    raw, params = family(n).init(key), init(key)
    np.testing.assert_array_equal(params["w"], raw["w"])  # input b = 0
    np.testing.assert_array_equal(params["v"], 0.0)  # zero readout
    params = {**params, "v": raw["v"]}
    z, f = layers(params, x)
    np.testing.assert_allclose(f[:, 0], jax.nn.relu(x @ raw["w"].T) @ raw["v"] / n + 1.0, rtol=1e-6)
    assert rates == {"w": n ** 1.0, "v": n ** 1.0, "c": 1.0}  # mean-field SGD c = −1 on both layers; fixed c = 0
    assert scaled.names(n) == ["layer 1", "output"]
