"""Run options: defined, defaulted and validated in one place.

Every option a user can set -- on the command line, in a screen manifest column or as a keyword
of the Python API -- is declared once here, with its check and the sentence saying what is
allowed. The defaults come from :mod:`jaxlasso._config`. Each options class has one
constructor from a mapping, :meth:`SelectOptions.from_mapping` and friends, that all three
entry points use; only the *source* differs, and it decides how an error names the option:

=========  ============================================  =======================
source     the option is named                           text values parsed?
=========  ============================================  =======================
CLI        ``--stability``                               yes (argparse gives strings)
manifest   ``manifest 'm.tsv' line 3, column 'stability'``  yes (cells are strings)
API        ``stability=``                                no (Python values)
=========  ============================================  =======================

Constructing an options object directly (``SelectOptions(stability=-5)``) runs the same checks
with the API's names, so no invalid options object can exist.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from ._config import (CV, DEMO, DTYPES, LOG_MODES, MEASURES, PATH, PLAN, PLAN_MODES, SCREEN, SCREEN_MODES,
                      SEED_MAX, SELECT, STRATEGIES)


FAMILIES = ("auto", "binomial", "gaussian", "cox")
"""The models a selection fits (``auto``: chosen from the outcome, :func:`jaxlasso.outcomes.resolve_family`)."""

ALL_MEASURES = tuple(dict.fromkeys((*MEASURES, "mae", "C")))
"""Every family's CV measures; a measure the family does not offer is refused once the family is known."""


class OptionError(ValueError):
    """An option value that is not allowed; the message names the option as the user wrote it."""


class Rule(str, enum.Enum):
    """Which lambda of the CV curve gives the gene list (glmnet's ``s``)."""

    LAMBDA_1SE = "lambda_1se"
    """The largest lambda whose CV error is within one SE of the minimum (glmnet's default)."""
    LAMBDA_MIN = "lambda_min"
    """The lambda with the smallest CV error."""

    # A str-valued enum formats as its value on every Python version (3.11 changed the default),
    # so reports, JSON and f-strings keep writing "lambda_1se".
    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__

    @property
    def glmnet(self) -> str:
        """glmnet's spelling: ``lambda.1se`` / ``lambda.min``."""
        return self.value.replace("_", ".")

    @classmethod
    def parse(cls, value: Any, name: str = "rule") -> Rule:
        """The rule of ``value``: a :class:`Rule` or one of ``lambda_1se``, ``lambda.1se``,
        ``lambda_min``, ``lambda.min`` (``name`` labels the error)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().replace(".", "_")
            for rule in cls:
                if rule.value == key:
                    return rule
        raise OptionError(f"{name} must be lambda.1se or lambda.min (also spelt lambda_1se, lambda_min) "
                          f"(got {value!r})")


# --- where a value came from ----------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where option values come from: decides how errors name an option and whether strings
    are parsed."""

    kind: str
    """``cli``, ``manifest`` or ``api``."""
    where: str = ""
    """The manifest row (``manifest 'm.tsv' line 3``) or the API context (``dataset 'd1'``)."""

    @classmethod
    def manifest(cls, path: str, line: int) -> Source:
        return cls("manifest", f"manifest {path!r} line {line}")

    @classmethod
    def api(cls, where: str = "") -> Source:
        return cls("api", where)

    @property
    def text(self) -> bool:
        """Values are strings to parse (command line, manifest cells)."""
        return self.kind in ("cli", "manifest")

    def label(self, opt: Opt) -> str:
        """The option as the user wrote it: ``--stability``, ``manifest 'm.tsv' line 3, column
        'stability'`` or ``stability``."""
        if self.kind == "cli":
            return opt.flag or "--" + opt.key.replace("_", "-")
        if self.kind == "manifest":
            return f"{self.where}, column {opt.column or opt.key!r}"
        return f"{self.where}: {opt.key}" if self.where else opt.key

    def shown(self, opt: Opt, value: Any) -> str:
        """The bad value as the user wrote it: ``--stability -5``, ``stability='-5'``, ``stability=-5``."""
        if self.kind == "cli":
            return f"{opt.flag or opt.key} {value}" if not isinstance(value, bool) else str(opt.flag)
        return f"{opt.column or opt.key if self.kind == 'manifest' else opt.key}={value!r}"


CLI = Source("cli")
API = Source("api")


# --- checks: (value, from_text) -> normalised value, or _Invalid -----------------------------
class _Invalid(Exception):
    pass


