"""Time jaxlasso alone on the accelerator JAX sees: the GPU half of the benchmark table.

The lent GPU machines have no R, so this script times jaxlasso only and records what the
comparison with glmnet needs afterwards: per row the first call (compile + run) and the median of
the repeats, and per path the objective at every lambda plus a fingerprint of the data (so that
the CPU side can check it rebuilt the same matrix). Back on a machine with R,

    python benchmarks/run.py --device-results DIR

runs glmnet on the same data, grid and folds and writes ``benchmarks/RESULTS-gpu.md``: jaxlasso on
the accelerator against glmnet on the CPU (glmnet has no GPU version), with the objective check.

    python benchmarks/device_run.py --out DIR [--budget SECONDS] [--quick]

``--only WORKLOAD:TASK ...`` runs the rows named, in that order; a ``-loop`` / ``-vmap`` suffix
on a ``cv`` or ``boot100`` task forces that lane mode for the row (the plain task runs the
library's default, which the ``mode`` column records).

Rows are written to ``DIR/device.csv`` as they finish, so a run cut short keeps what it measured;
``--budget`` stops starting new rows once that many seconds have passed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from adapters import Jaxlasso, Timing  # noqa: E402
from datasets import WORKLOADS, bootstrap_weights, fingerprint, foldid_for, throughput_datasets  # noqa: E402

import jaxlasso  # noqa: E402
from jaxlasso._engine import default_lane_mode  # noqa: E402
from run import glmnet_grid  # noqa: E402

FIELDS = ["workload", "task", "mode", "dtype", "seconds", "min", "max", "first", "repeats", "fingerprint", "note"]


def _commit() -> str | None:
    """The checkout's commit, where git and the repository travelled with the code."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def plan(quick: bool) -> list[tuple[str, str, int]]:
    """(workload, task, repeats) in the order they run: the cheap, most-asked rows first."""
    rows = [("seedlike", "path", 5), ("seedlike", "cv", 5), ("all_bcrabl", "path", 5), ("all_bcrabl", "cv", 5),
            ("all_bcrabl", "boot100", 3), ("gauss200", "path", 5), ("gauss200", "cv", 5)]
    if quick:
        return [(w, t, 2) for w, t, _ in rows[:4]]
    return rows + [("gauss1000", "path", 3), ("gauss1000", "cv", 3), ("datasets10", "screen", 1),
                   ("datasets10", "cv-batch", 1), ("all_bcrabl", "cv-loop", 3), ("gauss200", "path-f32", 5),
                   ("seedlike", "cv-loop", 3), ("gauss200", "cv-loop", 3), ("gauss1000", "cv-loop", 3),
                   ("all_bcrabl", "cv-vmap", 3), ("gauss200", "cv-vmap", 3), ("gauss1000", "cv-vmap", 3),
                   ("gauss200", "boot100", 1), ("gauss200", "boot100-vmap", 1), ("all_bcrabl", "boot100-loop", 1)]


def select_rows(only: list[str] | None, quick: bool = False) -> list[tuple[str, str, int]]:
    """The plan's rows, or the ``WORKLOAD:TASK`` rows named in ``only``, in the order named.

    Beyond the plan's pairs, any single-dataset workload goes with any of its path / cv / boot100
    tasks (mode suffix included; 3 repeats). A lease is short: most-wanted first.
    """
    if not only:
        return plan(quick)
    known = {f"{w}:{t}": (w, t, r) for w, t, r in plan(False)}
    names = {w for w, _, _ in known.values()} - {"datasets10"}
    tasks = {t for _, t, _ in known.values()} - {"cv-batch", "screen"}
    pairs = {k: tuple(k.partition(":")[::2]) for k in only}
    unknown = [k for k, (w, t) in pairs.items() if k not in known and (w not in names or t not in tasks)]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; workloads {sorted(names)}, tasks {sorted(tasks)}, "
                         "and datasets10:cv-batch, datasets10:screen")
    return [known.get(k, (*pairs[k], 3)) for k in only]


def lane_rule() -> str:
    """The library's default lane mode, in words (it depends on the number of rows)."""
    from jaxlasso._engine import VMAP_MAX_ROWS, default_lane_mode

    small, large = default_lane_mode(VMAP_MAX_ROWS - 1), default_lane_mode(VMAP_MAX_ROWS)
    return small if small == large else f"{small} below {VMAP_MAX_ROWS} rows, {large} from there"


