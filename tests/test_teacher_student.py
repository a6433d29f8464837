"""Tian's ReLU teacher–student (docs/teacher-student.md): closed forms, dynamics, saddle, K = 1 bound,
the limit object, the command's refusals and its report."""

import csv
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlimit.errors import InputError
from jaxlimit.limits.teacher_student import (
    classify_ending, population_flow_limit, relu_gradient_flow, relu_kernel,
    relu_kernel_grad, relu_population_grad, relu_population_hessian, relu_population_loss, relu_reduced_flow,
    relu_reduced_velocity, relu_unstable_rate, single_neuron_bound, single_neuron_bound_radius,
    single_neuron_inside_probability, symmetric_coordinates, symmetric_saddle_value, symmetric_weights,
    teacher_distance, time_within, uniform_ball,
)
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.training.teacher_student import relu_gradient_descent, relu_sgd
from tests.helpers.refusal import assert_refused
from jaxlimit.models.relu_committee import (
    relu_committee, relu_committee_monte_carlo, relu_committee_sample_grad,
    relu_committee_sample_loss,
)
from jaxlimit.stats import fit_power_law, proportion_interval


# Jitted once: eager dispatch of the many small ops costs far more than the maths.
loss_fn = jax.jit(relu_population_loss)
grad_fn = jax.jit(relu_population_grad)
autodiff_grad = jax.jit(jax.grad(relu_population_loss))


def _random_problem(K=3, M=2, d=5, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (K, d)), jax.random.normal(k2, (M, d))


# --------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------

def test_closed_forms_match_monte_carlo_with_a_million_samples():
    W, W_star = _random_problem()
    loss, loss_se, grad, grad_se = relu_committee_monte_carlo(
        jax.random.key(7), W, W_star, 1_000_000, batch_size=100_000)
    # 5 standard errors per entry: a false alarm among the 16 numbers has
    # probability ≈ 1e-5, while a wrong formula is off by O(1) ≫ SE ≈ 1e-3.
    assert abs(float(loss_fn(W, W_star) - loss)) < 5 * float(loss_se)
    np.testing.assert_array_less(np.abs(grad_fn(W, W_star) - grad), 5 * grad_se)
    assert float(jnp.max(grad_se)) < 5e-3  # the check has resolution


def test_kernel_matches_monte_carlo_and_known_values():
    u, v = jnp.array([1.0, 0.5, -0.2]), jnp.array([-0.3, 1.2, 0.4])
    x = jax.random.normal(jax.random.key(1), (1_000_000, 3))
    prod = jax.nn.relu(x @ u) * jax.nn.relu(x @ v)
    se = float(jnp.std(prod)) / 1000.0
    assert abs(float(relu_kernel(u, v) - jnp.mean(prod))) < 5 * se
    assert float(relu_kernel(u, u)) == pytest.approx(float(u @ u) / 2, rel=1e-14)  # E relu(z)² = σ²/2
    assert float(relu_kernel(u, -u)) == pytest.approx(0.0, abs=1e-15)
    assert float(relu_kernel(u, v)) == pytest.approx(float(relu_kernel(v, u)), rel=1e-14)
    # ∇_u κ(u, v) = F(u/‖u‖, v) against autodiff and a Monte-Carlo E[x 1{uᵀx>0} relu(vᵀx)].
    np.testing.assert_allclose(jax.jit(relu_kernel_grad)(u, v), jax.jit(jax.grad(relu_kernel))(u, v),
                               atol=1e-14)
    samples = x * ((x @ u > 0) * jax.nn.relu(x @ v))[:, None]
    np.testing.assert_array_less(np.abs(relu_kernel_grad(u, v) - samples.mean(0)),
                                 5 * samples.std(0) / 1000.0)


def test_grad_matches_central_finite_differences():
    W, W_star = _random_problem(K=4, M=3, d=6, seed=3)
    h = 1e-6
    grad = np.asarray(grad_fn(W, W_star))
    fd = np.zeros_like(grad)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            e = jnp.zeros_like(W).at[i, j].set(h)
            fd[i, j] = (loss_fn(W + e, W_star) - loss_fn(W - e, W_star)) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=1e-8)


def test_grad_is_the_autodiff_gradient_of_the_loss():
    for seed in range(3):
        W, W_star = _random_problem(K=3, M=4, d=4, seed=seed)
        np.testing.assert_allclose(grad_fn(W, W_star),
                                   autodiff_grad(W, W_star), atol=1e-13)