Check = Callable[[Any, bool], Any]

_INT_TEXT = re.compile(r"^[+-]?\d+$")


def _as_int(value: Any, text: bool) -> int:
    if text and isinstance(value, str):
        if not _INT_TEXT.match(value.strip()):
            raise _Invalid
        return int(value.strip())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise _Invalid
    return int(value)


def _as_real(value: Any, text: bool) -> float:
    if text and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Invalid from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _Invalid
    return float(value)


def integer(minimum: int, maximum: int | None = None) -> Check:
    def check(value, text):
        v = _as_int(value, text)
        if v < minimum or (maximum is not None and v > maximum):
            raise _Invalid
        return v
    return check


def real(lo: float, hi: float, *, lo_open: bool = False) -> Check:
    def check(value, text):
        v = _as_real(value, text)
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
            raise _Invalid
        return v
    return check


def choice(values: tuple[str, ...]) -> Check:
    def check(value, text):
        if isinstance(value, str) and value.strip() in values:
            return value.strip()
        raise _Invalid
    return check


def optional(inner: Check) -> Check:
    """``None`` (the option's automatic choice) or a value ``inner`` accepts; an empty cell or
    ``auto`` in text means None."""
    def check(value, text):
        if value is None or (text and isinstance(value, str) and value.strip().lower() in ("", "auto")):
            return None
        return inner(value, text)
    return check


_TRUE, _FALSE = ("1", "true", "yes", "y"), ("0", "false", "no", "n", "")


def boolean(value, text):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if text and isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise _Invalid


def optional_boolean(value, text):
    return None if value is None else boolean(value, text)


def fraction_or_count(value, text):
    """A fraction in (0, 1] (written with a decimal point in text: ``0.25``, ``1.0``) or a whole
    count >= 1 (``2000``)."""
    if text and isinstance(value, str):
        t = value.strip()
        if _INT_TEXT.match(t):
            return integer(1)(t, True)
        return real(0.0, 1.0, lo_open=True)(t, True)
    if isinstance(value, (bool, np.bool_)):
        raise _Invalid
    if isinstance(value, numbers.Integral):
        return integer(1)(value, False)
    return real(0.0, 1.0, lo_open=True)(value, False)


def stability_count(value, text):
    """0 (off) or a number of subsamples >= 2; an odd number is rounded up when it runs
    (subsamples come in complementary pairs)."""
    v = _as_int(value, text)
    if v == 0 or v >= 2:
        return v
    raise _Invalid


def rule_name(value, text):
    try:
        return Rule.parse(value)
    except OptionError:
        raise _Invalid from None


def dtype_name(value, text):
    if isinstance(value, str):
        name = value.strip()
    else:
        try:
            name = np.dtype(value).name
        except TypeError:
            raise _Invalid from None
    if name not in DTYPES:
        raise _Invalid
    return name


_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def size(value, text):
    """Bytes: a number, or a number with a unit K, M, G, T (powers of 1024; a trailing B is
    allowed)."""
    if text and isinstance(value, str):
        t = value.strip().lower()
        t = t[:-1] if t.endswith("b") else t
        scale = 1
        if t and t[-1] in _UNITS:
            t, scale = t[:-1], _UNITS[t[-1]]
        try:
            v = float(t) * scale
        except ValueError:
            raise _Invalid from None
    else:
        v = _as_real(value, False)
    if not math.isfinite(v) or v <= 0:
        raise _Invalid
    return v


def address(value, text):
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise _Invalid


# --- option declarations ----------------------------------------------------------------------
@dataclass(frozen=True)
class Opt:
    """One option: its API keyword, check, what is allowed, and its CLI / manifest spellings."""

    key: str
    check: Check
    allowed: str
    flag: str | None = None
    column: str | None = None
    """The manifest column (None: not overridable per dataset)."""

    def validate(self, value: Any, source: Source) -> Any:
        try:
            return self.check(value, source.text)
        except _Invalid:
            raise OptionError(f"{source.label(self)} must be {self.allowed} "
                              f"(got {source.shown(self, value)})") from None


def _opt(key, check, allowed, *, flag=None, column=None, default=None, help=""):
    """A dataclass field that carries its option declaration."""
    return field(default=default, metadata={"opt": Opt(key, check, allowed, flag, column), "help": help})


