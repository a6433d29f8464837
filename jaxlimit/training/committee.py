"""Online SGD of soft committee machines at finite input dimension D (docs/committee.md).

Two simulators of the same process (conventions of :mod:`jaxlimit.limits.committee`): every step
draws a fresh x ~ N(0, I_D), the teacher's noise ζ ~ N(0, 1), and updates
w_k ← w_k + (η/√D) Δ v_k g'(λ_k) x, Δ = Σ_m v*_m g(ρ_m) + σζ − Σ_k v_k g(λ_k), and (both simulators,
when the second layer is trained) v_k ← v_k + (η_v/D) Δ g(λ_k), both from the same step's values.
The activation g (and g') is the ``integrals`` object's (default erf(·/√2): erf_integrals()).

* :func:`train_direct` keeps the D-dimensional weights (K + M vectors of length D per student) and
  draws x itself: the reference, O(D (K + M)) per step.
* :func:`train_order_parameters` simulates the order parameters' exact Markov chain, O((K + M)³)
  per step whatever D. Given the weights, the fields f = (λ, ρ) of a fresh x are exactly
  N(0, C), C = [[Q, R], [Rᵀ, T]]: write x = P x + (1 − P) x with P the projection on the span of
  the K + M weight vectors; f = L z with L Lᵀ = C and z ~ N(0, I_{K+M}) the coordinates of P x in
  an orthonormal basis, so |P x|² = |z|², and |(1 − P) x|² ~ χ²_{D−K−M} independent of z. One step
  changes Q and R through (λ, ρ, |x|²) alone:

      R ← R + a ρᵀ / D,   Q ← Q + (a λᵀ + λ aᵀ)/D + a aᵀ |x|²/D²,   a_k = η Δ v_k g'(λ_k),
      v ← v + η_v Δ g(λ) / D,

  so (Q, R, v) is a Markov chain (v's step needs only the fields and ζ), and drawing (z, χ², ζ)
  reproduces the law of the D-dimensional process exactly (not to leading order). The tests check
  that the two agree in law.

Randomness. Student e's stream is ``fold_in(root, e)``; the chain draws the numbers of steps
[p·PAGE, (p+1)·PAGE) at once from ``fold_in(student, p)`` and the direct simulation step s's x from
``fold_in(student, s)``, so the same seed gives the same bits whatever the split into blocks of
students or time segments.
Students run in vmap blocks of ``LANES`` (the last padded), so every compiled call has the same
shape. The chain runs in float64 (rounding must not drift over 10⁵–10⁶ steps of size 1/D).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.limits.committee import ErfIntegrals, generalisation_error
from jaxlimit.validation import require_real

LANES = 1024
"""Students per compiled call (the last block padded)."""


# --------------------------------------------------------------------------
# Starts
# --------------------------------------------------------------------------

def orthonormal_teacher(key, M: int, D: int, dtype=jnp.float64) -> jax.Array:
    """Teacher weights w* (M, D) with T = w* w*ᵀ / D = I exactly (QR of a Gaussian matrix, × √D)."""
    if M > D:
        raise InputError(f"M = {M} teachers need D ≥ M, got D = {D}")
    A = jax.random.normal(key, (D, M), jnp.float32).astype(dtype)
    q, r = jnp.linalg.qr(A)
    q = q * jnp.sign(jnp.diagonal(r))[None, :]
    return math.sqrt(D) * q.T


def gaussian_students(key, K: int, D: int, init_std: float, dtype=jnp.float64) -> jax.Array:
    """Student weights w (K, D) with i.i.d. N(0, init_std²) entries."""
    return init_std * jax.random.normal(key, (K, D), jnp.float32).astype(dtype)


def gaussian_start_order_parameters(key, K: int, T, D: int, init_std: float):
    """(Q, R) of students w_k ~ N(0, s² I_D) against a fixed teacher with overlaps T, drawn exactly
    without the D-dimensional weights: R_k = s T^{1/2} ξ_k / √D (ξ ~ N(0, I_M)) and
    Q = R T⁻¹ Rᵀ + G Gᵀ / D, G (K, D − M) i.i.d. N(0, s²) (the part orthogonal to the teacher)."""
    T = jnp.asarray(T, jnp.float64)
    M = T.shape[0]
    k1, k2 = jax.random.split(key)
    L = jnp.linalg.cholesky(T)
    xi = jax.random.normal(k1, (K, M), jnp.float32).astype(jnp.float64)
    R = init_std * xi @ L.T / math.sqrt(D)
    G = init_std * jax.random.normal(k2, (K, D - M), jnp.float32).astype(jnp.float64)
    Q = R @ jnp.linalg.solve(T, R.T) + G @ G.T / D
    return 0.5 * (Q + Q.T), R


# --------------------------------------------------------------------------
# The exact order-parameter chain
# --------------------------------------------------------------------------

def _small_cholesky(C):
    """Lower Cholesky factor of a small SPD matrix, unrolled (N static): under vmap a few dozen
    elementwise operations, much faster on CPU than a batched LAPACK call of 4×4 matrices."""
    N = C.shape[-1]
    L = [[None] * N for _ in range(N)]
    for j in range(N):
        s = C[j, j] - sum(L[j][k] ** 2 for k in range(j)) if j else C[j, j]
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, N):
            t = C[i, j] - sum(L[i][k] * L[j][k] for k in range(j)) if j else C[i, j]
            L[i][j] = t / L[j][j]
    zero = jnp.zeros_like(C[0, 0])
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(N)]) for i in range(N)])


PAGE = 1024
"""Steps per page: student e's numbers for steps [p·PAGE, (p+1)·PAGE) come from fold_in(key_e, p),
drawn at once (one vectorised call instead of one per step)."""
GAMMA_TRIES = 4
"""Marsaglia–Tsang candidates per step for χ²_{D−K−M} (each accepted with probability > 0.99 at
D ≥ 100; all four fail with probability < 10⁻⁸, and then the mode d is used)."""


def _page_draws(key, N: int, D: int):
    """One page of one student: z (PAGE, N), χ²_{D−N} (PAGE,), ζ (PAGE,).

    Normals and uniforms are float32 draws (only their law matters); χ² by Marsaglia–Tsang's
    exact rejection sampler of Gamma((D − N)/2), vectorised over GAMMA_TRIES candidates."""
    k1, k2 = jax.random.split(key)
    nrm = jax.random.normal(k1, (PAGE, N + 1 + GAMMA_TRIES), jnp.float32).astype(jnp.float64)
    uni = jax.random.uniform(k2, (PAGE, GAMMA_TRIES), jnp.float32, minval=2.0**-24, maxval=1.0).astype(jnp.float64)
    z, zeta, x = nrm[:, :N], nrm[:, N], nrm[:, N + 1:]
    d = 0.5 * (D - N) - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    v = (1.0 + c * x) ** 3
    ok = (v > 0) & (jnp.log(uni) < 0.5 * x * x + d - d * v + d * jnp.log(jnp.where(v > 0, v, 1.0)))
    first = jnp.argmax(ok, axis=1)
    g = jnp.where(ok.any(axis=1), d * jnp.take_along_axis(v, first[:, None], axis=1)[:, 0], d)
    return z, 2.0 * g, zeta


def _chain_step(state, draws, T, lr, noise_std, D, teacher_v, lr_v, second_layer: bool, integrals):
    """One step of (Q, R, v) with the activation g = ``integrals.g`` (g' = ``integrals.g_prime``).
    ``second_layer`` False (v = v* = 1, η_v = 0): v is carried untouched and Δ, a are computed
    without it, the arithmetic of the fixed-v chain (the same bits; XLA fuses the products by a
    traced v = 1 differently)."""
    g, g_prime = integrals.g, integrals.g_prime
    Q, R, v = state
    z, chi2, zeta = draws
    K, M = R.shape
    C = jnp.block([[Q, R], [R.T, T]])
    f = _small_cholesky(C) @ z
    lam, rho = f[:K], f[K:]
    x2 = (z @ z + chi2) / D  # |x|² / D
    g_lam = g(lam)
    if second_layer:
        delta = jnp.sum(teacher_v * g(rho)) - jnp.sum(v * g_lam) + noise_std * zeta
        a = lr * delta * v * g_prime(lam)
    else:
        delta = jnp.sum(g(rho)) - jnp.sum(g_lam) + noise_std * zeta
        a = lr * delta * g_prime(lam)
    R = R + jnp.outer(a, rho) / D
    dq = jnp.outer(a, lam)
    Q = Q + (dq + dq.T) / D + jnp.outer(a, a) * x2 / D
    return Q, R, (v + lr_v * delta * g_lam / D if second_layer else v)


@functools.partial(jax.jit, static_argnames=("second_layer",))
def _chain_page(Q, R, v, keys, page, lo, hi, T, lr, noise_std, D, teacher_v, lr_v, integrals, *,
                second_layer: bool):
    """Steps lo ≤ j < hi of page ``page`` for a block of students (Q (B,K,K), R (B,K,M), v (B,K), keys (B,)):
    the page's numbers are drawn whole and the steps outside [lo, hi) masked, so any split of the
    run into segments consumes the same numbers. D is traced (float64): one compilation for every D."""
    N = R.shape[1] + R.shape[2]
    draws = jax.vmap(lambda k: _page_draws(jax.random.fold_in(k, page), N, D))(keys)
    draws = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), draws)  # steps first

    def body(carry, xs):
        j, d = xs
        new = jax.vmap(lambda q, r, w, dd: _chain_step((q, r, w), dd, T, lr, noise_std, D, teacher_v, lr_v,
                                                                     second_layer, integrals))(
            *carry, d)
        active = (j >= lo) & (j < hi)
        return jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, carry), None

    (Q, R, v), _ = jax.lax.scan(body, (Q, R, v), (jnp.arange(PAGE), draws))
    return Q, R, v


@functools.partial(jax.jit, static_argnames=("stride", "second_layer"))
def _chain_page_strided(Q, R, v, keys, page, T, lr, noise_std, D, teacher_v, lr_v, integrals, *, stride: int,
                        second_layer: bool = False):
    """All PAGE steps of page ``page`` for a block of students, the state recorded after every
    ``stride`` steps (stride divides PAGE): the same numbers and the same arithmetic as
    :func:`_chain_page`, so the records equal its states at those steps bit for bit (tested). D is
    traced (a float64), so one compilation serves every D."""
    N = R.shape[1] + R.shape[2]
    draws = jax.vmap(lambda k: _page_draws(jax.random.fold_in(k, page), N, D))(keys)
    draws = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1).reshape((PAGE // stride, stride) + a.shape[:1]
                                                                        + a.shape[2:]), draws)

    def step(carry, d):
        return jax.vmap(lambda q, r, w, dd: _chain_step((q, r, w), dd, T, lr, noise_std, D, teacher_v, lr_v,
                                                                     second_layer, integrals))(
            *carry, d), None

    def chunk(carry, d):
        carry, _ = jax.lax.scan(step, carry, d)
        return carry, carry

    (Q, R, v), (Qs, Rs, vs) = jax.lax.scan(chunk, (Q, R, v), draws)
    return Q, R, v, Qs, Rs, vs


def _advance_chain(Q, R, v, keys, done: int, target: int, T, lr, noise_std, D, teacher_v, lr_v, integrals):
    # v = v* = 1 fixed: the fixed-v arithmetic (see _chain_step)
    second_layer = _uses_second_layer(v, teacher_v, lr_v)
    while done < target:
        page, lo = divmod(done, PAGE)
        hi = min(PAGE, lo + target - done)
        Q, R, v = _chain_page(Q, R, v, keys, jnp.uint32(page), lo, hi, T, lr, noise_std, float(D), teacher_v, lr_v,
                              integrals, second_layer=second_layer)
        done += hi - lo
    return Q, R, v


# --------------------------------------------------------------------------
# The direct D-dimensional simulation
# --------------------------------------------------------------------------

def _direct_step(state, key, Wstar, lr, noise_std, D, teacher_v, lr_v, second_layer: bool, integrals):
    """One SGD step of (W, v) on a fresh x (module docstring). ``second_layer`` False (v = v* = 1,
    η_v = 0): v is carried untouched and the update is the fixed-v arithmetic (as in _chain_step)."""
    W, v = state
    g, g_prime = integrals.g, integrals.g_prime
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (D,), W.dtype)
    zeta = jax.random.normal(kn, (), W.dtype)
    lam = W @ x / math.sqrt(D)
    rho = Wstar @ x / math.sqrt(D)
    g_lam = g(lam)
    if not second_layer:
        delta = jnp.sum(g(rho)) - jnp.sum(g_lam) + noise_std * zeta
        return W + (lr / math.sqrt(D)) * (delta * g_prime(lam))[:, None] * x[None, :], v
    delta = jnp.sum(teacher_v * g(rho)) - jnp.sum(v * g_lam) + noise_std * zeta
    return (W + (lr / math.sqrt(D)) * (delta * v * g_prime(lam))[:, None] * x[None, :],
            v + (lr_v / D) * delta * g_lam)


@functools.partial(jax.jit, static_argnames=("n_steps", "second_layer"))
def _direct_segment(W, v, keys, step0, Wstar, lr, noise_std, teacher_v, lr_v, integrals, *, n_steps: int,
                    second_layer: bool):
    D = W.shape[-1]

    def one(W, v, key):
        def body(state, s):
            return _direct_step(state, jax.random.fold_in(key, s), Wstar, lr, noise_std, D, teacher_v, lr_v,
                                second_layer, integrals), None

        state, _ = jax.lax.scan(body, (W, v), step0 + jnp.arange(n_steps, dtype=jnp.uint32))
        return state

    return jax.vmap(one)(W, v, keys)


# --------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------

def save_steps(alphas, D: int) -> np.ndarray:
    """The step counts round(α D) at which the order parameters are recorded."""
    steps = np.rint(np.asarray(alphas, np.float64) * D).astype(np.int64)
    if np.any(np.diff(steps) < 0) or steps[0] < 0:
        raise InputError("alphas must be non-negative and non-decreasing")
    if steps[-1] >= 2**32:
        raise InputError(f"α D = {steps[-1]} steps exceed the 32-bit step counter")
    return steps


def _blocks(n: int, lanes: int):
    for start in range(0, n, lanes):
        yield start, min(n, start + lanes)


def _pad(a, lanes):
    if a.shape[0] == lanes:
        return a
    return jnp.concatenate([a, jnp.repeat(a[-1:], lanes - a.shape[0], axis=0)])


def student_keys(root, ids) -> jax.Array:
    ids = jnp.asarray(ids, jnp.uint32)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(ids)


def _integrals(integrals):
    """The activation's integrals object (erf(·/√2) when None); anything without g and g' refused."""
    if integrals is None:
        return ErfIntegrals()
    if not (callable(getattr(integrals, "g", None)) and callable(getattr(integrals, "g_prime", None))):
        raise InputError(f"integrals must be an integrals object with g and g_prime (erf_integrals(), "
                         f"relu_integrals(), linear_integrals(), quadrature_integrals(g)), got {integrals!r}")
    return integrals


def _uses_second_layer(v, teacher_v, lr_v) -> bool:
    """Whether the second-layer arithmetic is needed (else v = v* = 1 fixed: the fixed-v code, same bits)."""
    return bool(lr_v > 0 or np.any(np.asarray(v) != 1.0) or np.any(np.asarray(teacher_v) != 1.0))


def _second_layer_start(v0, teacher_v, lr_v, E: int, K: int, M: int):
    """Validated (v0 (E, K), v* (M,), η_v) as float64 (v0 and v* ones when None; v0 may be (K,))."""
    lr_v = require_real(lr_v, "lr_v", low=0.0, low_open=False)
    v0 = np.ones((E, K)) if v0 is None else np.asarray(v0, np.float64)
    if v0.shape == (K,):
        v0 = np.broadcast_to(v0, (E, K))
    if v0.shape != (E, K) or not np.all(np.isfinite(v0)):
        raise InputError(f"v0 must be finite of shape (K,) = ({K},) or (E, K) = ({E}, {K}), got {v0.shape}")
    vt = np.ones(M) if teacher_v is None else np.asarray(teacher_v, np.float64)
    if vt.shape != (M,) or not np.all(np.isfinite(vt)):
        raise InputError(f"teacher_v must be finite of shape (M,) = ({M},), got {vt.shape}")
    return jnp.asarray(v0), jnp.asarray(vt), float(lr_v)


def train_order_parameters(Q0, R0, T, *, lr: float, noise_std: float, D: int, alphas, root,
                           lanes: int = LANES, progress=None, v0=None, teacher_v=None, lr_v: float = 0.0,
                           integrals=None) -> dict:
    """Simulate E students' exact (Q, R, v) chain (module docstring) and record at ``alphas``.

    Args:
        Q0, R0: (E, K, K) and (E, K, M) starts (one per student); T: (M, M).
        lr, noise_std, D: η, σ and the input dimension.
        alphas: recorded times α (steps round(α D)).
        root: the students' root key; student e uses fold_in(root, e).
        lanes: students per compiled call (does not change the numbers).
        v0: the students' second layers at α = 0, (K,) or (E, K) (default ones).
        teacher_v: the teacher's second layer v* (M,) (default ones).
        lr_v: η_v ≥ 0 (0: v fixed at v0; no extra random numbers either way).
        integrals: the activation g (its ``g``, ``g_prime``, and ε_g from its I2): None (erf(·/√2)),
            :func:`~jaxlimit.limits.committee.relu_integrals`, ``linear_integrals()``, …

    Returns:
        {"Q": (E, A, K, K), "R": (E, A, K, M), "v": (E, A, K), "eps": (E, A), "finite": (E,)}.
    """
    integrals = _integrals(integrals)
    steps = save_steps(alphas, D)
    Q0 = jnp.asarray(Q0, jnp.float64)
    R0 = jnp.asarray(R0, jnp.float64)
    T = jnp.asarray(T, jnp.float64)
    E, K, M = R0.shape
    if D <= K + M:
        raise InputError(f"D must exceed K + M = {K + M}, got {D}")
    v0, teacher_v, lr_v = _second_layer_start(v0, teacher_v, lr_v, E, K, M)
    keys = student_keys(root, np.arange(E))
    lanes = min(int(lanes), E)  # the numbers do not depend on the block width
    Qs, Rs, vs = [], [], []
    for lo, hi in _blocks(E, lanes):
        Q, R, v, k = _pad(Q0[lo:hi], lanes), _pad(R0[lo:hi], lanes), _pad(v0[lo:hi], lanes), _pad(keys[lo:hi], lanes)
        done, outQ, outR, outv = 0, [], [], []
        for s in steps:
            if s > done:
                Q, R, v = _advance_chain(Q, R, v, k, done, int(s), T, float(lr), float(noise_std), int(D), teacher_v,
                                         lr_v, integrals)
                done = int(s)
            outQ.append(Q[: hi - lo])
            outR.append(R[: hi - lo])
            outv.append(v[: hi - lo])
        Qs.append(jnp.stack(outQ, 1))
        Rs.append(jnp.stack(outR, 1))
        vs.append(jnp.stack(outv, 1))
        if progress is not None:
            progress(hi)
    Q = np.asarray(jnp.concatenate(Qs))
    R = np.asarray(jnp.concatenate(Rs))
    v = np.asarray(jnp.concatenate(vs))
    if lr_v == 0 and np.all(v == 1.0) and np.all(np.asarray(teacher_v) == 1.0):
        return {**_record(Q, R, T, integrals), "v": v}  # ε_g of the fixed-v code (the same bits)
    return _record(Q, R, T, integrals, v, teacher_v)


RECORD_UNIT = 32
"""The compiled strided page records every RECORD_UNIT steps (one compilation for every stride and D);
a coarser stride keeps every (stride / RECORD_UNIT)-th record."""


def record_stride(D: int, resolution: float = 0.25) -> int:
    """The power of two between RECORD_UNIT and PAGE closest (in log) to ``resolution`` · D steps: a
    record every ≈ ``resolution`` in α (D ≥ 4 RECORD_UNIT / (3 resolution))."""
    target = max(1.0, resolution * D)
    return int(min(PAGE, max(RECORD_UNIT, 2 ** int(round(math.log2(target))))))


def train_order_parameters_strided(Q0, R0, T, *, lr: float, noise_std: float, D: int, alpha_max: float,
                                   stride: int, root, lanes: int = LANES, integrals=None) -> dict:
    """:func:`train_order_parameters` recorded every ``stride`` steps (a multiple of RECORD_UNIT dividing PAGE)
    from step 0 to the first whole page at or after α_max D, without masked steps: the cost of a
    dense record is that of the steps alone. The records are bitwise the states
    :func:`train_order_parameters` gives at the same step counts.

    Returns the dictionary of :func:`train_order_parameters` plus "alpha" (A,) = steps / D.
    """
    integrals = _integrals(integrals)
    if stride < RECORD_UNIT or PAGE % stride or stride % RECORD_UNIT:
        raise InputError(f"stride must divide {PAGE} and be a multiple of {RECORD_UNIT}, got {stride}")
    keep = stride // RECORD_UNIT
    Q0 = jnp.asarray(Q0, jnp.float64)
    R0 = jnp.asarray(R0, jnp.float64)
    T = jnp.asarray(T, jnp.float64)
    E, K, M = R0.shape
    if D <= K + M:
        raise InputError(f"D must exceed K + M = {K + M}, got {D}")
    pages = max(1, math.ceil(alpha_max * D / PAGE))
    if pages * PAGE >= 2**32:
        raise InputError(f"α D = {pages * PAGE} steps exceed the 32-bit step counter")
    keys = student_keys(root, np.arange(E))
    lanes = min(int(lanes), E)
    ones, teacher_v = jnp.ones((lanes, K)), jnp.ones(M)  # the second layers fixed at 1
    Qs, Rs = [], []
    for lo, hi in _blocks(E, lanes):
        Q, R, k = _pad(Q0[lo:hi], lanes), _pad(R0[lo:hi], lanes), _pad(keys[lo:hi], lanes)
        outQ, outR = [np.asarray(Q[: hi - lo])[:, None]], [np.asarray(R[: hi - lo])[:, None]]
        for p in range(pages):
            Q, R, _, q, r, _ = _chain_page_strided(Q, R, ones, k, jnp.uint32(p), T, float(lr), float(noise_std),
                                                   float(D), teacher_v, 0.0, integrals, stride=RECORD_UNIT)
            outQ.append(np.swapaxes(np.asarray(q[keep - 1::keep]), 0, 1)[: hi - lo])
            outR.append(np.swapaxes(np.asarray(r[keep - 1::keep]), 0, 1)[: hi - lo])
        Qs.append(np.concatenate(outQ, 1))
        Rs.append(np.concatenate(outR, 1))
    out = _record(np.concatenate(Qs), np.concatenate(Rs), T, integrals)
    out["alpha"] = np.arange(out["eps"].shape[1]) * stride / D
    return out


def _record(Q, R, T, integrals, v=None, teacher_v=None) -> dict:
    if v is None:
        eps = np.asarray(jax.vmap(jax.vmap(lambda q, r: generalisation_error(q, r, T, integrals)))(jnp.asarray(Q),
                                                                                                   jnp.asarray(R)))
    else:
        eps = np.asarray(jax.vmap(jax.vmap(lambda q, r, w: generalisation_error(q, r, T, integrals, v=w,
                                                                                teacher_v=teacher_v)))(
            jnp.asarray(Q), jnp.asarray(R), jnp.asarray(v)))
    finite = np.isfinite(eps).all(axis=1) & np.isfinite(Q).all(axis=(1, 2, 3)) & np.isfinite(R).all(axis=(1, 2, 3))
    out = {"Q": Q, "R": R, "eps": eps, "finite": finite}
    if v is not None:
        out["finite"] = finite & np.isfinite(v).all(axis=(1, 2))
        out["v"] = v
    return out


def train_direct(W0, Wstar, *, lr: float, noise_std: float, alphas, root, lanes: int = LANES, v0=None,
                 teacher_v=None, lr_v: float = 0.0, integrals=None) -> dict:
    """Train E students with their D-dimensional weights (the reference simulation):
    w_k ← w_k + (η/√D) Δ v_k g'(λ_k) x and, when η_v > 0, v_k ← v_k + (η_v/D) Δ g(λ_k), both from the
    same step's values (module docstring).

    Args:
        W0: (E, K, D) initial student weights; Wstar: (M, D) teacher weights.
        Other arguments as :func:`train_order_parameters` (v0, teacher_v, lr_v, integrals included).

    Returns the same dictionary, Q = W Wᵀ/D and R = W w*ᵀ/D (and v) recorded at ``alphas``.
    """
    integrals = _integrals(integrals)
    W0 = jnp.asarray(W0)
    Wstar = jnp.asarray(Wstar, W0.dtype)
    E, K, D = W0.shape
    M = Wstar.shape[0]
    steps = save_steps(alphas, D)
    v0, teacher_v, lr_v = _second_layer_start(v0, teacher_v, lr_v, E, K, M)
    second_layer = _uses_second_layer(v0, teacher_v, lr_v)
    v0, teacher_v = v0.astype(W0.dtype), teacher_v.astype(W0.dtype)
    keys = student_keys(root, np.arange(E))
    T = Wstar @ Wstar.T / D
    Qs, Rs, vs = [], [], []
    for lo, hi in _blocks(E, lanes):
        W, v, k = _pad(W0[lo:hi], lanes), _pad(v0[lo:hi], lanes), _pad(keys[lo:hi], lanes)
        done, outQ, outR, outv = 0, [], [], []
        for s in steps:
            if s > done:
                W, v = _direct_segment(W, v, k, jnp.uint32(done), Wstar, float(lr), float(noise_std), teacher_v, lr_v,
                                       integrals, n_steps=int(s - done), second_layer=second_layer)
                done = int(s)
            w = W[: hi - lo]
            outQ.append(jnp.einsum("ekd,eld->ekl", w, w) / D)
            outR.append(jnp.einsum("ekd,md->ekm", w, Wstar) / D)
            outv.append(v[: hi - lo])
        Qs.append(jnp.stack(outQ, 1))
        Rs.append(jnp.stack(outR, 1))
        vs.append(jnp.stack(outv, 1))
    Q = np.asarray(jnp.concatenate(Qs), np.float64)
    R = np.asarray(jnp.concatenate(Rs), np.float64)
    v = np.asarray(jnp.concatenate(vs), np.float64)
    T = np.asarray(T, np.float64)
    if not second_layer:
        return {**_record(Q, R, T, integrals), "v": v}  # ε_g of the fixed-v code (the same bits)
    return _record(Q, R, T, integrals, v, np.asarray(teacher_v, np.float64))


__all__ = ["LANES", "gaussian_start_order_parameters", "gaussian_students", "orthonormal_teacher", "save_steps",
           "RECORD_UNIT", "record_stride", "student_keys", "train_direct", "train_order_parameters",
           "train_order_parameters_strided"]
