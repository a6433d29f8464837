"""The options experiments share: one name, one meaning, one check per concept.

Every configuration declares its fields with these factories (passing its
own default), so ``--width`` means the hidden width N, ``--ensemble`` the
number of independent networks E, ``--alpha`` the base step α, and so on, in
every command. Light module: no JAX.
"""

from __future__ import annotations

import math

from jaxlimit.config import (
    MAX_SEED, Computed, ConfigError, choice, directory, flag, integer, integers, real, reals, text,
)
from jaxlimit.names import ACTIVATION_NAMES, DEFAULT_LANES, resolve_gamma
from jaxlimit.errors import InputError

MAX_WIDTH = 2**22
MAX_ENSEMBLE = 10**7
MAX_POINTS = 10**5
DATA_KINDS = ("sphere", "gaussian", "teacher", "digits")
DIGITS_DIM = 64
DIGITS_IMAGES = 360
"""Distinct images of digits 0 and 1 in scikit-learn's set (checked by the tests)."""

# Problem ---------------------------------------------------------------------------


def data(default: str = "sphere"):
    return choice(default, "inputs on the sphere or Gaussian with a smooth target, a teacher network's "
                  "target, or scikit-learn's digits 0 vs 1 (shipped with scikit-learn)", DATA_KINDS,
                  group="problem")


def points(default: int):
    return integer(default, "training points M", high=MAX_POINTS, group="problem")


def probes(default: int):
    return integer(default, "probe points Q, recorded but never trained on", low=0, high=MAX_POINTS,
                   group="problem")


def dim(default_synthetic: int | None = None):
    """The field defaults to None: the configuration's ``DEFAULT_DIM`` for synthetic data, 64 for
    digits (:func:`input_dim`); ``default_synthetic``, if given, must equal ``DEFAULT_DIM`` (kept for
    the configurations that pass it)."""
    text = lambda cls: f"{cls.DEFAULT_DIM} for synthetic data, {DIGITS_DIM} for digits"  # noqa: E731
    return integer(None, "input dimension d (digits have 64 pixels)", high=MAX_POINTS, group="problem",
                   computed=Computed(text, lambda config: input_dim(config)))


# Model -----------------------------------------------------------------------------


def width(default: int):
    return integer(default, "hidden width N", high=MAX_WIDTH, group="model")


def widths(default: tuple[int, ...]):
    return integers(default, "hidden widths N, comma-separated", high=MAX_WIDTH, min_len=2, group="model")


def scaling(default: str = "xavier"):
    return text(default, "normalisation N^-γ: xavier (γ = 1/2), mean-field (γ = 1) or a number in [0.5, 1]",
                group="model")


def gammas(default: tuple[float, ...]):
    return reals(default, "normalisation exponents γ in [0.5, 1], comma-separated (γ = 1/2 Xavier, 1 mean field)",
                 low=0.5, high=1.0, low_open=False, group="model")


def activation(default: str = "tanh"):
    return choice(default, "activation σ", ACTIVATION_NAMES, group="model")


def init(default: str = "gaussian"):
    return choice(default, "initial law of (c, w): Gaussian, or uniform with the same variances",
                  ("gaussian", "uniform"), group="model")


def c_std(default: float = 1.0):
    return real(default, "standard deviation of the output weights c at initialisation", high=1e3,
                group="model")


def w_std(default: float = 1.0):
    return real(default, "standard deviation of the input weights w at initialisation", high=1e3,
                group="model")


# Deep networks (neural-tangents' "ntk" parameterisation) -------------------------------


def depth(default: int):
    return integer(default, "hidden layers L", high=32, group="model")


def weight_scale(default: float = 1.0):
    return real(default, "weight scale σ_w: layer l multiplies its N(0, 1) weights by σ_w/√(fan-in)", high=1e3,
                group="model")


def b_std(default: float = 0.0):
    return real(default, "standard deviation σ_b of the biases (0: no biases)", low=0.0, low_open=False,
                high=1e3, group="model")


def kernel_ensemble(default: int):
    return integer(default, "networks whose empirical NTK is recorded at every saved time (0 skips)", low=0,
                   high=100_000, group="ensemble")


