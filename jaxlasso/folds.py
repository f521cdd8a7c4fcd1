"""Fold assignment for cross-validation: stratified, random or user-given; repeated; seeded.

Folds become weight vectors (zeros on the held-out rows) before they reach the kernels.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _validation as V
from .exceptions import FewObservationsWarning


def default_nfolds(y01: np.ndarray, w: np.ndarray, requested: int | None, stratified: bool) -> int:
    """glmnet's 10 folds, capped (when not given) so that every stratified fold holds each class.

    An explicit ``nfolds`` larger than the smallest class with stratified folds is an error: some
    folds would hold out no sample of that class, which stratification promises not to do.
    """
    present = w > 0
    minority = int(min(np.sum(y01[present] == 1), np.sum(y01[present] == 0)))
    if requested is None:
        return max(2, min(10, minority))
    nfolds = V.check_positive_int(requested, "nfolds", minimum=2)
    if stratified and nfolds > minority:
        raise ValueError(
            f"nfolds={nfolds} is more than the {minority} samples of the smaller class, so "
            f"{nfolds - minority} stratified fold(s) would hold out no sample of it; use "
            f"nfolds <= {minority}, leave nfolds unset (jaxlasso then uses min(10, {minority})), "
            f"or pass stratified=False for glmnet's random folds (got nfolds={nfolds}, "
            f"n_smaller_class={minority})")
    return nfolds


def make_foldid(y01: np.ndarray, w: np.ndarray, *, nfolds: int, stratified: bool, n_repeats: int,
                seed: int) -> np.ndarray:
    """(n_repeats, n) fold labels in ``0..nfolds-1``.

    Stratified: within each class the samples are shuffled and dealt to folds in turn, the
    dealing continuing across classes so fold sizes differ by at most one. The classes are
    dealt in the order of their first sample (the class of row 0 first), never in the order of
    their codes, so the folds depend only on the partition of the samples into two groups:
    calling the other class the case gives the same folds, hence the same genes with negated
    coefficients. Random: glmnet's
    ``sample(rep(seq(nfolds), length = n))``. Repeat ``r`` uses the generator
    ``numpy.random.default_rng([seed, r])``, so repeats are independent and reproducible.
    Zero-weight rows get a fold too (they hold no weight anywhere).
    """
    n = len(y01)
    if nfolds > n:
        raise ValueError(f"nfolds cannot exceed the number of samples; use nfolds <= {n} "
                         f"(got nfolds={nfolds}, n_samples={n})")
    out = np.empty((n_repeats, n), dtype=np.int64)
    # The class holding row 0 is dealt first: an order that a relabelling of the classes keeps.
    classes = (y01[0], 1.0 - y01[0]) if n else ()
    for r in range(n_repeats):
        rng = np.random.default_rng([seed, r])
        if stratified:
            order = np.concatenate([rng.permutation(np.nonzero(y01 == c)[0]) for c in classes])
            out[r, order] = np.arange(n) % nfolds
        else:
            out[r] = rng.permutation(np.resize(np.arange(nfolds), n))
    return out


def normalize_foldid(foldid: Any, n: int) -> np.ndarray:
    """User fold labels (any integers; glmnet's 1-based ids work as they are) -> (R, n) in 0..F-1."""
    arr = np.asarray(foldid)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"foldid must have one label per sample, or shape (n_repeats, n_samples) "
                         f"(got shape={np.shape(foldid)}, n_samples={n})")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"foldid must hold integer fold labels (got dtype={arr.dtype})")
    out = np.empty(arr.shape, dtype=np.int64)
    counts = set()
    for r in range(arr.shape[0]):
        levels, codes = np.unique(arr[r], return_inverse=True)
        if len(levels) < 2:
            raise ValueError(f"foldid needs at least 2 distinct folds (got the single fold {levels[0]})")
        counts.add(len(levels))
        out[r] = codes
    if len(counts) != 1:
        raise ValueError(f"every repeat of foldid must have the same number of folds "
                         f"(got fold counts {sorted(counts)})")
    return out


def check_folds(foldid: np.ndarray, y01: np.ndarray, w: np.ndarray, classes) -> None:
    """Every fold's training rows must hold both classes; warn when held-out folds lack one."""
    nfolds = int(foldid.max()) + 1
    present = w > 0
    for r in range(foldid.shape[0]):
        for f in range(nfolds):
            train = present & (foldid[r] != f)
            for c, label in ((1.0, classes[1]), (0.0, classes[0])):
                if int(np.sum(train & (y01 == c))) < 1:
                    raise ValueError(
                        f"fold {f} (repeat {r}) leaves no sample of class {label!r} to train on; "
                        f"use fewer folds or stratified folds (got nfolds={nfolds}, "
                        f"n_{label}={int(np.sum(present & (y01 == c)))})")
    held = [(foldid[0] == f) & present for f in range(nfolds)]
    missing = sum(1 for h in held if len(np.unique(y01[h])) < 2)
    if missing:
        warnings.warn(
            f"{missing} of {nfolds} folds hold out samples of one class only; per-fold AUC is "
            f"undefined there and the CV curve is noisier (got nfolds={nfolds})",
            FewObservationsWarning, stacklevel=3)


def fold_weights(foldid: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n_repeats * nfolds, n) training weights: ``w`` with the held-out fold set to zero."""
    nfolds = int(foldid.max()) + 1
    lanes = [np.where(foldid[r] == f, 0.0, w) for r in range(foldid.shape[0]) for f in range(nfolds)]
    return np.stack(lanes)
