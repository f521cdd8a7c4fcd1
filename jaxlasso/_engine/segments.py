"""Working-set growth: a path run in segments, resumed with a larger capacity after an overflow.

The kernels have a static working-set capacity ``k``. A lane whose active set outgrows it stops
with ``Status.OVERFLOW`` at some lambda; :func:`run_segments` resumes those lanes from that lambda
with a larger capacity (:func:`~jaxlasso._engine.shapes.grow_capacity`), from the state the
kernel returned (``kernels.PathState``: warm start, gradient and moments -- no pass over ``X`` to
restart), and merges the outputs. Each
capacity compiles once per shape (cached by jit and, across processes, by JAX's persistent
compilation cache), so a path uses small working sets where the active set is small.
"""

from __future__ import annotations

import logging

import jax
import numpy as np

from kernels import Status

from .outputs import path_lengths
from .shapes import grow_capacity

log = logging.getLogger("jaxlasso")

#: The per-lambda outputs of a segment, by their names in the merged results.
_FIELDS = {"idx": "ws_idx", "coef": "ws_coef", "intercept": "intercept", "n_iter": "n_iter",
           "n_kkt_rounds": "n_kkt_rounds", "ws_needed": "ws_needed", "kkt_gap": "kkt_gap",
           "deviance": "deviance", "status": "status", "eta": "eta"}


def pad_k(a: np.ndarray, K: int, fill=0) -> np.ndarray:
    """Pad the last (working-set) axis to ``K`` slots."""
    if a.shape[-1] == K:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, K - a.shape[-1])]
    return np.pad(a, pad, constant_values=fill)


def merge(merged: dict | None, out, start: np.ndarray, k: int) -> dict:
    """Overlay a segment's outputs on the lanes' earlier results from each lane's start index."""
    new = {key: getattr(out, name) for key, name in _FIELDS.items()}
    if merged is None:
        return {key: np.array(v) for key, v in new.items()}
    K = max(k, merged["idx"].shape[-1])
    for key in ("idx", "coef"):
        merged[key] = pad_k(merged[key], K)
        new[key] = pad_k(new[key], K)
    L = merged["status"].shape[1]
    take = np.arange(L)[None, :] >= start[:, None]  # (B, L)
    for key, value in new.items():
        mask = take.reshape(take.shape + (1,) * (value.ndim - 2))
        merged[key] = np.where(mask, value, merged[key])
    return merged


def skip_lambdas(merged: dict, mask: np.ndarray) -> None:
    """Mark the (lane, lambda) entries in ``mask`` as skipped, as the kernel reports them."""
    merged["status"] = np.where(mask, Status.SKIPPED, merged["status"])
    merged["deviance"] = np.where(mask, np.nan, merged["deviance"])
    for key in ("n_iter", "n_kkt_rounds"):
        merged[key] = np.where(mask, 0, merged[key])
    merged["coef"] = np.where(mask[..., None], 0.0, merged["coef"])


def concat_lanes(parts, order=None, kept=None):
    """Join the :func:`run_segments` results of groups of lanes along the lane axis (``order``: a
    permutation of the joined lanes into their original order).

    ``kept`` (bool, one per joined lane, in joined order): the parts hold the moments of these
    lanes only (:func:`keep_moments`); their rows come out in the lanes' original order.
    """
    K = max(part[0]["idx"].shape[-1] for part in parts)
    merged = {key: np.concatenate([pad_k(part[0][key], K) if key in ("idx", "coef") else part[0][key]
                                   for part in parts]) for key in parts[0][0]}
    moments = jax.tree.map(lambda *a: np.concatenate(a), *[part[1] for part in parts])
    null_dev = np.concatenate([part[2] for part in parts])
    if order is not None:
        merged = {key: value[order] for key, value in merged.items()}
        if kept is None:
            moments = jax.tree.map(lambda a: a[order], moments)
        else:
            row = np.cumsum(kept) - 1  # joined lane -> its row among the kept moments
            moments = jax.tree.map(lambda a: a[row[order][kept[order]]], moments)
        null_dev = null_dev[order]
    return merged, moments, null_dev, tuple(sorted({c for part in parts for c in part[3]}))


