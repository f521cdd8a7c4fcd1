"""One entry point for the whole gene-selection workflow: :func:`select_features`.

preprocess (count detection, edgeR's log2-CPM for counts, constant genes, optional variance filter)
  -> cross-validated lasso (glmnet's rules)
  -> diagnosis with a label-permutation test
  -> when the lasso selects nothing or looks shaky: stability selection, a univariate ranking
     with FDR control, optionally random-forest / Boruta rankings and the honest
     "rank then lasso" comparison

Each method keeps its own genes, scores and (where one exists) honest error estimate side by
side. One decision is announced: "signal detected" when the label-permutation test of the whole
CV pipeline rejects at ``alpha``. The lasso's list is described for what was tested -- "selected
by the lasso at <rule>; prediction tested by cross-validation; gene identities not validated" --
and every other list (lambda.min's genes when the rule keeps fewer, the rankings) is exploratory.
"""

from __future__ import annotations

import platform
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import _validation as V
from ._config import CV, PATH, SELECT
from ._engine import MemoryBudgetError
from ._version import __version__
from .cv import cv_logistic_path
from .diagnose import ALPHA, N_PERMUTATIONS, Diagnosis, diagnose
from .exceptions import FewObservationsWarning
from .metrics import cv_statistics
from .options import Rule, SelectOptions
from .results import CVResult
from .selection.filters import PreprocessReport, preprocess

SMALL_STUDY = 100
"""Below this many samples ``n_repeats=None`` means 10 CV repeats (one split is too noisy there)."""


def default_repeats(n_samples: int) -> int:
    """``n_repeats=None``: 10 repeated stratified CVs below :data:`SMALL_STUDY` samples, else 1."""
    return 10 if n_samples < SMALL_STUDY else 1


def describe_gene_list(rule: str) -> str:
    """What the lasso's list is and what was tested: the same words in every output."""
    return (f"selected by the lasso at {Rule.parse(rule).glmnet}; prediction tested by cross-validation; "
            f"gene identities not validated")


