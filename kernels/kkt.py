"""KKT (subgradient-distance) measures for the elastic-net logistic problem.

At an optimum, for every feature ``j`` with loss gradient ``g_j``:
``g_j + a2_j b_j + a1_j sign(b_j) = 0`` if ``b_j != 0`` and ``|g_j| <= a1_j`` if ``b_j = 0``;
the unpenalised intercept has zero gradient. The distance of ``-g`` from the subdifferential of
the penalty is the per-feature violation; its maximum is the ``kkt_gap`` reported per lambda.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._types import Array


def violation(g: Array, b: Array, a1: Array, a2: Array) -> Array:
    """Per-feature distance ``dist(-g_j, a1_j * d|b_j| + a2_j * b_j)``."""
    nonzero = jnp.abs(g + a2 * b + a1 * jnp.sign(b))
    zero = jnp.maximum(jnp.abs(g) - a1, 0.0)
    return jnp.where(b != 0, nonzero, zero)


def gap(g: Array, b: Array, a1: Array, a2: Array, mask: Array, g0: Array) -> Array:
    """Max violation over the features in ``mask`` and the intercept gradient ``g0``."""
    v = jnp.where(mask, violation(g, b, a1, a2), 0.0)
    return jnp.maximum(jnp.max(v, initial=0.0), jnp.abs(g0))