def keep_moments(result, keep: np.ndarray):
    """A :func:`run_segments` result with the moments of the lanes in ``keep`` (bool, one per lane)
    only: the others' are dropped at once, as ``(lanes, p)`` moments of many lanes can outweigh
    the design when p >> n."""
    if keep.all():
        return result
    merged, moments, null_dev, caps = result
    return merged, jax.tree.map(lambda a: a[keep], moments), null_dev, caps


def _bound_by_masters(merged: dict, stop: np.ndarray, master: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Skip every non-master lane's lambdas past its group's masters' stop; returns the new stops.

    A group whose masters still have an overflow to resume is left alone: its stop is not known.
    """
    L = merged["status"].shape[1]
    overflow = merged["status"] == Status.OVERFLOW
    for g in np.unique(group):
        lanes = group == g
        masters = master & lanes
        if not masters.any() or overflow[masters].any():
            continue
        bound = int(path_lengths(merged["status"][masters]).min())
        others = lanes & ~master
        skip_lambdas(merged, (np.arange(L)[None, :] >= bound) & others[:, None])
        stop = np.where(others, np.minimum(stop, bound), stop).astype(np.int32)
    return stop


def run_segments(run, B: int, L: int, Lp: int, k: int, stop: np.ndarray, cap: int,
                 master: np.ndarray | None = None, group: np.ndarray | None = None):
    """Run ``run(k, state, start, stop)`` for B lanes, growing ``k`` on overflow.

    ``run`` returns ``(PathOut, Moments, null_dev, state)`` (numpy, except ``state``: the kernels'
    :class:`~kernels.PathState`, kept where it is and passed back as is; ``None`` asks for a
    fresh start). A lane that overflows at lambda m is resumed from m with a larger capacity
    (see :func:`~jaxlasso._engine.shapes.grow_capacity`) from the state it stopped in -- exactly
    where an uninterrupted path would continue; the other lanes are skipped (``start = Lp``).
    ``cap`` is the number of real features (the largest capacity).

    ``master`` (vmapped lanes under glmnet's early stop): once the master lanes are done, their
    stop bounds the other lanes, as in one uninterrupted vmapped call (and as the lane loop does).
    Without it a lane resumed after an overflow in a later segment, without the masters, would
    run on to the end of the grid: results past the master's stop that nobody reads, at the
    dearest lambdas. ``group`` (B,) ints: lanes of different problems (stacked datasets), each
    bounded by its own masters only.

    Returns ``(merged outputs by name, Moments, null_dev, capacities used)``.
    """
    start = np.zeros(B, np.int32)
    group = np.zeros(B, int) if group is None else group
    state = None
    merged = moments = null_dev = None
    capacities = []
    while True:
        capacities.append(k)
        out, mom, nd, state = run(k, state, start, stop)
        if moments is None:
            moments, null_dev = mom, nd
        merged = merge(merged, out, start, k)
        if master is not None:
            stop = _bound_by_masters(merged, stop, master, group)
        overflow = merged["status"] == Status.OVERFLOW
        if not overflow.any():
            return merged, moments, null_dev, tuple(capacities)
        if k >= cap:  # cannot happen: with every feature in the working set nothing overflows
            raise RuntimeError("working set overflow at full capacity")
        first = np.where(overflow.any(axis=1), np.argmax(overflow, axis=1), L)
        # Grow by grow_capacity's factor, or further towards what the overflowing lambda needed
        # (ridge-like penalties fill the working set at once): one capacity for every lane resumed.
        needed = max(int(merged["ws_needed"][b, first[b]]) for b in range(B) if first[b] < L)
        k = grow_capacity(k, needed, cap)
        start = np.where(first < L, first, Lp).astype(np.int32)
        log.debug("working set overflow: resuming %d lane(s) with capacity %d", int((first < L).sum()), k)