def test_closed_forms_are_jittable_and_vmappable():
    Ws = jax.random.normal(jax.random.key(4), (6, 3, 4))
    W_star = jax.random.normal(jax.random.key(5), (2, 4))
    batched = jax.jit(jax.vmap(relu_population_grad, in_axes=(0, None)))(Ws, W_star)
    losses = jax.jit(jax.vmap(relu_population_loss, in_axes=(0, None)))(Ws, W_star)
    for b in range(6):
        np.testing.assert_allclose(batched[b], grad_fn(Ws[b], W_star), atol=1e-14)
        assert float(losses[b]) == pytest.approx(float(loss_fn(Ws[b], W_star)), rel=1e-13)


def test_sample_loss_and_grad_agree_with_their_definition():
    W, W_star = _random_problem(K=2, M=2, d=3)
    x = jax.random.normal(jax.random.key(9), (50, 3))
    r = relu_committee(W, x) - relu_committee(W_star, x)
    assert float(relu_committee_sample_loss(W, W_star, x)) == pytest.approx(0.5 * float(jnp.mean(r**2)))
    expected = jnp.einsum("p,pk,pd->kd", r, (x @ W.T > 0).astype(float), x) / 50
    np.testing.assert_allclose(relu_committee_sample_grad(W, W_star, x), expected, atol=1e-14)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_no_nan_at_parallel_antiparallel_tiny_and_zero_weights(dtype):
    e = jnp.array([1.0, 2.0, 3.0], dtype)
    teacher = e[None]
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    cases = {
        # W, expected loss, expected gradient (worked out from F(e, w) by hand)
        "parallel": (jnp.stack([e, 2 * e]), 0.5 * 9 * 14 / 2 - 3 * 14 / 2 + 14 / 4,
                     jnp.stack([e, e])),
        "antiparallel": (jnp.stack([e, -e]), 14 / 4, jnp.stack([0 * e, -e / 2])),
        "tiny": (jnp.stack([1e-30 * e, e]), 0.0, jnp.stack([0 * e, 0 * e])),
        "tiny_antiparallel": (jnp.stack([-1e-30 * e, 1e-30 * e]), 14 / 4,
                              jnp.stack([0 * e, -e / 2])),
        "zero_row": (jnp.stack([0 * e, e]), 0.0, jnp.stack([0 * e, 0 * e])),
        "all_zero": (jnp.stack([0 * e, 0 * e]), 14 / 4, jnp.stack([0 * e, 0 * e])),
    }
    for name, (W, loss, grad) in cases.items():
        W = W.astype(dtype)
        got_loss = loss_fn(W, teacher)
        got_grad = grad_fn(W, teacher)
        assert got_loss.dtype == dtype and got_grad.dtype == dtype
        assert np.isfinite(got_loss) and np.all(np.isfinite(got_grad)), name
        assert float(got_loss) == pytest.approx(loss, abs=20 * tol), name
        np.testing.assert_allclose(got_grad, grad, atol=5 * tol, err_msg=name)
        # Autodiff through the safe norms and angles is finite there too.
        assert np.all(np.isfinite(autodiff_grad(W, teacher))), name


def test_closed_form_is_continuous_up_to_the_singular_angles():
    # At θ = 0 and θ = π the formula's value is the limit of nearby values.
    e = jnp.array([1.0, 0.0, 0.0])
    nudge = jnp.array([0.0, 1e-7, 0.0])
    for W in (jnp.stack([e, 2 * e]), jnp.stack([e, -e])):
        for teacher in (e[None], -e[None], jnp.stack([e, jnp.array([0.0, 1.0, 0.0])])):
            exact = grad_fn(W, teacher)
            nearby = grad_fn(W + jnp.stack([nudge, 0 * nudge]), teacher)
            np.testing.assert_allclose(exact, nearby, atol=1e-6)


def test_zero_row_is_a_fixed_point_of_flow_descent_and_sgd():
    teacher = jnp.eye(2)
    W0 = jnp.array([[[0.0, 0.0], [0.3, 0.1]]])
    times = jnp.linspace(0.0, 20.0, 5)
    flow = relu_gradient_flow(W0, teacher, times)
    gd = relu_gradient_descent(W0, teacher, 0.1, 50, 10)
    sgd = relu_sgd(jax.random.key(0), W0, teacher, 0.1, 50, 16, 10)
    for run in (flow, gd, sgd):
        assert bool(run.finite[0])
        assert np.all(np.asarray(run.weights)[0, :, 0] == 0.0)  # the dead unit stays dead
        assert not np.allclose(run.weights[0, -1, 1], W0[0, 1])  # the live one moves
    assert float(loss_fn(flow.final[0], teacher)) < float(loss_fn(W0[0], teacher))


