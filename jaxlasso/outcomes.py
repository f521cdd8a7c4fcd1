"""The outcome of a selection run and its family: binomial labels, a numeric outcome (Gaussian) or
right-censored survival times (Cox).

:func:`resolve_family` applies ``family="auto"``'s rule once; :class:`Outcome` carries the checked
values and is the one place that knows how each family is cross-validated, fitted along a path,
permuted (survival permutes ``(time, event)`` pairs jointly) and ranked gene by gene. The workflow,
the diagnosis, stability selection and the screen call these methods instead of branching on the
family themselves.

The Gaussian and Cox fits are those of :func:`jaxlasso.cv_gaussian_path` /
:func:`jaxlasso.cv_cox_path` (glmnet's ``family = "gaussian"`` / ``"cox"``); this module adds no
numerics of its own besides the host-side statistics of :mod:`jaxlasso.survival_stats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .survival_stats import check_survival

from .options import FAMILIES

FAMILY_MEASURES = {"binomial": ("deviance", "class", "auc", "mse", "auc_pooled"),
                   "gaussian": ("mse", "mae", "deviance"),
                   "cox": ("deviance", "C")}
"""CV measures each family offers (glmnet's ``type.measure``); ``deviance`` is each family's default
(for Gaussian it is the mean squared error, as in cv.glmnet)."""

MEASURE_LABELS = {"deviance": {"binomial": "binomial deviance", "gaussian": "mean squared error",
                               "cox": "partial-likelihood deviance"},
                  "mse": "mean squared error", "mae": "mean absolute error", "class": "misclassification error",
                  "auc": "AUC", "auc_pooled": "pooled AUC", "C": "Harrell's C"}


def measure_label(measure: str, family: str = "binomial") -> str:
    """The CV measure in words, for plots and reports (``deviance`` depends on the family)."""
    lab = MEASURE_LABELS.get(measure, measure)
    return lab.get(family, measure) if isinstance(lab, dict) else lab


def _is_numeric(values: pd.Series) -> bool:
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def resolve_family(family: str, y: Any = None, *, survival: bool = False, outcome_name: str = "outcome",
                   case_given: bool = False, case_name: str = "case") -> str:
    """The family a run fits. ``auto``: survival columns given -> ``cox``; an outcome with exactly
    two distinct values -> ``binomial``; a numeric outcome with more -> ``gaussian``; anything else
    is an error naming ``outcome_name`` (as the user wrote it, e.g. ``--outcome``). A ``case`` with
    a numeric or survival outcome is an error naming ``case_name``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)} (got family={family!r})")
    if family == "auto":
        if survival:
            family = "cox"
        else:
            values = pd.Series(np.asarray(y, dtype=object)).dropna()
            distinct = values.astype(str).str.strip().unique()
            if len(distinct) <= 2:
                family = "binomial"  # one level: the binomial checks say what is missing
            elif len(distinct) > 2 and _is_numeric(values):
                family = "gaussian"
            else:
                shown = ", ".join(repr(v) for v in sorted(distinct)[:5])
                raise ValueError(
                    f"{outcome_name}: the outcome has {len(distinct)} distinct value(s) ({shown}"
                    f"{', ...' if len(distinct) > 5 else ''}) and is not numeric, so no family fits it: "
                    f"a binary outcome needs exactly two levels, a continuous one numbers, a survival "
                    f"outcome time and event columns (got {len(distinct)} levels)")
    if survival and family != "cox":
        raise ValueError(f"time and event columns describe a survival outcome: use family cox (or auto) "
                         f"(got family={family!r})")
    if family == "cox" and not survival:
        raise ValueError("family cox needs the survival time and event (CLI: --time COL --event COL)")
    if case_given and family != "binomial":
        raise ValueError(f"{case_name} names the case level of a binary outcome; a {family} outcome has "
                         f"none: drop it (got {case_name} with family {family})")
    return family


