"""lambda_max and glmnet's lambda grid."""

from __future__ import annotations

import numpy as np

from ._config import PATH
from .metrics import sigmoid


def null_linear_predictor(X: np.ndarray, y: np.ndarray, w: np.ndarray, pf: np.ndarray, *,
                          fit_intercept: bool) -> np.ndarray:
    """(n,) linear predictor of the null fit from which features enter the path.

    Intercept-only (``logit(weighted mean of y)``, 0 without intercept), or -- when some
    features have ``penalty_factor = 0`` -- the unpenalised logistic fit of the intercept and
    those features, which glmnet computes before its first lambda. That fit is a small IRLS
    in numpy (a handful of columns).
    """
    wn = w / w.sum()
    ybar = float(wn @ y)
    base = np.log(ybar) - np.log1p(-ybar) if fit_intercept else 0.0
    free = np.nonzero(pf == 0)[0]
    if free.size:
        Z = X[:, free]
        keep = (wn @ (Z - wn @ Z) ** 2) > 0
        free = free[keep]
    if free.size == 0:
        return np.full(len(y), base)
    Z = X[:, free]
    if fit_intercept:
        Z = np.column_stack([np.ones(len(y)), Z])
    beta = np.zeros(Z.shape[1])
    if fit_intercept:
        beta[0] = base
    for _ in range(100):
        eta = Z @ beta
        mu = sigmoid(eta)
        v = wn * mu * (1.0 - mu)
        grad = Z.T @ (wn * (mu - y))
        H = Z.T @ (Z * v[:, None])
        step = np.linalg.lstsq(H, grad, rcond=None)[0]
        beta = beta - step
        if np.max(np.abs(Z @ beta)) > 30.0:
            raise ValueError(
                "the unpenalised features (penalty_factor = 0) separate the classes perfectly, so "
                "their fit has no finite solution; give them a positive penalty factor "
                f"(got {free.size} unpenalised feature(s))")
        if np.max(np.abs(grad)) < 1e-13:
            break
    return Z @ beta


def weighted_square_sums(X: np.ndarray, w: np.ndarray, rows: int = 64,
                         shift: np.ndarray | None = None) -> np.ndarray:
    """``w @ (Z * Z)`` with ``Z = X - shift`` (``shift`` None: ``Z = X``), over blocks of ``rows``
    rows: no temporary copy of ``X``.

    A full ``X * X`` of 1000 x 20,000 is a fresh 160 MB array (0.05 s, up to 0.3 s when its
    pages must be found); blocks stay in cache and take 0.02 s. Each block of ``Z`` holds the
    same values as the rows of a whole ``X - shift``, so the sums are the same as on that copy.
    """
    out = np.zeros(X.shape[1], dtype=np.result_type(X.dtype, w.dtype))
    for i in range(0, X.shape[0], rows):
        block = X[i:i + rows] if shift is None else X[i:i + rows] - shift
        out += w[i:i + rows] @ (block * block)
    return out


def entry_lambdas(X: np.ndarray, y, w: np.ndarray, pf: np.ndarray, *, fit_intercept: bool,
                  standardize: bool, family=None, shift: np.ndarray | None = None) -> np.ndarray:
    """(p,) ``|g_j| / pf_j`` at the null fit: where each feature enters an L1 path.

    Computed in numpy (three passes over X; no compilation per shape) with the kernel's
    standardisation: weighted mean and population SD (about the mean, with or without an
    intercept); a column with zero weighted variance is excluded like one with ``pf = inf``.
    ``-inf`` marks excluded features, ``nan`` unpenalised ones. ``family``: a
    :class:`jaxlasso.families.HostFamily` (its null fit and residual, on the kernel's scale of
    ``y``); default binomial. Binomial ``y`` (B, n) -- B labellings of the same design -- gives
    (B, p) in one pass over ``X`` (what does not depend on ``y``, the columns' moments, is
    computed once); :func:`entry_lambda_max` gives their lambda_max without the (B, p) table.

    ``shift`` (p,): score the columns of ``X - shift`` (the centred design the kernels solve,
    where a column's spread is not lost to cancellation against a large mean) without making
    that copy: the columns are shifted a block at a time. The null fit is the same on either
    design; it is computed on the shifted unpenalised columns, as on the copy.
    """
    batched, eta0 = _null_fit(X, y, w, pf, fit_intercept=fit_intercept, family=family, shift=shift)
    if shift is not None:
        p = X.shape[1]
        lead = y.shape[:1] if batched else ()
        return np.concatenate([
            block for block in _score_blocks(X, y, w, pf, eta0, _SHIFT_BLOCK_CELLS, shift=shift,
                                             batched=batched, fit_intercept=fit_intercept,
                                             standardize=standardize, family=family)],
            axis=-1) if p else np.zeros(lead + (0,))
    return _entry_scores(X, y, w, pf, eta0, fit_intercept=fit_intercept, standardize=standardize,
                         family=family)


