"""``jaxlimit committee``: config → students (exact order-parameter chain) → ODE and linear noise →
comparison → Report (docs/committee.md).

1. The limit: the order-parameter ODEs from the mean start (Q̄, R̄) = (s² I, 0) and the
   linear-noise covariance Σ(α)/D of (ε_g, Q, R), started from the random start's Σ(0).
2. The students: E students from w ~ N(0, s² I_D) against an orthonormalised teacher with overlaps
   T, simulated by the exact Markov chain of (Q, R) (jaxlimit.training.committee; O((K+M)³) per
   step whatever D; the direct D-dimensional simulation agrees with it in law, tests/test_committee.py).
3. The verdict ``fluctuations_before_escape``: the CLT of (Q, R) against the predicted Gaussian
   at the compared times (Bonferroni, each a calibrated compare_gaussian), chosen before the
   plateau's escape: the mean path from the symmetric start stays on the plateau while each student
   leaves it at a random time ≈ ln D/(2λ), where the expansion fails (docs/committee.md).
4. Measured, reported with the prediction: the plateau height, λ, the escape times against
   ln D/(2λ), η_max and the asymptotic rate (K = M, T = I), the noise floor (K > M, T = I, σ > 0).
5. The verdict ``fluctuations_after_escape`` (K = M, T = I, σ > 0), when --alpha-max is long enough:
   once every student has escaped and relaxed (the last escape plus ln D/(2r), r the decay rate at the
   specialised fixed point X*), the students' (Q, R), each in the teachers' order
   (``canonical_order``), against the stationary law N(X*, Σ*/D), J Σ* + Σ* Jᵀ + B = 0.
   With --alpha-v > 0 the second layer v is an order parameter of the ODE, the chain and the
   verdict; the plateau and the noise floor (derived for v = v* = 1 fixed) are then not reported,
   nor when --init-v ≠ 1. With --activation relu or linear the ODE, its fluctuations and the students
   use that g (relu: ``limits.committee.relu_integrals``); η_max, the asymptotic rate, the plateau
   and the noise floor are derived here for erf only and are not computed (never an erf number for
   another g); the compared times are then a quarter and all of --alpha-max / 10.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.experiments.committee import figures
from jaxlimit.experiments.committee.config import SAVED_TIMES, CommitteeConfig
from jaxlimit.experiments.problem import timed
from jaxlimit.limits import committee as cm
from jaxlimit.report import Report
from jaxlimit.stats import Gaussian, median_estimate
from jaxlimit.stats.verdict import resolution, verdict_over_times
from jaxlimit.streams import stream_key
from jaxlimit.training import committee as tc
from jaxlimit.training.committee_fixed_point import AfterEscape, after_escape_clt

ESCAPE_FRACTION = 0.5
"""A student has escaped the plateau once its ε_g falls below this fraction of the plateau height."""
COMPARE_FRACTION = 0.25
"""The last compared time is this fraction of the predicted plateau length ln D/(2λ): the unstable
mode's variance e^{2λα}/D is then D^{-3/4} of its O(1) escape size."""


def teacher_overlaps(M: int, c: float) -> np.ndarray:
    return (1.0 - c) * np.eye(M) + c * np.ones((M, M))


@dataclasses.dataclass(frozen=True)
class Plateau:
    """The symmetric plateau (K = M ≥ 2, T = I).

    Attributes:
        fixed_point: ``limits.committee.escape_rate``'s plateau: its ε_g, order parameters and escape rate λ.
        small_lr_eps: the plateau's ε_g as η → 0.
        length_prediction: ln D / (2λ), the predicted escape time.
    """

    fixed_point: dict
    small_lr_eps: float
    length_prediction: float


@dataclasses.dataclass(frozen=True)
class NoiseFloor:
    """The noise floor (K > M, T = I, σ > 0): the ODE's specialised fixed point against Goldt et al.

    Attributes:
        ode_fixed_point_eps: ε_g at the specialised fixed point of the ODE.
        goldt_formula: (σ²η/2π)(L + M/√3).
        ratio: their ratio (O(η) from 1).
        fixed_point_stable: whether the drift's Jacobian there has only negative eigenvalues.
    """

    ode_fixed_point_eps: float
    goldt_formula: float
    ratio: float
    fixed_point_stable: bool


