"""Elastic-net penalty pieces with per-feature penalty factors.

The penalty of glmnet is ``lambda * sum_j pf_j * (l1_ratio * |b_j| + (1 - l1_ratio) / 2 * b_j^2)``.
Kernels work with the two per-feature strengths ``a1 = lambda * pf * l1_ratio`` (L1) and
``a2 = lambda * pf * (1 - l1_ratio)`` (L2).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._types import Array


def strengths(lam: Array, pf: Array, l1_ratio: Array) -> tuple[Array, Array]:
    """Per-feature L1 and L2 strengths ``(a1, a2)``; ``pf`` must be finite here."""
    scaled = lam * pf
    return scaled * l1_ratio, scaled * (1.0 - l1_ratio)


def penalty_change(b: Array, c: Array, a1: Array, a2: Array) -> Array:
    """``P(c) - P(b)`` without cancellation, ``P(b) = sum_j a1_j |b_j| + a2_j / 2 * b_j^2``.

    Where ``b`` and ``c`` have the same sign, ``|c| - |b| = sign(b) (c - b)`` and ``c - b`` is
    exact for nearby values; ``c^2 - b^2 = (c - b)(c + b)``. Subtracting the two penalties
    instead loses everything below ``eps * |b|`` -- exactly the size of a Newton step's
    penalty change close to the optimum, where the line search must still see it.
    """
    step = c - b
    same = (b * c) > 0
    dabs = jnp.where(same, jnp.sign(b) * step, jnp.abs(c) - jnp.abs(b))
    return jnp.sum(a1 * dabs + 0.5 * a2 * step * (c + b))


def soft_threshold(z: Array, t: Array) -> Array:
    """``sign(z) * max(|z| - t, 0)``."""
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - t, 0.0)


def coordinate_update(c: Array, grad: Array, h: Array, a1: Array, a2: Array) -> Array:
    """Exact minimiser over ``c'`` of ``grad (c' - c) + h/2 (c' - c)^2 + a1 |c'| + a2/2 c'^2``.

    ``grad`` is the derivative of the smooth (loss) part at ``c``, ``h`` its curvature.
    """
    return soft_threshold(h * c - grad, a1) / (h + a2)