@dataclass(frozen=True)
class SelectionReport:
    """Everything :func:`select_features` found, method by method."""

    verdict: str
    """Two or three sentences: whether predictive signal was detected (and by what test), the
    gene list with what was tested, and the CV evidence."""
    signal_detected: bool | None
    """The label-permutation test rejected at ``alpha`` (True), did not (False), or did not run
    (None: signal not tested)."""
    permutation_p: float | None
    """The test's p-value, ``(1 + #{null >= observed}) / (B + 1)``; None when not tested."""
    n_permutations: int
    """B, the number of label permutations (0: no test)."""
    alpha: float
    """The level of the test."""
    gene_list_description: str
    """"selected by the lasso at <rule>; prediction tested by cross-validation; gene identities
    not validated"."""
    selected: tuple[str, ...]
    """The lasso's genes at ``rule`` (largest |coefficient| first); may be empty."""
    coefficients: pd.Series
    """Nonzero original-scale coefficients at ``rule``, indexed by gene."""
    rule: str
    """``lambda_1se`` or ``lambda_min``."""
    lambda_: float
    classes: tuple[Any, Any]
    """(control, case): positive coefficients raise the probability of ``classes[1]``."""
    preprocess: PreprocessReport
    cv: CVResult
    diagnosis: Diagnosis
    X: pd.DataFrame = field(repr=False)
    """The preprocessed matrix the methods ran on."""
    stability: Any = None
    univariate: Any = None
    forest: Any = None
    boruta: Any = None
    rank_then_lasso: Any = None
    seed: int = 0
    timings: dict = field(default_factory=dict, compare=False)
    lambda_min_coefficients: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    """Nonzero coefficients at lambda.min (exploratory when the rule is lambda.1se)."""
    cv_auc: np.ndarray | None = field(default=None, repr=False)
    """(L,) AUC of the pooled pre-validated predictions at each lambda (mean over repeats), or
    None when the held-out predictions were not kept."""
    cv_auc_se: np.ndarray | None = field(default=None, repr=False)
    """(L,) its standard error (Hanley & McNeil), averaged over repeats."""
    family: str = "binomial"
    """The model fitted: ``binomial``, ``gaussian`` or ``cox``."""
    outcome: Any = field(default=None, repr=False)
    """The :class:`jaxlasso.outcomes.Outcome` of a Gaussian or Cox run (None for binomial)."""
    prevalidated: np.ndarray | None = field(default=None, repr=False)
    """(n,) Gaussian: each sample's prediction at the rule's lambda from the CV models that did not
    see it (mean over repeats). Cox: its risk score, the linear predictor of the first repeat's fold
    model that did not see it, centred on that model's training rows
    (:meth:`jaxlasso.outcomes.Outcome.prevalidated_risk`)."""
    quick_plan: Any = None
    """The :class:`jaxlasso.plan.QuickPlan` the verdict quotes (``plan`` option), or None."""

    @property
    def p_resolution(self) -> float | None:
        """The smallest p-value the test could give, ``1 / (B + 1)``; None when not tested."""
        return None if not self.n_permutations else 1.0 / (self.n_permutations + 1)

    @property
    def cv_error(self) -> tuple[float, float, float]:
        """(CV measure at lambda.min, its SE, the intercept-only CV measure)."""
        cv = self.cv
        return float(cv.cv_mean[cv.index_min]), float(cv.cv_sd[cv.index_min]), float(cv.cv_mean[0])

    def auc_at(self, index: int) -> tuple[float, float] | None:
        """(pooled CV AUC, SE) at lambda index ``index``; None when not computed."""
        if self.cv_auc is None:
            return None
        return float(self.cv_auc[index]), float(self.cv_auc_se[index])

    def table(self) -> pd.DataFrame:
        """One row per gene that any method ranked highly, one column block per method."""
        frames = []
        coef = self.coefficients.rename("coefficient")
        frames.append(coef)
        if self.rule != "lambda_min" and len(self.lambda_min_coefficients):
            # Exploratory: lambda.min's genes, listed even when the rule keeps none.
            frames.append(self.lambda_min_coefficients.rename("lambda_min"))
        if self.stability is not None:
            st = self.stability.to_frame().set_index("feature")
            frames.append(st["selection_probability"])
            frames.append(st["rank"].rename("stability_rank"))
        if self.univariate is not None:
            top = self.univariate.to_frame(top=100).set_index("feature")
            frames.append(top["q_value"].rename("univariate_q"))
            frames.append(top["rank"].rename("univariate_rank"))
        if self.forest is not None:
            fr = self.forest.to_frame(top=100).set_index("feature")
            frames.append(fr["rank"].rename("forest_rank"))
        if self.boruta is not None:
            br = self.boruta.to_frame().set_index("feature")
            br = br[br["decision"] != "rejected"]
            frames.append(br["decision"].rename("boruta_decision"))
            frames.append(br["rank"].rename("boruta_rank"))
        table = pd.concat(frames, axis=1) if frames else pd.DataFrame()
        table.index.name = "feature"
        if table.empty:
            return table.reset_index()
        table["lasso_selected"] = table.index.isin(self.selected)
        # Lasso genes first (largest |coefficient|), then lambda.min's, then by stability, then
        # univariate rank.
        keys = pd.DataFrame({
            "coef": -table["coefficient"].abs().fillna(0.0),
            "lmin": -table["lambda_min"].abs().fillna(0.0) if "lambda_min" in table else 0.0,
            "stab": -table["selection_probability"].fillna(0.0) if "selection_probability" in table else 0.0,
            "uni": table["univariate_rank"].fillna(np.inf) if "univariate_rank" in table else 0.0,
        }, index=table.index)
        order = keys.sort_values(["coef", "lmin", "stab", "uni"], kind="stable").index
        return table.loc[order].reset_index()

    def to_frame(self) -> pd.DataFrame:
        return self.table()


def _genes(k: int) -> str:
    return f"{k} gene" if k == 1 else f"{k} genes"