class _Options:
    """Shared machinery: one constructor from a mapping, validation on construction."""

    PARTS: ClassVar[dict[str, type]] = {}
    """Nested option groups (field name -> options class) whose keys a flat mapping may hold."""

    @classmethod
    def declared(cls) -> dict[str, Opt]:
        """key -> declaration of this class's own options (nested groups excluded)."""
        return {f.name: f.metadata["opt"] for f in dataclasses.fields(cls) if "opt" in f.metadata}

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """Every key a flat mapping may hold, nested groups included."""
        own = tuple(cls.declared())
        return own + tuple(k for part in cls.PARTS.values() for k in part.keys())

    @classmethod
    def option(cls, key: str) -> Opt:
        own = cls.declared()
        if key in own:
            return own[key]
        for part in cls.PARTS.values():
            if key in part.keys():
                return part.option(key)
        raise KeyError(key)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: Source = API, base: Any = None):
        """Options from ``values`` (keys: the API keywords), validated and named as ``source``
        spells them; keys not in ``values`` keep ``base``'s value (default: the defaults)."""
        known = cls.keys()
        unknown = [k for k in values if k not in known]
        if unknown:
            where = f"{source.where}: " if source.where else ""
            raise OptionError(f"{where}unknown option(s) {unknown}; valid: {', '.join(known)}")
        start = cls() if base is None else base
        own = {k: cls.declared()[k].validate(v, source) for k, v in values.items() if k in cls.declared()}
        parts = {}
        for name, part in cls.PARTS.items():
            sub = {k: v for k, v in values.items() if k in part.keys()}
            if sub:
                parts[name] = part.from_mapping(sub, source=source, base=getattr(start, name))
        return dataclasses.replace(start, **own, **parts)

    def to_mapping(self) -> dict[str, Any]:
        """Flat key -> value (nested groups merged): ``from_mapping(o.to_mapping()) == o``."""
        out = {k: getattr(self, k) for k in self.declared()}
        for name in self.PARTS:
            out.update(getattr(self, name).to_mapping())
        return out

    def __post_init__(self) -> None:
        for key, opt in self.declared().items():
            object.__setattr__(self, key, opt.validate(getattr(self, key), API))
        for name, part in self.PARTS.items():
            if not isinstance(getattr(self, name), part):
                raise OptionError(f"{name}= must be a {part.__name__} (got {getattr(self, name)!r})")


@dataclass(frozen=True)
class PathOptions(_Options):
    """The regularisation path (glmnet's ``glmnet()`` arguments that jaxlasso exposes)."""

    l1_ratio: float = _opt("l1_ratio", real(0.0, 1.0), "a number in [0, 1] (glmnet's alpha; 1 = lasso)",
                           flag="--l1-ratio", column="l1_ratio", default=PATH.l1_ratio,
                           help="elastic-net mixing, glmnet's alpha (1 = lasso)")
    n_lambdas: int = _opt("n_lambdas", integer(1), "a whole number >= 1", default=PATH.n_lambdas)
    lambda_min_ratio: float | None = _opt(
        "lambda_min_ratio", optional(real(0.0, 1.0, lo_open=True)), "a number in (0, 1], or None (glmnet's rule)")
    tol: float | None = _opt("tol", optional(real(0.0, math.inf, lo_open=True)),
                             "a positive number, or None (by dtype)")
    max_iter: int = _opt("max_iter", integer(1), "a whole number >= 1", default=PATH.max_iter)


@dataclass(frozen=True)
class CVOptions(_Options):
    """Cross-validation (glmnet's ``cv.glmnet()`` arguments that jaxlasso exposes)."""

    nfolds: int | None = _opt("nfolds", optional(integer(2)), "a whole number >= 2, or auto",
                              flag="--nfolds", column="nfolds",
                              help=f"CV folds; default: {CV.nfolds}, or the size of the smaller class when smaller")
    n_repeats: int | None = _opt("n_repeats", optional(integer(1)), "a whole number >= 1, or auto",
                                 flag="--repeats", column="n_repeats", default=SELECT.n_repeats,
                                 help="repeated CV: average the curves of N fold assignments; default: 10 below "
                                      "100 samples, else 1")
    measure: str = _opt("measure", choice(ALL_MEASURES), "one of " + ", ".join(ALL_MEASURES), flag="--measure",
                        column="measure", default=CV.measure,
                        help="CV measure (glmnet's type.measure); binomial: " + ", ".join(MEASURES)
                             + "; gaussian: mse (= deviance), mae; cox: deviance, C (Harrell's)")
    seed: int = _opt("seed", integer(0, SEED_MAX), f"a whole number from 0 to {SEED_MAX}", flag="--seed",
                     column="seed", default=CV.seed,
                     help="seed of every random step (folds, permutations, subsamples, forests)")


