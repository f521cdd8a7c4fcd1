"""Standardisation bookkeeping: the column shift given to the kernels and the back-transform.

The kernels standardise columns with the weighted mean ``xm`` and population SD ``xs`` of each
lane (glmnet's standardisation). Before that, the API subtracts the *unweighted* column means
``shift`` from ``X`` when an intercept is fitted: the fit is unchanged (the intercept absorbs any
shift) and the weighted moments computed in the kernel no longer suffer from cancellation on
columns with a large mean and a small spread (raw counts).
"""

from __future__ import annotations

import numpy as np


def shift_columns(X: np.ndarray, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(X - shift, shift)``; ``shift`` is the column mean with an intercept, else 0."""
    if not fit_intercept:
        return X, np.zeros(X.shape[1], dtype=X.dtype)
    shift = X.mean(axis=0)
    return X - shift, shift


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