def _verdict(selected, rule: Rule, cv: CVResult, diag: Diagnosis, n: int, auc: tuple[float, float] | None,
             k_min: int) -> str:
    """The verdict in words: the decision, the gene list with what was tested, the CV evidence."""
    label = rule.glmnet
    best, se, null = cv.cv_mean[cv.index_min], cv.cv_sd[cv.index_min], cv.cv_mean[0]
    perm = diag.permutation
    cvtxt = f"CV {cv.measure} {best:.3f} ± {se:.3f} at lambda.min vs {null:.3f} intercept-only"
    if auc is not None:
        cvtxt += f"; pooled CV AUC {auc[0]:.2f} ± {auc[1]:.2f}"
    if diag.signal_detected is None:
        decision = "Signal not tested (no label permutations were run)."
    else:
        ptxt = (f"label-permutation p = {perm.p_value:.3g} with B = {perm.n_permutations} "
                f"(resolution {perm.resolution:.2g}), alpha = {diag.alpha:g}")
        decision = (f"Predictive signal detected ({ptxt})." if diag.signal_detected else
                    f"No predictive signal detectable with n = {n} by this test ({ptxt}).")
    if selected:
        genes = f"{_genes(len(selected))} {describe_gene_list(rule)}."
    elif k_min and rule != "lambda_min":
        genes = (f"No gene at {label}; lambda.min keeps {_genes(k_min)}, listed as exploratory.")
    else:
        genes = f"No gene selected at {label}."
    return f"{decision} {genes} ({cvtxt}.)"


