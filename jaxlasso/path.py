r"""The elastic-net logistic regularisation path with glmnet's semantics.

jaxlasso minimises, for each lambda on a decreasing grid, glmnet's objective

.. math::

    \min_{\beta_0, \beta} \; \frac{1}{\sum_i w_i} \sum_{i=1}^n w_i
    \left[\log\left(1 + e^{\eta_i}\right) - y_i \eta_i\right]
    + \lambda \sum_{j=1}^p \mathrm{pf}_j \left(\alpha |\beta_j| + \frac{1 - \alpha}{2} \beta_j^2\right),
    \qquad \eta_i = \beta_0 + \sum_j \beta_j \tilde x_{ij},

where :math:`\tilde x_{ij} = (x_{ij} - \bar x_j) / s_j` are the columns standardised with the
weighted mean and weighted population SD (``standardize=True``), :math:`\alpha` is ``l1_ratio``
and the penalty factors are rescaled to sum to ``p``. Coefficients are returned on the original
scale of ``X``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import jax
import numpy as np

from kernels import Status
from kernels.families import BINOMIAL

from . import _validation as V
from ._config import PATH
from ._engine import Lanes, report_status, solve_lanes
from .lambdas import default_lambda_min_ratio, entry_lambdas, lambda_grid, lambda_max
from ._scaling import column_shift, sparse_original_scale
from .families import BINOMIAL as HOST_BINOMIAL
from .families import get as get_family
from .results import PathResult


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the caller's own array keeps its flags)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _frozen_tree(tree):
    """:func:`_frozen` on every array of a response pytree (a plain array for most families)."""
    if isinstance(tree, np.ndarray):
        return _frozen(tree)
    return jax.tree.map(lambda a: _frozen(np.asarray(a)), tree)


class PreparedProblem:
    """A validated problem ready for the kernels (shared by the path, CV and selection APIs).

    Immutable: attributes cannot be set and its arrays are read-only, so one prepared problem
    can be handed from the CV to the permutation test and stability selection (:meth:`derive`,
    :meth:`reusable_for`) without any of them changing what another one solves. It holds what no
    lane changes: the validated design ``X`` with its column ``shift`` (the kernels solve
    ``X - shift``), labels, weights and penalty factors (the data),
    and the solve's settings (``l1_ratio``, the grid, ``early_stop``, ``tol``, ``max_iter``,
    ``dtype``); what varies per call is a :class:`jaxlasso._engine.Lanes`. ``family`` (a name or
    :class:`jaxlasso.families.HostFamily`) sets ``host_family``, the kernel datafit ``family``,
    and ``y`` (the kernel's response), ``response`` (the user's), ``y_center`` / ``y_scale``
    (kernel linear predictor -> user scale; the kernel's lambdas are ``lambdas / y_scale``);
    ``lambdas`` and ``lambda_max`` are on the user's scale. ``copy_X=False`` keeps the caller's
    array itself when validation needed no conversion (a read-only view of it): one copy of the
    matrix less, and the caller must not change it while the problem is in use. The kernels
    solve ``X - design_shift``, written into their own buffers.
    """

    max_sweeps = PATH.max_sweeps
    # What the kernels subtract from X (the same array as ``shift``). A problem pickled before
    # the problem kept X unshifted holds the centred X: it has no ``design_shift``, and its
    # kernels must subtract nothing (``shift`` still maps coefficients back).
    design_shift = None
    # Defaults for problems unpickled from before families existed.
    family = BINOMIAL
    host_family = HOST_BINOMIAL
    y_center = 0.0
    y_scale = 1.0

    def __init__(self, X, y, *, l1_ratio, lambdas, n_lambdas, lambda_min_ratio, standardize,
                 fit_intercept, sample_weight, penalty_factor, early_stop, tol, max_iter, dtype,
                 check_classes: bool = True, family: Any = "binomial", copy_X: bool = True):
        set_ = self._set
        host = get_family(family)
        set_("host_family", host)
        set_("family", host.kernel)
        # What the data were prepared from, by identity: the same objects reuse this problem.
        set_("source", (X, y, sample_weight, penalty_factor))
        dtype = V.check_dtype(dtype)
        design = V.check_X(X)
        set_("feature_names", design.feature_names)
        set_("sample_names", design.sample_names)
        n, p = design.X.shape
        set_("n", n)
        set_("p", p)
        if host.has_classes:
            labels = V.check_y(y, n)
            values, classes = labels.y, labels.classes
        else:
            values, classes = host.check_response(y, n)
        set_("classes", classes)
        w = V.check_sample_weight(sample_weight, n)
        # The objective is invariant to the scale of the weights; working with max(w) = 1
        # keeps weights like 1e-320 (denormal) from underflowing in the kernels' sums.
        set_("weight_sum", float(np.sum(w)))
        w = w / w.max()
        if check_classes and host.has_classes:
            V.check_class_counts(values, w, classes)
        pf = V.check_penalty_factor(penalty_factor, p)
        set_("standardize", bool(standardize))
        set_("fit_intercept", bool(fit_intercept))
        if self.fit_intercept and not host.kernel.has_intercept:
            raise ValueError(f"family={host.name!r} has no intercept; pass fit_intercept=False "
                             f"(got fit_intercept=True)")
        # The kernel's response and the map of its linear predictor back to the user's scale:
        # eta_user = y_center + y_scale * eta_kernel; the kernel's lambdas are the user's / y_scale.
        y_kernel, y_center, y_scale = host.standardize(values, w, self.fit_intercept)
        set_("y_center", float(y_center))
        set_("y_scale", float(y_scale))
        # The kernels solve the centred design X - shift (no cancellation against a large column
        # mean); it is written straight into their buffers (design_arrays), so the problem keeps
        # one copy of X, unshifted -- or none: with copy_X=False the caller's array itself.
        Xd = design.X
        # Whatever validation returned may be the caller's memory (an array, a frame's block,
        # an object's __array__): a private copy unless the caller lends X.
        if copy_X:
            Xd = Xd.copy(order="K")
        shift = column_shift(Xd, self.fit_intercept)
        scores = entry_lambdas(Xd, y_kernel, w, pf, fit_intercept=self.fit_intercept,
                               standardize=self.standardize,
                               family=None if host.name == "binomial" else host, shift=shift)
        for name, arr in (("w", w), ("pf", pf), ("X", Xd), ("shift", shift), ("scores", scores)):
            set_(name, _frozen(np.asarray(arr)))
        set_("design_shift", self.shift)
        set_("y", _frozen_tree(y_kernel))
        # The response on the user's scale (what CV scores held-out predictions against).
        set_("response", self.y if values is y_kernel else _frozen_tree(values))
        self._set_settings(l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                           lambda_min_ratio=lambda_min_ratio, early_stop=early_stop, tol=tol,
                           max_iter=max_iter, dtype=dtype)

    def __copy__(self) -> "PreparedProblem":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __getstate__(self) -> dict:
        # A pickled problem (a CV result sent to another process) does not carry the caller's
        # objects: identity cannot survive the trip, so the copy is never reusable_for them.
        return {**self.__dict__, "source": (None, None, None, None)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in ("w", "pf", "X", "shift", "scores", "lambdas"):
            self.__dict__[name] = _frozen(self.__dict__[name])
        if "design_shift" in state:
            self.__dict__["design_shift"] = self.shift
        for name in ("y", "response"):
            if name in self.__dict__:
                self.__dict__[name] = _frozen_tree(self.__dict__[name])

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"PreparedProblem is immutable (cannot set {name!r}); use derive() "
                             "or use_lambdas() for other settings")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"PreparedProblem is immutable (cannot delete {name!r})")

    def _set_settings(self, *, l1_ratio, lambdas, n_lambdas, lambda_min_ratio, early_stop, tol,
                      max_iter, dtype) -> None:
        """Validate and set the solve's settings and the grid (from the stored entry scores)."""
        set_ = self._set
        set_("dtype", V.check_dtype(dtype))
        set_("l1_ratio", V.check_l1_ratio(l1_ratio))
        set_("max_iter", V.check_positive_int(max_iter, "max_iter"))
        default_tol = PATH.tol if self.dtype == np.float64 else PATH.tol_float32
        set_("tol", default_tol if tol is None else V.check_positive_float(tol, "tol"))
        if lambdas is None:
            n_lambdas = V.check_positive_int(n_lambdas, "n_lambdas")
            if lambda_min_ratio is None:
                lambda_min_ratio = default_lambda_min_ratio(int(np.sum(self.w > 0)), self.p)
            lambda_min_ratio = V.check_positive_float(lambda_min_ratio, "lambda_min_ratio", upper=1.0)
            # The entry scores are on the kernel's scale of y: the grid is reported on the user's.
            set_("lambda_max", lambda_max(self.scores, self.l1_ratio) * self.y_scale)
            set_("lambdas", _frozen(lambda_grid(self.lambda_max, n_lambdas, lambda_min_ratio)))
            set_("early_stop", bool(early_stop))
        else:
            set_("lambdas", _frozen(V.check_lambdas(lambdas)))
            set_("lambda_max", float(self.lambdas[0]))
            # glmnet never stops a user-supplied sequence early.
            set_("early_stop", False)

    def derive(self, *, l1_ratio, lambdas, n_lambdas, lambda_min_ratio, early_stop, tol, max_iter,
               dtype) -> "PreparedProblem":
        """The same data with other solve settings (a new problem; this one is unchanged).

        Exactly what a fresh :class:`PreparedProblem` of the same data and these settings holds:
        the grid comes from the same entry scores, so nothing is validated or shifted again.
        """
        new = copy.copy(self)
        new._set_settings(l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                          lambda_min_ratio=lambda_min_ratio, early_stop=early_stop, tol=tol,
                          max_iter=max_iter, dtype=dtype)
        return new

    def use_lambdas(self, lambdas: Any) -> "PreparedProblem":
        """This problem on these lambdas instead of its grid (validated; never stopped early, as
        glmnet); a new problem."""
        return self.derive(l1_ratio=self.l1_ratio, lambdas=lambdas, n_lambdas=None,
                           lambda_min_ratio=None, early_stop=False, tol=self.tol,
                           max_iter=self.max_iter, dtype=self.dtype)

    def reusable_for(self, X: Any, y: Any, sample_weight: Any = None, penalty_factor: Any = None, *,
                     fit_intercept: bool = True, standardize: bool = True) -> bool:
        """Whether preparing ``X, y`` with these data options would give this problem's data.

        Only by identity -- the very objects it was prepared from (arrays can be changed in
        place, so equal contents are not checked) -- and the same intercept and standardisation;
        otherwise the caller prepares its own problem.
        """
        sX, sy, sw, spf = self.source
        return (X is sX and y is sy and sample_weight is sw and penalty_factor is spf
                and bool(fit_intercept) == self.fit_intercept and bool(standardize) == self.standardize)

    def lanes(self, W: Any = None, **fields) -> Lanes:
        """:class:`Lanes` of this problem (default: one full-data master lane)."""
        if W is None:
            W = self.w[None, :]
            fields.setdefault("is_master", np.array([True]))
        return Lanes(W=W, **fields)


def logistic_path(X: Any, y: Any, *, l1_ratio: float = PATH.l1_ratio, lambdas: Any = None,
                  n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
                  standardize: bool = PATH.standardize, fit_intercept: bool = PATH.fit_intercept,
                  sample_weight: Any = None, penalty_factor: Any = None,
                  early_stop: bool = PATH.early_stop, tol: float | None = None,
                  max_iter: int = PATH.max_iter, dtype: Any = np.float64) -> PathResult:
    r"""Fit an elastic-net penalised logistic regression path (glmnet ``family="binomial"``).

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        Design matrix (samples in rows). DataFrame columns become ``feature_names``.
    y : array-like, shape (n_samples,)
        Binary labels: 0/1, bool, or any two distinct values. The modelled class ("case", coded
        1) is the second level in sorted order, as in R's ``factor()`` and glmnet (``True`` for
        bools, ``1`` for 0/1, ``"tumour"`` over ``"normal"``); for a pandas Categorical the
        second category. ``PathResult.classes`` records the choice.
    l1_ratio : float in [0, 1]
        Elastic-net mixing (glmnet ``alpha``): 1 is the lasso, 0 ridge.
    lambdas : array-like, optional
        Explicit decreasing penalty strengths (glmnet ``lambda``). Default: glmnet's grid.
    n_lambdas : int
        Grid size (glmnet ``nlambda``), ignored with ``lambdas``.
    lambda_min_ratio : float, optional
        Smallest lambda as a fraction of lambda_max; default 0.01 if n < p else 1e-4.
    standardize, fit_intercept : bool
        glmnet ``standardize`` and ``intercept``.
    sample_weight : array-like, shape (n_samples,), optional
        Observation weights (glmnet ``weights``); 0 drops a sample.
    penalty_factor : array-like, shape (n_features,), optional
        Per-feature penalty multipliers (glmnet ``penalty.factor``), rescaled to sum to p;
        0 = never penalised, ``inf`` = excluded.
    early_stop : bool
        Apply glmnet's early stop (after 5 lambdas: deviance ratio > 0.999 or its change from
        the previous lambda < 1e-5, as lognet tests it) to the default grid. User-supplied
        ``lambdas`` are never cut short (as glmnet).
    tol : float, optional
        A lambda converges when its KKT gap (max subgradient distance, standardised scale) is
        <= tol; in float64 the solver goes on to tol / 10 unless its estimate of the objective
        left above the optimum is below 1e-8 of the loss. Default 1e-5 (either dtype).
    max_iter : int
        Newton iterations per lambda.
    dtype : float64 (default) or float32
        float64 runs inside ``jax.enable_x64(True)``; JAX's global flag is not changed.

    Returns
    -------
    PathResult

    Raises
    ------
    ValueError, TypeError
        Invalid input; the message says what is wrong and how to fix it.

    Warns
    -----
    FewObservationsWarning
        A class has fewer than 8 observations (glmnet's "dangerous ground").
    ConvergenceWarning
        Some lambda stopped at ``max_iter`` before reaching ``tol``.
    """
    t0 = time.perf_counter()
    prob = PreparedProblem(X, y, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                           lambda_min_ratio=lambda_min_ratio, standardize=standardize,
                           fit_intercept=fit_intercept, sample_weight=sample_weight,
                           penalty_factor=penalty_factor, early_stop=early_stop, tol=tol,
                           max_iter=max_iter, dtype=dtype)
    return fit_prepared(prob, t0=t0)


def fit_path(X: Any, y: Any, *, family: Any = "binomial", l1_ratio: float = PATH.l1_ratio,
             lambdas: Any = None, n_lambdas: int = PATH.n_lambdas, lambda_min_ratio: float | None = None,
             standardize: bool = PATH.standardize, fit_intercept: bool = PATH.fit_intercept,
             sample_weight: Any = None, penalty_factor: Any = None, early_stop: bool = PATH.early_stop,
             tol: float | None = None, max_iter: int = PATH.max_iter, dtype: Any = np.float64) -> PathResult:
    """The elastic-net path of any family (glmnet's ``glmnet(x, y, family = ...)``).

    ``family`` is glmnet's name -- ``"binomial"`` (:func:`logistic_path`), ``"gaussian"``
    (:func:`gaussian_path`) or a family registered with :func:`jaxlasso.families.register` --
    or a :class:`jaxlasso.families.HostFamily`. ``y`` is what that family takes (binary labels;
    a numeric outcome; a registered family documents its own, e.g. ``(time, event)``). Every other
    keyword is :func:`logistic_path`'s; lambdas, coefficients and the intercept are on the scale
    of ``X`` and ``y``. A family without an intercept needs ``fit_intercept=False``.
    """
    t0 = time.perf_counter()
    prob = PreparedProblem(X, y, l1_ratio=l1_ratio, lambdas=lambdas, n_lambdas=n_lambdas,
                           lambda_min_ratio=lambda_min_ratio, standardize=standardize,
                           fit_intercept=fit_intercept, sample_weight=sample_weight,
                           penalty_factor=penalty_factor, early_stop=early_stop, tol=tol,
                           max_iter=max_iter, dtype=dtype, family=family)
    return fit_prepared(prob, t0=t0)


def gaussian_path(X: Any, y: Any, **kw) -> PathResult:
    r"""Fit an elastic-net penalised least-squares path (glmnet ``family = "gaussian"``).

    glmnet's objective

    .. math::

        \min_{\beta_0, \beta} \; \frac{1}{2 \sum_i w_i} \sum_i w_i (y_i - \beta_0 - x_i^T \beta)^2
        + \lambda \sum_j \mathrm{pf}_j \left(\alpha |\beta_j| + \frac{1 - \alpha}{2} \beta_j^2\right)

    on the standardised columns, solved (as glmnet does) on the standardised response -- weighted
    mean removed when an intercept is fitted, divided by its weighted SD (the RMS about 0 without
    an intercept) -- and reported on the original scale of ``y``: ``lambdas``, ``coef``,
    ``intercept`` match ``glmnet(x, y)``'s ``lambda``, ``beta``, ``a0``, and ``deviance_ratio``
    its ``dev.ratio = 1 - RSS / TSS``. ``tol`` acts on the standardised scale, so it means the
    same on any scale of ``y``. Early stop as glmnet's elnet: after 5 lambdas, deviance ratio >
    0.999 or its *relative* change < 1e-5.

    ``y`` : array-like (n_samples,), a finite numeric outcome. Every keyword is
    :func:`logistic_path`'s (``l1_ratio``, ``lambdas``, ``n_lambdas``, ``lambda_min_ratio``,
    ``standardize``, ``fit_intercept``, ``sample_weight``, ``penalty_factor``, ``early_stop``,
    ``tol``, ``max_iter``, ``dtype``). Returns a :class:`PathResult` with ``family="gaussian"``
    (``predict(X, s)`` gives fitted values).
    """
    return fit_path(X, y, family="gaussian", **kw)


def fit_prepared(prob: PreparedProblem, *, t0: float | None = None) -> PathResult:
    """Solve the full-data path of a :class:`PreparedProblem`."""
    t0 = time.perf_counter() if t0 is None else t0
    out = solve_lanes(prob, prob.lanes())
    return path_result_from_lane(prob, out, 0, time.perf_counter() - t0)


def path_result_from_lane(prob: PreparedProblem, out, lane: int, seconds: float) -> PathResult:
    """Build a :class:`PathResult` from lane ``lane`` of the kernel outputs."""
    length = int(out.path_length()[lane])
    # The result owns its arrays: the problem's are read-only and shared.
    lambdas = prob.lambdas[:length].copy()
    status = out.status[lane, :length]
    report_status(status[None, :], lambdas)
    xm, xs, excluded = out.moments(lane)
    xm, xs = xm.astype(np.float64), xs.astype(np.float64)
    indptr, feature, beta = out.sparse_coef(lane, length)
    beta = beta.astype(np.float64)
    b0 = out.intercept[lane, :length].astype(np.float64)
    if prob.y_scale != 1.0 or prob.y_center != 0.0:
        # The kernel solved on glmnet's standardised response: back to the user's scale.
        beta = beta * prob.y_scale
        b0 = prob.y_center + prob.y_scale * b0
    # Nonzeros only: a dense (L, p) array is 160 MB at p = 200,000 (results.SparseRows).
    coef, intercept = sparse_original_scale(indptr, feature, beta, b0, xm, xs, prob.shift, prob.p)
    null_dev = float(out.null_deviance[lane])
    dev = out.deviance[lane, :length].astype(np.float64)
    wsum = prob.weight_sum
    return PathResult(
        lambdas=lambdas,
        coef_sparse=coef,
        intercept=intercept,
        n_nonzero=coef.count_nonzero(),
        deviance_ratio=1.0 - dev / null_dev,
        null_deviance=null_dev * wsum * prob.y_scale ** 2,
        n_iter=out.n_iter[lane, :length],
        kkt_gap=out.kkt_gap[lane, :length].astype(np.float64),
        converged=status == Status.CONVERGED,
        status=status,
        x_mean=(xm + prob.shift) if prob.fit_intercept else xm,
        x_scale=xs,
        excluded=excluded,
        penalty_factor=prob.pf.copy(),
        l1_ratio=prob.l1_ratio,
        tol=prob.tol,
        fit_intercept=prob.fit_intercept,
        standardize=prob.standardize,
        early_stopped=length < len(prob.lambdas),
        stop_reason=_stop_reason(1.0 - dev / null_dev, prob.family) if length < len(prob.lambdas) else "",
        classes=prob.classes,
        family=prob.host_family.name,
        feature_names=prob.feature_names,
        info={
            "working_set_capacities": out.capacities,
            "kkt_passes": int(out.n_kkt_rounds[lane, :length].sum()),
            "dtype": str(prob.dtype),
            "seconds": seconds,
        },
    )


def _stop_reason(deviance_ratio: np.ndarray, family=BINOMIAL) -> str:
    from kernels.path import DEVMAX, FDEV

    last = float(deviance_ratio[-1])
    if last > DEVMAX:
        if family.name == "binomial":
            return (f"saturated: the deviance ratio reached {last:.4f} > {DEVMAX} (glmnet's devmax), i.e. the "
                    f"training data are (nearly) perfectly separable; smaller lambdas would only inflate the "
                    f"coefficients")
        return (f"saturated: the deviance ratio reached {last:.4f} > {DEVMAX} (glmnet's devmax): the fit "
                f"explains the training data almost perfectly")
    if family.name == "binomial":
        return (f"converged: the deviance ratio changed by less than {FDEV:g} (glmnet's fdev rule, an "
                f"absolute change for binomial)")
    return (f"converged: the deviance ratio changed by less than {FDEV:g} relative to its value "
            f"(glmnet's fdev rule)")


def logistic_objective(X: Any, y: Any, coef: Any, intercept: Any, lambdas: Any, *,
                       l1_ratio: float = 1.0, sample_weight: Any = None, penalty_factor: Any = None,
                       standardize: bool = True) -> np.ndarray:
    """glmnet's objective of given original-scale coefficients, evaluated on the standardised scale.

    ``coef`` (L, p) or (p,), ``intercept`` (L,) or scalar, ``lambdas`` (L,) or scalar. Used to
    compare solvers (jaxlasso, glmnet, scikit-learn) on equal terms: objectives, not coefficients.
    The penalty uses the weighted SD about the weighted mean as scale, with or without an
    intercept (glmnet's convention).
    """
    X = np.asarray(X, dtype=float)
    y = V.check_y(y, X.shape[0]).y
    w = V.check_sample_weight(sample_weight, X.shape[0])
    wn = w / w.sum()
    pf = V.check_penalty_factor(penalty_factor, X.shape[1])
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
    lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float))
    xm = wn @ X
    xs = np.sqrt(wn @ (X - xm) ** 2) if standardize else np.ones(X.shape[1])
    eta = X @ coef.T + intercept[None, :]
    loss = wn @ (np.logaddexp(0.0, eta) - y[:, None] * eta)
    b = coef * xs
    pf_f = np.where(np.isinf(pf), 0.0, pf)
    pen = (np.abs(b) * pf_f).sum(axis=1) * l1_ratio + 0.5 * (1 - l1_ratio) * (b * b * pf_f).sum(axis=1)
    return loss + lambdas * pen