def entry_lambda_max(X: np.ndarray, y: np.ndarray, w: np.ndarray, pf: np.ndarray, *, l1_ratio: float,
                     fit_intercept: bool, standardize: bool, shift: np.ndarray | None = None) -> np.ndarray:
    """(B,) :func:`lambda_max` of each binomial labelling in the rows of ``y`` (B, n) -- what
    ``lambda_max(entry_lambdas(X, y[b], ...), l1_ratio)`` gives for each ``b`` -- in memory
    independent of p: the columns are scored a block of ``_MAX_BLOCK_CELLS`` cells at a time and
    only each row's running maximum is kept (a permutation test needs one number per labelling,
    and (B, p) scores at p = 200,000 are hundreds of MB). Raises :func:`lambda_max`'s error
    when any labelling has no penalised feature associated.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    _, eta0 = _null_fit(X, y, w, pf, fit_intercept=fit_intercept, family=None, shift=shift)
    top = np.full(y.shape[0], -np.inf)
    for block in _score_blocks(X, y, w, pf, eta0, _MAX_BLOCK_CELLS, shift=shift, batched=True,
                               fit_intercept=fit_intercept, standardize=standardize, family=None):
        finite = np.where(np.isfinite(block), block, -np.inf)
        if finite.shape[-1]:
            top = np.maximum(top, finite.max(axis=-1))
    if not np.all(top > 0):
        raise _nothing_enters()
    return top / max(l1_ratio, PATH.alpha_floor)


def _null_fit(X, y, w, pf, *, fit_intercept, family, shift):
    """``(batched, eta0)``: whether ``y`` holds binomial labellings in rows, and the null fit's
    linear predictor of each (on the unpenalised columns of ``X - shift``)."""
    Xn, pfn = X, pf
    if shift is not None:
        # The null fit sees only the unpenalised columns: shift just those.
        free = np.nonzero(pf == 0)[0]
        Xn, pfn = X[:, free] - shift[free], pf[free]

    def null_eta(yb):
        if family is None:
            return null_linear_predictor(Xn, yb, w, pfn, fit_intercept=fit_intercept)
        return family.null_eta(Xn, yb, w, pfn, fit_intercept)

    # Labellings are binomial label vectors stacked in rows; another family's response may be
    # a pytree or an array of its own shape, passed through as it is.
    batched = family is None and isinstance(y, np.ndarray) and y.ndim == 2
    return batched, (np.stack([null_eta(yb) for yb in y]) if batched else null_eta(y))


def _score_blocks(X, y, w, pf, eta0, cells, *, shift, batched, fit_intercept, standardize, family):
    """The scores of the column blocks ``X[:, j:j + step] (- shift)`` in order, ``step`` columns
    such that a block and its (B, step) scores hold at most ``cells`` cells each."""
    n, p = X.shape
    step = max(1, cells // max(n, y.shape[0] if batched else 1, 1))
    for j in range(0, p, step):
        block = X[:, j:j + step] if shift is None else X[:, j:j + step] - shift[j:j + step]
        yield _entry_scores(block, y, w, pf[j:j + step], eta0, fit_intercept=fit_intercept,
                            standardize=standardize, family=family)


# Cells of ``X - shift`` (and of its (B, columns) scores) that entry_lambdas makes at once:
# 16 MB of float64.
_SHIFT_BLOCK_CELLS = 1 << 21

# Cells of a column block (and of its (B, columns) scores and their temporaries) that
# entry_lambda_max scores at once: 2 MB of float64.
_MAX_BLOCK_CELLS = 1 << 18


def _entry_scores(X, y, w, pf, eta0, *, fit_intercept, standardize, family):
    """:func:`entry_lambdas` of the columns of ``X`` at the null fit's linear predictor ``eta0``."""
    wn = w / w.sum()
    xm = wn @ X
    ex2 = weighted_square_sums(X, wn)
    var = np.maximum(ex2 - xm * xm, 0.0)
    excluded = (var <= 64 * np.finfo(np.float64).eps * np.maximum(ex2, np.finfo(np.float64).tiny)) | np.isinf(pf)
    xs = np.where(excluded, 1.0, np.sqrt(var)) if standardize else np.ones_like(xm)
    if family is None:
        r = wn * (sigmoid(eta0) - y)
    else:
        r = family.residual(eta0, y, wn)
    center = xm * r.sum(axis=-1, keepdims=True) if fit_intercept else 0.0
    grad = (r @ X - center) / xs
    pf_f = np.where(excluded, 1.0, pf)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(pf_f > 0, np.abs(grad) / np.where(pf_f > 0, pf_f, 1.0), np.nan)
    return np.where(excluded, -np.inf, score)


def lambda_max(scores: np.ndarray, l1_ratio: float) -> float:
    """glmnet's lambda_max: ``max_j |g_j| / (pf_j * max(l1_ratio, 1e-3))`` over penalised features.

    At lambda_max (with l1_ratio > 0) every penalised coefficient is zero.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0 or finite.max() <= 0:
        raise _nothing_enters()
    return float(finite.max() / max(l1_ratio, PATH.alpha_floor))


def _nothing_enters() -> ValueError:
    return ValueError(
        "no penalised feature is associated with y at all (every gradient is 0 at the "
        "intercept-only fit), so the lasso path is empty; check that X varies and that y is "
        "not constant within the weighted samples (got lambda_max=0)")


def default_lambda_min_ratio(n: int, p: int) -> float:
    return PATH.lambda_min_ratio_wide if n < p else PATH.lambda_min_ratio_tall


def lambda_grid(lam_max: float, n_lambdas: int, lambda_min_ratio: float) -> np.ndarray:
    """``n_lambdas`` values log-spaced from ``lam_max`` down to ``lam_max * lambda_min_ratio``."""
    if n_lambdas == 1:
        return np.array([lam_max])
    return lam_max * np.power(lambda_min_ratio, np.arange(n_lambdas) / (n_lambdas - 1))