@dataclass(frozen=True)
class Outcome:
    """A checked outcome, in the sample order of the matrix it goes with.

    ``family`` is ``binomial`` (``y``: the labels as given), ``gaussian`` (``y``: float64 values) or
    ``cox`` (``time``, ``event``: float64, event 0/1)."""

    family: str
    y: Any = None
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    name: str = "outcome"

    @classmethod
    def build(cls, family: str, y: Any = None, *, time: Any = None, event: Any = None, name: str = "outcome",
              time_name: str = "time", event_name: str = "event") -> Outcome:
        """Check the values of ``family``'s outcome; errors name the inputs as given."""
        if family == "cox":
            t, e = check_survival(time, event, time_name=time_name, event_name=event_name)
            return cls("cox", None, t, e, name)
        if family == "gaussian":
            v = pd.to_numeric(pd.Series(np.asarray(y, dtype=object)), errors="coerce").to_numpy(float)
            if not np.all(np.isfinite(v)):
                i = int(np.nonzero(~np.isfinite(v))[0][0])
                raise ValueError(f"{name} must be a finite number for every sample of a gaussian outcome "
                                 f"(got {np.asarray(y, dtype=object)[i]!r} at sample {i + 1})")
            if np.ptp(v) == 0:
                raise ValueError(f"{name} is constant: nothing to predict (got every value {v[0]!r})")
            return cls("gaussian", v, None, None, name)
        return cls("binomial", y, None, None, name)

    @property
    def n(self) -> int:
        return len(self.time) if self.family == "cox" else len(np.asarray(self.y))

    @property
    def n_events(self) -> int:
        return int(self.event.sum()) if self.family == "cox" else 0

    def permuted(self, rng: np.random.Generator) -> Outcome:
        """The outcome under a random relabelling: survival permutes ``(time, event)`` pairs
        jointly, so every sample keeps a real (time, event) observation."""
        idx = rng.permutation(self.n)
        return self.take(idx)

    def take(self, rows: np.ndarray) -> Outcome:
        if self.family == "cox":
            return Outcome("cox", None, self.time[rows], self.event[rows], self.name)
        y = self.y.iloc[rows] if isinstance(self.y, pd.Series) else np.asarray(self.y)[rows]
        return Outcome(self.family, y, None, None, self.name)

    def strata(self) -> np.ndarray:
        """0/1 groups that folds and subsamples are stratified by: the event indicator for
        survival (each fold holds events), the classes for binomial, none (all zeros) for a
        numeric outcome."""
        if self.family == "cox":
            return self.event.copy()
        if self.family == "binomial":
            y = np.asarray(self.y)
            return (y == np.unique(y)[-1]).astype(float)
        return np.zeros(self.n)

    # --- fits ----------------------------------------------------------------------------------
    def cv(self, X: Any, *, measure: str, foldid: Any = None, nfolds: int | None = None, n_repeats: int = 1,
           seed: int = 0, keep: bool = True, copy_X: bool = True, **path_args: Any):
        """cv.glmnet for this family (``path_args``: the path keywords, e.g. ``l1_ratio``,
        ``lambdas``, ``n_lambdas``, ``dtype``). ``copy_X``: :func:`jaxlasso.cv_logistic_path`'s
        (a Cox problem keeps ``X`` as it is given: there is no copy to skip)."""
        import jaxlasso

        if foldid is None:
            foldid = self.folds(nfolds, n_repeats, seed)
        m = _family_measure(measure, self.family)
        common = dict(foldid=foldid, measure=m, keep=keep, **path_args)
        if self.family == "gaussian":
            return jaxlasso.cv_gaussian_path(X, self.y, copy_X=copy_X, **common)
        if self.family == "cox":
            return jaxlasso.cv_cox_path(X, self.time, self.event, **common)
        return jaxlasso.cv_logistic_path(X, self.y, copy_X=copy_X, **common)

    def path(self, X: Any, **path_args: Any):
        """glmnet's path for this family on ``X``."""
        import jaxlasso

        if self.family == "gaussian":
            return jaxlasso.gaussian_path(X, self.y, **path_args)
        if self.family == "cox":
            return jaxlasso.cox_path(X, self.time, self.event, **path_args)
        return jaxlasso.logistic_path(X, self.y, **path_args)

    def folds(self, nfolds: int | None, n_repeats: int, seed: int) -> np.ndarray:
        """(n_repeats, n) fold labels: 10 folds (fewer when there are fewer events, for survival),
        stratified by :meth:`strata`."""
        from .folds import make_foldid

        s = self.strata()
        k = 10 if nfolds is None else int(nfolds)
        if self.family == "cox" and nfolds is None:
            k = max(2, min(k, int(s.sum())))
        k = min(k, self.n)
        return make_foldid(s, np.ones(self.n), nfolds=k, stratified=self.family != "gaussian",
                           n_repeats=n_repeats, seed=seed)

    def lambda_max(self, Xs: np.ndarray) -> float:
        """glmnet's lambda_max for this outcome (l1_ratio 1) on ``Xs``, the design standardised by
        :func:`standardize`: the largest gradient at the null model, ``max_j |x_j'(y - ybar)| / n``
        (Gaussian; binomial with y the 0/1 classes) or ``max_j |U_j| / n`` with U the Cox score at
        beta = 0 (Breslow)."""
        if self.family == "cox":
            from .survival_stats import cox_score_test

            z, _, info = cox_score_test(Xs, self.time, self.event)
            return float(np.max(np.abs(z * np.sqrt(info)))) / self.n
        y = self.strata() if self.family == "binomial" else np.asarray(self.y, float)
        return float(np.max(np.abs((y - y.mean()) @ Xs))) / self.n

    def prevalidated_risk(self, X: Any, cv: Any, index: int, *, l1_ratio: float = 1.0,
                          dtype: Any = np.float64) -> np.ndarray:
        """(n,) Cox: each sample's pre-validated risk at ``cv.lambdas[index]``: the linear predictor
        of the model of the CV's first repeat that did not see the sample, **centred on that model's
        training rows**, ``(x_i - xbar_train) . beta_f``.

        The centring matters: a Cox model has no intercept, so ``x_i . beta_f`` carries an offset
        ``xbar . beta_f`` that differs from fold to fold (on log-expression data it is larger than
        the spread of the risks), and a median split of uncentred held-out predictions would sort
        samples by their fold. Each fold's model is refitted along the CV's grid down to ``index``
        (the same fit as the CV's fold lane: same rows, lambdas and settings)."""
        if self.family != "cox":
            raise ValueError(f"prevalidated_risk is for survival outcomes (got family={self.family!r})")
        Xa = np.asarray(X, dtype=np.float64)
        fid = np.asarray(cv.foldid)[0]
        lam = np.asarray(cv.lambdas)[: index + 1]
        risk = np.empty(self.n)
        for f in np.unique(fid):
            train = fid != f
            fit = self.path(X, lambdas=lam, l1_ratio=l1_ratio, sample_weight=train.astype(float),
                            early_stop=False, dtype=dtype)
            beta = np.asarray(fit.coef)[len(lam) - 1]
            risk[~train] = (Xa[~train] - Xa[train].mean(axis=0)) @ beta
        return risk

    # --- univariate ranking ----------------------------------------------------------------------
    def univariate(self, X: pd.DataFrame):
        """The family's one-gene-at-a-time test with BH q-values: the Cox score test (Breslow) for
        survival, Pearson's correlation for a numeric outcome."""
        from .selection.univariate import benjamini_hochberg, family_ranking
        from .survival_stats import cox_score_test, pearson_test

        arr = np.asarray(X, dtype=np.float64)
        if self.family == "cox":
            stat, p, _ = cox_score_test(arr, self.time, self.event)
            method = "cox_score"
        else:
            stat, p = pearson_test(arr, self.y)
            method = "pearson"
        return family_ranking(tuple(str(c) for c in X.columns), stat, p, benjamini_hochberg(p), method, self.n)

    def describe(self) -> dict:
        """``summary.json``'s outcome facts."""
        if self.family == "cox":
            return {"family": "cox", "n": self.n, "n_events": self.n_events, "n_censored": self.n - self.n_events,
                    "median_follow_up": float(np.median(self.time))}
        if self.family == "gaussian":
            v = np.asarray(self.y, float)
            return {"family": "gaussian", "n": self.n, "mean": float(v.mean()), "sd": float(v.std(ddof=1)),
                    "min": float(v.min()), "max": float(v.max())}
        return {"family": "binomial", "n": self.n}


