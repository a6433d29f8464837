"""Does an ensemble of network outputs follow a predicted Gaussian? (docs/statistics.md)

The limit theories predict that the outputs of E independent networks at P
points are (asymptotically) i.i.d. draws from N(μ, C). This module holds the
predicted law (:class:`Gaussian`), the Gaussian 2-Wasserstein distance and
:func:`compare_gaussian`, which reports effect sizes, p-values of four
goodness-of-fit tests and a calibrated verdict.

Whitening and singular covariances. Late in training the predicted covariance
shrinks towards zero in some directions, so C is often singular or nearly so.
With C = V Λ Vᵀ (``eigh``), the comparison keeps the r eigen-directions with

    λ_k > τ = max(rtol · λ_max, (100 · ε · s)²),

rtol = 1e-8 by default, ε the machine epsilon of the samples' dtype and s the
largest |sample| (the second term keeps float32 rounding noise, variance about
ε² s² / 12, at least 10⁵ times below every kept variance). On the kept
directions the samples are whitened, z = Λ_r^{-1/2} V_rᵀ (x − μ), and under the
prediction z ~ N(0, I_r) exactly. The P − r dropped directions are tested
separately: the prediction gives each a variance ≤ τ, so

    S = Σ_i |Π⊥ (x_i − μ)|² / τ  is stochastically smaller than χ²_{E (P−r)},

and its upper tail is a valid (conservative) p-value that rejects samples
spreading, or sitting off-centre, where the prediction says they cannot.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy import stats as sps
from scipy.spatial.distance import cdist

from jaxlimit.errors import InputError

COVARIANCE_RTOL = 1e-8
"""Eigen-directions of the predicted covariance with λ ≤ rtol · λ_max are dropped."""

_ROUNDING_HEADROOM = 100.0
"""Kept variances exceed (headroom · ε · max|x|)², far above the samples' rounding noise."""

_NOT_PSD_RTOL = 1e-5
"""Eigenvalues below −rtol · λ_max mean the covariance is wrong, not merely rounded."""