@dataclasses.dataclass(frozen=True)
class Phenomena:
    """What the ODE predicts beyond the law: η_max, the asymptotic rate, the plateau and the noise floor.

    Attributes:
        eta_max: the learning rate above which the perfect student is unstable (None: not computed,
            --activation other than erf).
        asymptotic_rate: the convergence rate at Q = R = T (None: not computed).
        plateau: the symmetric plateau, None unless K = M ≥ 2 and T = I.
        noise_floor: the noise floor, None unless K > M, T = I and σ > 0.
    """

    eta_max: float | None
    asymptotic_rate: float | None
    plateau: Plateau | None
    noise_floor: NoiseFloor | None


@dataclasses.dataclass(frozen=True)
class Students:
    """The finite students' observables (ε_g, then (Q, R) flattened) at the saved times.

    Attributes:
        outputs: (E, A, P), E the finite students.
        eps: ε_g, (E, A).
        n: how many stayed finite.
    """

    outputs: np.ndarray
    eps: np.ndarray
    n: int


@dataclasses.dataclass(frozen=True)
class Escape:
    """The students' escape from the plateau (a student has escaped once ε_g < ``threshold_eps``,
    counted from the last compared time on).

    Attributes:
        threshold_eps: ESCAPE_FRACTION × the plateau's ε_g.
        fraction_escaped: the fraction of students that escaped by --alpha-max.
        median, median_interval: the median escape time and its order-statistic interval (None: censored).
        quartiles: the lower and upper quartiles (None: censored).
        predicted_ln_D_over_2_lambda: the predicted escape time ln D / (2λ).
        resolution_in_alpha: the spacing of the saved times.
        times: each student's escape time (+inf: not escaped by --alpha-max).
    """

    threshold_eps: float
    fraction_escaped: float
    median: float | None
    median_interval: list
    quartiles: list
    predicted_ln_D_over_2_lambda: float
    resolution_in_alpha: float
    times: np.ndarray

    def as_dict(self) -> dict:
        """The reported fields (all but the times)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "times"}


def require_x64(command: str) -> None:
    """The ODEs are integrated in float64: refuse before computing without x64."""
    if not jax.config.jax_enable_x64:
        raise InputError(f"{command} integrates its ODEs in float64; enable it first with "
                         "jax.config.update('jax_enable_x64', True) (the command line does)")


def fixed_unit_second_layer(config: CommitteeConfig) -> bool:
    """Whether v = v* = 1 throughout (the soft committee machine the plateau and noise-floor results assume)."""
    return config.alpha_v == 0.0 and config.init_v == 1.0


ACTIVATION_LABELS = {"erf": "erf(·/√2)", "relu": "ReLU", "linear": "linear"}


def phenomena(config: CommitteeConfig, T: np.ndarray) -> Phenomena:
    """η_max (refusing --alpha at or above it), the asymptotic rate (both at the perfect student, v = v* = 1,
    v trained at --alpha-v), the plateau and the noise floor (the last two only with v = v* = 1 fixed);
    all four derived for erf(·/√2) and not computed (None) for another --activation."""
    K, M, D, eta, sigma = config.students, config.teachers, config.dim, config.alpha, config.noise
    if config.activation != "erf":
        return Phenomena(None, None, None, None)
    eta_max = cm.max_learning_rate(T, lr_v=config.alpha_v)
    if eta >= eta_max:
        raise InputError(f"--alpha {eta:g} is at or above η_max = {eta_max:.4g}, where the perfect student "
                         "becomes unstable; choose a smaller --alpha")
    rate = cm.convergence_rate(T, eta, lr_v=config.alpha_v)
    plateau = noise_floor = None
    if not fixed_unit_second_layer(config):
        return Phenomena(eta_max, rate, plateau, noise_floor)
    if K == M and config.teacher_overlap == 0.0 and K >= 2:
        fixed_point = cm.escape_rate(K, eta, sigma)
        plateau = Plateau(fixed_point, cm.plateau_theory(K)["eps"], cm.plateau_length(D, fixed_point["escape_rate"]))
    if K > M and config.teacher_overlap == 0.0 and sigma > 0:
        fp = cm.specialised_fixed_point(M, K - M, eta, sigma)
        theory = cm.noise_floor_theory(M, K - M, eta, sigma)
        noise_floor = NoiseFloor(fp["eps"], theory, fp["eps"] / theory, fp["leading_eigenvalue"] < 0)
    return Phenomena(eta_max, rate, plateau, noise_floor)


def compared_times(config: CommitteeConfig, plateau: Plateau | None) -> tuple[list, np.ndarray, list[int], float]:
    """The compared α (a quarter and all of the last, COMPARE_FRACTION of the plateau's length or a tenth of
    --alpha-max), the saved α, the compared indices and the last compared α."""
    if plateau is not None:
        last = min(COMPARE_FRACTION * plateau.length_prediction, config.alpha_max)
    else:
        last = config.alpha_max / 10
    compare = sorted({round(last / 4, 6), round(last, 6)})
    times = np.unique(np.concatenate([np.linspace(0.0, config.alpha_max, SAVED_TIMES + 1), compare]))
    return compare, times, [int(np.searchsorted(times, a)) for a in compare], last


def committee_law(config: CommitteeConfig, T: np.ndarray, times: np.ndarray, integrals=None, *,
                  until: float | None = None) -> tuple[Gaussian, np.ndarray, np.ndarray]:
    """The ODE from the mean start (Q̄, R̄) = (s² I, 0), v = --init-v, with the linear-noise covariance
    Σ(α)/D, started from the random start's Σ(0) (v's part zero: every student starts at the same v): the
    law of (ε_g, Q, R, and v when trained) at the ``times`` up to ``until`` (all when None), and the mean
    path (A, P) and the predicted standard deviations (A, P) at every time, NaN after ``until``.

    The covariance stops at ``until`` (the last compared time): after it the students escape, which the
    expansion does not describe, while the mean path from the symmetric start stays on the plateau and
    its unstable variance grows like e^{2λα}, which makes the adaptive solve of Σ most of the command's
    time on a long run."""
    K, s0 = config.students, config.init_std
    cov0 = cm.gaussian_start_covariance(K, T, s0)
    if config.alpha_v > 0:
        cov0 = np.pad(cov0, (0, K))
    kw = dict(lr=config.alpha, noise_std=config.noise, v0=np.full(K, config.init_v), lr_v=config.alpha_v,
              integrals=integrals)
    start = (s0**2 * np.eye(K), np.zeros((K, config.teachers)), T)
    n = len(times) if until is None else int(np.searchsorted(times, until, side="right"))
    law = cm.committee_ode(*start, dim=config.dim, initial_cov=cov0, **kw).predict(times[:n])
    mean = np.asarray(law.mean)
    sd = np.sqrt(np.clip(np.diagonal(np.asarray(law.cov), axis1=-2, axis2=-1), 0, None))
    if n < len(times):
        path = np.asarray(cm.committee_ode(*start, dim=None, **kw).predict(times[n:]).mean)
        mean = np.concatenate([mean, path])
        sd = np.concatenate([sd, np.full_like(path, np.nan)])
    return law, mean, sd


def train_students(config: CommitteeConfig, T: np.ndarray, times: np.ndarray, warnings: list,
                   integrals=None) -> Students:
    """E students from the Gaussian start by the exact order-parameter chain; the diverged ones left out."""
    K, D = config.students, config.dim
    ids = np.arange(config.ensemble)
    Q0, R0 = jax.vmap(lambda k: tc.gaussian_start_order_parameters(k, K, T, D, config.init_std))(
        tc.student_keys(stream_key(config.seed, "starts"), ids))
    runs = tc.train_order_parameters(Q0, R0, T, lr=config.alpha, noise_std=config.noise, D=D, alphas=times,
                                     root=stream_key(config.seed, "members"), v0=np.full(K, config.init_v),
                                     lr_v=config.alpha_v, integrals=integrals)
    finite = runs["finite"]
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} of {config.ensemble} students diverged and are excluded")
    if finite.sum() < 20:
        raise InputError("fewer than 20 students stayed finite; reduce --alpha")
    v = jnp.asarray(runs["v"][finite]) if config.alpha_v > 0 else None
    X = np.asarray(cm.flatten(jnp.asarray(runs["Q"][finite]), jnp.asarray(runs["R"][finite]), v))
    outputs = np.concatenate([runs["eps"][finite][..., None], X], axis=-1)  # (E, A, P)
    return Students(outputs, runs["eps"][finite], int(finite.sum()))


def escape_study(students: Students, plateau: Plateau, times: np.ndarray, last: float) -> Escape:
    """Each student's first α ≥ ``last`` with ε_g below ESCAPE_FRACTION of the plateau, and their median."""
    thresh = ESCAPE_FRACTION * plateau.fixed_point["plateau_eps"]
    after = times >= last
    first = cm.escape_times(students.eps[:, after], times[after], thresh)  # +inf: not escaped by α_max
    med = median_estimate(first)  # over all students, the censored ones counted as later than any
    return Escape(threshold_eps=thresh, fraction_escaped=float(np.isfinite(first).mean()),
                  median=med.value if np.isfinite(med.value) else None,
                  median_interval=[v if np.isfinite(v) else None for v in med.interval],
                  quartiles=[float(q) if np.isfinite(q) else None
                             for q in np.quantile(first, [0.25, 0.75], method="lower")],
                  predicted_ln_D_over_2_lambda=plateau.length_prediction,
                  resolution_in_alpha=float(times[1] - times[0]), times=first)