@dataclass(frozen=True)
class SelectOptions(_Options):
    """Everything :func:`jaxlasso.select_features` takes besides the data and ``progress``."""

    PARTS: ClassVar[dict[str, type]] = {"path": PathOptions, "cv": CVOptions}

    family: str = _opt("family", choice(FAMILIES), "one of " + ", ".join(FAMILIES), flag="--family",
                       column="family", default="auto",
                       help="the model: binomial (two groups), gaussian (a numeric outcome), cox (survival: "
                            "--time and --event); auto: cox with --time/--event, binomial for an outcome with "
                            "two values, gaussian for a numeric one with more")

    strategy: str = _opt("strategy", choice(STRATEGIES), "one of " + ", ".join(STRATEGIES), flag="--strategy",
                         default=SELECT.strategy,
                         help="lasso: CV lasso and diagnosis only; auto: add stability/univariate rankings when "
                              "the lasso selects nothing or looks shaky; full: every method")
    rule: Rule = _opt("rule", rule_name, "lambda.1se or lambda.min", flag="--rule", column="rule",
                      default=Rule(SELECT.rule), help="the lambda that gives the gene list")
    log: str = _opt("log", choice(LOG_MODES), "one of " + ", ".join(LOG_MODES), flag="--log", column="log",
                    default=SELECT.log, help="auto: raw counts get edgeR's log2-CPM (prior count 2), log-scale data are kept; "
                         "yes: log2(x+1); no: no transform")
    cpm: bool = _opt("cpm", boolean, "true or false (also yes/no, 1/0)", flag="--cpm", column="cpm",
                     default=SELECT.cpm, help="scale samples to counts per million, then log2(CPM+1) (plain CPM with --log no)")
    top_variance: float | int | None = _opt(
        "top_variance", optional(fraction_or_count),
        "a fraction in (0, 1] written with a point (0.25, 1.0) or a whole count >= 1 (2000)",
        flag="--top-variance", column="top_variance",
        help="keep the most variable genes (e.g. 0.25 or 2000); unsupervised, so no leakage; default: all")
    n_permutations: int = _opt("n_permutations", integer(0), "a whole number >= 0 (0 = off)",
                               flag="--permutations", column="permutations", default=SELECT.n_permutations,
                               help="label permutations of the test that decides 'signal detected' (p can "
                                    "reach 1/(N+1); 0 = not tested)")
    alpha: float = _opt("alpha", real(0.0, 1.0, lo_open=True), "a number in (0, 1]", flag="--signal-level",
                        default=SELECT.alpha,
                        help="level of that test: signal is detected when the permutation p <= this")
    stability: int | None = _opt(
        "stability", optional(stability_count),
        "0 (off) or a number of subsamples >= 2 (they come in complementary pairs; an odd number is "
        "rounded up)", flag="--stability", column="stability",
        help=f"stability-selection subsamples; default: {SELECT.stability_resamples} when it runs (see "
             "--strategy), 0 = off; a number runs it with every strategy")
    forest: bool | None = _opt("forest", optional_boolean, "true, false or None (only with strategy full)",
                               flag="--rf",
                               help="random-forest permutation importance; also runs the honest "
                                    "rank-then-lasso comparison (the slowest step)")
    boruta: bool = _opt("boruta", boolean, "true or false", flag="--boruta", default=False,
                        help="Boruta all-relevant selection (also runs the rank-then-lasso comparison)")
    rank_then_lasso_top: int = _opt("rank_then_lasso_top", integer(1), "a whole number >= 1",
                                    default=SELECT.rank_then_lasso_top)
    dtype: str = _opt("dtype", dtype_name, "float64 or float32", flag="--dtype", default=SELECT.dtype,
                      help="floating-point precision of the solver")
    plan: str = _opt("plan", choice(PLAN_MODES), "one of " + ", ".join(PLAN_MODES), flag="--plan", column="plan",
                     default=SELECT.plan,
                     help=f"quick power plan quoted when no signal is detected ({PLAN.quick_k} planted genes at "
                          f"{PLAN.quick_effect_sd:g} SD, {PLAN.quick_replicates} simulated studies per size): auto "
                          "runs it below 100 samples, on whenever the test ran, off never")
    path: PathOptions = field(default_factory=PathOptions)
    cv: CVOptions = field(default_factory=CVOptions)

    @classmethod
    def for_screen(cls) -> SelectOptions:
        """The defaults of a screen (:data:`jaxlasso._config.SCREEN`)."""
        return cls(strategy=SCREEN.strategy, n_permutations=SCREEN.n_permutations, plan=SCREEN.plan,
                   cv=CVOptions(n_repeats=SCREEN.n_repeats))

    @property
    def seed(self) -> int:
        return self.cv.seed

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def stability_resamples(self, runs_rankings: bool) -> int:
        """Subsamples stability selection draws: ``stability`` when given (0 = none), else
        the default count when the rankings run (``strategy`` full, or auto on a shaky lasso),
        else none. Even, because subsamples come in complementary pairs."""
        n = self.stability
        if n is None:
            n = SELECT.stability_resamples if runs_rankings else 0
        return n + n % 2

    def keywords(self, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Keyword arguments these options stand for: :func:`jaxlasso.select_features`'s
        (``names=None``) or those ``names`` (e.g. :data:`REPORT_KEYWORDS`)."""
        m = self.to_mapping()
        return {k: m[k] for k in (SELECT_KEYWORDS if names is None else names)}


SELECT_KEYWORDS = ("family", "strategy", "rule", "log", "cpm", "top_variance", "l1_ratio", "nfolds", "n_repeats",
                   "measure", "n_permutations", "alpha", "stability", "forest", "boruta", "rank_then_lasso_top", "seed",
                   "dtype", "plan")
"""The options :func:`jaxlasso.select_features` takes as keywords."""

REPORT_KEYWORDS = ("strategy", "rule", "n_permutations", "alpha", "stability", "forest", "boruta", "rank_then_lasso_top",
                   "seed", "dtype", "plan")
"""The options :func:`jaxlasso.workflow.report_from_cv` takes as keywords."""

DATASET_KEYS = ("family", "log", "cpm", "top_variance", "l1_ratio", "nfolds", "n_repeats", "measure", "rule",
                "n_permutations", "stability", "seed", "plan")
"""The options a screen's dataset may override (manifest columns; :class:`ScreenDataset` options)."""


@dataclass(frozen=True)
class ScreenOptions(_Options):
    """A batch screen: the options every dataset starts from, and how the batch runs."""

    PARTS: ClassVar[dict[str, type]] = {"select": SelectOptions}

    mode: str | None = _opt("mode", optional(choice(SCREEN_MODES)), "vmap, loop or auto", flag="--mode",
                            help="vmap: stack same-shape datasets into one call (default with several devices "
                                 "or --dask); loop: one dataset at a time (default on one device, measured "
                                 "faster on CPU and GPU)")
    host_devices: int | None = _opt("host_devices", optional(integer(1)), "a whole number >= 1",
                                    flag="--host-devices",
                                    help="split the CPU into N XLA devices and shard datasets over them; default: the devices "
                                         "JAX finds")
    max_memory: float | None = _opt("max_memory", optional(size), "a size such as 8G, 500M or 1e9 bytes",
                                    flag="--max-memory",
                                    help="memory budget per bucket, e.g. 8G or 500M; larger buckets are split; "
                                         "default: no budget")
    dask: str | None = _opt("dask", optional(address), "a scheduler address or 'local'", flag="--dask",
                            help="run buckets on a Dask cluster (scheduler address, or 'local'); default: no Dask")
    select: SelectOptions = field(default_factory=SelectOptions.for_screen)

    def dataset(self, overrides: Mapping[str, Any], *, source: Source = API) -> SelectOptions:
        """The options of one dataset: the batch's, with ``overrides`` (keys of
        :data:`DATASET_KEYS` only) applied."""
        bad = [k for k in overrides if k not in DATASET_KEYS]
        if bad:
            where = f"{source.where}: " if source.where else ""
            raise OptionError(f"{where}option(s) {bad} cannot be set per dataset; per-dataset options are "
                              f"{', '.join(DATASET_KEYS)}")
        return SelectOptions.from_mapping(overrides, source=source, base=self.select)


@dataclass(frozen=True)
class DemoOptions(_Options):
    """The simulated study of ``jaxlasso demo``."""

    genes: int = _opt("genes", integer(1), "a whole number >= 1", flag="--genes", default=DEMO.genes,
                      help="number of simulated genes")
    null: bool = _opt("null", boolean, "true or false", flag="--null", default=False,
                      help="simulate a study with no signal at all")


MANIFEST_COLUMNS = tuple(SelectOptions.option(k).column for k in DATASET_KEYS)
"""Manifest columns that override an option for their row."""


def _grid(item: Check) -> Check:
    """A non-empty list of values ``item`` accepts, without repeats: a sequence, one value, or
    in text a comma-separated list (``8,16,32``); sorted."""
    def check(value, text):
        if text and isinstance(value, str):
            parts = [t for t in value.split(",")]
            if not value.strip() or any(not t.strip() for t in parts):
                raise _Invalid
            values = [item(t, True) for t in parts]
        elif isinstance(value, (list, tuple, np.ndarray)):
            values = [item(v, False) for v in value]
        else:
            values = [item(value, False)]
        if not values or len(set(values)) != len(values):
            raise _Invalid
        return tuple(sorted(values))
    return check


@dataclass(frozen=True)
class PlanOptions(_Options):
    """:func:`jaxlasso.plan_power` and ``jaxlasso plan``: the simulation grid, and the pipeline
    options it shares with ``select`` (path and CV as :class:`SelectOptions` declares them)."""

    PARTS: ClassVar[dict[str, type]] = {"path": PathOptions, "cv": CVOptions}

    n_per_class: tuple[int, ...] | None = _opt(
        "n_per_class", optional(_grid(integer(3))),
        "whole numbers >= 3 without repeats (comma-separated on the command line), or auto",
        flag="--n-per-class",
        help=f"samples per class of the simulated studies, e.g. 8,16,40; default: the smaller class of the data "
             f"up to {PLAN.size_factor:g}x it, {PLAN.size_points} points")
    k: tuple[int, ...] = _opt("k", _grid(integer(1)), "whole numbers >= 1 without repeats (comma-separated)",
                              flag="--k", default=PLAN.k, help="numbers of planted differentially expressed genes")
    effect_sd: tuple[float, ...] = _opt(
        "effect_sd", _grid(real(0.0, 100.0)), "numbers in [0, 100] without repeats (comma-separated)",
        flag="--effect-sd", default=PLAN.effect_sd,
        help="planted effects in SDs of each gene (0 = none: measures the false-signal rate)")
    replicates: int = _opt("replicates", integer(1), "a whole number >= 1", flag="--replicates",
                           default=PLAN.replicates, help="simulated studies per grid cell")
    n_permutations: int = _opt("n_permutations", integer(1), "a whole number >= 1", flag="--permutations",
                               default=PLAN.n_permutations,
                               help="label permutations of each simulated study's test (p can reach 1/(N+1))")
    alpha: float = _opt("alpha", real(0.0, 1.0, lo_open=True), "a number in (0, 1]", flag="--signal-level",
                        default=PLAN.alpha, help="level of that test")
    rule: Rule = _opt("rule", rule_name, "lambda.1se or lambda.min", flag="--rule", default=Rule(PLAN.rule),
                      help="the lambda whose genes are counted as true / false selections")
    log: str = _opt("log", choice(LOG_MODES), "one of " + ", ".join(LOG_MODES), flag="--log", default=PLAN.log,
                    help="as select's --log")
    cpm: bool = _opt("cpm", boolean, "true or false (also yes/no, 1/0)", flag="--cpm", default=PLAN.cpm,
                     help="as select's --cpm")
    top_variance: float | int | None = _opt(
        "top_variance", optional(fraction_or_count),
        "a fraction in (0, 1] written with a point (0.25, 1.0) or a whole count >= 1 (2000)",
        flag="--top-variance", help="as select's --top-variance; default: all")
    path: PathOptions = field(default_factory=PathOptions)
    cv: CVOptions = field(default_factory=CVOptions)

    @property
    def seed(self) -> int:
        return self.cv.seed

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: Source = API, base: Any = None) -> PlanOptions:
        opts = super().from_mapping(values, source=source, base=base)
        if opts.alpha * (opts.n_permutations + 1) < 1:
            # p cannot go below 1 / (B + 1): with too few permutations no study could be detected.
            raise OptionError(f"{source.label(cls.option('n_permutations'))} must be at least "
                              f"{math.ceil(1 / opts.alpha) - 1} at level {opts.alpha:g}: p cannot go below "
                              f"1/(N+1) (got {source.shown(cls.option('n_permutations'), opts.n_permutations)})")
        return opts