class Gaussian(eqx.Module):
    """The predicted law N(mean, cov) of the outputs at P points, optionally
    batched over leading axes (times, widths).

    Attributes:
        mean: shape (..., P); a limit's ``predict(times)`` gives (T, P).
        cov: shape (..., P, P), symmetric positive semi-definite; it may be
            singular (outputs that the limit pins down exactly).
        times: the training time of each law, shape (T,), or None. Every
            limit's ``predict(times)`` labels its laws, and statistics that pair
            an ensemble's saved times with a prediction refuse a mismatch
            (:func:`check_aligned`), so t = 0 is never compared with the t = 1 law.

    ``g[i]`` is the law at the i-th batch entry (for example the i-th time);
    ``g.select(idx)`` the marginal law of some coordinates. Construction
    refuses NaN, mismatched shapes, an asymmetric covariance and one with
    clearly negative eigenvalues (more than rounding), so a wrong prediction
    fails here and never samples garbage.
    """

    mean: Array
    cov: Array
    times: Array | None = None

    def __check_init__(self):
        m, c = np.shape(self.mean), np.shape(self.cov)
        if len(m) < 1 or c != (*m, m[-1]):
            raise InputError(
                f"a Gaussian needs mean of shape (..., P) and cov of shape (..., P, P), "
                f"got {m} and {c}"
            )
        if self.times is not None and np.shape(self.times) != tuple(m[:1] if len(m) > 1 else ()):
            raise InputError(f"a Gaussian's times must have one entry per law, shape {tuple(m[:1])}, "
                             f"got {np.shape(self.times)}")
        if isinstance(self.mean, jax.core.Tracer) or isinstance(self.cov, jax.core.Tracer):
            return  # inside a transformation: the values are checked where they are concrete
        mean = np.asarray(self.mean, np.float64)
        cov = np.asarray(self.cov, np.float64)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
            raise InputError("a Gaussian's mean and covariance must be finite")
        if cov.size:
            scale = np.maximum(np.max(np.abs(cov), axis=(-2, -1)), np.finfo(float).tiny)
            asym = np.max(np.abs(cov - np.swapaxes(cov, -1, -2)), axis=(-2, -1))
            if np.any(asym > 1e-6 * scale):
                raise InputError("a Gaussian's covariance must be symmetric")
            lam = np.linalg.eigvalsh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
            # Rounding is relative to the largest scale in the batch: a law that has
            # contracted to nearly nothing (late times) keeps the errors of its start.
            if np.any(lam[..., 0] < -_NOT_PSD_RTOL * max(float(np.max(lam[..., -1])), 0.0) - 1e-300):
                worst = float(np.min(lam[..., 0]))
                raise InputError(
                    f"a Gaussian's covariance must be positive semi-definite (smallest eigenvalue {worst:.3g})"
                )

    @property
    def dim(self) -> int:
        """P, the number of coordinates."""
        return int(np.shape(self.mean)[-1])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading axes, e.g. (T,) for a prediction at T times; () for one law."""
        return tuple(np.shape(self.mean)[:-1])

    def __getitem__(self, index) -> "Gaussian":
        """The law at one batch entry (or a slice of them): ``g[t]``."""
        if not self.batch_shape:
            raise InputError("this Gaussian has no batch axis to index; use select() for coordinates")
        times = None if self.times is None else np.asarray(self.times)[index]
        return Gaussian(self.mean[index], self.cov[index], times)

    def __len__(self) -> int:
        if not self.batch_shape:
            raise InputError("this Gaussian has no batch axis")
        return self.batch_shape[0]

    @property
    def std(self) -> Array:
        """Marginal standard deviations, shape (..., P)."""
        return jnp.sqrt(jnp.clip(jnp.diagonal(jnp.asarray(self.cov), axis1=-2, axis2=-1), 0.0))

    def sample(self, key: Array, n: int) -> Array:
        """Draw ``n`` independent samples, shape (n, ..., P).

        x = μ + V Λ^{1/2} z with C = V Λ Vᵀ from ``eigh`` and negative
        (rounding) eigenvalues clipped to zero, so a singular C is fine.
        """
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise InputError(f"the number of samples must be a positive integer, got {n}")
        mean = jnp.asarray(self.mean)
        cov = jnp.asarray(self.cov)
        dtype = jnp.result_type(mean.dtype, cov.dtype, float)
        sym = 0.5 * (cov + jnp.swapaxes(cov, -1, -2)).astype(dtype)
        eigenvalues, vectors = jnp.linalg.eigh(sym)
        root = vectors * jnp.sqrt(jnp.clip(eigenvalues, 0.0))[..., None, :]
        z = jax.random.normal(key, (int(n), *mean.shape), dtype)
        return mean.astype(dtype) + jnp.einsum("...ij,n...j->n...i", root, z)

    def select(self, indices) -> "Gaussian":
        """The marginal law of the coordinates ``indices`` (e.g. the probe points)."""
        idx = np.asarray(indices)
        return Gaussian(self.mean[..., idx], self.cov[..., idx[:, None], idx[None, :]], self.times)

    def at_times(self, times) -> "Gaussian":
        """The same laws labelled with the training ``times`` they describe (one per batch entry)."""
        return Gaussian(self.mean, self.cov, np.asarray(times, np.float64))


def check_aligned(saved_times, predicted_times, *, what: str = "the prediction") -> None:
    """Refuse (one InputError line) predicted laws labelled with other times than the saved ones.

    Times agree when they are equal to 1e-6 relative (a time that went through
    float32 and back still matches); unlabelled predictions (None) are not checked.
    """
    if predicted_times is None or saved_times is None:
        return
    a = np.atleast_1d(np.asarray(saved_times, np.float64))
    b = np.atleast_1d(np.asarray(predicted_times, np.float64))
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-6, atol=1e-9):
        raise InputError(f"{what} is for times {_short(b)} but the ensemble was saved at {_short(a)}; "
                         "predict at result.times (or pick saved times with result.at(t))")


def _short(t: np.ndarray) -> str:
    values = [f"{v:g}" for v in t[:6]]
    return "[" + ", ".join(values) + (", …]" if len(t) > 6 else "]")


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def gaussian_w2(mean1, cov1, mean2, cov2) -> float:
    """The 2-Wasserstein distance between N(m1, C1) and N(m2, C2):

        W2² = |m1 − m2|² + tr C1 + tr C2 − 2 tr (C1^{1/2} C2 C1^{1/2})^{1/2}.

    The covariance part is the Bures distance. Square roots go through
    ``eigh`` with negative rounding eigenvalues clipped, so singular
    covariances are fine. Returns a float ≥ 0.
    """
    m1, m2 = np.atleast_1d(np.asarray(mean1, float)), np.atleast_1d(np.asarray(mean2, float))
    c1, c2 = np.atleast_2d(np.asarray(cov1, float)), np.atleast_2d(np.asarray(cov2, float))
    p = m1.shape[0]
    if m1.shape != (p,) or m2.shape != (p,) or c1.shape != (p, p) or c2.shape != (p, p):
        raise InputError(
            f"gaussian_w2 needs means (P,) and covariances (P, P) of one P, got "
            f"{m1.shape}, {c1.shape}, {m2.shape}, {c2.shape}"
        )
    root1 = _psd_sqrt(c1)
    cross = np.linalg.eigvalsh(root1 @ (0.5 * (c2 + c2.T)) @ root1)
    bures2 = np.trace(c1) + np.trace(c2) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0.0, None)))
    return float(math.sqrt(max(float(np.sum((m1 - m2) ** 2) + bures2), 0.0)))


@dataclasses.dataclass(frozen=True)
class GaussianComparison:
    """Effect sizes, test p-values and a verdict for samples against N(μ, C).

    Effect sizes (report these, and their trend in width, not only p-values):
        mean_error: max_j |m̂_j − μ_j|.
        mean_error_z: max_j |m̂_j − μ_j| / sqrt(C_jj / E), in standard errors
            (C_jj floored at the whitening threshold τ).
        mean_mahalanobis: |z̄|, the mean error in predicted standard deviations
            on the kept directions.
        cov_rel_error: ‖Ĉ − C‖_F / ‖C‖_F with Ĉ the unbiased sample covariance.
        bures_w2: gaussian_w2(m̂, Ĉ, μ, C).
        energy_distance: the energy-distance V-statistic between the
            (sub)sample and draws from the prediction, in whitened units.

    Tests (each p-value is valid under the prediction):
        mean_pvalue: E |z̄|² against χ²_r (exact).
        mahalanobis_ks_pvalue: KS of |z_i|² against χ²_r.
        marginal_ks_pvalue: per-coordinate KS against N(μ_j, C_jj) over the
            coordinates with C_jj > τ, Holm-adjusted; the smallest Holm-adjusted
            p-value is min(1, k · min_j p_j).
        energy_pvalue: permutation test of the energy distance, with B
            permutations chosen so that 1/(B + 1) is a twentieth of the
            per-test threshold (``energy_permutations``).
        support_pvalue: the off-support test of the module docstring; 1.0
            when no direction was dropped (r = P).
        mardia_*_pvalue: normality diagnostics, not part of the verdict.

    The verdict is "inconsistent" when the Bonferroni combination of the
    ``n_tests`` tests rejects, min p < level / n_tests, with n_tests = 4, or 5
    when the support test is active; the false-alarm rate is then ≤ level.
    """

    n_samples: int
    dim: int
    effective_dim: int
    mean_error: float
    mean_error_z: float
    mean_pvalue: float
    cov_rel_error: float
    bures_w2: float
    mahalanobis_ks_pvalue: float
    marginal_ks_pvalue: float
    energy_pvalue: float
    mardia_skewness_pvalue: float
    mardia_kurtosis_pvalue: float
    verdict: str
    level: float
    mean_mahalanobis: float
    energy_distance: float
    support_pvalue: float
    n_tests: int
    whitening_threshold: float
    energy_permutations: int

    @property
    def threshold(self) -> float:
        """The per-test rejection threshold, level / n_tests."""
        return self.level / self.n_tests

    @property
    def smallest_attainable_energy_pvalue(self) -> float:
        """1 / (B + 1): below :attr:`threshold` by construction, so the test can reject."""
        return 1.0 / (self.energy_permutations + 1)

    @property
    def consistent(self) -> bool:
        return self.verdict == "consistent"

    def _repr_markdown_(self) -> str:  # Jupyter: every number, the verdict first
        from jaxlimit.display import markdown_table

        return f"**{self.verdict}**\n\n" + markdown_table(["", ""], self.as_dict().items())

    @property
    def smallest_pvalue(self) -> float:
        """The smallest p-value of the tests the verdict combines (support is 1 when r = P)."""
        return min(self.mean_pvalue, self.mahalanobis_ks_pvalue, self.marginal_ks_pvalue,
                   self.energy_pvalue, self.support_pvalue)

    def as_dict(self) -> dict:
        """All fields as plain Python ints, floats and strings."""
        return dataclasses.asdict(self)


def _checked_inputs(samples, prediction: Gaussian) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    raw = np.asarray(samples)
    if raw.ndim != 2:
        raise InputError(f"samples must have shape (E, P), got {raw.shape}")
    n, p = raw.shape
    if prediction.dim != p:
        raise InputError(f"samples have P = {p} coordinates but the prediction has {prediction.dim}")
    if n < p + 2:
        raise InputError(f"need at least P + 2 = {p + 2} samples to compare with a {p}-dimensional Gaussian, got {n}")
    x = raw.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(
            f"{int(np.sum(~np.all(np.isfinite(x), axis=1)))} of {n} samples are not finite; drop diverged members first"
        )
    mean = np.asarray(prediction.mean, np.float64)
    cov = np.asarray(prediction.cov, np.float64)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise InputError("the predicted mean or covariance is not finite")
    scale = max(float(np.max(np.abs(cov))), np.finfo(float).tiny)
    if np.max(np.abs(cov - cov.T)) > 1e-6 * scale:
        raise InputError("the predicted covariance is not symmetric")
    eps = np.finfo(raw.dtype).eps if np.issubdtype(raw.dtype, np.floating) else np.finfo(float).eps
    return x, mean, 0.5 * (cov + cov.T), float(eps)


def _energy_test(z: np.ndarray, rng: np.random.Generator, max_samples: int, n_permutations: int) -> tuple[float, float]:
    """Two-sample energy test of ``z`` (n, r) against fresh N(0, I_r) draws.

    With equal groups of n (a random subsample of at most ``max_samples``
    members and as many reference draws), the V-statistic is

        T = 2/n² Σ_{x,y} |x − y| − 1/n² Σ_{x,x'} |x − x'| − 1/n² Σ_{y,y'} |y − y'|,

    and its p-value, (1 + #{T_perm ≥ T}) / (1 + B), is exact under
    exchangeability. All B relabellings share one distance matrix D: with a the
    0/1 label vector, Σ_xx = aᵀDa, Σ_xy = aᵀD1 − aᵀDa, Σ_yy = 1ᵀD1 − 2aᵀD1 + aᵀDa.
    """
    n_total, r = z.shape
    n = min(n_total, max_samples)
    if n < n_total:
        z = z[rng.choice(n_total, n, replace=False)]
    pooled = np.concatenate([z, rng.standard_normal((n, r))])
    distances = cdist(pooled, pooled)
    row_sums = distances.sum(axis=1)
    total = row_sums.sum()
    first = np.zeros(2 * n)
    first[:n] = 1.0
    labels = np.vstack([first, rng.permuted(np.tile(first, (n_permutations, 1)), axis=1)])
    within_x = np.einsum("bi,ib->b", labels, distances @ labels.T)
    across = labels @ row_sums - within_x
    within_y = total - 2.0 * labels @ row_sums + within_x
    energy = (2.0 * across - within_x - within_y) / n**2
    pvalue = (1.0 + np.sum(energy[1:] >= energy[0])) / (1.0 + n_permutations)
    return float(energy[0]), float(pvalue)


def _mardia_pvalues(z: np.ndarray) -> tuple[float, float]:
    """Mardia's skewness and kurtosis tests on the kept coordinates.

    With y_i the samples whitened by their own mean and (1/n) covariance,
    b1 = n⁻² Σ_ij (y_iᵀ y_j)³ = Σ_abc (n⁻¹ Σ_i y_ia y_ib y_ic)², n b1 / 6 ~ χ² with
    r(r+1)(r+2)/6 degrees of freedom, and b2 = n⁻¹ Σ_i |y_i|⁴ is asymptotically
    N(r(r+2), 8 r(r+2)/n). Large-sample approximations: diagnostics only.
    """
    n, r = z.shape
    centred = z - z.mean(axis=0)
    sample_cov = centred.T @ centred / n
    eigenvalues, vectors = np.linalg.eigh(sample_cov)
    y = centred @ (vectors / np.sqrt(np.clip(eigenvalues, np.finfo(float).tiny, None)))
    if n * r**3 <= n * n * r:  # third-moment tensor, one slice at a time
        b1 = sum(float(np.sum(((y * y[:, [a]]).T @ y / n) ** 2)) for a in range(r))
    else:  # Gram matrix, in row blocks to bound memory
        b1 = sum(float(np.sum((y[i : i + 512] @ y.T) ** 3)) for i in range(0, n, 512)) / n**2
    skew_dof = r * (r + 1) * (r + 2) / 6
    skew_p = float(sps.chi2.sf(n * b1 / 6.0, skew_dof))
    b2 = float(np.mean(np.sum(y**2, axis=1) ** 2))
    kurt_z = (b2 - r * (r + 2)) / math.sqrt(8.0 * r * (r + 2) / n)
    kurt_p = float(2.0 * sps.norm.sf(abs(kurt_z)))
    return skew_p, kurt_p


def _whiten(x: np.ndarray, mu: np.ndarray, cov: np.ndarray, eps: float, rtol: float):
    """Eigen-directions kept, whitened samples z, the deviations, projections and threshold τ."""
    eigenvalues, vectors = np.linalg.eigh(cov)
    largest = float(eigenvalues[-1])
    if largest <= 0.0 or eigenvalues[0] < -_NOT_PSD_RTOL * largest:
        raise InputError(
            f"the predicted covariance is not positive semi-definite with a positive eigenvalue "
            f"(eigenvalues in [{eigenvalues[0]:.3g}, {largest:.3g}])"
        )
    resolution = _ROUNDING_HEADROOM * eps * max(float(np.max(np.abs(x))), float(np.max(np.abs(mu))))
    threshold = max(rtol * largest, resolution**2)
    kept = eigenvalues > threshold
    if not kept.any():
        raise InputError(
            f"the predicted variances (at most {largest:.3g}) are below the samples' floating-point resolution"
        )
    deviations = x - mu
    projected = deviations @ vectors[:, kept]
    z = projected / np.sqrt(eigenvalues[kept])
    return z, deviations, projected, vectors[:, kept], threshold


def permutations_for(threshold: float) -> int:
    """The permutation count B whose smallest attainable p-value, 1/(B + 1), is a
    twentieth of the threshold the test is used at, so the test can reject."""
    return int(math.ceil(20.0 / threshold)) - 1


def component_pvalues(samples, prediction: Gaussian, *, seed: int = 0, level: float = 0.05,
                      energy: bool = True, max_energy_samples: int = 500, n_permutations: int | None = None,
                      rtol: float = COVARIANCE_RTOL) -> dict[str, float]:
    """The p-value of each test the verdict combines (see :class:`GaussianComparison`).

    ``energy=False`` skips the permutation test (the others are cheap), for
    calibration studies. The permutation count defaults to
    :func:`permutations_for` the per-test threshold level / n_tests.
    """
    x, mu, cov, eps = _checked_inputs(samples, prediction)
    z, deviations, projected, vectors, threshold = _whiten(x, mu, cov, eps, rtol)
    n, p = x.shape
    r = z.shape[1]
    z_bar = z.mean(axis=0)
    out = {"mean_pvalue": float(sps.chi2.sf(n * float(z_bar @ z_bar), r)),
           "mahalanobis_ks_pvalue": float(sps.kstest(np.sum(z**2, axis=1), sps.chi2(r).cdf).pvalue)}
    variances = np.diag(cov)
    tested = np.flatnonzero(variances > threshold)
    marginal = [sps.kstest(deviations[:, j] / math.sqrt(variances[j]), sps.norm.cdf).pvalue for j in tested]
    out["marginal_ks_pvalue"] = float(min(1.0, len(tested) * min(marginal))) if len(tested) else 1.0
    if r < p:
        residual = deviations - projected @ vectors.T
        out["support_pvalue"] = float(sps.chi2.sf(float(np.sum(residual**2)) / threshold, n * (p - r)))
    if energy:
        n_tests = 4 + (r < p)
        b = permutations_for(level / n_tests) if n_permutations is None else int(n_permutations)
        _, out["energy_pvalue"] = _energy_test(z, np.random.default_rng(seed), max_energy_samples, b)
    return out


def compare_gaussian(
    samples,
    prediction: Gaussian,
    *,
    seed: int = 0,
    level: float = 0.05,
    max_energy_samples: int = 500,
    n_permutations: int | None = None,
    rtol: float = COVARIANCE_RTOL,
) -> GaussianComparison:
    """Compare i.i.d. samples (E, P) with the predicted law N(μ, C).

    See :class:`GaussianComparison` for every number returned and the module
    docstring for how a singular C is whitened. ``seed`` fixes the energy
    test's subsample, reference draws and permutations; everything else is
    deterministic. The verdict rejects when the smallest p-value is below
    level / n_tests; the permutation count defaults to
    :func:`permutations_for` that threshold, so the energy test can reject
    (a count too small to reach the threshold is refused). Raises
    :class:`InputError` on non-finite samples (drop diverged members first),
    E < P + 2, mismatched shapes, or a prediction that is not symmetric
    positive semi-definite or has no variance above the samples'
    floating-point resolution.
    """
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie in (0, 1), got {level}")
    if max_energy_samples < 2:
        raise InputError(f"max_energy_samples must be at least 2, got {max_energy_samples}")
    x, mu, cov, eps = _checked_inputs(samples, prediction)
    n, p = x.shape
    z, deviations, projected, vectors, threshold = _whiten(x, mu, cov, eps, rtol)
    r = z.shape[1]
    n_tests = 4 + (r < p)
    if n_permutations is not None and 1.0 / (n_permutations + 1) >= level / n_tests:
        raise InputError(f"n_permutations = {n_permutations} cannot reach the per-test threshold "
                         f"{level / n_tests:.3g}; use at least {permutations_for(level / n_tests)} or None")
    b = permutations_for(level / n_tests) if n_permutations is None else int(n_permutations)
    pvalues = component_pvalues(samples, prediction, seed=seed, level=level, energy=False, rtol=rtol)
    energy, pvalues["energy_pvalue"] = _energy_test(z, np.random.default_rng(seed), max_energy_samples, b)

    z_bar = z.mean(axis=0)
    sample_mean = x.mean(axis=0)
    mean_gap = np.abs(sample_mean - mu)
    mean_error_z = float(np.max(mean_gap / np.sqrt(np.maximum(np.diag(cov), threshold) / n)))
    skew_p, kurt_p = _mardia_pvalues(z)
    sample_cov = np.cov(x, rowvar=False, ddof=1).reshape(p, p)
    verdict = "inconsistent" if min(pvalues.values()) < level / n_tests else "consistent"

    return GaussianComparison(
        n_samples=int(n),
        dim=int(p),
        effective_dim=r,
        mean_error=float(np.max(mean_gap)),
        mean_error_z=mean_error_z,
        mean_pvalue=pvalues["mean_pvalue"],
        cov_rel_error=float(np.linalg.norm(sample_cov - cov) / np.linalg.norm(cov)),
        bures_w2=gaussian_w2(sample_mean, sample_cov, mu, cov),
        mahalanobis_ks_pvalue=pvalues["mahalanobis_ks_pvalue"],
        marginal_ks_pvalue=pvalues["marginal_ks_pvalue"],
        energy_pvalue=pvalues["energy_pvalue"],
        mardia_skewness_pvalue=skew_p,
        mardia_kurtosis_pvalue=kurt_p,
        verdict=verdict,
        level=float(level),
        mean_mahalanobis=float(np.linalg.norm(z_bar)),
        energy_distance=energy,
        support_pvalue=pvalues.get("support_pvalue", 1.0),
        n_tests=n_tests,
        whitening_threshold=float(threshold),
        energy_permutations=b,
    )