def correction_width():
    """``--correction-width``: the width n₀ of the networks that estimate the 1/n correction."""
    return integer(0, "width n₀ of the networks that estimate the 1/n correction of the mean and covariance "
                   "(docs/corrections.md); 0 skips it", low=0, high=4096, group="ensemble")


def check_correction(config) -> None:
    """--correction-width 0 or ≥ 2, --correction-networks even."""
    if config.correction_width == 1:
        raise ConfigError("correction_width", "must be 0 (no correction) or at least 2")
    if config.correction_networks % 2:
        raise ConfigError("correction_networks", f"must be even (antithetic pairs), got {config.correction_networks}")


def correction_networks():
    return integer(2048, "networks of width n₀ behind the 1/n correction (antithetic pairs: even)", low=8,
                   high=MAX_ENSEMBLE, group="ensemble")


def deep_bytes(config, width_: int, members: int) -> float:
    """Results of every member, plus one compiled call (parameters, gradients, Jacobians of the kernel arm)."""
    d = input_dim(config)
    p = config.points + config.probes
    params = d * width_ + (config.depth - 1) * width_ * width_ + width_
    results = 4.0 * members * (config.n_times + 4) * (p + 2)
    call = min(config.memory_gb * 1e9, 4.0 * 6 * params * min(members, 64))
    jacobians = 4.0 * p * params * min(config.kernel_ensemble, 64)
    return results + call + jacobians


def check_deep(config) -> None:
    """Data, compared times, time step, kernel arm and ensemble size of a deep problem."""
    check_data(config)
    check_compare_times(config)
    if config.t_max / config.step >= 2**31:
        raise ConfigError("step", f"makes t_max / dt = {config.t_max / config.step:.3g} steps, more than 2^31")
    if config.kernel_ensemble == 1:
        raise ConfigError("kernel_ensemble", "must be 0 or at least 2 (a kernel's spread needs two networks)")
    p = config.points + config.probes
    if config.ensemble < p + 2:
        raise ConfigError("ensemble", f"must be at least P + 2 = {p + 2} to compare {p} outputs, got {config.ensemble}")


# Training --------------------------------------------------------------------------


def alpha(default: float = 1.0, help: str = "base learning rate α (multiplied by the width scaling)"):
    return real(default, help, high=1e6, group="training")


STEP_SYMBOLS = {"deep.md": "dt", "three-layer.md": "ε", "teacher-student.md": "η", "feature-learning.md": "dt"}
"""What each docs page calls --step: one meaning (the training time of one step), three symbols."""


def step(default: float | None, doc: str, what: str = "gradient descent and SGD", *, high: float = 10.0,
         computed: Computed | None = None):
    """The time step: the training time of one step of ``what``, step k reaching t = k · step at every
    width (unlike the two-layer clock t = k / N, whose commands have no --step). ``doc`` names the docs
    page, whose symbol for it (:data:`STEP_SYMBOLS`) the help quotes; ``computed`` says what a None
    default means."""
    symbol = STEP_SYMBOLS[doc]
    return real(default, f"training time of one step of {what} ({symbol} in docs/{doc}): step k reaches "
                f"t = k · step at every width", high=high, group="training", nullable=computed is not None,
                computed=computed)


_METHOD_WORDS = {"online": "online SGD (the papers')", "minibatch": "minibatch SGD",
                 "fullbatch": "full-batch gradient descent"}


def method(default: str = "online", choices=("online", "minibatch", "fullbatch")):
    words = [_METHOD_WORDS[c] for c in choices]
    return choice(default, ", ".join(words[:-1]) + " or " + words[-1], tuple(choices), group="training")


def batch_size(default: int = 4):
    return integer(default, "samples per minibatch step", high=MAX_POINTS, group="training")


def loss(default: str = "squared", choices=("squared", "huber")):
    return choice(default, "training loss", tuple(choices), group="training")


def t_max(default: float, help: str = "training time reached (steps = ⌊N t⌋ for two layers)"):
    return real(default, help, high=1e4, group="training")


def n_times(default: int = 20):
    return integer(default, "saved times after t = 0, evenly spaced up to --t-max", high=10_000,
                   group="training")


# Ensemble --------------------------------------------------------------------------


def ensemble(default: int, help: str = "number of independent networks E"):
    return integer(default, help, high=MAX_ENSEMBLE, group="ensemble")


