"""Bad input gets a one-line error that names the problem."""

import jax
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.activations import ACTIVATIONS, get_activation
from jaxlimit.losses import get_loss


def test_make_dataset_validates():
    x = np.eye(3)
    y = np.arange(3.0)
    with pytest.raises(jl.InputError, match="x_train must have shape"):
        jl.make_dataset(np.arange(3.0), y)
    with pytest.raises(jl.InputError, match="y_train must have shape"):
        jl.make_dataset(x, y[:2])
    with pytest.raises(jl.InputError, match="NaN"):
        jl.make_dataset(np.where(x == 1, np.nan, x), y)
    with pytest.raises(jl.InputError, match="NaN"):
        jl.make_dataset(x, [0, np.inf, 1])
    with pytest.raises(jl.InputError, match="duplicate rows"):
        jl.make_dataset(np.vstack([x, x[:1]]), np.arange(4.0))
    with pytest.raises(jl.InputError, match="x_probe"):
        jl.make_dataset(x, y, np.ones((2, 4)))
    data = jl.make_dataset(np.vstack([x, x[:1]]), np.arange(4.0), allow_duplicates=True)
    assert data.n_train == 4 and data.n_probe == 0


def test_synthetic_problems_are_pure_functions_of_the_key():
    a = jl.synthetic_problem(jax.random.key(3), 5, 4, 2, target="teacher")
    b = jl.synthetic_problem(jax.random.key(3), 5, 4, 2, target="teacher")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_allclose(np.linalg.norm(a.x_train, axis=1), 1.0, rtol=1e-12)
    g = jl.synthetic_problem(jax.random.key(3), 4000, 4, 0, inputs="gaussian")
    assert abs(np.mean(np.sum(np.asarray(g.x_train) ** 2, 1)) - 1.0) < 0.05
    with pytest.raises(jl.InputError, match="unknown target"):
        jl.synthetic_problem(jax.random.key(0), 4, 2, 0, target="cubic")
    with pytest.raises(jl.InputError, match="n_train"):
        jl.synthetic_problem(jax.random.key(0), 0, 2, 0)


def test_digits_are_shipped_and_validated():
    data = jl.digits_problem(40, 10, classes=(3, 8))
    assert data.x_train.shape == (40, 64) and data.x_probe.shape == (10, 64)
    assert set(np.unique(np.asarray(data.y_train))) == {-1.0, 1.0}
    np.testing.assert_allclose(np.linalg.norm(data.x_train, axis=1), 1.0, rtol=1e-10)
    with pytest.raises(jl.InputError, match="distinct images"):
        jl.digits_problem(10_000, 0)
    with pytest.raises(jl.InputError, match="two different digits"):
        jl.digits_problem(10, 0, classes=(1, 1))


@pytest.mark.parametrize("build,match", [
    (lambda: jl.TwoLayer(0, 3), "width must be ≥ 1"),
    (lambda: jl.TwoLayer(2.5, 3), "width must be an integer"),
    (lambda: jl.TwoLayer(8, 0), "dim must be ≥ 1"),
    (lambda: jl.TwoLayer(8, 3, "ntk"), "unknown scaling"),
    (lambda: jl.TwoLayer(8, 3, 0.3), "gamma must lie"),
    (lambda: jl.TwoLayer(8, 3, activation="swish"), "unknown activation 'swish'"),
    (lambda: jl.InitLaw("cauchy"), "unknown initial law"),
    (lambda: jl.InitLaw("gaussian", c_std=-1.0), "c_std must be > 0"),
    (lambda: jl.Trainer(alpha=0.0), "alpha"),
    (lambda: jl.Trainer(method="adam"), "unknown training method"),
    (lambda: jl.Trainer(method="optax"), "optax"),
    (lambda: jl.Trainer(method="minibatch", batch_size=0), "batch_size"),
    (lambda: get_loss("hinge"), "unknown loss"),
    (lambda: jl.huber_loss(0.0), "delta"),
])
def test_bad_options_raise_input_error(build, match):
    with pytest.raises(jl.InputError, match=match):
        build()


def test_user_callable_activation_gets_its_derivative():
    act = get_activation(lambda u: u ** 3)
    u = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(act.derivative(u), 3 * u ** 2, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_builtin_derivatives_match_autodiff(name):
    act = get_activation(name)
    u = np.linspace(-2.3, 2.1, 9)  # avoids relu's kink at 0
    auto = jax.vmap(jax.grad(act.fn))(u)
    np.testing.assert_allclose(act.derivative(u), auto, rtol=1e-10, atol=1e-12)


def test_huber_loss_values():
    loss = jl.huber_loss(1.0)
    np.testing.assert_allclose(loss(np.array([0.0, 0.0]), np.array([0.5, 3.0])), [0.125, 2.5])
