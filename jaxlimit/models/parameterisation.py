"""Parameterisations as data: abc-parameterisations of a fully connected network (docs/parameterisations.md).

Yang & Hu ("Feature learning in infinite-width networks", 2021) describe how a
network's layers scale with the width n by three exponents per layer l:

    W^l = n^{-a_l} w^l,    w^l_{ij} ~ N(0, n^{-2 b_l}) at initialisation,    lr of w^l = η n^{-c_l},

so a layer computes z^l = σ_l n^{-a_l} w^l h^{l-1} (σ_l a width-free constant,
σ_w/√d for the input layer, whose fan-in d does not grow). Here c is per layer
and per optimiser (SGD or Adam), as in Tensor Programs V. For layer l the
width n is its fan-in when that is a hidden width (hidden and output layers)
and its fan-out for the input layer; with every hidden width equal to n this is
Yang & Hu's single n.

Two parameterisations differing by the symmetry

    (a_l, b_l, c_l) → (a_l + θ, b_l − θ, c_l − 2θ)   (SGD),    c_l − θ   (Adam)

train identically (the function and its updates are unchanged), so a preset is
a class of equivalent triples. The presets:

* ``standard``: PyTorch's default, a = 0, init variance 1/fan-in, one learning rate (c = 0).
* ``ntk``: neural-tangents' "ntk" (today's :class:`~jaxlimit.models.mlp.MLP`): a = 1/2 on the
  hidden and output layers, b = 0, c = 0 (SGD); for Adam the c's that keep it in the kernel regime.
* ``mup``: the maximal-update parameterisation, Tensor Programs V's table 3 (a = 0): input
  b = 0, hidden b = 1/2, output b = 1 (variance 1/n², or a zero readout); SGD c = (−1, 0, 1),
  Adam c = (0, 1, 1).
* ``mean-field``: μP moved by the symmetry so every weight starts Θ(1): a = (0, 1/2, 1), b = 0,
  SGD c = −1 everywhere, Adam c = (0, 1/2, 0). With one hidden layer it is the mean-field
  two-layer network N^{-1} Σ c_i σ(w_i·x) of :class:`~jaxlimit.models.two_layer.TwoLayer`
  (:func:`two_layer`).

:func:`first_step_exponents` predicts, from the exponents alone, how the size of
each layer's pre-activation change and of the output change after one step grows
with n; the coordinate check (``jaxlimit coord-check``) measures those slopes.
"""

from __future__ import annotations

import dataclasses
import math

from jaxlimit.config import require_real
from jaxlimit.errors import InputError

OPTIMIZERS = ("sgd", "adam")
PRESETS = ("standard", "ntk", "mup", "mean-field")


def width_power(n: float, e: float) -> float:
    """n^e, with n^{1/2} computed as math.sqrt(n) (correctly rounded, so the ``ntk`` preset's
    multiplier σ_w / √n is bit for bit the one :class:`~jaxlimit.models.mlp.MLP` always used)."""
    if e == 0:
        return 1.0
    if e == 0.5:
        return math.sqrt(n)
    return float(n) ** e


@dataclasses.dataclass(frozen=True)
class LayerScaling:
    """One layer's exponents in the width n.

    Attributes:
        a: multiplier n^{-a}.
        b: initial standard deviation n^{-b} of the trained weights (variance n^{-2b}).
        c_sgd: SGD learning rate η n^{-c}.
        c_adam: Adam learning rate η n^{-c}.
        zero_init: initialise the weights at zero (μP's zero readout); b is then unused.
    """

    a: float
    b: float
    c_sgd: float
    c_adam: float
    zero_init: bool = False

    def __post_init__(self):
        for name in ("a", "b", "c_sgd", "c_adam"):
            object.__setattr__(self, name, require_real(getattr(self, name), name, low=None))

    def c(self, optimizer: str) -> float:
        """The learning-rate exponent for ``optimizer`` ("sgd" or "adam")."""
        return self.c_sgd if check_optimizer(optimizer) == "sgd" else self.c_adam

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; choose {' or '.join(OPTIMIZERS)}")
    return optimizer


