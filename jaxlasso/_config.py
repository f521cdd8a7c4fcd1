"""Every default of jaxlasso, written once.

The path and CV defaults are glmnet's (``glmnet.control()`` factory values and the defaults of
``glmnet()`` / ``cv.glmnet()``); jaxlasso-specific choices say why they differ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PathDefaults:
    l1_ratio: float = 1.0
    """glmnet ``alpha = 1``: the lasso."""
    n_lambdas: int = 100
    """glmnet ``nlambda``."""
    lambda_min_ratio_wide: float = 0.01
    """glmnet ``lambda.min.ratio`` when n < p."""
    lambda_min_ratio_tall: float = 1e-4
    """glmnet ``lambda.min.ratio`` when n >= p."""
    alpha_floor: float = 1e-3
    """glmnet computes lambda_max with ``max(alpha, 1e-3)`` so that ridge gets a finite grid."""
    standardize: bool = True
    fit_intercept: bool = True
    early_stop: bool = True
    """glmnet's early stop of its own grid (user-supplied lambdas are never cut short)."""
    tol: float = 1e-5
    """KKT-gap tolerance (standardised scale). A lambda converges with a KKT gap <= tol; in float64
    the Newton loop goes on to tol / 10 unless a step's estimate of the objective left above the
    optimum is below 1e-8 of the loss (``kernels.solver._SUBOPT_RTOL``). glmnet's default
    ``thresh = 1e-7`` leaves KKT gaps of 3e-5 to 2e-4 on this scale, and the issue's bar -- the
    objective at or below glmnet's default-threshold one x (1 + 1e-6) at every lambda -- holds
    with orders of magnitude to spare on the benchmark workloads and the binomial goldens
    (``benchmarks/NOTES.md``). A tolerance of 1e-5 alone, with no estimate, broke that bar where
    a warm start sat within it on a flat objective (an n > p fit near its unpenalised end)."""
    tol_float32: float = 1e-5
    """Default tolerance when computing in float32 (its gradients carry ~1e-7 relative error)."""
    max_iter: int = 200
    """Newton iterations per lambda (each one is a full coordinate-descent model solve)."""
    max_sweeps: int = 1000
    """Coordinate-descent sweeps per Newton step."""
    min_working_set: int = 32
    """Initial working-set capacity (grows through the levels 2^j and 1.5 * 2^j when the active set
    needs it: ``jaxlasso._engine.grow_capacity``)."""
    few_per_class: int = 8
    """glmnet warns when a class has fewer observations than this."""


@dataclass(frozen=True)
class CVDefaults:
    nfolds: int = 10
    stratified: bool = True
    """jaxlasso assigns folds stratified by class by default (glmnet: purely random). With 7 cases
    and 9 controls a random 10-fold split often leaves folds without a case, which makes the
    held-out deviance of that fold meaningless; stratification keeps each fold's case fraction
    close to the overall one. Pass ``stratified=False`` for glmnet's behaviour."""
    n_repeats: int = 1
    measure: str = "deviance"
    seed: int = 0
    prob_clip: float = 1e-5
    """cv.glmnet clips held-out probabilities to [1e-5, 1 - 1e-5] for the deviance."""
    auc_min_per_fold: int = 10
    """cv.glmnet falls back from AUC to deviance below 10 held-out observations per fold."""
    grouped_min_per_fold: int = 3
    """cv.glmnet switches to ungrouped standard errors below 3 observations per fold."""


PATH = PathDefaults()
CV = CVDefaults()

MEASURES = ("deviance", "class", "auc", "mse", "auc_pooled")
"""``auc_pooled``: the AUC of the pooled pre-validated predictions (one number per repeat): the
honest alternative to per-fold AUC when folds are small."""

STRATEGIES = ("auto", "lasso", "full")
"""``lasso``: CV lasso and diagnosis only; ``auto``: add the rankings when the lasso looks shaky;
``full``: every method."""
LOG_MODES = ("auto", "yes", "no")
DTYPES = ("float64", "float32")
SCREEN_MODES = ("vmap", "loop")
PLAN_MODES = ("auto", "on", "off")
"""``--plan``: when the quick power plan of a "no signal" verdict runs (:class:`SelectDefaults`)."""


