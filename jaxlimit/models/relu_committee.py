"""The bias-free two-layer ReLU network of Tian's teacher–student setting (docs/teacher-student.md).

    g(x; W) = Σ_{j=1..K} relu(w_jᵀ x),   W of shape (K, d),   x ~ N(0, I_d)
    J(W)    = ½ E[(g(x; W*) − g(x; W))²]

These are the finite-sample objects: the network, the empirical loss on a batch
of inputs and its gradient (what SGD uses), and a Monte-Carlo estimate of the
population loss and gradient with standard errors (what checks the closed forms
of :mod:`jaxlimit.limits.teacher_student`). All are pure and vmappable.

The derivative convention is JAX's relu′(0) = 0, so a weight row that is exactly
zero gets zero gradient from every sample; the closed form follows the same rule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def relu_committee(W: jax.Array, x: jax.Array) -> jax.Array:
    """g(x; W) = Σ_j relu(w_jᵀx) for W of shape (K, d) and x of shape (P, d); returns (P,)."""
    return jnp.sum(jax.nn.relu(x @ W.T), axis=-1)


def relu_committee_sample_loss(W: jax.Array, W_star: jax.Array, x: jax.Array) -> jax.Array:
    """The empirical loss ½ mean_p (g(x_p; W*) − g(x_p; W))² on inputs x of shape (P, d)."""
    residual = relu_committee(W_star, x) - relu_committee(W, x)
    return 0.5 * jnp.mean(residual**2)


def relu_committee_sample_grad(W: jax.Array, W_star: jax.Array, x: jax.Array) -> jax.Array:
    """∇_W of :func:`relu_committee_sample_loss`, shape (K, d).

    Row j is mean_p (g(x_p; W) − g(x_p; W*)) 1{w_jᵀx_p > 0} x_p.
    """
    return jax.grad(relu_committee_sample_loss)(W, W_star, x)


def relu_committee_monte_carlo(
    key: jax.Array, W: jax.Array, W_star: jax.Array, n_samples: int, batch_size: int = 100_000
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Monte-Carlo population loss and gradient with their standard errors.

    Draws ``n_samples`` inputs x ~ N(0, I_d) in batches of ``batch_size`` (the
    last batch is completed, so ⌈n_samples / batch_size⌉ · batch_size samples
    are used) and averages the per-sample loss ½ r² and gradient
    r 1{Wx > 0} x, with r = g(x; W) − g(x; W*).

    Returns:
        (loss, loss_se, grad, grad_se): a scalar, its standard error, and two
        arrays of shape (K, d): the gradient and the standard error of each entry.
    """
    n_batches = -(-int(n_samples) // int(batch_size))
    dim = W.shape[-1]

    def batch_moments(batch_key):
        x = jax.random.normal(batch_key, (batch_size, dim), W.dtype)
        pre = x @ W.T                                           # (B, K)
        r = jnp.sum(jax.nn.relu(pre), -1) - relu_committee(W_star, x)
        loss = 0.5 * r**2                                       # (B,)
        grad = (r[:, None] * (pre > 0))[:, :, None] * x[:, None, :]   # (B, K, d)
        return (loss.sum(), (loss**2).sum(), grad.sum(0), (grad**2).sum(0))

    def body(total, batch_key):
        return jax.tree_util.tree_map(jnp.add, total, batch_moments(batch_key)), None

    zero = (jnp.zeros((), W.dtype), jnp.zeros((), W.dtype), jnp.zeros_like(W), jnp.zeros_like(W))
    keys = jax.random.split(key, n_batches)
    (s1, s2, g1, g2), _ = jax.lax.scan(body, zero, keys)
    n = n_batches * batch_size
    loss, grad = s1 / n, g1 / n
    # Standard error of a mean: sqrt(sample variance / n).
    loss_se = jnp.sqrt(jnp.maximum(s2 / n - loss**2, 0) / (n - 1))
    grad_se = jnp.sqrt(jnp.maximum(g2 / n - grad**2, 0) / (n - 1))
    return loss, loss_se, grad, grad_se
