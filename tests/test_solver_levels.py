"""Exact model solves on the smallest static level that holds the support (``solver.solve_levels``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import precision_scope
from kernels import solver


def test_levels_are_static_and_cover_the_capacity():
    assert solver.solve_levels(32, False) == (32,)
    assert solver.solve_levels(768, False) == (192, 384, 576, 768)
    assert solver.solve_levels(96, False) == (24, 48, 72, 96)
    assert solver.solve_levels(768, True) == (768,)  # vmapped lanes: one size


@pytest.mark.parametrize("support", [5, 40, 100, 128])
def test_polish_on_a_level_equals_the_full_solve(support):
    """A support scattered over the slots (not a prefix) is gathered, solved on the smallest
    level and scattered back: the same model minimiser and path predictor as the full k x k solve."""
    k, n = 128, 300
    rng = np.random.default_rng(support)
    with precision_scope(np.float64):
        A = rng.standard_normal((k, n)) / np.sqrt(n)
        G = jnp.asarray(A @ A.T + 0.05 * np.eye(k))
        slots = rng.permutation(k)[:support]
        c = np.zeros(k)
        c[slots] = rng.standard_normal(support)
        b = jnp.asarray(c + 0.01 * rng.standard_normal(k) * (c != 0))
        lin = jnp.asarray(rng.standard_normal(k) * 0.05)
        a1 = jnp.full(k, 0.02)
        a2 = jnp.full(k, 0.001)
        mask = jnp.ones(k, bool)
        run = {levels: jax.jit(lambda c, levels=levels: solver._polish(G, lin, b, c, a1, a2, mask, 1e-10, -0.05, levels))
               for levels in [(k,), solver.solve_levels(k, False)]}
        full, lev = (run[key](jnp.asarray(c)) for key in run)
    for x, y in zip(full, lev):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-10, atol=1e-12)
    assert np.count_nonzero(np.asarray(lev[0])) > 0
