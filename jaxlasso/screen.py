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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ._config import PATH
from ._engine import DatasetLanes, bucket_size, estimate_bytes, solve_datasets, solve_lanes
from ._engine import bucket_lambdas as _bucket_lambdas, bucket_lanes as _bucket_lanes
from .options import REPORT_KEYWORDS, ScreenOptions, SelectOptions, Source
from .cv import CVPlan, finish_cv, plan_cv
from .exceptions import FewObservationsWarning
from .selection.filters import preprocess
from .workflow import SelectionReport, report_from_cv

SCREEN_COLUMNS = ["name", "status", "error", "n_samples", "n_features", "n_case", "n_control", "lambda_min",
                  "lambda_1se", "n_selected", "cv_best", "cv_sd_at_best", "cv_intercept_only", "signal_detected",
                  "permutation_p", "n_permutations", "verdict"]
"""``signal_detected`` is empty when the dataset ran without permutations (the screen's default:
signal not tested), else whether the label-permutation test rejected at the report's alpha."""


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
        "name": name, "status": "ok", "error": "", "n_samples": int(rep.X.shape[0]),
        "n_features": int(rep.X.shape[1]), "n_case": int(np.sum(y01 == 1)),
        "n_control": int(np.sum(y01 == 0)), "lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se,
        "n_selected": len(rep.selected), "cv_best": float(cv.cv_mean[cv.index_min]),
        "cv_sd_at_best": float(cv.cv_sd[cv.index_min]), "cv_intercept_only": float(cv.cv_mean[0]),
        "signal_detected": rep.signal_detected, "permutation_p": rep.permutation_p,
        "n_permutations": rep.n_permutations, "verdict": rep.verdict,
    }