@dataclasses.dataclass(frozen=True)
class Parameterisation:
    """An abc-parameterisation of a fully connected network: one :class:`LayerScaling` for the input
    layer (d → n), one shared by the hidden layers (n → n), one for the readout (n → 1), and one for
    the biases of the input and hidden layers (the readout's bias, if any, is width-free: a = b = c = 0).

    Attributes:
        name: a preset's name, or a user's label.
        input, hidden, output, bias: the exponents.
    """

    name: str
    input: LayerScaling
    hidden: LayerScaling
    output: LayerScaling
    bias: LayerScaling = LayerScaling(0.0, 0.0, 0.0, 0.0)

    def layers(self, depth: int) -> tuple[LayerScaling, ...]:
        """The exponents of the depth + 1 weight matrices of a network with ``depth`` hidden layers."""
        return (self.input, *([self.hidden] * (depth - 1)), self.output)

    def with_zero_readout(self) -> "Parameterisation":
        """The same parameterisation with the readout initialised at zero (Tensor Programs V's advice for μP)."""
        return dataclasses.replace(self, name=f"{self.name} (zero readout)",
                                   output=dataclasses.replace(self.output, zero_init=True))

    def shifted(self, layer: str, theta: float, optimizer: str) -> "Parameterisation":
        """The equivalent parameterisation (a + θ, b − θ, c − 2θ for SGD, c − θ for Adam) on one layer
        ("input", "hidden", "output"); the other optimiser's c moves by its own rule."""
        check_optimizer(optimizer)
        old = getattr(self, layer)
        new = LayerScaling(old.a + theta, old.b - theta, old.c_sgd - 2 * theta, old.c_adam - theta, old.zero_init)
        return dataclasses.replace(self, **{layer: new})

    def as_dict(self) -> dict:
        return {"name": self.name, "input": self.input.as_dict(), "hidden": self.hidden.as_dict(),
                "output": self.output.as_dict(), "bias": self.bias.as_dict()}

    def largest_power(self, widths, optimizer: str) -> float:
        """The largest |log2| of the width factors n^{±a}, n^{±b}, n^{±c} over ``widths``: what float32
        must represent (refused above 2^100 by :func:`check_representable`)."""
        worst = 0.0
        for layer in (self.input, self.hidden, self.output, self.bias):
            for e in (layer.a, layer.b, layer.c(optimizer)):
                worst = max(worst, max(abs(e) * math.log2(n) for n in widths))
        return worst


def check_representable(parameterisation: Parameterisation, widths, optimizer: str) -> None:
    """Refuse exponents whose width factors n^e (or their products in a layer, up to three) leave
    float32's range at the requested widths."""
    worst = parameterisation.largest_power(widths, optimizer)
    if 3 * worst >= 126:
        raise InputError(f"the exponents of {parameterisation.name!r} make width factors of 2^{worst:.3g} at the "
                         f"widths {', '.join(str(n) for n in widths)}, beyond what float32 represents "
                         "(about 2^±126 for a layer's product of three factors)")


def _preset(name: str) -> Parameterisation:
    h = 0.5
    if name == "standard":
        return Parameterisation("standard", LayerScaling(0, 0, 0, 0), LayerScaling(0, h, 0, 0),
                                LayerScaling(0, h, 0, 0))
    if name == "ntk":
        # Adam: a step moves each entry by η n^{-c} whatever the gradient's size; c = 1/2 (input),
        # 1 (hidden), 1/2 (readout) keeps every feature change at n^{-1/2} and the output's at Θ(1).
        return Parameterisation("ntk", LayerScaling(0, 0, 0, h), LayerScaling(h, 0, 0, 1), LayerScaling(h, 0, 0, h))
    if name == "mup":
        return Parameterisation("mup", LayerScaling(0, 0, -1, 0), LayerScaling(0, h, 0, 1), LayerScaling(0, 1, 1, 1),
                                bias=LayerScaling(0, 0, -1, 0))
    if name == "mean-field":
        return Parameterisation("mean-field", LayerScaling(0, 0, -1, 0), LayerScaling(h, 0, -1, h),
                                LayerScaling(1, 0, -1, 0), bias=LayerScaling(0, 0, -1, 0))
    raise InputError(f"unknown parameterisation {name!r}; choose one of {', '.join(PRESETS)}")


def get_parameterisation(name: str | Parameterisation) -> Parameterisation:
    """A preset by name (``standard``, ``ntk``, ``mup``, ``mean-field``), or a :class:`Parameterisation` as is."""
    if isinstance(name, Parameterisation):
        return name
    if not isinstance(name, str):
        raise InputError(f"a parameterisation is a preset name or a Parameterisation, got {name!r}")
    return _preset(name)


def two_layer(gamma: float) -> Parameterisation:
    """The two-layer network N^{-γ} Σ_i c_i σ(w_i·x) with c, w ~ N(0, 1) and the project's SGD
    (learning rate α N^{-(2-2γ)} per step, ⌊N t⌋ steps to time t: :class:`~jaxlimit.models.two_layer.TwoLayer`)
    as an abc-parameterisation restricted to two layers: input a = b = 0, readout a = γ, b = 0, and
    c = 2 − 2γ per step. On the abc clock (one unit of time = one step) N steps of rate n^{-c} are one
    step of rate n^{1-c}, so c = 1 − 2γ there: 0 at γ = 1/2 (the ntk preset) and −1 at γ = 1 (the
    mean-field preset). The ``c_sgd`` stored here is the per-step one, 2 − 2γ."""
    gamma = require_real(gamma, "gamma", low=0.5, low_open=False, high=1.0)
    c = 2.0 - 2.0 * gamma
    return Parameterisation(f"two-layer γ = {gamma:g}", LayerScaling(0, 0, c, c), LayerScaling(0, 0, c, c),
                            LayerScaling(gamma, 0, c, c))


