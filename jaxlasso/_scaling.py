"""Standardisation bookkeeping: the column shift given to the kernels and the back-transform.

The kernels standardise columns with the weighted mean ``xm`` and population SD ``xs`` of each
lane (glmnet's standardisation). Before that, the API subtracts the *unweighted* column means
``shift`` from ``X`` when an intercept is fitted: the fit is unchanged (the intercept absorbs any
shift) and the weighted moments computed in the kernel no longer suffer from cancellation on
columns with a large mean and a small spread (raw counts).
"""

from __future__ import annotations

import numpy as np


def column_shift(X: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """(p,) what the kernels subtract from each column of ``X``: its mean with an intercept
    (which absorbs it), else 0 (a model without intercept is not invariant to it)."""
    if not fit_intercept:
        return np.zeros(X.shape[1], dtype=X.dtype)
    return X.mean(axis=0)


def to_original_scale(beta: np.ndarray, b0: np.ndarray, xm: np.ndarray, xs: np.ndarray,
                      shift: np.ndarray, *, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Standardised ``(b0, beta)`` -> original-scale ``(intercept, coef)``.

    ``eta = b0 + sum_j beta_j (x_j - shift_j - xm_j) / xs_j``, so ``coef = beta / xs`` and
    ``intercept = b0 - coef . (xm + shift)``. Shapes: beta (..., p), b0 (...). ``overwrite``
    divides ``beta`` in place (a float array the caller no longer needs) instead of copying it.
    """
    coef = np.divide(beta, xs, out=beta) if overwrite else beta / xs
    intercept = b0 - coef @ (xm + shift)
    return coef, intercept


def sparse_original_scale(indptr: np.ndarray, feature: np.ndarray, beta: np.ndarray, b0: np.ndarray,
                          xm: np.ndarray, xs: np.ndarray, shift: np.ndarray, p: int):
    """:func:`to_original_scale` of a path's nonzero standardised coefficients, row by row
    (``indptr`` (L + 1,), ``feature`` and ``beta`` (nnz,), ``b0`` (L,)): ``(SparseRows coef,
    intercept (L,))`` without an (L, p) array.

    Each coefficient is the same ``beta / xs`` as the dense form's; an intercept sums its row's
    nonzero terms of ``coef . (xm + shift)`` in feature order, so it can differ from the dense
    product's BLAS summation order in the last bits.
    """
    from .results import SparseRows

    L = len(indptr) - 1
    coef = beta.astype(np.float64) / xs[feature]
    rows = np.repeat(np.arange(L), np.diff(indptr))
    intercept = b0 - np.bincount(rows, weights=coef * (xm + shift)[feature], minlength=L)
    return SparseRows.from_entries(rows, feature, coef, (L, p)), intercept