def test_input_errors_inside_jit_check_shapes():
    with pytest.raises(InputError, match="input dimension"):
        loss_fn(jnp.ones((2, 3)), jnp.ones((2, 4)))
    with pytest.raises(InputError, match="matrix"):
        grad_fn(jnp.ones(3), jnp.ones((2, 3)))


NAN_ROW = np.array([[np.nan, 1.0], [0.5, 0.2]])
GOOD = np.array([[0.3, 0.1], [0.2, 0.4]])

LIBRARY_CASES = [
    # The issue: a NaN row used to pass as a zero row (zero gradient, finite loss).
    (lambda: relu_population_grad(NAN_ROW, np.eye(2)), "W has a non-finite entry at index (0, 0)"),
    (lambda: relu_population_loss(NAN_ROW, np.eye(2)), "W has a non-finite entry"),
    (lambda: relu_population_grad(GOOD, np.array([[1.0, np.inf], [0.0, 1.0]])), "W_star has a non-finite entry"),
    (lambda: relu_population_loss(GOOD, np.eye(3)), "W and W_star must share the input dimension"),
    (lambda: relu_population_grad(GOOD[0], np.eye(2)), "W must be a (units, dim) matrix"),
    (lambda: relu_population_grad(np.zeros((0, 2)), np.eye(2)), "W must not be empty"),
    (lambda: relu_population_grad(GOOD.astype(complex), np.eye(2)), "W must hold real numbers"),
    (lambda: relu_population_hessian(NAN_ROW, np.eye(2)), "W has a non-finite entry"),
    (lambda: relu_kernel(np.array([np.nan, 1.0]), np.ones(2)), "u has a non-finite entry"),
    (lambda: relu_kernel_grad(np.ones(2), np.ones(3)), "u and v must have one shape"),
    (lambda: relu_gradient_flow(NAN_ROW[None], np.eye(2), [0.0, 1.0]), "W0 has a non-finite entry"),
    (lambda: relu_gradient_flow(GOOD, np.eye(2), [0.0, 1.0]), "W0 must be a (batch, units, dim) array"),
    (lambda: relu_gradient_flow(GOOD[None], np.eye(2), [1.0, 0.0]), "times must be non-decreasing"),
    (lambda: relu_gradient_flow(GOOD[None], np.eye(2), [0.0, np.nan]), "times contain NaN"),
    (lambda: relu_gradient_flow(GOOD[None], np.eye(2), [0.0]), "times must be an increasing"),
    (lambda: relu_gradient_descent(GOOD[None], np.eye(2), 0.1, 10, 3), "multiple"),
    (lambda: relu_gradient_descent(GOOD[None], np.eye(2), float("nan"), 10, 5), "step must be a finite number"),
    (lambda: relu_gradient_descent(GOOD[None], np.eye(2), -0.1, 10, 5), "step must be > 0"),
    (lambda: relu_sgd(jax.random.key(0), GOOD[None], np.eye(2), 0.1, 10, 0, 5), "n_samples must be ≥ 1"),
    (lambda: relu_sgd(jax.random.key(0), GOOD[None], np.eye(2), 0.1, 10, 2.5, 5), "n_samples must be an integer"),
    (lambda: relu_reduced_flow(jnp.ones((1, 2)), 1, [0.0, 1.0]), "K ≥ 2"),
    (lambda: relu_reduced_flow(jnp.array([[np.nan, 0.1]]), 2, [0.0, 1.0]), "xy0 has a non-finite entry"),
    (lambda: teacher_distance(NAN_ROW, np.eye(2)), "W has a non-finite entry"),
    (lambda: teacher_distance(GOOD, np.eye(3)), "W must have shape"),
    (lambda: classify_ending(GOOD, np.eye(2), newton_tolerance=0.0), "newton_tolerance must be > 0"),
    (lambda: population_flow_limit(np.eye(2), NAN_ROW), "start has a non-finite entry"),
    (lambda: population_flow_limit(np.full((2, 2), np.inf), GOOD), "W_star has a non-finite entry"),
    (lambda: population_flow_limit(np.eye(3), GOOD), "start and W_star must share the input dimension"),
    (lambda: population_flow_limit(np.eye(2), GOOD, step=0.0), "step must be > 0"),
    (lambda: population_flow_limit(np.eye(2), GOOD, step=float("inf")), "step must be a finite number"),
    (lambda: population_flow_limit(np.eye(2), 3 * np.eye(2), step=1e3), "unstable for gradient descent"),
    (lambda: population_flow_limit(np.eye(2), GOOD).predict([0.0, -1.0]), "times must be finite and non-negative"),
]


