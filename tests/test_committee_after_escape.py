"""The committee command's CLT after the escape (jaxlimit.training.committee_fixed_point.after_escape_clt):
students drawn from the stationary law at the specialised fixed point, each with its units in its own
order, are consistent with N(X*, Σ*/D); a mean shift of a few predicted standard errors is not; and the
comparison is refused, with its reason, while a student has not escaped or not relaxed."""

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxlimit.limits import committee as cm  # noqa: E402
from jaxlimit.training.committee_fixed_point import after_escape_clt  # noqa: E402

K = M = 2
ETA, SIGMA, D, E = 1.5, 0.1, 500, 400


def _students(shift: float, seed: int) -> np.ndarray:
    """E students from N(X*, Σ*/D) (+ shift predicted SDs along R00), units randomly permuted."""
    fp = cm.specialised_fixed_point(M, 0, ETA, SIGMA)
    S = cm.stationary_covariance(fp["Q"], fp["R"], np.eye(M), ETA, SIGMA) / D
    mean = np.asarray(cm.flatten(jnp.asarray(fp["Q"]), jnp.asarray(fp["R"])))
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(mean, S, size=E)
    r00 = 3  # flat order: Q00, Q01, Q11, R00, R01, R10, R11
    X[:, r00] += shift * np.sqrt(S[r00, r00])
    Q, R = (np.array(a) for a in cm.unflatten(jnp.asarray(X), K, M))
    swap = rng.random(E) < 0.5  # a student that specialised in the other order
    Q[swap] = Q[swap][:, ::-1, ::-1]
    R[swap] = R[swap][:, ::-1, :]
    return np.asarray(cm.flatten(jnp.asarray(Q), jnp.asarray(R)))


def after_escape(X, escape_times):
    return after_escape_clt(X, escape_times, 200.0, M=M, lr=ETA, noise_std=SIGMA, dim=D)


def test_stationary_students_in_any_unit_order_are_consistent_and_a_shift_is_not():
    escaped = np.full(E, 60.0)
    good = after_escape(_students(0.0, 1), escaped)
    assert good.reason is None and good.alpha == 200.0
    assert good.verdict.verdict == "consistent"
    assert good.verdict.comparisons[0].mean_error_z < 3.0
    bad = after_escape(_students(10 / np.sqrt(E), 1), escaped)  # the mean of R00 10 SE off
    assert bad.verdict.verdict == "inconsistent"
    assert bad.verdict.comparisons[0].mean_error_z > 7.0


def test_not_compared_before_every_student_escaped_and_relaxed():
    late = after_escape(_students(0.0, 2), np.r_[np.full(E - 1, 60.0), np.inf])
    assert late.verdict is None and "had not escaped" in late.reason
    relax = late.relaxation
    assert abs(relax - np.log(D) / (2 * -cm.specialised_fixed_point(M, 0, ETA, SIGMA)["leading_eigenvalue"])) < 1e-12
    tight = after_escape(_students(0.0, 2), np.full(E, 200.0 - relax / 2))
    assert tight.verdict is None and "relaxation" in tight.reason