def arm_ensemble(default: int, arm: str, purpose: str):
    """The size of a contrast arm, ``--<arm>-ensemble``: 0 skips the arm."""
    return integer(default, f"{arm} networks per width {purpose}; 0 skips them", low=0, high=MAX_ENSEMBLE,
                   group="ensemble")


def chunk_size():
    """Members per compiled call, as ``Execution.chunk_size`` of ``run_ensemble`` (its default is only known when
    the run starts: the lanes depend on the backend and the model; ``result.config["lanes"]``)."""
    return integer(None, "members per compiled call, rounded up to whole blocks of lanes on every device",
                   high=MAX_ENSEMBLE, group="ensemble",
                   computed=Computed(f"one block of lanes per device: at most {DEFAULT_LANES['cpu']} members on "
                                     f"a CPU, {DEFAULT_LANES['gpu']} on an accelerator, fewer for a small "
                                     "ensemble"))


def memory_gb(default: float = 2.0):
    return real(default, "memory budget of one compiled call, in GB", low=0.01, high=4096, low_open=False,
                group="ensemble")


# Limits ----------------------------------------------------------------------------


def particles(default: int, what: str = "the mean-field limit's quadrature of the initial law"):
    """Particles of a limit's quadrature (refused by the memory estimate when absurd)."""
    return integer(default, f"particles K of {what} (a Sobol' net: rounded up to a power of two)", low=4,
                   high=2**40, group="limit")


# Verdict ---------------------------------------------------------------------------


def level(default: float = 0.05):
    return real(default, "false-alarm rate of the whole verdict", high=0.5, group="verdict")


def halfway_times(config) -> tuple[float, ...]:
    """0, t_max/2 and t_max: the verdict times of the two-layer (Xavier, mean-field) commands."""
    return (0.0, config.t_max / 2.0, config.t_max)


def unit_times(config) -> tuple[float, ...]:
    """0, 1 and t_max (or 0 and t_max when t_max ≤ 1): the verdict times of the deep commands."""
    return tuple(sorted({0.0, min(1.0, config.t_max), config.t_max}))


HALFWAY = Computed("0, t_max/2 and t_max", halfway_times)
UNIT = Computed("0, min(1, t_max) and t_max", unit_times)


def compare_times(default: Computed = HALFWAY):
    """``default`` says which times are compared when none are given (its text is the help's)."""
    return reals(None, "times where the verdict is taken, Bonferroni-corrected over them", high=1e4, max_len=16,
                 group="verdict", computed=default)


# Output and randomness ---------------------------------------------------------------


def seed(default: int = 0):
    return integer(default, "the run's seed: every random stream (members, data, tests) derives from it",
                   low=0, high=MAX_SEED, group="output")


def data_seed():
    return integer(None, "seed of the data alone, so another --seed can keep the problem fixed",
                   low=0, high=MAX_SEED, group="output", computed=Computed("--seed", lambda config: config.seed))


def out(default: str):
    return directory(default, "report directory (written only when the run succeeds)", report=True)


def checkpoint():
    return directory(None, "save finished work here after every segment; rerunning resumes", nullable=True)


def fresh():
    return flag("with --checkpoint: discard this run's saved work and start over", group="output")


def no_progress():
    return flag("hide the progress bar", group="output")


# Checks shared by the experiments --------------------------------------------


def check_data(config) -> None:
    """The data's options together: digits have 64 pixels and a fixed number of distinct images."""
    if config.data == "digits":
        if config.dim is not None and config.dim != DIGITS_DIM:
            raise ConfigError("dim", f"does not apply to --data digits (images have {DIGITS_DIM} pixels), "
                              f"got {config.dim}")
        if config.points + config.probes > DIGITS_IMAGES:
            raise ConfigError("points", f"plus --probes must be at most the {DIGITS_IMAGES} distinct images of "
                              f"digits 0 and 1, got {config.points} + {config.probes}")


def check_batch(config) -> None:
    """A minibatch draws from the training points: at most --points of them."""
    if config.method == "minibatch" and config.batch_size > config.points:
        raise ConfigError("batch_size", f"must be at most --points = {config.points}, got {config.batch_size}")