def gaussian_objective(X: Any, y: Any, coef: Any, intercept: Any, lambdas: Any, *,
                       l1_ratio: float = 1.0, sample_weight: Any = None, penalty_factor: Any = None,
                       standardize: bool = True, fit_intercept: bool = True) -> np.ndarray:
    """The objective glmnet's Gaussian fit minimises, of given original-scale coefficients.

    glmnet solves on the standardised response ``y~ = (y - ym) / ys`` (``ym`` the weighted mean,
    0 without an intercept; ``ys`` the weighted RMS of ``y - ym``) with ``lambda / ys`` and
    rescales, so what it minimises is

        ``1/(2 sum w) sum w (y~ - eta / ys)^2 + (lambda / ys) P(b~ / ys)``

    with ``b~ = coef * x_scale`` -- on the user's scale the documented objective except that the
    ridge part of the penalty is divided by ``ys`` (the lasso part is unchanged). jaxlasso
    solves the same problem. Shapes as :func:`logistic_objective`.
    """
    X = np.asarray(X, dtype=float)
    host = get_family("gaussian")
    yv, _ = host.check_response(y, X.shape[0])
    w = V.check_sample_weight(sample_weight, X.shape[0])
    wn = w / w.sum()
    _, _, ys = host.standardize(yv, w, fit_intercept)
    pf = V.check_penalty_factor(penalty_factor, X.shape[1])
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=float))
    lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float))
    xm = wn @ X
    xs = np.sqrt(wn @ (X - xm) ** 2) if standardize else np.ones(X.shape[1])
    r = (yv[:, None] - (X @ coef.T + intercept[None, :])) / ys
    loss = 0.5 * (wn @ (r * r))
    b = coef * xs / ys
    pf_f = np.where(np.isinf(pf), 0.0, pf)
    pen = (np.abs(b) * pf_f).sum(axis=1) * l1_ratio + 0.5 * (1 - l1_ratio) * (b * b * pf_f).sum(axis=1)
    return loss + lambdas / ys * pen
