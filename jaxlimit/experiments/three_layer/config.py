"""Options of ``jaxlimit three-layer``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import (
    Config, ConfigError, choice, flag, integer, integers, physical_memory_bytes, real, reals, vector,
)
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

MEMBER_BUDGET = 16 * 512**2
"""Coupled networks at width n: MEMBER_BUDGET / n², clipped to [--widest-ensemble, --ensemble]
(equal work per width below the cap)."""

ZERO_AT_ZERO = ("tanh", "erf", "relu", "gelu", "identity", "abs", "sin", "leaky_relu")
"""Activations with φ(0) = 0 (checked against jaxlimit.activations by the tests): a degenerate start
is stationary only when φ2 is one of them."""

GROUP_INIT = "initial law"
GROUP_SPREAD = "spread across seeds and the limit"
GROUP_REFINE = "step-size refinement"


def members_per_width(widths, most: int, fewest: int) -> list[int]:
    """MEMBER_BUDGET / n² networks at each width n, clipped to [fewest, most]."""
    return [min(max(MEMBER_BUDGET // (n * n), fewest), max(most, fewest)) for n in widths]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ThreeLayerConfig(Config):
    """Three-layer mean-field networks (Pham & Nguyen; docs/three-layer.md), n1 = n2 = n, trained with
    the per-layer rates step·ξ1·n, step·ξ2·n², step·ξ3·n so that t = k·step at every width. Four
    measurements on one problem:

    * Width, by coupling (docs/three-layer.md#width-by-coupling): member i at every width is the leading
      sub-block of member i at the widest width and sees the same samples; the output and weight gaps
      to the widest network should fall like n^-1/2 (fitted against n and against n_eff = (1/n − 1/N)^-1,
      the one to read). The widest network's loss shows global convergence.
    * Spread across seeds (docs/three-layer.md#spread-across-seeds): full-batch ensembles with one
      independent stream per width; their spread should fall like n^-1/2. (Under SGD each seed has its
      own sample noise, O(√step), and the spread levels off: reported beside it.)
    * The limit, by a proxy: --proxy-ensemble full-batch networks of width --proxy-width at the same step
      estimate the deterministic limit; its seed covariance × proxy width / n predicts the law of a
      width-n network. The spread ensembles are compared with it (mean gap, spread ratio).
    * Step size (docs/three-layer.md#step-size): at --refine-width, full-batch descent and online SGD
      against the network's own gradient flow (diffrax): errors ∝ step and ∝ √step.

    The degenerate start (docs/three-layer.md#the-degenerate-start): a zero-mean w2 alone is not stuck
    (with an odd φ1 the limit has H2 = 0 at t = 0 whatever E[w2], and learns through w3). --degenerate-init
    sets w3 = 0 and E[w2] = 0: with φ2(0) = 0 the limit then stays at its stationary start ŷ = φ3(0),
    finite networks escape through their O(n^-1/2) fluctuations after a plateau that lengthens with n,
    the coupling no longer converges like n^-1/2, and no proxy describes the limit (it is skipped)."""

    NAME = "three-layer"
    HELP = "three-layer mean-field networks: width coupling, spread across seeds, a proxy limit, step size"
    RUNNER = "jaxlimit.experiments.three_layer.experiment"
    DEFAULT_DIM = 4
    # Not an option (README): the engine's default chunking, one block per device (ensemble_options reads it).
    chunk_size = None

    data: str = opt.data("teacher")
    points: int = opt.points(16)
    probes: int = opt.probes(4)
    dim: int | None = opt.dim()
    widths: tuple[int, ...] = integers((32, 64, 128, 256, 512, 1024, 2048, 4096),
                                       "widths n = n1 = n2 of the coupled networks, comma-separated; the widest is "
                                       "the reference (at least 4: three gaps for a slope with an interval)", high=opt.MAX_WIDTH,
                                       min_len=4, group="model")
    phi1: str = choice("tanh", "activation φ1 of the first hidden layer", ACTIVATION_NAMES, group="model")
    phi2: str = choice("tanh", "activation φ2 of the second hidden layer", ACTIVATION_NAMES, group="model")
    phi3: str = choice("identity", "output activation φ3", ACTIVATION_NAMES, group="model")
    init: str = choice("uniform", "law of w2 and w3 (w1 is standard Gaussian): uniform (bounded, as the "
                       "global-convergence theorem asks) or Gaussian, with the means and standard deviations below",
                       ("uniform", "gaussian"), group=GROUP_INIT)
    w2_mean: float = real(0.0, "mean of w2", low=-1e3, high=1e3, low_open=False, group=GROUP_INIT)
    w2_std: float = real(1.0, "standard deviation of w2 (0: a point mass)", high=1e3, low_open=False,
                         group=GROUP_INIT)
    w3_mean: float = real(1.0, "mean of w3", low=-1e3, high=1e3, low_open=False, group=GROUP_INIT)
    w3_std: float = real(1.0, "standard deviation of w3 (0: a point mass)", high=1e3, low_open=False,
                         group=GROUP_INIT)
    degenerate_init: bool = flag("w3 = 0 and E[w2] = 0: the limit's stationary start (needs φ2(0) = 0; "
                                 "replaces --w2-mean, --w3-mean and --w3-std)", group=GROUP_INIT)
    step: float = opt.step(0.05, "three-layer.md", high=1.0)
    xi: tuple[float, ...] = vector((1.0, 1.0, 1.0), "learning-rate factors ξ1,ξ2,ξ3 ≥ 0 of the three layers "
                                   "(ξ3 = 0 freezes w3), not all zero", length=3, high=1e3, group="training",
                                   metavar="ξ1,ξ2,ξ3")
    method: str = opt.method("online", choices=("online", "fullbatch"))
    loss: str = opt.loss()
    t_max: float = opt.t_max(40.0, "training time reached (⌊t_max / step⌋ steps at every width)")
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(16, "coupled networks E at the narrow widths (16·512²/n² at wide widths, "
                                 "at least --widest-ensemble)")
    widest_ensemble: int = integer(2, "coupled networks at the widest widths: the coupled pairs per width",
                                   high=opt.MAX_ENSEMBLE, group="ensemble")
    spread_widths: tuple[int, ...] = integers((32, 64, 128, 256, 512), "widths of the full-batch ensembles "
                                              "whose spread across seeds is measured (at least 3)", high=opt.MAX_WIDTH,
                                              min_len=3, group=GROUP_SPREAD)
    spread_ensemble: int = integer(16, "full-batch networks per spread width", low=2, high=opt.MAX_ENSEMBLE,
                                   group=GROUP_SPREAD)
    proxy_width: int = integer(1024, "width of the full-batch proxy of the limit (wider than every spread width)",
                               high=opt.MAX_WIDTH, group=GROUP_SPREAD)
    proxy_ensemble: int = integer(8, "proxy networks; 0 skips the comparison with the limit", low=0,
                                  high=opt.MAX_ENSEMBLE, group=GROUP_SPREAD)
    refine_width: int = integer(64, "width of the step-size study", high=opt.MAX_WIDTH, group=GROUP_REFINE)
    refine_steps: tuple[float, ...] = reals((0.025, 0.05, 0.1, 0.2), "steps compared with the gradient flow "
                                            "(at least 3)", high=1.0, low_open=True, min_len=3, group=GROUP_REFINE)
    refine_t_max: float = real(5.0, "time of the comparison, a whole number of every refine step", high=1e3,
                               group=GROUP_REFINE)
    refine_ensemble: int = integer(4, "networks per step and method; 0 skips the step-size study", low=0,
                                   high=4096, group=GROUP_REFINE)
    memory_gb: float = opt.memory_gb()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-three-layer")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_data(self)
        if self.degenerate_init:
            for name, default in (("w2_mean", 0.0), ("w3_mean", 1.0), ("w3_std", 1.0)):
                if getattr(self, name) != default:
                    raise ConfigError(name, f"conflicts with --degenerate-init, which sets w3 = 0 and E[w2] = 0; "
                                      f"got {getattr(self, name):g}")
            if self.phi2 not in ZERO_AT_ZERO:
                raise ConfigError("degenerate_init", f"needs φ2(0) = 0 for a stationary start "
                                  f"({', '.join(ZERO_AT_ZERO)}), got --phi2 {self.phi2}")
        if not any(self.xi):
            raise ConfigError("xi", "is zero for all three layers: nothing would train")
        if self.widest_ensemble > self.ensemble:
            raise ConfigError("widest_ensemble", f"must be at most --ensemble = {self.ensemble}, "
                              f"got {self.widest_ensemble}")
        if self.proxy_ensemble == 1:
            raise ConfigError("proxy_ensemble", "must be 0 (skip) or at least 2 (a covariance), got 1")
        if self.proxy_ensemble and self.proxy_width <= max(self.spread_widths):
            raise ConfigError("proxy_width", f"must exceed every spread width (largest {max(self.spread_widths)}), "
                              f"got {self.proxy_width}")
        self._check_clock("t_max", self.t_max, self.step, "--step")
        if self.refine_ensemble:
            if max(self.refine_steps) > self.refine_t_max:
                raise ConfigError("refine_steps", f"must be at most --refine-t-max = {self.refine_t_max:g}, got "
                                  f"{max(self.refine_steps):g}")
            for s in self.refine_steps:
                self._check_clock("refine_t_max", self.refine_t_max, s, "--refine-steps entry")
                k = self.refine_t_max / s
                if abs(k - round(k)) > 1e-9 * k:
                    raise ConfigError("refine_t_max", f"must be a whole number of every refine step, got "
                                      f"{self.refine_t_max:g} and step {s:g}")
        for option, width, members, itemsize in self._arms():
            self._check_network_memory(option, width, members, itemsize)

    def _check_clock(self, field: str, t: float, step: float, what: str) -> None:
        if t < step:
            raise ConfigError(field, f"must be at least one step ({what} {step:g}), got {t:g}")
        if t / step >= 2**31:
            raise ConfigError(field, f"needs {t / step:.3g} steps of {step:g}, more than 2^31; shorten the horizon")

    def coupled_members(self) -> list[int]:
        return members_per_width(self.widths, self.ensemble, self.widest_ensemble)

    def _arms(self) -> list[tuple[str, int, int, int]]:
        """(option, width, networks, bytes per number) of every ensemble the run trains."""
        arms = [("widths", n, e, 4) for n, e in zip(self.widths, self.coupled_members())]
        arms += [("spread_widths", n, self.spread_ensemble, 4) for n in self.spread_widths]
        if self.proxy_ensemble:
            arms.append(("proxy_width", self.proxy_width, self.proxy_ensemble, 4))
        if self.refine_ensemble:
            arms.append(("refine_width", self.refine_width, self.refine_ensemble, 8))
        return arms

    def _network_bytes(self, width: int, itemsize: int) -> float:
        """One network in training, as the engine charges it: 6 copies of the parameters (w2 alone has
        n1·n2 = n² entries) plus activations of every point."""
        d = opt.input_dim(self)
        params = width * width + width * d + width
        return itemsize * (6.0 * params + 3.0 * (self.points + self.probes) * 2 * width)

    def _peak_bytes(self, width: int, members: int, itemsize: int) -> float:
        chunk = min(self.memory_gb * 1e9, members * self._network_bytes(width, itemsize))
        k, d = min(self.widths), opt.input_dim(self)
        recorded = self.points + self.probes + 1 + k * d + k * k + k  # outputs, loss, the coupling's weight block
        return chunk + 2 * 4.0 * members * (self.n_times + 2) * recorded

    def _check_network_memory(self, option: str, width: int, members: int, itemsize: int) -> None:
        one = self._network_bytes(width, itemsize)
        w2 = f"w2 alone has n1·n2 = {float(width) ** 2:.3g} entries"
        limit = 0.8 * physical_memory_bytes()
        need = self._peak_bytes(width, members, itemsize)
        if need > limit:
            raise ConfigError(option, f"includes width {width}: {w2}, and training needs about {need / 2**30:.3g} GiB, "
                              f"more than 80% of this machine's {physical_memory_bytes() / 2**30:.3g} GiB")
        if one > self.memory_gb * 1e9:
            raise ConfigError(option, f"includes width {width}: {w2}, and one network needs about {one / 1e9:.3g} GB "
                              f"in training, more than --memory-gb {self.memory_gb:g}; raise it or narrow the width")

    def estimate_bytes(self) -> float:
        return max(self._peak_bytes(n, e, b) for _, n, e, b in self._arms())

    def size_option(self) -> str:
        return "widths"