def _solve_chunk(payload: dict):
    """Solve one bucket chunk (a top-level function so that Dask workers can import it)."""
    datasets = [DatasetLanes(**d) for d in payload["datasets"]]
    outs, stats = solve_datasets(datasets, **payload["settings"])
    return outs, stats


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
    if isinstance(datasets, Mapping):
        items = [ScreenDataset(str(k), *v) for k, v in datasets.items()]
    else:
        items = list(datasets)
    names = [d.name for d in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"dataset names must be unique; rename the duplicates (got duplicates {dup[:5]})")
    batch = _batch_options(options, strategy=strategy, dtype=dtype, mode=mode, dask=dask, max_memory=max_memory)
    mode, dask, max_memory = batch.mode, batch.dask, batch.max_memory
    import jax

    devs = list(jax.local_devices() if devices is None else devices)
    if mode is None:
        mode = "vmap" if (len(devs) > 1 or dask) else "loop"
    skip = set(skip)
    rows: dict[str, dict] = {}
    reports: dict[str, SelectionReport] = {}
    planned: list[tuple[ScreenDataset, SelectOptions, pd.DataFrame, Any, CVPlan, Any]] = []
    total = len(items)
    done = 0

    def fail(name: str, message: str) -> None:
        nonlocal done
        rows[name] = _row_error(name, message)
        done += 1
        if on_error:
            on_error(name, message)
        if progress:
            progress(done, total, name)

    for item in items:
        if item.name in skip:
            rows[item.name] = None  # filled by the caller from its saved results
            done += 1
            continue
        try:
            opts = batch.dataset(item.options, source=Source.api(f"dataset {item.name!r}"))
            frame, prep = preprocess(item.X, log=opts.log, cpm_normalize=opts.cpm, top_variance=opts.top_variance)
            y = item.y
            if isinstance(y, pd.Series) and isinstance(item.X, pd.DataFrame) and set(y.index) == set(frame.index):
                y = y.loc[frame.index]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FewObservationsWarning)
                cv_opts, path_opts = opts.cv, opts.path
                plan = plan_cv(frame, y, nfolds=cv_opts.nfolds, n_repeats=cv_opts.n_repeats,
                               measure=cv_opts.measure, seed=cv_opts.seed, l1_ratio=path_opts.l1_ratio,
                               lambdas=None, n_lambdas=path_opts.n_lambdas,
                               lambda_min_ratio=path_opts.lambda_min_ratio, standardize=PATH.standardize,
                               fit_intercept=PATH.fit_intercept, sample_weight=None, penalty_factor=None,
                               early_stop=PATH.early_stop, tol=path_opts.tol, max_iter=path_opts.max_iter,
                               dtype=opts.np_dtype)
            need = estimate_bytes(plan.prob.n, plan.prob.p, len(plan.W), len(plan.prob.lambdas))
            if max_memory is not None and need > max_memory:
                raise ValueError(
                    f"dataset {item.name!r} needs about {need / 2**30:.2f} GiB to solve "
                    f"({plan.prob.n} samples x {plan.prob.p} features x {len(plan.W)} CV lanes), more than "
                    f"max_memory={max_memory / 2**30:.2f} GiB; raise --max-memory or filter genes "
                    f"(e.g. --top-variance) (got estimate={need} bytes)")
            planned.append((item, opts, frame, prep, plan, y))
        except (ValueError, TypeError, OSError) as exc:
            fail(item.name, str(exc).strip().splitlines()[0])

    # --- solve the CV lanes: buckets of one shape, split to the memory budget ---------------
    def key_of(entry):
        _, opts, _, _, plan, _ = entry
        return (bucket_size(plan.prob.n), bucket_size(plan.prob.p), _bucket_lanes(len(plan.W)),
                _bucket_lambdas(len(plan.prob.lambdas)), opts.path.l1_ratio)

    buckets: dict[tuple, list] = {}
    for entry in planned:
        buckets.setdefault(key_of(entry), []).append(entry)
    chunks = []
    for key, entries in buckets.items():
        per = estimate_bytes(entries[0][4].prob.n, entries[0][4].prob.p, len(entries[0][4].W),
                             len(entries[0][4].prob.lambdas))
        size = len(entries) if max_memory is None else max(1, int(max_memory // max(per, 1)))
        if mode == "vmap" and len(devs) > 1:
            size = max(len(devs), size - size % len(devs))
        for i in range(0, len(entries), size):
            chunks.append((key, entries[i:i + size]))

    executables: set[tuple] = set()
    padding: list[float] = []
    client = None
    if dask:
        client = _dask_client(dask)

    def settings_for(plan: CVPlan) -> dict:
        prob = plan.prob
        return dict(l1_ratio=prob.l1_ratio, fit_intercept=prob.fit_intercept, standardize=prob.standardize,
                    early_stop=prob.early_stop, keep_eta=True, tol=prob.tol, max_iter=prob.max_iter,
                    max_sweeps=PATH.max_sweeps, dtype=prob.dtype)

    def payload_of(entries) -> dict:
        return {"datasets": [dict(X=e[4].prob.X, y=e[4].prob.y, W=e[4].W, pf=e[4].prob.pf,
                                  lambdas=e[4].prob.lambdas, is_master=e[4].master) for e in entries],
                "settings": {**settings_for(entries[0][4]), **({} if client else {"devices": devs})}}

    def finish(entries, outs, stats):
        nonlocal done
        if stats is not None:
            padding.append(stats["padding_overhead"])
            for k in stats["capacities"]:
                executables.add((stats["padded_shape"][1:], stats["lanes"], stats["lambdas"], k))
        for (item, opts, frame, prep, plan, y), out in zip(entries, outs):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FewObservationsWarning)
                    cv = finish_cv(plan, out, keep=True)
                    rep = report_from_cv(frame, y, prep, cv, **opts.keywords(REPORT_KEYWORDS))
                row = row_from_report(item.name, rep, plan.prob.y)
                rows[item.name] = row
                reports[item.name] = rep
                done += 1
                if on_result:
                    on_result(item.name, rep, {**row, "config_hash": config_hash(opts.to_mapping())})
                if progress:
                    progress(done, total, item.name)
            except (ValueError, TypeError, OSError) as exc:
                fail(item.name, str(exc).strip().splitlines()[0])

    if client is not None:
        from distributed import as_completed

        futures = {client.submit(_solve_chunk, payload_of(entries), pure=False): entries for _, entries in chunks}
        for fut in as_completed(futures):
            entries = futures[fut]
            try:
                outs, stats = fut.result()
            except Exception as exc:  # a worker-side failure fails its datasets, not the screen
                for e in entries:
                    fail(e[0].name, f"solve failed on the Dask worker: {exc}")
                continue
            finish(entries, outs, stats)
    else:
        for _, entries in chunks:
            try:
                if mode == "vmap":
                    outs, stats = _solve_chunk(payload_of(entries))
                else:
                    outs, stats = [], None
                    for e in entries:
                        prob = e[4].prob
                        kw = settings_for(e[4])
                        l1 = kw.pop("l1_ratio")
                        outs.append(solve_lanes(prob.X, prob.y, e[4].W, prob.pf, l1, prob.lambdas,
                                                is_master=e[4].master, **kw))
            except (ValueError, RuntimeError) as exc:
                for e in entries:
                    fail(e[0].name, f"solve failed: {exc}")
                continue
            finish(entries, outs, stats)
    if client is not None and dask == "local":
        cluster = client.cluster
        client.close()
        cluster.close()
    table = pd.DataFrame([rows[n] for n in names if rows.get(n) is not None], columns=SCREEN_COLUMNS)
    stats = {
        "mode": mode, "devices": len(devs), "buckets": len(buckets), "chunks": len(chunks),
        "executables": len(executables) if mode == "vmap" else None,
        "padding_overhead": float(np.mean(padding)) if padding else 0.0,
        "seconds": time.perf_counter() - t0, "dask": dask,
    }
    return ScreenResult(table, reports, stats)


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