@dataclass(frozen=True)
class SelectDefaults:
    strategy: str = "auto"
    rule: str = "lambda_1se"
    """glmnet's conservative choice; ``lambda_min`` keeps more genes and more false ones."""
    log: str = "auto"
    cpm: bool = False
    n_permutations: int = 99
    """Label permutations of the test behind "signal detected": p can reach 1 / (B + 1) = 0.01."""
    alpha: float = 0.05
    """Level of that test."""
    n_repeats: int | None = None
    """Repeated CV: None = 10 repeats below 100 samples, else 1 (``workflow.default_repeats``)."""
    stability_resamples: int = 100
    """Subsamples of stability selection when it runs and no number is given."""
    rank_then_lasso_top: int = 30
    """``k`` of the folk "rank, keep the top k, then lasso" procedure the comparison reproduces."""
    dtype: str = "float64"
    plan: str = "auto"
    """The quick plan quoted by a "no signal detected" verdict: ``auto`` runs it when the test
    does not reject and the study is small (``workflow.SMALL_STUDY``), ``on`` whenever the test
    ran, ``off`` never."""


@dataclass(frozen=True)
class ScreenDefaults:
    """A screen runs many datasets: its defaults keep each one to the CV lasso and diagnosis,
    the expensive extras stay opt-in per run or per manifest row."""

    strategy: str = "lasso"
    n_permutations: int = 0
    n_repeats: int = 1
    plan: str = "off"
    """The quick plan needs the permutation test (off in a screen) and costs a few dozen CV
    lassos per dataset: a batch triage asks for it per manifest row (column ``plan``)."""


@dataclass(frozen=True)
class DemoDefaults:
    genes: int = 16293
    """The seed study's number of genes."""
    lfc_mean: float = 1.5
    """Mean |log2 fold change| of the demo's 300 planted genes. A demo must show the tool finding
    planted signal: at ``simulate_rnaseq``'s default 0.6 the permutation test on 7 vs 9 samples
    rejects in a minority of seeds (the same "not detectable" as ``--null``), at 1.0 in 7 of 10,
    at 1.5 in every seed measured (benchmarks/NOTES.md, "The demo")."""


SELECT = SelectDefaults()
SCREEN = ScreenDefaults()
DEMO = DemoDefaults()
SEED_MAX = 2**32 - 1
"""scikit-learn's ``random_state`` (the forests) takes seeds up to 2**32 - 1."""


@dataclass(frozen=True)
class PlanDefaults:
    """``jaxlasso plan`` / :func:`jaxlasso.plan_power`: a grid small enough to run in minutes on
    a laptop (sizes: the data's smaller class up to 10x it, 4 points), enlarged by the user."""

    k: tuple[int, ...] = (10,)
    """Planted differentially expressed genes."""
    effect_sd: tuple[float, ...] = (0.0, 1.0, 2.0)
    """Planted effects in SDs of each gene; 0 measures the false-signal rate."""
    replicates: int = 10
    """Simulated studies per grid cell (a detection probability of 0.8 is then +- 0.13)."""
    n_permutations: int = 19
    """B of the permutation test inside the plan: p can still reach 1 / (B + 1) = 0.05, so the
    test at alpha = 0.05 can reject, at a fifth of ``select``'s cost."""
    alpha: float = 0.05
    rule: str = "lambda_1se"
    log: str = "auto"
    cpm: bool = False
    size_points: int = 4
    size_factor: float = 10.0
    power: float = 0.8
    """The detection probability the "n per class needed" answer is quoted for."""
    quick_k: int = 10
    quick_effect_sd: float = 1.0
    """The effect the quick plan of a "no signal" verdict asks about: 10 genes shifted by 1 SD
    each (a modest per-gene effect, Cohen's d = 1, in a small pathway-sized set). The question
    it answers: could this study have seen *that*, and how many samples would it take."""
    quick_replicates: int = 5
    """Simulated studies per size in the quick plan (a detection probability +- 0.2)."""
    quick_size_points: int = 4
    """Sizes of the quick plan: the current n per class up to ``size_factor`` times it; the
    sizes are run smallest first and stop at the first that reaches ``power``."""


PLAN = PlanDefaults()
