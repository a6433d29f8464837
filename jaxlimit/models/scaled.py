"""A user's network family across widths with a declared abc-parameterisation per parameter leaf
(docs/parameterisations.md#a-users-network).

The user writes the network once, in width-free units: ``network(n)`` returns a
:class:`~jaxlimit.models.user.UserNetwork` (``from_equinox`` or an init/apply pair) of hidden width n
whose initial entries do not scale with n (N(0, 1), say, or a width-free constant such as the input
layer's 1/√d), and whose forward pass uses its leaves as they are. Each leaf ℓ is given a role,
``"input"``, ``"hidden"``, ``"output"``, ``"bias"`` (a bias of the input or hidden layers) or
``"fixed"`` (width-free: a = b = c = 0, e.g. the readout's bias), and the role's exponents
(a_ℓ, b_ℓ, c_ℓ) come from a :class:`~jaxlimit.models.parameterisation.Parameterisation`. jaxlimit then
trains θ_ℓ with

    θ_ℓ(0) = n^{-b_ℓ} θ̃_ℓ  (0 for a zero-initialised role),   forward leaf n^{-a_ℓ} θ_ℓ,   rate η n^{-c_ℓ},

θ̃ the user's width-free initial draw: exactly the MLP's rule (:class:`~jaxlimit.models.mlp.MLP`) with
the user's forward pass in place of the MLP's.

For a per-layer coordinate check the network may return, instead of its output alone, the tuple of its
layers' outputs (z^1, …, z^L, f), each of shape (k,) per input (from_equinox) or (P, k) (init/apply);
the last is the network's output.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxlimit.errors import InputError
from jaxlimit.models.parameterisation import (
    LayerScaling, Parameterisation, check_optimizer, get_parameterisation, width_power,
)
from jaxlimit.models.user import UserNetwork

ROLES = ("input", "hidden", "output", "bias", "fixed")
FIXED = LayerScaling(0.0, 0.0, 0.0, 0.0)


def role_scaling(parameterisation: Parameterisation, role: str) -> LayerScaling:
    """The exponents of one role (module docstring)."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return FIXED if role == "fixed" else getattr(parameterisation, role)


def layer_outputs(network: UserNetwork, params: Any, x: jax.Array) -> list[jax.Array]:
    """The network's layer outputs, each (P, k): the tuple its apply returns, or its output alone."""
    out = network.apply_fn(params, x)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [jnp.reshape(jnp.asarray(z), (x.shape[0], -1)) for z in outs]


