"""One entry point for the whole gene-selection workflow: :func:`select_features`.

preprocess (count detection, edgeR's log2-CPM for counts, constant genes, optional variance filter)
  -> cross-validated lasso (glmnet's rules)
  -> diagnosis with a label-permutation test
  -> when the lasso selects nothing or looks shaky: stability selection, a univariate ranking
     with FDR control, optionally random-forest / Boruta rankings and the honest
     "rank then lasso" comparison

Each method keeps its own genes, scores and (where one exists) honest error estimate side by
side. Only the cross-validated lasso at the chosen rule, with a diagnosis that finds signal,
is presented as a validated selection; every other list is labelled exploratory.
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
from ._version import __version__
from .cv import cv_logistic_path
from .diagnose import Diagnosis, diagnose
from .exceptions import FewObservationsWarning
from .options import Rule, SelectOptions
from .results import CVResult
from .selection.filters import PreprocessReport, preprocess


@dataclass(frozen=True)
class SelectionReport:
    """Everything :func:`select_features` found, method by method."""

    verdict: str
    """One sentence: how many genes were selected and whether the evidence supports them."""
    validated: bool
    """True when the lasso selected genes *and* the diagnosis found predictive signal."""
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

    def table(self) -> pd.DataFrame:
        """One row per gene that any method ranked highly, one column block per method."""
        frames = []
        coef = self.coefficients.rename("coefficient")
        frames.append(coef)
        if self.stability is not None:
            st = self.stability.to_frame().set_index("feature")
            frames.append(st["selection_probability"])
            frames.append(st["rank"].rename("stability_rank"))
        if self.univariate is not None:
            uv = self.univariate.to_frame().set_index("feature")
            top = uv.nsmallest(100, "rank")
            frames.append(top["q_value"].rename("univariate_q"))
            frames.append(top["rank"].rename("univariate_rank"))
        if self.forest is not None:
            fr = self.forest.to_frame().set_index("feature")
            frames.append(fr.nsmallest(100, "rank")["rank"].rename("forest_rank"))
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
        # Lasso genes first (largest |coefficient|), then by stability, then univariate rank.
        keys = pd.DataFrame({
            "coef": -table["coefficient"].abs().fillna(0.0),
            "stab": -table["selection_probability"].fillna(0.0) if "selection_probability" in table else 0.0,
            "uni": table["univariate_rank"].fillna(np.inf) if "univariate_rank" in table else 0.0,
        }, index=table.index)
        order = keys.sort_values(["coef", "stab", "uni"], kind="stable").index
        return table.loc[order].reset_index()

    def to_frame(self) -> pd.DataFrame:
        return self.table()


def _genes(k: int) -> str:
    return f"{k} gene" if k == 1 else f"{k} genes"


def _verdict(selected, label: str, cv: CVResult, diag: Diagnosis) -> tuple[str, bool]:
    best, se, null = cv.cv_mean[cv.index_min], cv.cv_sd[cv.index_min], cv.cv_mean[0]
    perm = diag.permutation
    ptxt = f", permutation p = {perm.p_value:.3g}" if perm is not None else ""
    cvtxt = f"CV {cv.measure} {best:.3f} ± {se:.3f} vs {null:.3f} for the intercept-only model{ptxt}"
    if diag.no_signal:
        if selected:
            return (f"{_genes(len(selected))} at {label}, but NOT validated: the data show no predictive "
                    f"signal ({cvtxt}).", False)
        return f"No gene selected: the data show no predictive signal ({cvtxt}).", False
    if selected:
        return f"{_genes(len(selected))} selected at {label} ({cvtxt}).", True
    return (f"No gene selected at {label}, although the CV curve shows some signal ({cvtxt}); "
            f"see the diagnosis and the exploratory rankings.", False)


def select_features(X: Any, y: Any, *, strategy: str = SELECT.strategy, rule: str = SELECT.rule,
                    log: str = SELECT.log, cpm: bool = SELECT.cpm, top_variance: float | int | None = None,
                    l1_ratio: float = PATH.l1_ratio, nfolds: int | None = None, n_repeats: int = CV.n_repeats,
                    measure: str = CV.measure, n_permutations: int = SELECT.n_permutations,
                    stability: int | None = None, forest: bool | None = None, boruta: bool = False,
                    rank_then_lasso_top: int = SELECT.rank_then_lasso_top, seed: int = CV.seed,
                    dtype: Any = np.float64, progress=None) -> SelectionReport:
    """Run the gene-selection workflow and report every method side by side.

    Parameters
    ----------
    X : DataFrame or array, samples x genes (raw counts or log-scale expression).
    y : labels (two levels; the case is the second in sorted order, as in glmnet).
    strategy : {"auto", "lasso", "full"}
        ``lasso``: preprocess, CV lasso and diagnosis only. ``auto``: also stability selection
        and a univariate ranking when the lasso selects nothing at ``rule`` or the diagnosis
        flags NO_SIGNAL / LAMBDA_RULE (plus a random forest when asked). ``full``: everything,
        including the honest "rank then lasso" comparison.
    rule : {"lambda_1se", "lambda_min"} (``lambda.1se`` / ``lambda.min`` also accepted)
    log, cpm, top_variance : see :func:`jaxlasso.selection.filters.preprocess`.
    nfolds, n_repeats, measure, l1_ratio : passed to :func:`jaxlasso.cv_logistic_path`.
    n_permutations : int
        Label permutations for the NO_SIGNAL test (0 to skip).
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
    progress : callable, optional
        ``progress(step_name)`` is called before each step (the CLI's progress display).

    Every option is checked by :class:`jaxlasso.options.SelectOptions` before any work starts;
    an error names the keyword (``stability must be ... (got stability=-5)``).
    """
    opts = SelectOptions.from_mapping(dict(
        strategy=strategy, rule=rule, log=log, cpm=cpm, top_variance=top_variance, l1_ratio=l1_ratio,
        nfolds=nfolds, n_repeats=n_repeats, measure=measure, n_permutations=n_permutations, stability=stability,
        forest=forest, boruta=boruta, rank_then_lasso_top=rank_then_lasso_top, seed=seed, dtype=dtype))
    timings: dict[str, float] = {}
    timed = _timer(progress, timings)
    frame, prep = timed("preprocess", lambda: preprocess(X, log=opts.log, cpm_normalize=opts.cpm,
                                                         top_variance=opts.top_variance))
    if isinstance(y, pd.Series) and isinstance(X, pd.DataFrame) and set(y.index) == set(frame.index):
        y = y.loc[frame.index]  # align labels to the matrix's sample order
    # A Series keeps a Categorical's level order (which level is the case); arrays are fine too.
    y_arr = y if isinstance(y, pd.Series) else np.asarray(y)
    with warnings.catch_warnings():
        # The diagnosis reports small classes as a finding; the raw warning would repeat it.
        warnings.simplefilter("ignore", FewObservationsWarning)
        cv = timed("cross-validated lasso", lambda: cv_logistic_path(
            frame, y_arr, nfolds=opts.cv.nfolds, n_repeats=opts.cv.n_repeats, measure=opts.cv.measure,
            seed=opts.seed, l1_ratio=opts.path.l1_ratio, n_lambdas=opts.path.n_lambdas,
            lambda_min_ratio=opts.path.lambda_min_ratio, tol=opts.path.tol, max_iter=opts.path.max_iter,
            dtype=opts.np_dtype, keep=True))
    return _report(frame, y_arr, prep, cv, opts, progress=progress, timings=timings)


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
                   n_permutations: int = SELECT.n_permutations, stability: int | None = None,
                   forest: bool | None = None, boruta: bool = False,
                   rank_then_lasso_top: int = SELECT.rank_then_lasso_top, seed: int = CV.seed,
                   dtype: Any = np.float64, progress=None, timings: dict | None = None) -> SelectionReport:
    """The steps of :func:`select_features` after the cross-validated lasso.

    ``frame`` is the preprocessed matrix ``cv`` was fitted on (the batch screen fits many CVs
    in one call and finishes each dataset here). The keywords are :func:`select_features`'s,
    checked the same way.
    """
    opts = SelectOptions.from_mapping(dict(
        strategy=strategy, rule=rule, n_permutations=n_permutations, stability=stability, forest=forest,
        boruta=boruta, rank_then_lasso_top=rank_then_lasso_top, seed=seed, dtype=dtype))
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
                                               n_permutations=opts.n_permutations, seed=seed))
    b0, coef = cv.coef(rule)
    names = list(frame.columns)
    nz = np.nonzero(coef)[0]
    order = nz[np.argsort(-np.abs(coef[nz]), kind="stable")]
    selected = tuple(names[j] for j in order)
    coefficients = pd.Series(coef[order], index=[names[j] for j in order], name="coefficient", dtype=float)
    verdict, validated = _verdict(selected, rule.glmnet, cv, diag)
    shaky = (not selected) or diag.no_signal or diag.get("LAMBDA_RULE") is not None
    run_more = strategy == "full" or (strategy == "auto" and shaky)
    n_stab = opts.stability_resamples(run_more)
    stab = uni = fr = br = rtl = None
    if n_stab:
        from .selection.stability import stability_selection

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewObservationsWarning)
            stab = timed("stability selection", lambda: stability_selection(
                frame, y_arr, n_resamples=n_stab, l1_ratio=cv.path.l1_ratio, seed=seed,
                dtype=dtype))
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
        verdict=verdict, validated=validated, selected=selected, coefficients=coefficients, rule=rule.value,
        lambda_=cv.lambda_1se if rule is Rule.LAMBDA_1SE else cv.lambda_min, classes=labels.classes,
        preprocess=prep, cv=cv, diagnosis=diag, X=frame, stability=stab, univariate=uni, forest=fr,
        boruta=br, rank_then_lasso=rtl, seed=seed,
        timings={**timings, "python": platform.python_version(), "jaxlasso": __version__},
    )