def select_features(X: Any, y: Any, *, strategy: str = SELECT.strategy, rule: str = SELECT.rule,
                    log: str = SELECT.log, cpm: bool = SELECT.cpm, top_variance: float | int | None = None,
                    l1_ratio: float = PATH.l1_ratio, nfolds: int | None = None, n_repeats: int | None = None,
                    measure: str = CV.measure, n_permutations: int = N_PERMUTATIONS, alpha: float = ALPHA,
                    stability: int | None = None, forest: bool | None = None, boruta: bool = False,
                    rank_then_lasso_top: int = SELECT.rank_then_lasso_top, seed: int = CV.seed,
                    dtype: Any = np.float64, family: str = "auto", plan: str = SELECT.plan,
                    progress=None, copy_X: bool = True) -> SelectionReport:
    """Run the gene-selection workflow and report every method side by side.

    Parameters
    ----------
    X : DataFrame or array, samples x genes (raw counts or log-scale expression).
    y : the outcome, in the rows' order: labels (two levels; the case is the second in sorted
        order, as in glmnet), numbers (Gaussian), or for survival a pair ``(time, event)`` or a
        DataFrame with columns ``time`` and ``event``.
    family : {"auto", "binomial", "gaussian", "cox"}
        ``auto``: cox for a ``(time, event)`` outcome, binomial for two distinct values, gaussian
        for numbers with more (:func:`jaxlasso.outcomes.resolve_family`).
    strategy : {"auto", "lasso", "full"}
        ``lasso``: preprocess, CV lasso and diagnosis only. ``auto``: also stability selection
        and a univariate ranking when the lasso selects nothing at ``rule``, signal is not
        detected (or not tested) or the diagnosis flags LAMBDA_RULE (plus a random forest when
        asked). ``full``: everything,
        including the honest "rank then lasso" comparison.
    rule : {"lambda_1se", "lambda_min"} (``lambda.1se`` / ``lambda.min`` also accepted)
    log, cpm, top_variance : see :func:`jaxlasso.selection.filters.preprocess`.
    nfolds, measure, l1_ratio : passed to :func:`jaxlasso.cv_logistic_path`.
    n_repeats : int, optional
        Repeated stratified CV (curves averaged). Default None: 10 repeats below 100 samples,
        else 1 (:func:`default_repeats`): with few samples one fold assignment moves lambda.min
        and the gene list.
    n_permutations : int
        B, the label permutations of the test that decides "signal detected" (default 99, so
        p can reach 1 / (B + 1) = 0.01; 0 skips the test and the verdict says "not tested").
    alpha : float
        Level of that test: signal is detected when ``p <= alpha``.
    stability : int, optional
        Number of stability-selection subsamples (default 100 when it runs; 0 disables it; a
        number >= 2 runs it with every strategy; an odd number is rounded up to an even one).
    forest, boruta : bool
        Random-forest permutation importance / Boruta rankings (scikit-learn); ``forest=None``
        runs the forest in ``full`` mode only.
    rank_then_lasso_top : int
        ``k`` of the rank-then-lasso comparison (run in ``full`` mode, or when forest/boruta run).
    seed : int
        Seed of every random step (folds, permutations, subsamples, forests).
    plan : {"auto", "on", "off"}
        The quick power plan a "no signal" verdict quotes (:func:`jaxlasso.plan.quick_plan`:
        10 genes planted at 1 SD in these data, 5 simulated studies per size): ``auto`` runs it
        when the test does not reject below :data:`SMALL_STUDY` samples, ``on`` whenever the
        test ran, ``off`` never. It never runs when ``B`` is too small for ``p`` to reach ``alpha``.
    progress : callable, optional
        ``progress(step_name)`` is called before each step (the CLI's progress display).
    copy_X : bool
        False: preprocessing may transform a float64 DataFrame ``X`` in place (its values are
        undefined afterwards) instead of copying it -- for a caller that read ``X`` only for this
        run; a raw counts matrix then does not stay in memory beside its logCPM -- and the
        cross-validation keeps the preprocessed matrix itself rather than a copy
        (:func:`jaxlasso.cv_logistic_path`'s ``copy_X``). Results are the same.

    Every option is checked by :class:`jaxlasso.options.SelectOptions` before any work starts;
    an error names the keyword (``stability must be ... (got stability=-5)``).
    """
    opts = SelectOptions.from_mapping(dict(
        strategy=strategy, rule=rule, log=log, cpm=cpm, top_variance=top_variance, l1_ratio=l1_ratio,
        nfolds=nfolds, n_repeats=n_repeats, measure=measure, n_permutations=n_permutations, alpha=alpha,
        stability=stability, forest=forest, boruta=boruta, rank_then_lasso_top=rank_then_lasso_top, seed=seed,
        dtype=dtype, family=family, plan=plan))
    fam, y = _resolve_outcome(y, opts.family)
    if fam != "binomial":
        return select_family(X, y, fam, opts, progress=progress, copy_X=copy_X)
    timings: dict[str, float] = {}
    timed = _timer(progress, timings)
    frame, prep, y_arr, repeats = timed("preprocess", lambda: prepare_data(X, y, opts, overwrite=not copy_X))
    with warnings.catch_warnings():
        # The diagnosis reports small classes as a finding; the raw warning would repeat it.
        warnings.simplefilter("ignore", FewObservationsWarning)
        cv = timed("cross-validated lasso", lambda: cv_logistic_path(
            frame, y_arr, nfolds=opts.cv.nfolds, n_repeats=repeats, measure=opts.cv.measure,
            seed=opts.seed, l1_ratio=opts.path.l1_ratio, n_lambdas=opts.path.n_lambdas,
            lambda_min_ratio=opts.path.lambda_min_ratio, tol=opts.path.tol, max_iter=opts.path.max_iter,
            dtype=opts.np_dtype, keep=True, copy_X=copy_X))
    return _report(frame, y_arr, prep, cv, opts, progress=progress, timings=timings)


def prepare_data(X: Any, y: Any, opts: SelectOptions, *,
                 overwrite: bool = False) -> tuple[pd.DataFrame, PreprocessReport, Any, int]:
    """The steps every selection starts with, before any label is looked at by a model:
    preprocessing (count detection, transform, constant genes, variance filter), the labels put in
    the matrix's sample order, and the number of CV repeats (``n_repeats=None``:
    :func:`default_repeats`). :func:`select_features` and the batch screen both start here.

    Returns ``(frame, preprocess report, labels, repeats)``; a pandas Series of labels keeps a
    Categorical's level order (which level is the case), other labels become an array.
    ``overwrite``: :func:`~jaxlasso.selection.filters.preprocess`'s (``X`` may be transformed in place).
    """
    frame, prep = preprocess(X, log=opts.log, cpm_normalize=opts.cpm, top_variance=opts.top_variance,
                             overwrite=overwrite)
    if isinstance(y, pd.Series) and isinstance(X, pd.DataFrame) and set(y.index) == set(frame.index):
        y = y.loc[frame.index]
    labels = y if isinstance(y, pd.Series) else np.asarray(y)
    repeats = default_repeats(frame.shape[0]) if opts.cv.n_repeats is None else opts.cv.n_repeats
    return frame, prep, labels, repeats