def check_compare_times(config) -> None:
    """The compared times lie in the trained horizon."""
    if config.compare_times is not None and max(config.compare_times) > config.t_max:
        raise ConfigError("compare_times", f"must lie in [0, t_max = {config.t_max:g}], "
                          f"got {', '.join(f'{t:g}' for t in config.compare_times)}")


def check_scaling(config) -> None:
    """--scaling is one of the named γ or a number in [1/2, 1]."""
    try:
        resolve_gamma(config.scaling)
    except InputError as e:
        raise ConfigError("scaling", str(e).replace("unknown scaling", "is unknown:", 1)) from None


def check_ensemble_size(config, reason: str | None = None) -> None:
    """``--ensemble`` must be at least P + 2 to compare (or regress on) the P outputs."""
    p = config.points + config.probes
    if config.ensemble < p + 2:
        raise ConfigError("ensemble", f"must be at least P + 2 = {p + 2} {reason or f'to compare {p} outputs'}, "
                          f"got {config.ensemble}")


def check_steps(config, width_: int, t: float | None = None) -> None:
    """⌊N t⌋ steps must fit the engine's 32-bit step counter."""
    t = config.t_max if t is None else t
    if width_ * t >= 2**31:
        raise ConfigError("t_max", f"needs ⌊N t⌋ = {width_ * t:.3g} steps at width {width_}, more than 2^31; "
                          "shorten the horizon")


def input_dim(config) -> int:
    """d: 64 for digits, else --dim (default 4)."""
    if config.data == "digits":
        return DIGITS_DIM
    return config.DEFAULT_DIM if config.dim is None else config.dim


def two_layer_bytes(config, width_: int, members: int, n_saved: int) -> float:
    """Peak memory of a two-layer run: results, one compiled call, data and kernels."""
    d = input_dim(config)
    p = config.points + config.probes
    results = 4.0 * members * (n_saved + 1) * (p + 2)
    member = 4.0 * (6 * width_ * (d + 1) + 3 * max(config.points, p) * width_)
    budget = min(config.memory_gb * 1e9, max(member, 1.0) * members)
    kernels = 8.0 * (p * p * 8 + p * d)
    return results + budget + kernels


def _sobol_size(n: int) -> int:
    return 2 ** max(1, math.ceil(math.log2(n)))


def particle_flow_bytes(config, n_particles: int, n_feature_times: int = 2) -> float:
    """Peak memory of the mean-field limit: K particles (rounded up to a power of two) through
    an adaptive Runge–Kutta solve in float64 (about a dozen copies of the state plus the field's
    (K, M) intermediates), and the particles kept at the feature times."""
    k = _sobol_size(n_particles)
    d, m, p = input_dim(config), config.points, config.points + config.probes
    return 1.5 * 8.0 * k * (12 * (d + 1) + 4 * m + 2 * p + n_feature_times * (d + 1))


def influence_bytes(config, n_particles: int, n_times: int, batch: int = 8, max_steps: int = 4096) -> float:
    """Peak memory of the predicted covariance: the forward solve's checkpoints (≈ √(2·max_steps)
    states), the influence functions (n_times·P per particle) and ``batch`` backward solves at once."""
    k = _sobol_size(n_particles)
    d, m, p = input_dim(config), config.points, config.points + config.probes
    checkpoints = math.sqrt(2 * max_steps) + 1
    per_particle = checkpoints * (d + 1) + 2 * n_times * p + batch * (12 * (d + 1) + 6 * m + 2 * p)
    return 1.5 * 8.0 * k * per_particle


__all__ = [name for name in dir() if not name.startswith("_")]


def check_parameterised_ensemble(config, errors_over: str) -> None:
    """The coordinate check's and the learning-rate sweep's shared checks: at least two networks (an
    interval is over networks) and every width representable in float32 under the parameterisation."""
    from jaxlimit.config import ConfigError
    from jaxlimit.errors import InputError
    from jaxlimit.models.parameterisation import check_representable, get_parameterisation

    if config.ensemble < 2:
        raise ConfigError("ensemble", f"must be at least 2 ({errors_over}), got {config.ensemble}")
    try:
        check_representable(get_parameterisation(config.parameterisation), config.widths, config.optimizer)
    except InputError as e:
        raise ConfigError("widths", str(e)) from None