def after_escape(config: CommitteeConfig, students: Students, escape: Escape, times: np.ndarray) -> AfterEscape:
    """The students' (Q, R) at --alpha-max against N(X*, Σ*/D) when every student has escaped and relaxed
    (``after_escape_clt``); otherwise the reason it is not compared."""
    return after_escape_clt(students.outputs[:, -1, 1:], escape.times, float(times[-1]), M=config.teachers,
                            lr=config.alpha, noise_std=config.noise, dim=config.dim, level=config.level,
                            seed=config.seed)


def run(config: CommitteeConfig) -> Report:
    require_x64("committee")
    T = teacher_overlaps(config.teachers, config.teacher_overlap)
    # None for erf: the code path (and the bits) of the command before --activation existed
    integrals = None if config.activation == "erf" else cm.activation_integrals(config.activation)
    timing: dict = {}
    warnings: list[str] = []
    with timed(timing, "phenomena"):
        phen = phenomena(config, T)
    compare, times, idx, last = compared_times(config, phen.plateau)
    with timed(timing, "limit"):
        law, mean, sd = committee_law(config, T, times, integrals, until=max(compare))
    with timed(timing, "students"):
        students = train_students(config, T, times, warnings, integrals)
    with timed(timing, "comparison"):
        # (Q, R) only: ε_g is a function of them, so (ε_g, Q, R)'s predicted covariance is singular
        # along ε_g − ∇ε_g·X, a direction the students leave by O(1/D) second-order terms
        coords = np.arange(1, students.outputs.shape[-1])
        n = law.mean.shape[0]  # the times up to the last compared one
        tv = verdict_over_times(students.outputs[:, :n, 1:], law.select(coords), idx, times=times[:n],
                                level=config.level, seed=config.seed)
    escape = escape_study(students, phen.plateau, times, last) if phen.plateau is not None else None
    late = (after_escape(config, students, escape, times)
            if escape is not None and config.noise > 0 else None)
    names = cm.observable_names(config.students, config.teachers, second_layer=config.alpha_v > 0)
    metrics = _metrics(phen, students, tv, escape, times, idx, mean, sd, names, last)
    if config.alpha_v > 0:
        metrics["second_layer"] = _second_layer_metrics(config, students, mean, names, times, idx)
    verdict = {"fluctuations_before_escape": tv.verdict}
    if late is not None:
        metrics["after_escape"] = late.as_dict()
        if late.verdict is not None:
            verdict["fluctuations_after_escape"] = late.verdict.verdict
    layer = "" if fixed_unit_second_layer(config) else f", v(0) = {config.init_v:g}, η_v = {config.alpha_v:g}"
    facts = dict(model=f"K = {config.students}, M = {config.teachers}, {ACTIVATION_LABELS[config.activation]} "
                       f"committee{layer}",
                 members=students.n,
                 data=f"online x ~ N(0, I_{config.dim}), η = {config.alpha:g}, σ = {config.noise:g}")
    figs = {"committee": figures.committee_figure(
        times, students.outputs, mean, sd, names, compare, escape, facts,
        **({} if fixed_unit_second_layer(config) and config.activation == "erf" else
           {"no_plateau": "no plateau study\n(it assumes v = 1 fixed)" if config.activation == "erf" else
            "no plateau study\n(derived for erf only)"}))}
    ens_mean, ens_se = _ensemble_mean(students)
    tables = {"trajectory": {"alpha": times.tolist(), "ode_eps": mean[:, 0].tolist(),
                             "lna_sd_eps": sd[:, 0].tolist(), "ensemble_mean_eps": ens_mean[:, 0].tolist(),
                             "ensemble_se_eps": ens_se[:, 0].tolist()}}
    return Report(
        experiment=config.NAME,
        config={"limit": "Saad–Solla / Goldt order-parameter ODEs (closed forms, diffrax Tsit5 through solve_ode) "
                         "with the linear-noise covariance Σ(α)/D"
                         + (", second layer v trained" if config.alpha_v > 0 else "")
                         + ("" if config.activation == "erf" else f", g = {config.activation}"
                            + (" (I4's 4-d orthant probability by Plackett's integral, Gauss–Legendre)"
                               if config.activation == "relu" else "")),
                "students": "exact order-parameter Markov chain", "T": T.tolist()},
        metrics=metrics, verdict=verdict, timing=timing, figures=figs,
        tables=tables, arrays={"alpha": times, "outputs": students.outputs, "ode_mean": mean, "lna_sd": sd},
        summary=_summary(config, phen, students, tv, escape, compare, late), warnings=warnings,
    )


