"""ReLU (and linear) soft committee machines: the ReLU integrals, the ODE, the students with any g, and
the trained second layer of the direct simulation (docs/committee.md)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

import jaxlimit as jl  # noqa: E402
from jaxlimit.errors import InputError  # noqa: E402
from jaxlimit.limits import committee as c  # noqa: E402
from jaxlimit.streams import stream_key  # noqa: E402
from jaxlimit.training import committee as tc  # noqa: E402

RELU = c.relu_integrals()
TENSORS = {name: jax.jit(getattr(RELU, name)) for name in ("i2", "j2", "i3", "i4")}


def _monte_carlo(C, n: int, seed: int, chunk: int = 500_000):
    """Means and standard errors of g g, g' g', g' u g, g' g' g g (every index tuple) over n samples
    (jit-compiled sums over chunks of fresh normals)."""
    L = jnp.asarray(np.linalg.cholesky(C))
    N = len(C)

    def products(u):
        g, gp = jnp.maximum(u, 0.0), (u > 0).astype(u.dtype)
        return {"i2": jnp.einsum("na,nb->nab", g, g), "j2": jnp.einsum("na,nb->nab", gp, gp),
                "i3": jnp.einsum("na,nb,nc->nabc", gp, u, g), "i4": jnp.einsum("na,nb,nc,nd->nabcd", gp, gp, g, g)}

    @jax.jit
    def sums(key):
        x = products(jax.random.normal(key, (chunk, N), jnp.float64) @ L.T)
        return {k: (v.sum(0), (v * v).sum(0)) for k, v in x.items()}

    acc = None
    for i in range(n // chunk):
        s = sums(jax.random.fold_in(jax.random.PRNGKey(seed), i))
        acc = s if acc is None else jax.tree_util.tree_map(jnp.add, acc, s)
    mean = {k: np.asarray(v[0]) / n for k, v in acc.items()}
    se = {k: np.sqrt(np.maximum(np.asarray(v[1]) / n - mean[k] ** 2, 0.0) / n) for k, v in acc.items()}
    return mean, se


# a generic C, and one with a student next to its teacher (1 − ρ = 2e-3: the near-collinear pair
# the drift meets late in training) and a second student: three fields
_A = np.random.default_rng(7).normal(size=(3, 5))
GENERIC = _A @ _A.T / 5
NEAR = np.array([[1.0, 0.998, 0.3], [0.998, 1.0, 0.31], [0.3, 0.31, 0.8]])


@pytest.mark.slow
@pytest.mark.parametrize("C", [GENERIC, NEAR], ids=["generic", "near-collinear"])
def test_relu_integrals_match_monte_carlo(C):
    """Every entry of I2, J2, I3, I4 (the repeated-index ones the drift uses included: I3(i,k,i),
    I4(i,i,c,c), …) within 4.5 SE of 2·10⁶ Monte Carlo samples (the SE computed here; 3·27 + 9·2 + 81
    entries, so a 4.5 SE bound fails by chance with probability < 10⁻³)."""
    mean, se = _monte_carlo(C, 2_000_000, seed=11)
    for name, f in TENSORS.items():
        closed = np.asarray(f(jnp.asarray(C)))
        z = np.abs(closed - mean[name]) / (se[name] + 1e-15)
        assert z.max() < 4.5, (name, z.max())
    # the closed forms of the docstring at distinct fields a = 0, b = 1, c = 2
    C0 = np.asarray(C)
    rho = C0[0, 1] / math.sqrt(C0[0, 0] * C0[1, 1])
    th = math.acos(rho)
    i2 = math.sqrt(C0[0, 0] * C0[1, 1]) / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th))
    assert abs(float(TENSORS["i2"](jnp.asarray(C))[0, 1]) - i2) < 1e-14
    j2 = lambda a, b: 0.25 + math.asin(C0[a, b] / math.sqrt(C0[a, a] * C0[b, b])) / (2 * math.pi)  # noqa: E731
    assert abs(float(TENSORS["j2"](jnp.asarray(C))[0, 1]) - j2(0, 1)) < 1e-14
    i3 = (C0[0, 1] * math.sqrt(C0[0, 0] * C0[2, 2] - C0[0, 2] ** 2) / (2 * math.pi * C0[0, 0])
          + C0[1, 2] * j2(0, 2))
    assert abs(float(TENSORS["i3"](jnp.asarray(C))[0, 1, 2]) - i3) < 1e-14
    # repeated fields: I2(a,a) = C_aa/2, J2(a,a) = 1/2, I3(a,b,a) = C_ab/2
    assert np.allclose(np.diag(np.asarray(TENSORS["i2"](jnp.asarray(C)))), np.diag(C0) / 2, rtol=0, atol=1e-15)
    assert np.allclose(np.asarray(TENSORS["i3"](jnp.asarray(C)))[0, :, 0], C0[0] / 2, rtol=0, atol=1e-15)


def test_four_field_orthant_and_its_error_estimate():
    """Plackett's integral for I4 with four distinct fields: against 10⁶ samples of the orthant
    probability, and its stated error estimate (nodes against nodes / 2) at most 1e-10 at a generic C."""
    A = np.random.default_rng(3).normal(size=(4, 6))
    C = A @ A.T / 6
    p = float(jax.jit(lambda S: c._orthant4(S, c.RELU_NODES))(jnp.asarray(C)))
    u = np.random.default_rng(4).multivariate_normal(np.zeros(4), C, size=1_000_000)
    hits = (u > 0).all(1)
    assert abs(p - hits.mean()) < 4 * hits.std() / 1000
    assert RELU.error(jnp.asarray(C))["i4"] < 1e-10


def test_relu_drift_agrees_with_quadrature_within_its_error_estimate():
    """The ReLU drift at small η against quadrature_integrals(relu): the difference within 10 times the
    quadrature's own error estimate (nodes against nodes − 4, which for a non-smooth g is the order
    of the error, not a bound: 1.6 times it for I2 and 6 times for J2 here; tensor Gauss–Hermite
    converges slowly for a kink or a step, so the closed forms are the reference), propagated
    through the drift."""
    quad = c.quadrature_integrals(lambda x: jnp.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype), nodes=16)
    Q = jnp.asarray([[0.5]])
    R = jnp.asarray([[0.3]])
    T = jnp.asarray([[1.0]])
    C = c.field_covariance(Q, R, T)
    err = quad.error(C)
    for name in ("i2", "i3", "i4", "j2"):
        assert float(jnp.max(jnp.abs(getattr(quad, name)(C) - getattr(RELU, name)(C)))) <= 10 * err[name], name
    eta = 0.05
    dq1, dr1 = c.drift(Q, R, T, eta, 0.1, RELU)
    dq2, dr2 = c.drift(Q, R, T, eta, 0.1, quad)
    tol_r = 10 * eta * 2 * err["i3"]
    tol_q = 2 * tol_r + 10 * eta**2 * (4 * err["i4"] + 0.01 * err["j2"])
    assert abs(float(dr1[0, 0] - dr2[0, 0])) <= tol_r
    assert abs(float(dq1[0, 0] - dq2[0, 0])) <= tol_q
    assert tol_r < 0.5 * abs(float(dr1[0, 0]))  # loose, but not vacuous


def test_relu_chain_ensemble_agrees_with_the_relu_ode():
    """400 students of the exact chain with g = ReLU at D = 200 from one start (K = M = 2, η = 0.5,
    σ = 0.1): the means of ε_g, Q, R within 4 SE of the ReLU ODE at α = 1 and 3. The erf ODE from the
    same start is many SE off (the activation reaches the students)."""
    K = M = 2
    D, E, eta, sigma = 200, 400, 0.5, 0.1
    Q0 = np.array([[0.3, 0.05], [0.05, 0.25]])
    R0 = np.array([[0.1, 0.0], [0.05, 0.15]])
    T = np.eye(2)
    alphas = [0.0, 1.0, 3.0]
    run = tc.train_order_parameters(np.broadcast_to(Q0, (E, K, K)), np.broadcast_to(R0, (E, K, M)), T, lr=eta,
                                    noise_std=sigma, D=D, alphas=alphas, root=stream_key(0, "relu chain"),
                                    integrals=RELU)
    assert run["finite"].all()
    out = np.concatenate([run["eps"][..., None], np.asarray(c.flatten(jnp.asarray(run["Q"]), jnp.asarray(run["R"])))],
                         -1)
    ode = jl.committee_ode(Q0, R0, T, lr=eta, noise_std=sigma, integrals=RELU)
    Qo, Ro = ode.order_parameters(alphas)
    pred = np.concatenate([np.asarray(ode.generalisation_error(alphas))[:, None],
                           np.asarray(c.flatten(Qo, Ro))], -1)
    worst_erf = 0.0
    erf_Q, erf_R = jl.committee_ode(Q0, R0, T, lr=eta, noise_std=sigma).order_parameters(alphas)
    erf_pred = np.asarray(c.flatten(erf_Q, erf_R))
    for i in (1, 2):
        se = out[:, i].std(0, ddof=1) / math.sqrt(E)
        z = (out[:, i].mean(0) - pred[i]) / se
        assert np.abs(z).max() < 4.0, z
        worst_erf = max(worst_erf, float(np.abs((out[:, i, 1:].mean(0) - erf_pred[i]) / se[1:]).max()))
    assert worst_erf > 20


def _observables(run, second_layer=False):
    X = np.asarray(c.flatten(jnp.asarray(run["Q"]), jnp.asarray(run["R"]),
                             jnp.asarray(run["v"]) if second_layer else None))
    return np.concatenate([run["eps"][..., None], X], -1)


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_direct_with_trained_second_layer_agrees_with_the_chain_in_law(activation):
    """train_direct with v trained (v0 = (0.7, 1.2), v* = (1, 0.8), η_v = 0.5) against the exact chain at
    D = 60 (300 students each, one start): means within 4 SE and log variance ratios within 4 SE of
    (ε_g, Q, R, v) at α = 1, and v moved by many SE (in one unit at least)."""
    K = M = 2
    D, E, eta, sigma, eta_v = 60, 300, 1.0, 0.3, 0.5
    v0, vstar = np.array([0.7, 1.2]), np.array([1.0, 0.8])
    integrals = c.activation_integrals(activation)
    alphas = [0.0, 1.0]
    Wstar = tc.orthonormal_teacher(stream_key(0, "teacher"), M, D)
    w0 = tc.gaussian_students(stream_key(0, "init"), K, D, 0.5)
    run_d = tc.train_direct(jnp.broadcast_to(w0, (E, K, D)), Wstar, lr=eta, noise_std=sigma, alphas=alphas,
                            root=stream_key(0, "direct v"), lanes=E, v0=v0, teacher_v=vstar, lr_v=eta_v,
                            integrals=integrals)
    T = np.asarray(Wstar @ Wstar.T / D)
    Q0, R0 = np.asarray(w0 @ w0.T / D), np.asarray(w0 @ Wstar.T / D)
    run_c = tc.train_order_parameters(np.broadcast_to(Q0, (E, K, K)), np.broadcast_to(R0, (E, K, M)), T, lr=eta,
                                      noise_std=sigma, D=D, alphas=alphas, root=stream_key(0, "chain v"), lanes=E,
                                      v0=v0, teacher_v=vstar, lr_v=eta_v, integrals=integrals)
    x, y = _observables(run_d, True)[:, 1], _observables(run_c, True)[:, 1]
    z = (x.mean(0) - y.mean(0)) / np.sqrt(x.var(0) / E + y.var(0) / E)
    assert np.abs(z).max() < 4.0, z
    assert np.abs(np.log(x.var(0) / y.var(0))).max() < 4 * math.sqrt(4.0 / E)
    assert np.abs((x[:, -2:].mean(0) - v0) / (x[:, -2:].std(0) / math.sqrt(E))).max() > 10


def test_direct_default_second_layer_returns_ones_and_refuses_bad_integrals():
    W0 = jnp.broadcast_to(tc.gaussian_students(stream_key(1, "init"), 2, 30, 0.5), (3, 2, 30))
    Wstar = tc.orthonormal_teacher(stream_key(1, "teacher"), 2, 30)
    run = tc.train_direct(W0, Wstar, lr=0.5, noise_std=0.0, alphas=[0.0, 0.5], root=stream_key(1, "d"), lanes=3)
    assert run["v"].shape == (3, 2, 2) and np.all(run["v"] == 1.0)
    with pytest.raises(InputError, match="integrals must be"):
        tc.train_direct(W0, Wstar, lr=0.5, noise_std=0.0, alphas=[0.5], root=stream_key(1, "d"), integrals="relu")


@pytest.mark.slow
def test_command_with_relu_reports_no_erf_number(tmp_path):
    """A tiny ReLU run (K = M = 1, so I4 has no four-field orthant and the compilation is short): a
    verdict in the project's words, and none of the erf-only numbers (η_max, rate, plateau, noise floor)."""
    from jaxlimit import cli

    out = tmp_path / "out"
    assert cli.main(["committee", "--activation", "relu", "--students", "1", "--teachers", "1", "--ensemble", "60",
                     "--dim", "60", "--alpha-max", "4", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"]["fluctuations_before_escape"] in ("consistent", "inconsistent")
    for key in ("eta_max", "asymptotic_rate", "plateau", "noise_floor", "escape"):
        assert key not in report["metrics"], key
    text = (out / "report.md").read_text()
    assert "η_max =" not in text and "not computed" in text
    assert "g = relu" in report["config"]["limit"]


def test_command_refuses_an_unknown_activation(capsys, tmp_path, monkeypatch):
    from tests.helpers.refusal import assert_refused

    assert_refused(["committee", "--activation", "nope"], "--activation must be one of erf, relu, linear",
                   capsys, tmp_path, monkeypatch)