def _timer(progress, timings: dict):
    say = progress or (lambda step: None)

    def timed(name, fn, label=None):
        say(label or name)
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        return out

    return timed


def report_from_cv(frame: pd.DataFrame, y: Any, prep: PreprocessReport, cv: CVResult, *,
                   strategy: str = SELECT.strategy, rule: str = SELECT.rule,
                   n_permutations: int = N_PERMUTATIONS, alpha: float = ALPHA, stability: int | None = None,
                   forest: bool | None = None, boruta: bool = False,
                   rank_then_lasso_top: int = SELECT.rank_then_lasso_top, seed: int = CV.seed,
                   dtype: Any = np.float64, plan: str = SELECT.plan, progress=None,
                   timings: dict | None = None) -> SelectionReport:
    """The steps of :func:`select_features` after the cross-validated lasso.

    ``frame`` is the preprocessed matrix ``cv`` was fitted on (the batch screen fits many CVs
    in one call and finishes each dataset here). The keywords are :func:`select_features`'s,
    checked the same way.
    """
    opts = SelectOptions.from_mapping(dict(
        strategy=strategy, rule=rule, n_permutations=n_permutations, alpha=alpha, stability=stability,
        forest=forest, boruta=boruta, rank_then_lasso_top=rank_then_lasso_top, seed=seed, dtype=dtype, plan=plan))
    return _report(frame, y, prep, cv, opts, progress=progress, timings=timings)


