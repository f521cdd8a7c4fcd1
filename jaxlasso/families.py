"""Families on the host: what the API layer does per family around the kernels.

A family has two halves. The kernel half (:mod:`kernels.families`) is the datafit the jitted
path minimises. This host half (numpy) turns the user's ``y`` into the kernel's response, finds
where features enter the path (lambda_max), maps the kernel's linear predictor back to the
user's scale and scores held-out predictions in CV. :func:`jaxlasso.path.fit_path` and
:func:`jaxlasso.cv.cv_path` take ``family=`` (a name or a :class:`HostFamily`) and call only
what is declared here, so a new family is one kernel datafit plus one :class:`HostFamily`
subclass, registered with :func:`register`.

THE HOST PROTOCOL (numpy in, numpy out; ``w`` is the observation weight vector, any positive
scale, ``wn = w / w.sum()``):

``name`` ; ``kernel`` (the :mod:`kernels.families` object) ; ``measures`` (CV measures, the
default first) ; ``larger_is_better`` (per measure) ; ``has_classes`` (binary labels: folds
stratify and check classes).

``check_response(y, n) -> (values, classes)``
    Validate the user's response: ``values`` the response as the family models it (binomial:
    0/1 labels; Gaussian: the outcome), any pytree of arrays over the n rows; ``classes`` the
    binomial's (control, case) labels, else None. Errors name ``y`` and say what is wrong.
``standardize(values, w, fit_intercept) -> (y_kernel, center, scale)``
    The kernel's response and the affine map back: a linear predictor ``eta`` of the kernel is
    ``center + scale * eta`` on the user's scale, and the kernel's lambdas are the user's
    divided by ``scale`` (1 and 0 for families without a response scale).
``null_eta(X, y_kernel, w, pf, fit_intercept) -> (n,)``
    The kernel-scale linear predictor of the unpenalised null fit (intercept and the features
    with ``pf = 0``), from which features enter the path.
``residual(eta, y_kernel, wn) -> (n,)``
    The kernel's loss gradient in ``eta`` (the same as ``kernel.residual``, in numpy).
``predict(eta) -> (n, ...)``
    Predictions on the response scale from the user-scale linear predictor (binomial: the
    probability of the case; Gaussian: ``eta`` itself).
``pointwise_loss(measure, values, pred) -> (m, L)``
    Per-observation held-out loss for the pointwise CV measures (cv.glmnet's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kernels import families as kfam

from . import _validation as V
from .metrics import pointwise_loss, sigmoid


class HostFamily:
    """Base of the host halves; see the module docstring for the protocol."""

    name: str = ""
    kernel: object = None
    measures: tuple[str, ...] = ()
    larger_is_better: dict = {}
    has_classes: bool = False

    def standardize(self, values, w, fit_intercept):
        return values, 0.0, 1.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BinomialHost(HostFamily):
    name = "binomial"
    kernel = kfam.BINOMIAL
    measures = ("deviance", "class", "auc", "mse", "auc_pooled")
    larger_is_better = {"auc": True, "auc_pooled": True, "deviance": False, "class": False, "mse": False}
    has_classes = True

    def check_response(self, y, n):
        labels = V.check_y(y, n)
        return labels.y, labels.classes

    def null_eta(self, X, y, w, pf, fit_intercept):
        from .lambdas import null_linear_predictor
        return null_linear_predictor(X, y, w, pf, fit_intercept=fit_intercept)

    def residual(self, eta, y, wn):
        return wn * (sigmoid(eta) - y)

    def predict(self, eta):
        return sigmoid(eta)

    def pointwise_loss(self, measure, values, pred):
        return pointwise_loss(measure, values, pred)


class GaussianHost(HostFamily):
    """glmnet's ``family = "gaussian"``: least squares on the standardised response.

    glmnet standardises ``y`` for the whole computation -- weighted mean removed (with an
    intercept), divided by the weighted RMS of what is left -- and reports lambdas, coefficients
    and the intercept on the original scale; the kernel's ``tol`` then means the same on any
    scale of ``y``.
    """

    name = "gaussian"
    kernel = kfam.GAUSSIAN
    measures = ("mse", "mae", "deviance")
    larger_is_better = {"mse": False, "mae": False, "deviance": False}

    def check_response(self, y, n):
        if isinstance(y, (pd.Series, pd.Index)):
            y = y.to_numpy()
        arr = np.asarray(y)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(f"y must be a 1-D numeric outcome (got shape={arr.shape})")
        if len(arr) != n:
            raise ValueError(f"X and y have different numbers of samples; pass one outcome per row of X "
                             f"(got n_rows(X)={n}, len(y)={len(arr)})")
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"y must be numeric for family='gaussian' (got dtype={arr.dtype})") from None
        arr = arr.astype(np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.nonzero(bad)[0][:5].tolist()
            raise ValueError(f"y has {int(bad.sum())} missing or infinite value(s); drop those samples "
                             f"first (got NaN/Inf at rows {rows})")
        return arr, None

    def standardize(self, values, w, fit_intercept):
        wn = w / w.sum()
        center = float(wn @ values) if fit_intercept else 0.0
        r = values - center
        scale = float(np.sqrt(wn @ (r * r)))
        if not scale > 0:
            what = "constant within the weighted samples" if fit_intercept else "zero within the weighted samples"
            raise ValueError(f"y is {what}, so there is nothing to fit (got weighted SD of y = 0)")
        return r / scale, center, scale

    def null_eta(self, X, y, w, pf, fit_intercept):
        wn = w / w.sum()
        base = float(wn @ y) if fit_intercept else 0.0
        free = np.nonzero(pf == 0)[0]
        if free.size:
            Z = X[:, free]
            free = free[(wn @ (Z - wn @ Z) ** 2) > 0]
        if free.size == 0:
            return np.full(len(y), base)
        Z = X[:, free]
        if fit_intercept:
            Z = np.column_stack([np.ones(len(y)), Z])
        sw = np.sqrt(wn)
        beta = np.linalg.lstsq(Z * sw[:, None], y * sw, rcond=None)[0]
        return Z @ beta

    def residual(self, eta, y, wn):
        return wn * (eta - y)

    def predict(self, eta):
        return eta

    def pointwise_loss(self, measure, values, pred):
        """cv.elnet: ``mse`` (= ``deviance``) ``(y - yhat)^2``, ``mae`` ``|y - yhat|``."""
        r = values[:, None] - pred
        if measure in ("mse", "deviance"):
            return r * r
        if measure == "mae":
            return np.abs(r)
        raise ValueError(f"unknown pointwise measure {measure!r}")


BINOMIAL = BinomialHost()
GAUSSIAN = GaussianHost()
_REGISTRY: dict[str, HostFamily] = {"binomial": BINOMIAL, "gaussian": GAUSSIAN}


def register(family: HostFamily) -> None:
    """Make a host family available by name (its kernel half must be hashable)."""
    kfam.register(family.kernel)
    _REGISTRY[family.name] = family


def get(family) -> HostFamily:
    """The host family for a name (``"binomial"``, ``"gaussian"``, or a registered one)."""
    if isinstance(family, HostFamily):
        return family
    if isinstance(family, str) and family in _REGISTRY:
        return _REGISTRY[family]
    raise ValueError(f"family must be one of {', '.join(sorted(_REGISTRY))} (got family={family!r})")


__all__ = ["BINOMIAL", "GAUSSIAN", "BinomialHost", "GaussianHost", "HostFamily", "get", "register"]