@pytest.mark.parametrize("call,fragment", LIBRARY_CASES, ids=[f"lib{i}" for i in range(len(LIBRARY_CASES))])
def test_library_refuses_with_input_error_naming_the_argument(call, fragment):
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert fragment in message and len(message.splitlines()) == 1, message


def test_teacher_distance_takes_the_best_permutation():
    teacher = np.eye(3)
    W = teacher[[2, 0, 1]] + 1e-3 * np.arange(9).reshape(3, 3)
    expected = np.linalg.norm(1e-3 * np.arange(9))
    assert teacher_distance(W, teacher) == pytest.approx(expected)
    assert teacher_distance(np.stack([W, teacher]), teacher).shape == (2,)


# --------------------------------------------------------------------------
# Orthonormal teacher: reduced flow, saddle, symmetry breaking
# --------------------------------------------------------------------------

def test_saddle_values_quoted_in_theory():
    for K, quoted in [(2, 0.534155), (5, 0.256841), (10, 0.155735)]:
        assert symmetric_saddle_value(K) == pytest.approx(quoted, abs=1e-6)
        s = symmetric_saddle_value(K)
        # It is a stationary point of both the reduced and the full flow.
        assert float(jnp.max(jnp.abs(relu_reduced_velocity(jnp.array([s, s]), K)))) < 1e-14
        assert float(jnp.max(jnp.abs(grad_fn(symmetric_weights(s, s, K), jnp.eye(K))))) < 1e-14


@pytest.mark.parametrize("K", [2, 5, 10])
def test_symmetric_start_converges_to_the_saddle_value(K):
    s = symmetric_saddle_value(K)
    times = jnp.array([0.0, 750.0, 1500.0])  # the spurious-minimum test's times: one compile for K = 10
    reduced = relu_reduced_flow(jnp.array([[0.1, 0.1]]), K, times)
    assert bool(reduced.finite[0])
    np.testing.assert_allclose(reduced.final[0], [s, s], atol=1e-5)
    # The full K-neuron flow from identical rows stays on the reduced flow's path. The symmetric
    # point is a saddle of the full flow, so rounding differences between rows (which depend on
    # the CPU's vector width) grow like exp(rate · t): compare only while they are still below
    # 1e-8, t ≤ 4 for these K.
    early = jnp.array([0.0, 2.0, 4.0])
    assert 4.0 * relu_unstable_rate(symmetric_weights(s, s, K), jnp.eye(K)) < math.log(1e-8 / 1e-16)
    full = relu_gradient_flow(symmetric_weights(0.1, 0.1, K)[None], jnp.eye(K), early)
    path = relu_reduced_flow(jnp.array([[0.1, 0.1]]), K, early).weights[0]
    assert bool(full.finite[0])
    np.testing.assert_allclose(full.weights[0], jax.vmap(lambda p: symmetric_weights(p[0], p[1], K))(path),
                               atol=1e-8)