def _report(frame: pd.DataFrame, y: Any, prep: PreprocessReport, cv: CVResult, opts: SelectOptions, *,
            progress=None, timings: dict | None = None) -> SelectionReport:
    """:func:`report_from_cv` on checked options."""
    strategy, rule, seed, dtype = opts.strategy, opts.rule, opts.seed, opts.np_dtype
    timings = {} if timings is None else timings
    timed = _timer(progress, timings)
    labels = V.check_y(y, frame.shape[0])
    y_arr = y
    diag = timed("diagnosis", lambda: diagnose(frame, y_arr, cv, preprocess_report=prep,
                                               n_permutations=opts.n_permutations, alpha=opts.alpha,
                                               seed=seed))
    names = list(frame.columns)

    def nonzero(which) -> pd.Series:
        coef = cv.coef(which)[1]
        nz = np.nonzero(coef)[0]
        order = nz[np.argsort(-np.abs(coef[nz]), kind="stable")]
        return pd.Series(coef[order], index=[names[j] for j in order], name="coefficient", dtype=float)

    coefficients = nonzero(rule.value)
    selected = tuple(coefficients.index)
    at_min = nonzero("lambda_min")
    auc, auc_se = _pooled_auc(cv, labels.y, np.ones(len(labels.y)))
    verdict = _verdict(selected, rule, cv, diag, len(labels.y),
                       None if auc is None else (float(auc[cv.index_min]), float(auc_se[cv.index_min])),
                       len(at_min))
    quick = None
    reachable = opts.alpha * (opts.n_permutations + 1) >= 1  # else the test could never reject
    if reachable and wants_quick_plan(opts.plan, diag.signal_detected, len(labels.y)):
        try:
            quick = timed("quick plan", lambda: _quick_plan(frame, labels.y, cv, opts, progress),
                          label="quick plan (what this test could detect; --plan off skips it)")
        except MemoryBudgetError as exc:
            # Even its first size's studies do not fit now: the analysis stands without its quote.
            verdict += f" (The quick plan did not run: {exc})"
        else:
            diag = _with_plan_quote(diag, quick)
            if diag.signal_detected is False:
                verdict += " " + quick.sentence()
    shaky = (not selected) or diag.signal_detected is not True or diag.get("LAMBDA_RULE") is not None
    run_more = strategy == "full" or (strategy == "auto" and shaky)
    n_stab = opts.stability_resamples(run_more)
    if strategy == "auto" and opts.stability is None and diag.get("STABILITY_UNREACHABLE") is not None:
        n_stab = 0  # its half-samples cannot reach the target q (the finding says so); ask with --stability N
    stab = uni = fr = br = rtl = None
    if n_stab:
        from .selection.stability import stability_selection

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewObservationsWarning)
            stab = timed("stability selection", lambda: stability_selection(
                frame, y_arr, n_resamples=n_stab, l1_ratio=cv.path.l1_ratio, seed=seed,
                dtype=dtype, problem=cv))
    if run_more:
        from .selection.univariate import univariate_ranking

        uni = timed("univariate ranking", lambda: univariate_ranking(frame, y_arr))
    do_forest = (strategy == "full") if opts.forest is None else opts.forest
    boruta = opts.boruta
    rank_then = strategy == "full" or do_forest or boruta
    if do_forest:
        from .selection.forest import forest_importance

        fr = timed("random forest", lambda: forest_importance(frame, y_arr, seed=seed),
                   label="random forest (the rank-then-lasso comparison follows)" if rank_then else None)
    if boruta:
        from .selection.forest import boruta as run_boruta

        br = timed("boruta", lambda: run_boruta(frame, y_arr, seed=seed))
    if rank_then:
        from .selection.pipeline import rank_then_lasso

        ranker = "boruta" if boruta and not do_forest else ("forest" if do_forest else "univariate")
        rtl = timed("rank then lasso (honest vs leaky)", lambda: rank_then_lasso(
            frame, y_arr, ranker=ranker, top_k=opts.rank_then_lasso_top, seed=seed, foldid=cv.foldid[0]))
    timings["total"] = float(sum(timings.values()))
    return SelectionReport(
        verdict=verdict, signal_detected=diag.signal_detected,
        permutation_p=None if diag.permutation is None else diag.permutation.p_value,
        n_permutations=0 if diag.permutation is None else diag.permutation.n_permutations,
        alpha=float(opts.alpha), gene_list_description=describe_gene_list(rule), selected=selected,
        coefficients=coefficients, rule=rule.value,
        lambda_=cv.lambda_1se if rule is Rule.LAMBDA_1SE else cv.lambda_min, classes=labels.classes,
        preprocess=prep, cv=cv, diagnosis=diag, X=frame, stability=stab, univariate=uni, forest=fr,
        boruta=br, rank_then_lasso=rtl, seed=seed,
        timings={**timings, "python": platform.python_version(), "jaxlasso": __version__},
        lambda_min_coefficients=at_min.rename("lambda_min"), cv_auc=auc, cv_auc_se=auc_se, quick_plan=quick,
    )


def wants_quick_plan(mode: str, signal_detected: bool | None, n_samples: int) -> bool:
    """Whether the quick plan runs: ``off`` never; ``on`` whenever the test ran; ``auto`` when it
    did not reject in a small study (below :data:`SMALL_STUDY` samples: there "not detectable"
    is the common answer and "how many samples would it take" the next question, and the plan's
    cost, a few dozen CV lassos on subsamples, stays a fraction of the run's)."""
    if mode == "off" or signal_detected is None:
        return False
    return mode == "on" or (signal_detected is False and n_samples < SMALL_STUDY)


def _quick_plan(frame: pd.DataFrame, y01: np.ndarray, cv: CVResult, opts: SelectOptions, progress):
    """The quick plan on the matrix the CV saw (already preprocessed), with the run's CV and
    path settings and seed."""
    from .plan import quick_plan

    path = cv.path
    return quick_plan(frame, y01, seed=opts.seed, alpha=opts.alpha, nfolds=opts.cv.nfolds, measure=cv.measure,
                      l1_ratio=path.l1_ratio, n_lambdas=opts.path.n_lambdas,
                      lambda_min_ratio=opts.path.lambda_min_ratio, tol=opts.path.tol,
                      max_iter=opts.path.max_iter, log="no", cpm=False, progress=progress)