def two_layer_apply(parameterisation: Parameterisation, c, w, x, activation):
    """The two-layer network of an abc-parameterisation with width-free constants 1:
    f(x) = n^{-a_out} Σ_i c_i σ(n^{-a_in} w_i·x), n = len(c), for c of shape (n,), w (n, d), x (P, d).
    With :func:`two_layer` (γ) it is :meth:`TwoLayer.apply <jaxlimit.models.two_layer.TwoLayer.apply>`,
    operation for operation."""
    n = c.shape[0]
    z = x @ w.T
    if parameterisation.input.a != 0:
        z = z / width_power(n, parameterisation.input.a)
    return (activation(z) @ c) * width_power(n, -parameterisation.output.a)


def two_layer_learning_rates(parameterisation: Parameterisation, width: int, optimizer: str = "sgd"):
    """(readout, input) per-step rates n^{-c}: with :func:`two_layer` (γ) those of
    :meth:`TwoLayer.learning_rates <jaxlimit.models.two_layer.TwoLayer.learning_rates>`."""
    return (width_power(width, -parameterisation.output.c(optimizer)),
            width_power(width, -parameterisation.input.c(optimizer)))


def first_step_exponents(parameterisation: Parameterisation, depth: int, optimizer: str,
                         activation_nonnegative: bool = True) -> dict:
    """How each layer's coordinates scale with n after one step from initialisation, from the exponents.

    With every hidden width n, at initialisation z^1 ~ n^{-(a_1+b_1)}, z^l ~ n^{1/2-(a_l+b_l)},
    f ~ n^{1/2-β} and ∂f/∂h^l ~ n^{-β}, β = a_{L+1} + b_{L+1} (a stable parameterisation has
    a_1 + b_1 = 0 and a_l + b_l = 1/2 on the hidden layers). One step changes layer l's pre-activation
    through its own weights by

        SGD:  n^{-a_l} Δw^l h^{l-1} ~ n^{-c_l - 2 a_l - β} ‖h^{l-1}‖²,
        Adam: n^{-a_l} Δw^l h^{l-1} ~ n^{-c_l - a_l} ‖h^{l-1}‖₁,

    with ‖h‖² ~ ‖h‖₁ ~ n for a hidden h and Θ(1) for the input; z^l changes by the largest of that and
    z^{l-1}'s change (a stable layer carries a change at its size). The output changes by its own
    update's effect (SGD n^{1 - c - 2a}, Adam n^{1 - c - a} on the readout) and by
    n^{-a_{L+1}} w^{L+1} Δh^L ~ n^{1-β+e_L} (Δh^L lies along w^{L+1}): these are first order in η. For a
    non-negative activation (relu) the product of the two updates adds n^{1 - a_{L+1} + u + e_L} (u the
    exponent of a readout entry's update), second order in η but of the larger exponent in standard
    parameterisation. Which term a finite width shows depends on η and n, so the output's exponent is a
    range: from the smaller first-order exponent to the largest of all (a point when they agree, as in
    μP and ntk). A pre-activation z^l_t = z^l_0 + Δz^l likewise crosses over from its
    initial exponent to its change's: its range is [min, max] of the two. A zero readout freezes every
    hidden layer at the first step (exponent −inf).

    Returns {"activation", "change", "update"}: for each, one (low, high) range per layer z^1, …, z^{L+1}
    (the last is the output).
    """
    check_optimizer(optimizer)
    layers = parameterisation.layers(depth)
    out = layers[-1]
    beta = math.inf if out.zero_init else out.a + out.b
    own = []
    for l, layer in enumerate(layers[:-1]):
        norm = 0.0 if l == 0 else 1.0
        c = layer.c(optimizer)
        if not math.isfinite(beta):
            own.append(-math.inf)
        elif optimizer == "sgd":
            own.append(norm - c - 2 * layer.a - beta)
        else:
            own.append(norm - c - layer.a)
    changes = []
    for e in own:
        changes.append(max(e, changes[-1]) if changes else e)
    c = out.c(optimizer)
    if optimizer == "sgd":
        own_out, entry = 1.0 - c - 2 * out.a, -c - out.a  # a readout entry's update: n^{-c} n^{-a} δ h
    else:
        own_out, entry = 1.0 - c - out.a, -c
    first = [e for e in (own_out, 1.0 - beta + changes[-1]) if math.isfinite(e)]
    product = 1.0 - out.a + entry + changes[-1] if activation_nonnegative else -math.inf
    init = [-(layers[0].a + layers[0].b), *[0.5 - (h.a + h.b) for h in layers[1:-1]], 0.5 - beta]
    change = [(e, e) for e in changes] + [(min(first), max(*first, product))]
    update = [(e, e) for e in own] + [(own_out, max(own_out, product))]
    activation = [(min(i, lo), max(i, hi)) for i, (lo, hi) in zip(init, change)]
    return {"activation": activation, "change": change, "update": update}


__all__ = ["LayerScaling", "OPTIMIZERS", "PRESETS", "Parameterisation", "check_optimizer", "check_representable",
           "first_step_exponents", "get_parameterisation", "two_layer", "two_layer_apply", "two_layer_learning_rates",
           "width_power"]