def standardize(X: Any) -> np.ndarray:
    """Columns centred and scaled to population SD 1 (constant columns left at 0), as glmnet
    standardises before it computes lambda_max."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def check_measure(measure: str, family: str, source: Any = None) -> None:
    """An :class:`jaxlasso.options.OptionError` naming ``--measure`` (or the manifest cell, or
    ``measure=``, by ``source``) when ``family`` does not offer ``measure``."""
    from .options import API, OptionError, SelectOptions

    if measure not in FAMILY_MEASURES[family]:
        src = API if source is None else source
        opt = SelectOptions.option("measure")
        raise OptionError(f"{src.label(opt)} must be one of {', '.join(FAMILY_MEASURES[family])} for a {family} "
                          f"outcome (got {src.shown(opt, measure)})")


def check_family_options(opts: Any, family: str, source: Any = None) -> None:
    """The options that depend on the family, checked once it is known (errors name the option
    as ``source`` spells it): the CV measure, and the binary-outcome rankings (``forest``,
    ``boruta``), which a numeric or survival outcome does not have."""
    from .options import API, OptionError, SelectOptions

    check_measure(opts.cv.measure, family, source)
    src = API if source is None else source
    if family != "binomial":
        for key in ("forest", "boruta"):
            if getattr(opts, key):
                opt = SelectOptions.option(key)
                raise OptionError(f"{src.label(opt)} ranks genes for a binary outcome; a {family} outcome has "
                                  f"stability selection and the univariate ranking instead "
                                  f"(got {src.shown(opt, True)} with family {family})")


def _family_measure(measure: str, family: str) -> str:
    """``measure`` checked against the family's; Gaussian's ``deviance`` is its ``mse``."""
    if measure not in FAMILY_MEASURES[family]:
        raise ValueError(f"measure {measure!r} is not offered for family {family}: use one of "
                         f"{', '.join(FAMILY_MEASURES[family])} (got measure={measure!r})")
    return "mse" if (family == "gaussian" and measure == "deviance") else measure