def _with_plan_quote(diag: Diagnosis, quick) -> Diagnosis:
    """NO_SIGNAL's message with the quick plan's quote: what the test could have detected."""
    import dataclasses

    finding = diag.get("NO_SIGNAL")
    if finding is None:
        return diag
    quoted = dataclasses.replace(finding, message=f"{finding.message} {quick.sentence()}",
                                 evidence={**finding.evidence, "quick_plan_detection_at_current_n":
                                           quick.detection_at_current,
                                           "quick_plan_n_per_class_for_power": quick.n_for_power})
    return dataclasses.replace(diag, findings=tuple(quoted if f is finding else f for f in diag.findings))


def _pooled_auc(cv: CVResult, y01: np.ndarray, w: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """AUC of the pooled pre-validated predictions along the path (shown beside the deviance:
    per-fold AUC is undefined with one or two samples of a class per fold)."""
    if cv.prevalidated_repeats is None:
        return None, None
    stats = cv_statistics("auc_pooled", True, np.asarray(y01, float), np.asarray(w, float), cv.foldid,
                          cv.prevalidated_repeats)
    return stats.cv_mean, stats.cv_sd


# --- Gaussian and Cox ----------------------------------------------------------------------------
def _resolve_outcome(y: Any, family: str) -> tuple[str, Any]:
    """(the family, the outcome): a survival outcome is a ``(time, event)`` pair or a DataFrame
    with ``time`` and ``event`` columns; anything else is one value per sample."""
    from .outcomes import resolve_family

    survival = isinstance(y, tuple) or (isinstance(y, pd.DataFrame) and {"time", "event"} <= set(y.columns))
    if isinstance(y, pd.DataFrame) and survival:
        y = (y["time"], y["event"])
    fam = resolve_family(family, None if survival else y, survival=survival, outcome_name="y")
    return fam, y


def _in_rows(values: Any, frame: pd.DataFrame) -> Any:
    """``values`` in ``frame``'s row order when both carry the same sample index."""
    if isinstance(values, pd.Series) and set(values.index) == set(frame.index):
        return values.loc[frame.index].to_numpy()
    return np.asarray(values)


def select_family(X: Any, y: Any, family: str, opts: SelectOptions, *, progress=None,
                  copy_X: bool = True) -> SelectionReport:
    """:func:`select_features` for a Gaussian (``y``: numbers) or Cox (``y``: ``(time, event)``)
    outcome: the same steps -- preprocessing, the family's cross-validated lasso (glmnet's
    ``cv.glmnet(family = ...)``), the diagnosis with its permutation test, stability selection and
    the family's univariate ranking when they run -- and the same report."""
    from .diagnose import diagnose_family
    from .outcomes import Outcome, check_family_options, measure_label

    check_family_options(opts, family)
    timings: dict[str, float] = {}
    timed = _timer(progress, timings)
    frame, prep = timed("preprocess", lambda: preprocess(X, log=opts.log, cpm_normalize=opts.cpm,
                                                         top_variance=opts.top_variance, overwrite=not copy_X))
    if family == "cox":
        time_, event = y
        outcome = Outcome.build("cox", time=_in_rows(time_, frame), event=_in_rows(event, frame),
                                name="outcome", time_name=getattr(time_, "name", None) or "time",
                                event_name=getattr(event, "name", None) or "event")
    else:
        outcome = Outcome.build("gaussian", _in_rows(y, frame), name=getattr(y, "name", None) or "y")
    measure = opts.cv.measure
    repeats = default_repeats(frame.shape[0]) if opts.cv.n_repeats is None else opts.cv.n_repeats
    cv = timed("cross-validated lasso", lambda: outcome.cv(
        frame, measure=measure, nfolds=opts.cv.nfolds, n_repeats=repeats, seed=opts.seed, keep=True,
        l1_ratio=opts.path.l1_ratio, n_lambdas=opts.path.n_lambdas, lambda_min_ratio=opts.path.lambda_min_ratio,
        tol=opts.path.tol, max_iter=opts.path.max_iter, dtype=opts.np_dtype, copy_X=copy_X))
    rule = opts.rule
    diag = timed("diagnosis", lambda: diagnose_family(frame, outcome, cv, preprocess_report=prep,
                                                      n_permutations=opts.n_permutations, alpha=opts.alpha,
                                                      seed=opts.seed))
    names = list(frame.columns)

    def nonzero(which) -> pd.Series:
        coef = np.asarray(cv.coef(which)[1])
        nz = np.nonzero(coef)[0]
        order = nz[np.argsort(-np.abs(coef[nz]), kind="stable")]
        return pd.Series(coef[order], index=[names[j] for j in order], name="coefficient", dtype=float)

    coefficients = nonzero(rule.value)
    selected = tuple(coefficients.index)
    at_min = nonzero("lambda_min")
    index = cv.index_1se if rule is Rule.LAMBDA_1SE else cv.index_min
    if family == "cox":
        preval = timed("pre-validated risk", lambda: outcome.prevalidated_risk(
            frame, cv, index, l1_ratio=opts.path.l1_ratio, dtype=opts.np_dtype))
    else:
        preval = None if cv.prevalidated is None else np.asarray(cv.prevalidated)[:, index].astype(float)
    verdict = _family_verdict(selected, rule, cv, diag, outcome, len(at_min), measure_label(cv.measure, family))
    shaky = (not selected) or diag.signal_detected is not True or diag.get("LAMBDA_RULE") is not None
    run_more = opts.strategy == "full" or (opts.strategy == "auto" and shaky)
    n_stab = opts.stability_resamples(run_more)
    if opts.strategy == "auto" and opts.stability is None and diag.get("STABILITY_UNREACHABLE") is not None:
        n_stab = 0
    stab = uni = None
    if n_stab:
        from .selection.family_stability import stability_selection_family

        stab = timed("stability selection", lambda: stability_selection_family(
            frame, outcome, lambdas=cv.lambdas, n_resamples=n_stab, l1_ratio=opts.path.l1_ratio, seed=opts.seed,
            dtype=opts.np_dtype))
    if run_more:
        uni = timed("univariate ranking", lambda: outcome.univariate(frame))
    timings["total"] = float(sum(timings.values()))
    return SelectionReport(
        verdict=verdict, signal_detected=diag.signal_detected,
        permutation_p=None if diag.permutation is None else diag.permutation.p_value,
        n_permutations=0 if diag.permutation is None else diag.permutation.n_permutations,
        alpha=float(opts.alpha), gene_list_description=describe_gene_list(rule), selected=selected,
        coefficients=coefficients, rule=rule.value,
        lambda_=cv.lambda_1se if rule is Rule.LAMBDA_1SE else cv.lambda_min, classes=(),
        preprocess=prep, cv=cv, diagnosis=diag, X=frame, stability=stab, univariate=uni, seed=opts.seed,
        timings={**timings, "python": platform.python_version(), "jaxlasso": __version__},
        lambda_min_coefficients=at_min.rename("lambda_min"), family=family, outcome=outcome, prevalidated=preval)


def _family_verdict(selected, rule: Rule, cv: CVResult, diag: Diagnosis, outcome, k_min: int, label: str) -> str:
    """:func:`_verdict` in the words of a Gaussian or Cox outcome."""
    best, se, null = cv.cv_mean[cv.index_min], cv.cv_sd[cv.index_min], cv.cv_mean[0]
    what = "survival" if outcome.family == "cox" else "the outcome"
    perm = diag.permutation
    cvtxt = f"CV {label} {best:.4g} ± {se:.3g} at lambda.min vs {null:.4g} for the null model"
    if diag.signal_detected is None:
        decision = "Signal not tested (no permutations were run)."
    else:
        ptxt = (f"permutation p = {perm.p_value:.3g} with B = {perm.n_permutations} "
                f"(resolution {perm.resolution:.2g}), alpha = {diag.alpha:g}")
        size = f"{outcome.n_events} events" if outcome.family == "cox" else f"n = {outcome.n}"
        decision = (f"Predictive signal for {what} detected ({ptxt})." if diag.signal_detected else
                    f"No predictive signal for {what} detectable with {size} by this test ({ptxt}).")
    if selected:
        genes = f"{_genes(len(selected))} {describe_gene_list(rule)}."
    elif k_min and rule != "lambda_min":
        genes = f"No gene at {rule.glmnet}; lambda.min keeps {_genes(k_min)}, listed as exploratory."
    else:
        genes = f"No gene selected at {rule.glmnet}."
    return f"{decision} {genes} ({cvtxt}.)"
