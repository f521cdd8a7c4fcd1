"""Compiled entry points: one lane, many lanes sharing ``X``, many datasets.

A *lane* is one path problem. CV folds, bootstrap resamples and subsamples differ only in their
weight vectors (a fold has zeros on its held-out rows; a bootstrap resample holds counts), label
permutations only in ``y``, randomised lassos only in the penalty factors, so ``X`` enters the
batch once (``in_axes=None``) and is never sliced or copied per lane.

* :func:`single_solver` solves one lane. The host (``jaxlasso._engine``) can run B lanes as a
  loop over this one executable: each lane has its own loop trip counts, and every lane count
  shares one compilation.
* :func:`lanes_solver` solves B lanes in one call with ``vmap``: lanes advance in lockstep and
  their full-gradient passes become one ``R @ X`` product that reads ``X`` once for all lanes --
  the accelerator strategy. Every ``while_loop`` runs until its slowest lane is done.

On a CPU the batched loops' masking and lockstep cost more than the shared reads of ``X`` save
when there is no parallel hardware to fill, so the host loops there; on accelerators it vmaps
small problems and loops large ones (``jaxlasso._engine.default_lane_mode``; the measurements
behind the rule are in ``benchmarks/NOTES.md``).

The family (:mod:`kernels.families`) is a static argument of every factory: a key of its cache,
so each family compiles its own executables and binomial's are those it always had.

Early stop across lanes: the stop decision of the master lanes (``is_master``) ends every lane
of the batch at the same lambda (cv.glmnet runs its folds on the full-data fit's possibly
shortened grid). Under ``vmap`` this is a ``psum`` over the lane axis; in a host loop the master
runs first and its path length bounds the others.
"""

from __future__ import annotations

import functools

import jax

from ._types import Problem
from .families import BINOMIAL
from .path import solve_path

LANE_AXIS = "lanes"
DATASET_AXIS = "datasets"


@functools.lru_cache(maxsize=None)
def single_solver(*, k: int, fit_intercept: bool, standardize: bool, family=BINOMIAL):
    """Jitted ``f(problem, lambdas, state, start, stop, settings, is_master)`` for one lane.

    ``problem.w`` (n,), ``state`` a :class:`PathState` (p,), the rest scalars; returns
    (PathOut, null_dev, PathState).
    The linear predictor is always kept ((L, n) is small for one lane), so that a path and the
    folds of a CV share one executable.
    """
    def one(problem, lambdas, state, start, stop, settings, is_master):
        return solve_path(problem, lambdas, state, start, stop, settings, k=k,
                          fit_intercept=fit_intercept, standardize=standardize, keep_eta=True,
                          family=family, is_master=is_master)

    return jax.jit(one)


@functools.lru_cache(maxsize=None)
def lanes_solver(*, k: int, fit_intercept: bool, standardize: bool, keep_eta: bool,
                 y_batched: bool = False, pf_batched: bool = False, family=BINOMIAL):
    """Jitted ``vmap`` over B lanes sharing ``X`` (and ``y``/``pf`` unless batched).

    ``problem.y`` the family's response pytree, every leaf with a leading B axis when
    ``y_batched`` (permutation lanes); ``problem.w`` (B, n); ``problem.pf`` (p,) or (B, p);
    ``state`` a :class:`PathState` with a leading B axis; ``start``, ``stop``, ``is_master`` (B,).
    Outputs carry a leading B axis.
    """
    def one(problem, lambdas, state, start, stop, settings, is_master):
        return solve_path(problem, lambdas, state, start, stop, settings, k=k,
                          fit_intercept=fit_intercept, standardize=standardize, keep_eta=keep_eta,
                          family=family, is_master=is_master, axis_name=LANE_AXIS, sync_axes=(LANE_AXIS,))

    axes = Problem(X=None, XT=None, colnorm=None, y=0 if y_batched else None, w=0, pf=0 if pf_batched else None,
                   l1_ratio=None)
    return jax.jit(jax.vmap(one, in_axes=(axes, None, 0, 0, 0, None, 0), axis_name=LANE_AXIS))


@functools.lru_cache(maxsize=None)
def datasets_solver(*, k: int, fit_intercept: bool, standardize: bool, keep_eta: bool, family=BINOMIAL):
    """Jitted ``vmap`` over D datasets of one (padded) shape, each with B lanes.

    ``problem.X`` (D, n, p), ``problem.y`` (D, n), ``problem.w`` (D, B, n), ``problem.pf``
    (D, p); ``lambdas`` (D, L); ``state`` a :class:`PathState` with leading (D, B) axes;
    ``start``, ``stop``, ``is_master`` (D, B). Lanes of one dataset share its ``X``; the master lanes' early stop
    applies within each dataset.
    """
    def one(problem, lambdas, state, start, stop, settings, is_master):
        return solve_path(problem, lambdas, state, start, stop, settings, k=k,
                          fit_intercept=fit_intercept, standardize=standardize, keep_eta=keep_eta,
                          family=family, is_master=is_master, axis_name=LANE_AXIS,
                          sync_axes=(DATASET_AXIS, LANE_AXIS))

    lane_axes = Problem(X=None, XT=None, colnorm=None, y=None, w=0, pf=None, l1_ratio=None)
    lanes = jax.vmap(one, in_axes=(lane_axes, None, 0, 0, 0, None, 0), axis_name=LANE_AXIS)
    data_axes = Problem(X=0, XT=0, colnorm=0, y=0, w=0, pf=0, l1_ratio=None)
    return jax.jit(jax.vmap(lanes, in_axes=(data_axes, 0, 0, 0, 0, None, 0), axis_name=DATASET_AXIS))
