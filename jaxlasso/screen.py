"""Batch screening of many datasets: shape buckets, one vmapped call per bucket, device
sharding, and Dask for many machines.

Each dataset gets the :func:`jaxlasso.select_features` treatment -- preprocessing, a
cross-validated lasso, a diagnosis (and stability selection when asked) -- but the expensive part,
the CV paths of every fold of every dataset, is batched: datasets are grouped into shape buckets
(rows, columns, lanes and grid length rounded up as in :func:`jaxlasso._engine.bucket_size`),
padded to the bucket's shape with zero-weight rows and excluded zero columns, and solved as one
``vmap`` over datasets x lanes whose dataset axis is sharded over all local devices. A bucket
that would not fit ``max_memory`` is split; a dataset that alone exceeds it is refused with the
estimate. With ``dask`` the buckets become tasks on a Dask cluster (each worker runs the jitted
batch); no scheduler of our own.

A dataset that fails (bad file, one class, ...) gets its error in its row and does not stop the
batch.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import numpy as np
import pandas as pd

from ._config import PATH
from ._engine.datasets import SHARED
from ._engine import bucket_size, estimate_bytes, solve_datasets, solve_lanes
from ._engine import bucket_lambdas as _bucket_lambdas, bucket_lanes as _bucket_lanes
from .options import REPORT_KEYWORDS, ScreenOptions, SelectOptions, Source
from .cv import CVPlan, finish_cv, plan_cv
from .exceptions import FewObservationsWarning
from .workflow import SelectionReport, prepare_data, report_from_cv

SCREEN_COLUMNS = ["name", "status", "error", "family", "n_samples", "n_features", "n_case", "n_control", "lambda_min",
                  "lambda_1se", "n_selected", "cv_best", "cv_sd_at_best", "cv_intercept_only", "signal_detected",
                  "permutation_p", "n_permutations", "verdict"]
"""``signal_detected`` is empty when the dataset ran without permutations (the screen's default:
signal not tested), else whether the label-permutation test rejected at the report's alpha. For a Cox
dataset ``n_case`` / ``n_control`` count events / censored samples; a Gaussian one leaves them empty."""


@dataclass(frozen=True)
class ScreenDataset:
    """One dataset of a screen: samples x features matrix, labels, optional option overrides
    (keys of :data:`jaxlasso.options.DATASET_KEYS`)."""

    name: str
    X: Any
    y: Any
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScreenResult:
    table: pd.DataFrame
    """One row per dataset (columns ``SCREEN_COLUMNS``), in input order."""
    reports: dict
    """name -> :class:`SelectionReport` for the datasets solved in this call."""
    stats: dict
    """Buckets, executables, padding overhead, devices, timings."""

    def to_frame(self) -> pd.DataFrame:
        return self.table


def config_hash(options: Mapping[str, Any]) -> str:
    """A short stable hash of a dataset's effective options (used to decide what --resume skips)."""
    text = json.dumps({k: options[k] for k in sorted(options)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _row_error(name: str, message: str) -> dict:
    row = dict.fromkeys(SCREEN_COLUMNS)
    row.update(name=name, status="error", error=message)
    return row


def row_from_report(name: str, rep: SelectionReport, y01: np.ndarray) -> dict:
    """The screen.tsv row of a finished dataset (``y01``: its labels, 1 = case)."""
    cv = rep.cv
    return {
        "name": name, "status": "ok", "error": "", "family": getattr(rep, "family", "binomial"),
        "n_samples": int(rep.X.shape[0]),
        "n_features": int(rep.X.shape[1]), "n_case": int(np.sum(y01 == 1)),
        "n_control": int(np.sum(y01 == 0)), "lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se,
        "n_selected": len(rep.selected), "cv_best": float(cv.cv_mean[cv.index_min]),
        "cv_sd_at_best": float(cv.cv_sd[cv.index_min]), "cv_intercept_only": float(cv.cv_mean[0]),
        "signal_detected": rep.signal_detected, "permutation_p": rep.permutation_p,
        "n_permutations": rep.n_permutations, "verdict": rep.verdict,
    }


def _solve_chunk(payload: dict):
    """Solve one bucket chunk (a top-level function so that Dask workers can import it)."""
    return solve_datasets(payload["problems"], payload["lanes"], devices=payload.get("devices"))


def screen(datasets: Iterable[ScreenDataset] | Mapping[str, tuple], *,
           options: Mapping[str, Any] | ScreenOptions | None = None,
           strategy: str | None = None, dtype: Any = None, mode: str | None = None, devices=None,
           dask: str | None = None, max_memory: float | None = None, skip: Iterable[str] = (),
           on_result: Callable[[str, SelectionReport, dict], None] | None = None,
           on_error: Callable[[str, str], None] | None = None,
           progress: Callable[[int, int, str], None] | None = None) -> ScreenResult:
    """Screen many datasets: preprocessing, CV lasso and diagnosis for each, CV batched.

    Parameters
    ----------
    datasets : iterable of ScreenDataset, or mapping name -> (X, y) / (X, y, options)
    options : dict or ScreenOptions
        The options every dataset starts from: a :class:`jaxlasso.options.ScreenOptions`, or a
        mapping of its keys (e.g. ``{"nfolds": 5, "stability": 50, "forest": True}``); a
        dataset's ``options`` override the keys of :data:`jaxlasso.options.DATASET_KEYS`. The
        defaults are :meth:`SelectOptions.for_screen` (``lasso`` strategy, no permutations).
    strategy : {"lasso", "auto", "full"}, optional
        As :func:`select_features` (default ``lasso``: keeps a screen fast).
    dtype : float64 (default) or float32
    mode : {"vmap", "loop"}, optional
        ``vmap``: stack each shape bucket and solve it in one call sharded over ``devices``
        (default with several devices or Dask); ``loop``: one dataset at a time, its CV folds
        still batched on an accelerator (default on a single device: datasets in lockstep wait for
        the slowest, so stacking only pays when several devices share the work).
    devices : list of jax devices, optional
        Devices to shard the dataset axis over (default: all local devices).
    dask : str, optional
        A Dask scheduler address, or ``"local"`` for a LocalCluster on this machine: buckets run
        as tasks on its workers.
    max_memory : float, optional
        Bytes a bucket may use; larger buckets are split, a dataset that alone needs more is
        refused (its row says how much it needs).
    skip : names to leave out (already done: ``--resume``).
    on_result : ``on_result(name, report, row)`` after each dataset (the CLI writes its folder).
    on_error : ``on_error(name, message)`` for a failed dataset.
    progress : ``progress(done, total, name)``.
    """
    t0 = time.perf_counter()
    items = _dataset_list(datasets)
    batch = _batch_options(options, strategy=strategy, dtype=dtype, mode=mode, dask=dask, max_memory=max_memory)
    import jax

    devs = list(jax.local_devices() if devices is None else devices)
    mode = batch.mode or ("vmap" if (len(devs) > 1 or batch.dask) else "loop")
    tally = _Tally(total=len(items), on_result=on_result, on_error=on_error, progress=progress)
    skip = set(skip)
    prepared: list[_Prepared] = []
    for item in items:
        if item.name in skip:
            tally.skipped(item.name)
            continue
        try:
            if _run_other_family(item, batch, tally):
                continue
            prepared.append(_prepare(item, batch))
        except (ValueError, TypeError, OSError) as exc:
            tally.fail(item.name, str(exc).strip().splitlines()[0])
    buckets = _bucket(prepared)
    chunks = _chunks(buckets, max_memory=batch.max_memory, n_devices=len(devs) if mode == "vmap" else 1)
    usage = _Usage()
    if batch.dask:
        _solve_on_dask(chunks, batch.dask, tally, usage)
    else:
        for chunk in chunks:
            try:
                outs, stats = _solve_here(chunk, mode=mode, devices=devs)
            except (ValueError, RuntimeError) as exc:
                for e in chunk:
                    tally.fail(e.item.name, f"solve failed: {exc}")
                continue
            _finish(chunk, outs, stats, tally, usage)
    table = pd.DataFrame([tally.rows[d.name] for d in items if tally.rows.get(d.name) is not None],
                         columns=SCREEN_COLUMNS)
    stats = {
        "mode": mode, "devices": len(devs), "buckets": len(buckets), "chunks": len(chunks),
        "executables": len(usage.executables) if mode == "vmap" else None,
        "padding_overhead": float(np.mean(usage.padding)) if usage.padding else 0.0,
        "seconds": time.perf_counter() - t0, "dask": batch.dask,
    }
    return ScreenResult(table, tally.reports, stats)


class _Prepared(NamedTuple):
    """A dataset ready to solve: its options, preprocessed matrix and the planned CV lanes."""

    item: ScreenDataset
    opts: SelectOptions
    """The dataset's effective options (the batch's with its overrides)."""
    frame: pd.DataFrame
    """samples x features after preprocessing."""
    prep: Any
    """The :class:`jaxlasso.selection.filters.PreprocessReport` of ``frame``."""
    plan: CVPlan
    """The validated CV problem and its lanes."""
    y: Any
    """The labels, aligned to ``frame``'s rows when both are labelled."""


class _BucketKey(NamedTuple):
    """Datasets with the same key share compiled executables (and can be stacked in one call)."""

    rows: int
    cols: int
    lanes: int
    lambdas: int
    l1_ratio: float
    settings: tuple  # the rest of the solve settings one stacked call shares (tol, dtype, ...)


@dataclass
class _Tally:
    """Rows and reports as datasets finish, and the caller's callbacks told in order."""

    total: int
    on_result: Callable | None = None
    on_error: Callable | None = None
    progress: Callable | None = None
    rows: dict = field(default_factory=dict)
    """name -> screen.tsv row (None for a skipped dataset: the caller fills it from its saved results)."""
    reports: dict = field(default_factory=dict)
    done: int = 0

    def skipped(self, name: str) -> None:
        self.rows[name] = None
        self.done += 1

    def fail(self, name: str, message: str) -> None:
        self.rows[name] = _row_error(name, message)
        self.done += 1
        if self.on_error:
            self.on_error(name, message)
        if self.progress:
            self.progress(self.done, self.total, name)

    def ok(self, name: str, rep: SelectionReport, row: dict, opts: SelectOptions) -> None:
        """A finished dataset; when ``on_result`` raises (e.g. its folder cannot be written) the
        caller fails the dataset instead, so it is counted once, as failed."""
        if self.on_result:
            self.on_result(name, rep, {**row, "config_hash": config_hash(opts.to_mapping())})
        self.rows[name] = row
        self.reports[name] = rep
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, name)


@dataclass
class _Usage:
    """What the solves cost: padding overhead per stacked chunk and the distinct executables."""

    padding: list = field(default_factory=list)
    executables: set = field(default_factory=set)

    def add(self, stats: dict | None) -> None:
        if stats is None:
            return
        self.padding.append(stats["padding_overhead"])
        for k in stats["capacities"]:
            self.executables.add((stats["padded_shape"][1:], stats["lanes"], stats["lambdas"], k))


def _dataset_list(datasets) -> list[ScreenDataset]:
    """The datasets as :class:`ScreenDataset` records, names checked unique."""
    if isinstance(datasets, Mapping):
        items = [ScreenDataset(str(k), *v) for k, v in datasets.items()]
    else:
        items = list(datasets)
    names = [d.name for d in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"dataset names must be unique; rename the duplicates (got duplicates {dup[:5]})")
    return items


def _prepare(item: ScreenDataset, batch: ScreenOptions) -> _Prepared:
    """Options, preprocessing and the CV plan of one dataset; raises when it cannot be solved
    (bad options or data, or more memory than ``batch.max_memory``)."""
    opts = batch.dataset(item.options, source=Source.api(f"dataset {item.name!r}"))
    frame, prep, y, repeats = prepare_data(item.X, item.y, opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewObservationsWarning)
        cv_opts, path_opts = opts.cv, opts.path
        plan = plan_cv(frame, y, nfolds=cv_opts.nfolds, n_repeats=repeats,
                       measure=cv_opts.measure, seed=cv_opts.seed, l1_ratio=path_opts.l1_ratio,
                       lambdas=None, n_lambdas=path_opts.n_lambdas,
                       lambda_min_ratio=path_opts.lambda_min_ratio, standardize=PATH.standardize,
                       fit_intercept=PATH.fit_intercept, sample_weight=None, penalty_factor=None,
                       early_stop=PATH.early_stop, tol=path_opts.tol, max_iter=path_opts.max_iter,
                       dtype=opts.np_dtype)
    need = _bytes_of(plan)
    if batch.max_memory is not None and need > batch.max_memory:
        raise ValueError(
            f"dataset {item.name!r} needs about {need / 2**30:.2f} GiB to solve "
            f"({plan.prob.n} samples x {plan.prob.p} features x {len(plan.W)} CV lanes), more than "
            f"max_memory={batch.max_memory / 2**30:.2f} GiB; raise --max-memory or filter genes "
            f"(e.g. --top-variance) (got estimate={need} bytes)")
    return _Prepared(item, opts, frame, prep, plan, y)


def _run_other_family(item: ScreenDataset, batch: ScreenOptions, tally: _Tally) -> bool:
    """Run a Gaussian or Cox dataset on its own (its CV is not stacked with the binomial buckets)
    and record it; False for a binomial dataset, which the buckets solve."""
    from .workflow import _resolve_outcome, select_family

    opts = batch.dataset(item.options, source=Source.api(f"dataset {item.name!r}"))
    family, y = _resolve_outcome(item.y, opts.family)
    if family == "binomial":
        return False
    rep = select_family(item.X, y, family, opts)
    row = row_from_report(item.name, rep, np.array([]))
    if family == "cox":
        row.update(n_case=rep.outcome.n_events, n_control=rep.outcome.n - rep.outcome.n_events)
    else:
        row.update(n_case=None, n_control=None)
    try:
        tally.ok(item.name, rep, row, opts)
    except (OSError, ValueError) as exc:
        tally.fail(item.name, f"writing its outputs failed: {exc}")
    return True


def _bytes_of(plan: CVPlan) -> float:
    return estimate_bytes(plan.prob.n, plan.prob.p, len(plan.W), len(plan.prob.lambdas))


def _bucket(prepared: list[_Prepared]) -> dict[_BucketKey, list[_Prepared]]:
    """Datasets grouped by shape bucket (rows, columns, lanes and grid length rounded up), l1_ratio
    and the other settings a stacked call shares (:data:`jaxlasso._engine.datasets.SHARED`)."""
    buckets: dict[_BucketKey, list[_Prepared]] = {}
    for e in prepared:
        prob = e.plan.prob
        key = _BucketKey(bucket_size(prob.n), bucket_size(prob.p), _bucket_lanes(len(e.plan.W)),
                         _bucket_lambdas(len(prob.lambdas)), e.opts.path.l1_ratio,
                         tuple(getattr(prob, k) for k in SHARED if k != "l1_ratio"))
        buckets.setdefault(key, []).append(e)
    return buckets


def _chunks(buckets: dict[_BucketKey, list[_Prepared]], *, max_memory: float | None,
            n_devices: int) -> list[list[_Prepared]]:
    """Each bucket split into chunks that fit ``max_memory``; with several devices a chunk holds a
    multiple of ``n_devices`` datasets so that the sharded dataset axis divides evenly."""
    chunks = []
    for entries in buckets.values():
        per = _bytes_of(entries[0].plan)
        size = len(entries) if max_memory is None else max(1, int(max_memory // max(per, 1)))
        if n_devices > 1:
            size = max(n_devices, size - size % n_devices)
        for i in range(0, len(entries), size):
            chunks.append(entries[i:i + size])
    return chunks


def _payload(chunk: list[_Prepared], devices=None) -> dict:
    """A chunk for :func:`_solve_chunk`: the prepared problems and their CV lanes (picklable for
    Dask when ``devices`` is None; a pickled problem leaves the caller's objects behind)."""
    return {"problems": [e.plan.prob for e in chunk], "lanes": [e.plan.lanes() for e in chunk],
            **({} if devices is None else {"devices": devices})}


def _solve_here(chunk: list[_Prepared], *, mode: str, devices) -> tuple[list, dict | None]:
    """Solve a chunk in this process: stacked in one call (``vmap``) or one dataset at a time."""
    if mode == "vmap":
        return _solve_chunk(_payload(chunk, devices))
    outs = []
    for e in chunk:
        outs.append(solve_lanes(e.plan.prob, e.plan.lanes()))
    return outs, None


def _solve_on_dask(chunks: list[list[_Prepared]], address: str, tally: _Tally, usage: _Usage) -> None:
    """Solve the chunks as tasks on a Dask cluster, finishing each as it completes."""
    from distributed import as_completed

    client = _dask_client(address)
    futures = {client.submit(_solve_chunk, _payload(chunk), pure=False): chunk for chunk in chunks}
    for fut in as_completed(futures):
        chunk = futures[fut]
        try:
            outs, stats = fut.result()
        except Exception as exc:  # a worker-side failure fails its datasets, not the screen
            for e in chunk:
                tally.fail(e.item.name, f"solve failed on the Dask worker: {exc}")
            continue
        _finish(chunk, outs, stats, tally, usage)
    if address == "local":
        cluster = client.cluster
        client.close()
        cluster.close()


def _finish(chunk: list[_Prepared], outs: list, stats: dict | None, tally: _Tally, usage: _Usage) -> None:
    """CV curves, diagnosis and report of each solved dataset of a chunk; its row to the tally."""
    usage.add(stats)
    for e, out in zip(chunk, outs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FewObservationsWarning)
                cv = finish_cv(e.plan, out, keep=True)
                rep = report_from_cv(e.frame, e.y, e.prep, cv, **e.opts.keywords(REPORT_KEYWORDS))
            # The screen keeps every dataset's report: its CV's prepared problem (a copy of X,
            # reused by the diagnosis above) is dropped once the report is built.
            rep = replace(rep, cv=replace(rep.cv, problem=None))
            row = row_from_report(e.item.name, rep, e.plan.prob.y)
            tally.ok(e.item.name, rep, row, e.opts)
        except (ValueError, TypeError, OSError) as exc:
            tally.fail(e.item.name, str(exc).strip().splitlines()[0])


def _batch_options(options, **keywords) -> ScreenOptions:
    """The batch's options: ``options`` (a ScreenOptions or a mapping of its keys) with the
    keywords of :func:`screen` that were given applied; errors name the keyword."""
    given = {k: v for k, v in keywords.items() if v is not None}
    if isinstance(options, ScreenOptions):
        return ScreenOptions.from_mapping(given, base=options)
    values = dict(options or {})
    clash = sorted(set(values) & set(given))
    if clash:
        raise ValueError(f"give {clash} either as keywords or in options=, not both (got options={values!r})")
    return ScreenOptions.from_mapping({**values, **given})


def _dask_client(address: str):
    """A ``distributed.Client`` for an address, or a LocalCluster on loopback for ``"local"``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("--dask needs dask.distributed: pip install 'jaxlasso[dask]'") from exc
    if address == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        return Client(cluster)
    return Client(address)