def _ensemble_mean(students: Students) -> tuple[np.ndarray, np.ndarray]:
    """The students' mean of every observable at every α and its standard error, (A, P) each."""
    return students.outputs.mean(0), students.outputs.std(0, ddof=1) / math.sqrt(students.outputs.shape[0])


def _metrics(phen: Phenomena, students: Students, tv, escape: Escape | None, times, idx, mean, sd, names,
             last: float) -> dict:
    metrics: dict = {}
    if phen.eta_max is not None:
        metrics.update(eta_max=phen.eta_max, asymptotic_rate=phen.asymptotic_rate)
    if phen.plateau is not None:
        p = phen.plateau
        metrics["plateau"] = {**p.fixed_point, "plateau_eps_small_lr_theory": p.small_lr_eps,
                              "plateau_length_prediction": p.length_prediction,
                              "ode_eps_at_last_compared_time": float(mean[int(np.searchsorted(times, last)), 0])}
    if phen.noise_floor is not None:
        metrics["noise_floor"] = dataclasses.asdict(phen.noise_floor)
    ens_mean, ens_se = _ensemble_mean(students)
    metrics["compared_times"] = [float(times[i]) for i in idx]
    metrics["fluctuations"] = tv.as_dict()
    metrics["mean_gap_eps_at_compared_times"] = [
        {"alpha": float(times[i]), "gap": float(ens_mean[i, 0] - mean[i, 0]), "se": float(ens_se[i, 0]),
         "resolution": resolution(float(ens_mean[i, 0] - mean[i, 0]), float(ens_se[i, 0])),
         "predicted_sd_of_one_student": float(sd[i, 0])} for i in idx]
    metrics["students"] = students.n
    metrics["observables"] = names
    metrics["simulation"] = "exact order-parameter Markov chain (O((K+M)^3) per step, any D)"
    if escape is not None:
        metrics["escape"] = escape.as_dict()
    return metrics