def test_reduced_flow_matches_the_full_flow():
    K = 3
    starts = np.array([[0.3, 0.1], [1e-3, 0.0], [0.05, 0.4]])
    times = jnp.linspace(0.0, 30.0, 31)
    reduced = relu_reduced_flow(starts, K, times)
    full = relu_gradient_flow(jnp.stack([symmetric_weights(x, y, K) for x, y in starts]),
                              jnp.eye(K), times)
    projected = symmetric_coordinates(full.weights)
    np.testing.assert_allclose(projected, reduced.weights, atol=1e-6)
    # and the full flow stays in the symmetric plane
    rebuilt = jax.vmap(jax.vmap(lambda p: symmetric_weights(p[0], p[1], K)))(projected)
    np.testing.assert_allclose(full.weights, rebuilt, atol=1e-10)
    # The symmetry-breaking start (1e-3, 0) reaches the teacher (1, 0).
    end = relu_reduced_flow(starts[1:2], K, jnp.array([0.0, 200.0])).final[0]
    np.testing.assert_allclose(end, [1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("K", [2, 5])
def test_symmetric_start_plus_tiny_noise_reaches_the_teacher(K):
    noise = 1e-6 * jax.random.normal(jax.random.key(K), (6, K, K))
    start = symmetric_weights(0.1, 0.1, K)[None] + noise
    end = relu_gradient_flow(start, jnp.eye(K), jnp.array([0.0, 500.0])).final
    distance = teacher_distance(end, np.eye(K))
    assert np.all(distance < 1e-4), distance
    # ... and not by staying put: the rows are a permutation of W*, not all equal.
    assert np.all(np.ptp(np.asarray(end), axis=1).max(axis=-1) > 0.9)


def test_spurious_local_minimum_for_ten_units():
    # The naive reading (docs/teacher-student.md#where-careful-simulation-disagrees-with-a-naive-reading):
    # the noisy symmetric start reaches W* up to a permutation; for
    # K = 10 some runs end instead at a spurious local minimum (zero gradient,
    # positive-definite Hessian, loss > 0), as Safran & Shamir (2018) found.
    K = 10
    s = symmetric_saddle_value(K)
    noise = 1e-6 * jax.random.normal(jax.random.key(0), (8, K, K))
    run = relu_gradient_flow(symmetric_weights(s, s, K)[None] + noise[2:3], jnp.eye(K),
                             jnp.array([0.0, 750.0, 1500.0]))  # the saddle test's times and shapes: one compile
    W = run.final[0]
    assert teacher_distance(W, np.eye(K)) > 1.0
    assert float(jnp.linalg.norm(grad_fn(W, jnp.eye(K)))) < 1e-7
    hess = np.asarray(jax.jacfwd(relu_population_grad)(W, jnp.eye(K))).reshape(K * K, K * K)
    assert np.min(np.linalg.eigvalsh(0.5 * (hess + hess.T))) > 1e-3
    assert float(loss_fn(W, jnp.eye(K))) > 1e-2


def test_time_near_the_saddle_grows_like_log_inverse_delta_over_the_unstable_rate():
    K = 2
    s = symmetric_saddle_value(K)
    saddle = symmetric_weights(s, s, K)
    rate = relu_unstable_rate(saddle, jnp.eye(K))
    # The rate is the Jacobian's: compare with central differences of the gradient.
    h = 1e-6
    cols = [(grad_fn(saddle + h * e.reshape(K, K), jnp.eye(K))
             - grad_fn(saddle - h * e.reshape(K, K), jnp.eye(K))).ravel() / (2 * h)
            for e in jnp.eye(K * K)]
    fd_rate = np.max(np.linalg.eigvals(-np.stack(cols, axis=1)).real)
    assert rate == pytest.approx(fd_rate, rel=1e-5)
    direction = jnp.array([[0.3, -0.5], [0.6, 0.2]])
    direction = direction / jnp.linalg.norm(direction)
    deltas = 10.0 ** -np.arange(3, 10)
    times = np.linspace(0.0, 60.0, 1201)
    flows = relu_gradient_flow(saddle[None] + jnp.asarray(deltas)[:, None, None] * direction,
                               jnp.eye(K), times, rtol=1e-10, atol=1e-12)
    distance = np.linalg.norm(np.asarray(flows.weights) - np.asarray(saddle), axis=(-2, -1))
    near = time_within(distance / 0.1, times)
    fit = fit_power_law(1.0 / deltas, np.exp(near))  # slope of T against log(1/δ)
    assert fit.slope == pytest.approx(1.0 / rate, rel=0.03)


# --------------------------------------------------------------------------
# K = 1
# --------------------------------------------------------------------------

def test_inside_probability_formula_matches_sampling_and_exceeds_the_bound():
    for d in (1, 2, 10, 50):
        for eps in (0.1, 0.5, 0.9, 1.0):
            r = single_neuron_bound_radius(eps, d)
            assert single_neuron_inside_probability(r, d) >= single_neuron_bound(r, d)
    d, r = 5, 1.5
    w = np.asarray(uniform_ball(jax.random.key(3), 200_000, d, r))
    assert np.max(np.linalg.norm(w, axis=1)) <= r
    inside = np.mean(np.linalg.norm(w - np.eye(d)[0], axis=1) < 1.0)
    p = single_neuron_inside_probability(r, d)
    assert abs(inside - p) < 5 * np.sqrt(p * (1 - p) / 200_000)


@pytest.mark.parametrize("d", [2, 10])
def test_single_neuron_success_probability_is_above_the_bound(d):
    w_star = jnp.zeros((1, d)).at[0, 0].set(1.0)
    n = 3000
    for eps in (0.3, 0.9):
        r = single_neuron_bound_radius(eps, d)
        w0 = uniform_ball(jax.random.key(d + int(10 * eps)), n, d, r)
        flow = relu_gradient_flow(w0[:, None, :], w_star, [0.0, 40.0], rtol=1e-6, atol=1e-9)
        assert bool(np.all(flow.finite))
        reached = int(np.sum(np.linalg.norm(np.asarray(flow.final)[:, 0] - np.eye(d)[0], axis=1) < 1e-3))
        bound = single_neuron_bound(r, d)
        assert proportion_interval(reached, n)[0] > bound
        # The event the bound is about, starting in ‖w − w*‖ < ‖w*‖, is above it too.
        inside = int(np.sum(np.linalg.norm(np.asarray(w0) - np.eye(d)[0], axis=1) < 1.0))
        assert proportion_interval(inside, n)[0] > bound


# --------------------------------------------------------------------------
# Gradient descent and SGD against the flow
# --------------------------------------------------------------------------

def test_gradient_descent_approaches_the_flow_linearly_in_the_step():
    teacher = jnp.eye(2)
    W0 = jnp.array([[[0.2, -0.8], [0.5, 0.25]]])
    errors = []
    for step, n_steps in [(0.1, 50), (0.05, 100)]:
        gd = relu_gradient_descent(W0, teacher, step, n_steps, n_steps // 5)
        flow = relu_gradient_flow(W0, teacher, gd.times)
        errors.append(float(jnp.max(jnp.abs(gd.weights - flow.weights))))
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1)


def test_sgd_deviation_from_gradient_descent_scales_like_inverse_sqrt_n():
    teacher = jnp.eye(2)
    W0 = jnp.broadcast_to(jnp.array([[0.2, -0.8], [0.5, 0.25]]), (100, 2, 2))
    gd = relu_gradient_descent(W0[:1], teacher, 0.05, 100, 20)
    ns = [16, 256, 4096]
    deviations = []
    for n in ns:
        sgd = relu_sgd(jax.random.key(n), W0, teacher, 0.05, 100, n, 20)
        assert bool(np.all(sgd.finite))
        deviations.append(float(np.sqrt(np.mean(np.sum((sgd.weights - gd.weights) ** 2, (-2, -1))))))
    slope = fit_power_law(ns, deviations).slope
    assert slope == pytest.approx(-0.5, abs=0.06)


def test_sgd_runs_do_not_depend_on_the_batch_they_are_in():
    teacher = jnp.eye(2)
    W0 = jax.random.normal(jax.random.key(1), (3, 2, 2))
    together = relu_sgd(jax.random.key(5), W0, teacher, 0.05, 10, 8, 5)
    first = relu_sgd(jax.random.key(5), W0[:1], teacher, 0.05, 10, 8, 5)
    np.testing.assert_array_equal(together.weights[:1], first.weights)


# --------------------------------------------------------------------------
# The limit object
# --------------------------------------------------------------------------

def test_flow_limit_predicts_the_flow_with_zero_covariance_and_gradient_descent_approaches_it():
    teacher = jnp.eye(2)
    start = jnp.array([[0.2, -0.8], [0.5, 0.25]])
    limit = population_flow_limit(teacher, start, step=0.05)
    times = np.linspace(0.0, 5.0, 6)
    prediction = limit.predict(times)
    assert isinstance(prediction, Gaussian) and prediction.mean.shape == (6, 4) and prediction.cov.shape == (6, 4, 4)
    assert not np.any(np.asarray(prediction.cov))  # deterministic: covariance exactly zero
    batch = relu_gradient_flow(start[None], teacher, times, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prediction.mean, np.asarray(batch.weights[0]).reshape(6, 4), atol=1e-8)
    np.testing.assert_allclose(prediction.mean[0], start.ravel())
    assert float(limit.loss(times)[-1]) < float(limit.loss(times)[0])
    # Gradient descent sits O(η) from the limit's mean: halving η halves the gap.
    gaps = []
    for step, n_steps in [(0.1, 50), (0.05, 100)]:
        gd = relu_gradient_descent(start[None], teacher, step, n_steps, n_steps // 5)
        mean = np.asarray(limit.predict(gd.times).mean)
        gaps.append(float(np.max(np.abs(np.asarray(gd.weights[0]).reshape(len(gd.times), -1) - mean))))
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.1)


def test_classify_ending_finds_the_saddle_and_the_teacher():
    s = symmetric_saddle_value(2)
    at_saddle = classify_ending(symmetric_weights(s, s, 2), jnp.eye(2))
    assert at_saddle.kind == "other_stationary" and at_saddle.min_eigenvalue < 0 and at_saddle.newton_step < 1e-8
    at_teacher = classify_ending(jnp.eye(2), jnp.eye(2))
    assert at_teacher.kind == "local_minimum" and at_teacher.loss < 1e-12
    assert classify_ending(0.3 * jnp.eye(2), jnp.eye(2)).kind == "still_moving"


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------

CLI_CASES = [
    (["teacher-student", "--ks", "2,nan"], "expected an integer"),
    (["teacher-student", "--ks", "1,2"], "--ks must be ≥ 2"),
    (["teacher-student", "--ks", "2,2,5"], "--ks has a repeated entry"),
    (["teacher-student", "--ks", "1000"], "--ks must be at most 64"),
    (["teacher-student", "--noise", "nan"], "--noise must be a finite number"),
    (["teacher-student", "--noise", "inf"], "--noise must be a finite number"),
    (["teacher-student", "--noise", "0"], "--noise must be ≥ 1e-13"),
    (["teacher-student", "--noise", "1"], "--noise must be at most 0.5"),
    (["teacher-student", "--ensemble", "0"], "--ensemble must be ≥ 1"),
    (["teacher-student", "--ensemble", "2.5"], "expected an integer"),
    (["teacher-student", "--ensemble", "1e9"], "--ensemble must be at most"),
    (["teacher-student", "--ensemble", "5000000", "--ks", "64"], "--ensemble makes the run need"),
    (["teacher-student", "--t-max", "-1"], "--t-max must be > 0"),
    (["teacher-student", "--escape-k", "1"], "--escape-k must be ≥ 2"),
    (["teacher-student", "--escape-deltas", "1e-2,1e-4"], "--escape-deltas must have 3 to"),
    (["teacher-student", "--escape-deltas", "1e-2,1e-4,1e-4"], "--escape-deltas has a repeated entry"),
    (["teacher-student", "--escape-deltas", "0.5,1e-4,1e-6"], "--escape-deltas must be at most 0.05"),
    (["teacher-student", "--escape-deltas", "0,1e-4,1e-6"], "--escape-deltas must be ≥ 1e-13"),
    (["teacher-student", "--epsilons", "0"], "--epsilons must be > 0"),
    (["teacher-student", "--epsilons", "1.5"], "--epsilons must be at most 1"),
    (["teacher-student", "--dims", "0"], "--dims must be ≥ 1"),
    (["teacher-student", "--k1-ensemble", "10000000", "--dims", "10000"], "--k1-ensemble makes the run need"),
    (["teacher-student", "--k1-time", "0"], "--k1-time must be > 0"),
    (["teacher-student", "--sgd-samples", "16"], "--sgd-samples must have 2 to"),
    (["teacher-student", "--sgd-samples", "16,-4"], "--sgd-samples must be ≥ 1"),
    (["teacher-student", "--sgd-samples", "16,1e7"], "--sgd-samples must be at most"),
    (["teacher-student", "--sgd-samples", "16,1000000", "--sgd-ensemble", "5000"], "--sgd-samples × --sgd-ensemble"),
    (["teacher-student", "--step", "0"], "--step must be > 0"),
    (["teacher-student", "--step", "nan"], "--step must be a finite number"),
    (["teacher-student", "--step", "5"], "--step must be at most 1"),
    (["teacher-student", "--step", "0.5", "--sgd-time", "2"], "--sgd-time / --step gives 4 steps"),
    (["teacher-student", "--step", "1e-6", "--sgd-time", "1e3"], "more than 10^7"),
    (["teacher-student", "--seed", "-1"], "--seed must be ≥ 0"),
    (["teacher-student", "--data-seed", "1.5"], "expected an integer"),
    # The old names of the ensemble sizes are gone: one name per concept.
    (["teacher-student", "--inits", "10"], "unrecognized arguments"),
    (["teacher-student", "--noisy-runs", "10"], "unrecognized arguments"),
    (["teacher-student", "--sgd-runs", "10"], "unrecognized arguments"),
    (["teacher-student", "--no-progress"], "unrecognized arguments"),
    (["teacher-student", "--width", "64"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv,fragment", CLI_CASES, ids=[" ".join(c[0][1:]) for c in CLI_CASES])
def test_command_line_refuses_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)


def test_an_unstable_step_is_refused_before_the_long_parts(tmp_path, monkeypatch):
    from jaxlimit.experiments import run
    from jaxlimit.experiments.teacher_student import TeacherStudentConfig
    from jaxlimit.limits import teacher_student

    def trap(*args, **kwargs):
        raise AssertionError("the flows started before the step was checked")

    monkeypatch.setattr(teacher_student, "_solve_batch", trap)  # every flow solves through it
    config = TeacherStudentConfig(sgd_k=10, step=1.0, sgd_time=20.0, out=str(tmp_path / "r"))
    with pytest.raises(InputError, match="unstable for gradient descent"):
        run(config)


SMALL = dict(ks=(2,), ensemble=3, t_max=100.0, escape_deltas=(1e-6, 1e-4, 1e-2), dims=(3,), epsilons=(0.5,),
             k1_ensemble=100, sgd_samples=(64, 1024), sgd_ensemble=20, sgd_time=2.0)
VOCABULARY = {"consistent", "inconsistent", "not resolved at this size"}


def test_command_writes_the_promised_report_and_resumes_from_its_checkpoint(tmp_path):
    from jaxlimit.cli import main
    from jaxlimit.experiments import run
    from jaxlimit.experiments.teacher_student import TeacherStudentConfig
    from jaxlimit.report import write_report

    out, ckpt = tmp_path / "rep", tmp_path / "ckpt"
    report = run(TeacherStudentConfig(**SMALL, out=str(out), checkpoint=str(ckpt)))
    write_report(report, out)
    for name, fig in report.figures.items():
        title = fig.get_suptitle()
        assert "K = " in title and "E = " in title and "data:" in title and "relu" in title, (name, title)
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), (name, title)
    data = json.loads((out / "report.json").read_text())
    m = data["metrics"]
    assert set(data["verdict"]) == {"saddle_value", "symmetric_plus_noise", "escape_time", "k1_bound", "sgd_noise"}
    assert set(data["verdict"].values()) <= VOCABULARY
    text = (out / "report.md").read_text()
    assert "VIOLATED" not in text and "THEORY" not in text and "contrary" not in text
    assert data["verdict"]["saddle_value"] == "consistent" and m["saddle_value_K2"]["abs_error"] < 1e-5
    assert data["verdict"]["symmetric_plus_noise"] == "consistent"
    assert m["noisy_start_reached_teacher_K2"]["successes"] == 3 and m["noisy_start_reached_teacher_K2"]["se"] > 0
    row = m["k1"][0]
    assert row["reached"]["ci"][0] > row["bound"] and row["verdict"] == "consistent"
    assert row["reached"]["margin"] > 2 * row["reached"]["se"]
    assert m["escape"]["slope_se"] > 0 and abs(m["escape"]["relative_difference"]) < 0.02
    sgd = m["sgd"]
    assert len(sgd["rms_deviation_from_gd_se"]) == 2 and sgd["slope_se"] > 0
    names = {s["name"] for s in data["provenance"]["random_streams"]}
    assert {"members-noisy", "members-k1", "members-sgd", "sgd-start", "escape-direction"} <= names
    assert set(data["figures"]) == {f"{n}.{e}" for n in ("xy_plane", "loss_curves", "saddle_escape",
                                                          "convergence_probability", "sgd_vs_flow")
                                    for e in ("png", "pdf")}
    with open(out / "k1_by_dim_epsilon.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and {"p", "se", "ci_low", "ci_high", "margin", "verdict"} <= set(rows[0])
    with open(out / "sgd_by_time.csv") as f:
        assert len(list(csv.DictReader(f))) == 2 * 41
    with np.load(out / "data.npz") as f:
        assert f["sgd_weights_n64"].shape == (20, 41, 2, 2) and f["noisy_final_K2"].shape == (3, 2, 2)
    saved = sorted(p.name for p in ckpt.glob("*/result-*.npz"))
    assert len(saved) == 5  # one flow batch per K, the escape, one K = 1 (d, ε), two SGD sample sizes
    # The command line resumes from the saved pieces and reproduces the numbers.
    argv = ["teacher-student", "--ks", "2", "--ensemble", "3", "--t-max", "100", "--escape-deltas", "1e-2,1e-4,1e-6",
            "--dims", "3", "--epsilons", "0.5", "--k1-ensemble", "100", "--sgd-samples", "64,1024",
            "--sgd-ensemble", "20", "--sgd-time", "2", "--out", str(out), "--checkpoint", str(ckpt)]
    assert main(argv) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["metrics"]["sgd"]["rms_deviation_from_gd"] == sgd["rms_deviation_from_gd"]
    assert again["metrics"]["k1"] == m["k1"] and again["verdict"] == data["verdict"]
    assert again["provenance"]["command_line"][:2] == ["jaxlimit", "teacher-student"]
    assert sorted(p.name for p in ckpt.glob("*/result-*.npz")) == saved