@contextlib.contextmanager
def lane_mode(task: str, n_rows: int):
    """Run a row in the lane mode its task names (``cv-loop``, ``boot100-vmap``) or the default; yields the mode."""
    from jaxlasso._engine import configure, default_lane_mode

    forced = task.rpartition("-")[2] if task.endswith(("-loop", "-vmap")) else None
    if forced:
        with configure(lane_mode=forced):
            yield forced
    else:
        yield default_lane_mode(n_rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=float("inf"), help="start no new row after this many seconds")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, help="at most this many timed repeats per row (after the first call)")
    ap.add_argument("--only", nargs="*", help="workload:task pairs to run, in this order (default: the whole plan)")
    args = ap.parse_args(argv)
    try:
        steps = select_rows(args.only, args.quick)
    except ValueError as exc:
        ap.error(str(exc))
    os.environ.setdefault("JAXLASSO_CACHE_DIR", "off")  # measure compilation honestly
    import jax

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {"jax": jax.__version__, "backend": jax.default_backend(),
           "devices": [str(d) for d in jax.devices()], "device_kind": jax.devices()[0].device_kind,
           "python": platform.python_version(), "cpus": os.cpu_count(), "numpy": np.__version__,
           "lane_mode": lane_rule(),
           "date": time.strftime("%Y-%m-%d %H:%M"), "commit": _commit()}
    (out / "device_env.json").write_text(json.dumps(env, indent=1))
    print(json.dumps(env), flush=True)
    t0 = time.perf_counter()
    csv_path = out / "device.csv"
    with open(csv_path, "w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=FIELDS).writeheader()
    objectives: dict[str, np.ndarray] = {}
    loaded: dict[str, object] = {}

    def workload(name):
        if name not in loaded:
            loaded[name] = WORKLOADS[name]()
        return loaded[name]

    def record(wl_name, task, t: Timing, fp, *, mode, dtype="float64", note=""):
        row = {"workload": wl_name, "task": task, "mode": mode, "dtype": dtype, "seconds": t.median,
               "min": min(t.seconds), "max": max(t.seconds), "first": t.first, "repeats": len(t.seconds),
               "fingerprint": fp, "note": note}
        with open(csv_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=FIELDS).writerow(row)
        comp = "" if t.compile is None else f" (+{t.compile:.1f}s compile)"
        print(f"[{time.perf_counter() - t0:6.0f}s] {wl_name:>22} {task:>9} {mode:>4} {dtype}: "
              f"{t.median:8.3f}s [{min(t.seconds):.3f}-{max(t.seconds):.3f}]{comp} {note}", flush=True)

    if args.repeats:
        steps = [(w, t, min(r, args.repeats)) for w, t, r in steps]
    for name, task, repeats in steps:
        if time.perf_counter() - t0 > args.budget:
            print(f"budget of {args.budget:.0f}s spent: skipping {name} {task}", flush=True)
            continue
        try:
            if name == "datasets10" and task == "screen":
                from jaxlasso.screen import screen

                sets = throughput_datasets(10)
                data = {f"gauss{i}": (wl.X, wl.y) for i, wl in enumerate(sets)}
                opts = {"log": "no", "rule": "lambda_1se"}
                secs = []
                t = time.perf_counter()
                res = screen(data, options=opts, mode="vmap")
                first = time.perf_counter() - t
                for _ in range(repeats):
                    t = time.perf_counter()
                    res = screen(data, options=opts, mode="vmap")
                    secs.append(time.perf_counter() - t)
                record("10x gaussian_200x20000", task, Timing(secs, first), fingerprint(sets[0].X, sets[0].y),
                       mode="vmap", note=f"jaxlasso.screen, datasets x folds in one vmapped call per bucket; "
                       f"selected {res.table['n_selected'].tolist()}")
                continue
            if name == "datasets10":
                sets = throughput_datasets(10)
                jx = Jaxlasso()
                secs, first = [], None
                for i, wl in enumerate(sets):
                    lam = glmnet_grid(wl.X, wl.y)
                    t = jx.cv(wl.X, wl.y, lam, foldid_for(wl.y, i), repeats)
                    first = t.first if first is None else first
                    secs.append(t.median)
                total = float(np.sum(secs))
                record("10x gaussian_200x20000", task, Timing([total], total + first - secs[0]),
                       fingerprint(sets[0].X, sets[0].y), mode=default_lane_mode(len(sets[0].y)),
                       note="loop over datasets of cv_logistic_path (folds per dataset in the default lane mode)")
                continue
            wl = workload(name)
            lam = glmnet_grid(wl.X, wl.y)
            fp = fingerprint(wl.X, wl.y)
            if task in ("path", "path-f32"):
                dt = np.float32 if task == "path-f32" else np.float64
                t = Jaxlasso(dtype=dt).path(wl.X, wl.y, lam, repeats)
                obj = jaxlasso.logistic_objective(wl.X, wl.y, t.coef, t.intercept, lam)
                objectives[f"{wl.name}:{task}"] = obj
                record(wl.name, task, t, fp, mode="one", dtype=np.dtype(dt).name,
                       note=f"capacities {t.extra['capacities']}")
            elif task.startswith("cv"):
                with lane_mode(task, len(wl.y)) as used:
                    t = Jaxlasso().cv(wl.X, wl.y, lam, foldid_for(wl.y), repeats)
                objectives[f"{wl.name}:{task}:index"] = np.array([t.index_min, t.index_1se])
                objectives[f"{wl.name}:{task}:cvm"] = t.cvm
                record(wl.name, task, t, fp, mode=used,
                       note=f"lambda.min/1se indices {t.index_min}/{t.index_1se}")
            elif task.startswith("boot100"):
                W = bootstrap_weights(len(wl.y), 100)
                with lane_mode(task, len(wl.y)) as used:
                    t = Jaxlasso().bootstrap(wl.X, wl.y, lam, W, repeats)
                record(wl.name, task, t, fp, mode=used, note=f"{100 / t.median:.1f} paths/s")
            np.savez(out / "device_objectives.npz", **objectives)
        except Exception as exc:  # keep the rows that worked; say what failed
            import traceback

            traceback.print_exc()
            print(f"FAILED {name} {task}: {type(exc).__name__}: {exc}", flush=True)
    print(f"done in {time.perf_counter() - t0:.0f}s; rows in {csv_path}", flush=True)
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raise SystemExit(main())