def _second_layer_metrics(config: CommitteeConfig, students: Students, mean, names, times, idx) -> dict:
    """η_v, v(0), and per unit the students' mean v (± SE) against the ODE's at the compared α and at
    --alpha-max (there, after the plateau's escape, the ODE from the symmetric mean start is still on the
    plateau while the students have left it: a gap is expected)."""
    cols = [names.index(f"v{k}") for k in range(config.students)]
    ens_mean, ens_se = _ensemble_mean(students)

    def at(i):
        return {"alpha": float(times[i]), "ode_v": mean[i, cols].tolist(), "ensemble_v": ens_mean[i, cols].tolist(),
                "ensemble_v_se": ens_se[i, cols].tolist()}

    return {"lr_v": config.alpha_v, "init_v": config.init_v, "at_compared_times": [at(i) for i in idx],
            "at_alpha_max": at(len(times) - 1)}


def _summary(config: CommitteeConfig, phen: Phenomena, students: Students, tv, escape: Escape | None,
             compare, late: AfterEscape | None = None) -> list[str]:
    K, M, D, eta, sigma = config.students, config.teachers, config.dim, config.alpha, config.noise
    summary = [
        f"{students.n} students, K = {K}, M = {M}, D = {D}, η = {eta:g}, σ = {sigma:g}, α ≤ {config.alpha_max:g} "
        "(exact order-parameter chain).",
        f"CLT of (Q, R) against the ODE ± linear noise at α = {', '.join(f'{a:g}' for a in compare)}: "
        f"**{tv.verdict}** (level {config.level:g}).",
    ]
    if phen.eta_max is not None:
        summary.append(f"η_max = {phen.eta_max:.4g}; asymptotic rate at Q = R = T: {phen.asymptotic_rate:.4g}.")
    else:
        summary.append(f"Activation {config.activation}: η_max, the asymptotic rate, the plateau, the escape times "
                       "and the noise floor are derived here for erf only and not computed; the compared times "
                       f"are a quarter and all of α_max/10 = {config.alpha_max / 10:g}.")
    if config.alpha_v > 0:
        summary.append(f"Second layer trained at η_v = {config.alpha_v:g} from v = {config.init_v:g} (η_max and the "
                       "rate with v trained; the plateau and noise-floor results assume v = 1 fixed and are "
                       "not reported).")
    elif config.init_v != 1.0:
        summary.append(f"Second layer fixed at v = {config.init_v:g} (the plateau and noise-floor results assume "
                       "v = 1 and are not reported).")
    if phen.plateau is not None:
        p = phen.plateau
        summary.append(f"Plateau ε_g = {p.fixed_point['plateau_eps']:.5g} (η → 0: {p.small_lr_eps:.5g}); "
                       f"escape rate λ = {p.fixed_point['escape_rate']:.4g}; ln D/(2λ) = "
                       f"{p.length_prediction:.3g}; measured median escape "
                       f"{escape.median if escape.median is None else round(escape.median, 2)} "
                       f"({100 * escape.fraction_escaped:.0f} % escaped by α = {config.alpha_max:g}).")
    if late is not None:
        summary.append(f"After the escape, CLT of (Q, R) at the fixed point (ε_g = {late.fixed_point_eps:.4g}) "
                       f"at α = {late.alpha:g}: **{late.verdict.verdict}**." if late.verdict is not None else
                       f"After the escape: not compared ({late.reason}).")
    if phen.noise_floor is not None:
        nf = phen.noise_floor
        summary.append(f"Noise floor: ODE fixed point ε* = {nf.ode_fixed_point_eps:.4g}, Goldt et al. "
                       f"(σ²η/2π)(L + M/√3) = {nf.goldt_formula:.4g} (ratio {nf.ratio:.3f}; O(η) apart).")
    return summary