@dataclasses.dataclass(frozen=True)
class ScaledNetwork:
    """A user's network family with its declared exponents (module docstring).

    Attributes:
        network: ``network(n) -> UserNetwork`` of hidden width n, in width-free units.
        parameterisation: the exponents of the roles (a preset name or a Parameterisation).
        roles: each leaf's role: a dict {leaf path: role} (paths as ``jax.tree_util.keystr`` writes them,
            e.g. ``".w1"`` for an equinox field ``w1`` or ``"['w1']"`` for a dict entry) or a callable
            ``roles(path, leaf) -> role``.
        layer_names: names of the layer outputs the network returns (default "layer 1", …, "output").
    """

    network: Callable[[int], UserNetwork]
    parameterisation: Parameterisation
    roles: Any
    layer_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if not callable(self.network):
            raise InputError("network must be a callable width -> UserNetwork (from_equinox or UserNetwork)")
        object.__setattr__(self, "parameterisation", get_parameterisation(self.parameterisation))
        if not (callable(self.roles) or isinstance(self.roles, dict)):
            raise InputError("roles must be a dict {leaf path: role} or a callable (path, leaf) -> role")

    def at(self, width: int) -> UserNetwork:
        net = self.network(int(width))
        if not isinstance(net, UserNetwork):
            raise InputError(f"network({width}) must return a UserNetwork (from_equinox or UserNetwork), "
                             f"got {type(net).__name__}")
        return net

    def leaf_roles(self, width: int, net: UserNetwork | None = None) -> Any:
        """The role of every leaf (a pytree of strings with the parameters' structure)."""
        shapes = jax.eval_shape((net or self.at(width)).init_fn, jax.random.key(0))
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]]
        if isinstance(self.roles, dict):
            missing = [p for p in paths if p not in self.roles]
            if missing:
                raise InputError(f"no role declared for the leaves {', '.join(missing)} (leaves: {', '.join(paths)})")
            unused = [p for p in self.roles if p not in paths]
            if unused:
                raise InputError(f"roles name leaves the network does not have: {', '.join(unused)} "
                                 f"(leaves: {', '.join(paths)})")
            roles = jax.tree_util.tree_map_with_path(lambda p, _: self.roles[jax.tree_util.keystr(p)], shapes)
        else:
            roles = jax.tree_util.tree_map_with_path(lambda p, leaf: self.roles(jax.tree_util.keystr(p), leaf),
                                                     shapes)
        for role in jax.tree_util.tree_leaves(roles):
            role_scaling(self.parameterisation, role)
        return roles

    def depth(self, width: int) -> int:
        """L: the number of layer outputs the network returns, less one."""
        net = self.at(width)
        shapes = jax.eval_shape(net.init_fn, jax.random.key(0))
        dim = net.input_dim
        if dim is None:
            raise InputError("the user network must declare its input dimension (dim=...)")
        outs = jax.eval_shape(lambda p: layer_outputs(net, p, jnp.zeros((2, dim), jnp.float32)), shapes)
        return len(outs) - 1

    def names(self, width: int) -> list[str]:
        depth = self.depth(width)
        if self.layer_names is not None:
            if len(self.layer_names) != depth + 1:
                raise InputError(f"layer_names has {len(self.layer_names)} names for the network's {depth + 1} "
                                 "layer outputs")
            return list(self.layer_names)
        return [*[f"layer {l}" for l in range(1, depth + 1)], "output"]

    def program(self, width: int, optimizer: str):
        """(init(key), layers(params, x) -> [z^1, …, f], rates) at width n with the declared exponents
        applied (module docstring); rates are n^{-c_ℓ} per leaf, without η."""
        check_optimizer(optimizer)
        net, n = self.at(width), int(width)
        scalings = jax.tree_util.tree_map(lambda r: role_scaling(self.parameterisation, r),
                                          self.leaf_roles(width, net))
        flat, treedef = jax.tree_util.tree_flatten(scalings, is_leaf=lambda s: isinstance(s, LayerScaling))
        mult = [width_power(n, -s.a) for s in flat]
        init_scale = [0.0 if s.zero_init else width_power(n, -s.b) for s in flat]
        rates = jax.tree_util.tree_unflatten(treedef, [width_power(n, -s.c(optimizer)) for s in flat])

        def init(key):
            leaves = jax.tree_util.tree_leaves(net.init(key, jnp.float32))
            return jax.tree_util.tree_unflatten(treedef, [v * s for v, s in zip(leaves, init_scale)])

        def layers(params, x):
            leaves = jax.tree_util.tree_leaves(params)
            return layer_outputs(net, jax.tree_util.tree_unflatten(treedef, [v * m for v, m in zip(leaves, mult)]),
                                 x)

        return init, layers, rates


def declare(network: Callable[[int], UserNetwork], parameterisation: str | Parameterisation, roles,
            layer_names=None) -> ScaledNetwork:
    """A :class:`ScaledNetwork`: the user's family ``network(n)`` with each leaf's role and the roles'
    exponents from ``parameterisation`` (a preset name or a Parameterisation)."""
    return ScaledNetwork(network, get_parameterisation(parameterisation), roles,
                         None if layer_names is None else tuple(layer_names))


__all__ = ["ROLES", "ScaledNetwork", "declare", "layer_outputs", "role_scaling"]
