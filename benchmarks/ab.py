"""Paired in-process A/B of a kernel knob: both variants compiled in one process, runs alternated.

    python benchmarks/ab.py kernels.solver._F32_GRAM_MIN 256 1000000 gauss1000 --task path
    python benchmarks/ab.py kernels.path.KKT_RECHECK 64 0 tp --task cv --pairs 10
    python benchmarks/ab.py env:JAXLASSO_LANE_THREADS 1 2 gauss200 --task boot100 --pairs 3
    python benchmarks/ab.py kernels.solver._LOW_RANK_RATIO 1e9 2 all_bcrabl --task path --l1-ratio 0.1

The knob is a module attribute read while a solver is traced (a static choice of the compiled
program). The script compiles one executable per value (the engine's solver factories are
wrapped to cache per value, through ``jaxlasso._engine.configure``), then alternates the two -- A B, B A, A B, ... -- and reports the
median of each and the median of the per-pair ratios B / A. On this shared 2-core machine the
same command varies by 10-30% between separate runs; alternating pairs in one process resolve
effects of ~5% (NOTES changes 20-22 were decided this way). Workloads: those of ``datasets.py``
(``seedlike``, ``all_bcrabl``, ``gauss200``, ``gauss1000``) or ``tp`` (throughput dataset 0).

``env:NAME`` instead of a module attribute A/B-tests an engine setting by its environment variable
(``JAXLASSO_LANE_THREADS``, ``JAXLASSO_LANE_MODE``, ``JAXLASSO_VMAP_LANES``, ...; see
``jaxlasso._engine.config``): each run holds the value with ``configure``, parsed as the
variable's text would be. Nothing is recompiled per value, but a value that changes the compiled
program (a lane mode) pays its compilation in the first run of that value, which is reported
apart as for attributes.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def paired(timed, pairs: int) -> tuple[dict[str, list[float]], np.ndarray]:
    """Alternate ``timed("A")`` and ``timed("B")`` -- A B, B A, A B, ... -- for ``pairs`` pairs.

    Returns the times of each variant and the per-pair ratios B / A (a pair shares the machine's
    state of the moment, so its ratio is far less noisy than either time).
    """
    secs: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(pairs):
        for name in ("AB" if i % 2 == 0 else "BA"):
            secs[name].append(timed(name))
    return secs, np.array(secs["B"]) / np.array(secs["A"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("knob", help="module.attribute, e.g. kernels.solver._F32_GRAM_MIN, or env:NAME")
    ap.add_argument("a", help="value A (a Python literal)")
    ap.add_argument("b", help="value B (a Python literal)")
    ap.add_argument("workload")
    ap.add_argument("--task", choices=("path", "cv", "boot100"), default="cv")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--l1-ratio", type=float, default=1.0,
                    help="elastic-net mixing of every task, on its own glmnet grid (default 1: lasso)")
    args = ap.parse_args(argv)

    import jaxlasso
    from jaxlasso._engine import configure
    from jaxlasso._engine.config import VARIABLES
    from datasets import WORKLOADS, foldid_for, throughput_datasets
    from kernels import batched
    from run import glmnet_grid

    env_var = args.knob[4:] if args.knob.startswith("env:") else None
    if env_var:
        fields = {var.env: field for field, var in VARIABLES.items()}
        if env_var not in fields:
            ap.error(f"{env_var} is no engine variable; known: {sorted(fields)}")
        values = {"A": args.a, "B": args.b}
        module = attr = None
    else:
        module_name, attr = args.knob.rsplit(".", 1)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            ap.error(f"cannot import {module_name}: {exc}")
        if not hasattr(module, attr):
            ap.error(f"{module_name} has no attribute {attr!r}")
        values = {"A": ast.literal_eval(args.a), "B": ast.literal_eval(args.b)}
    current = {"v": None}
    cache: dict = {}

    def per_value(factory):
        def make(**kw):
            key = (factory.__name__, repr(current["v"]), tuple(sorted(kw.items())))
            if key not in cache:
                factory.cache_clear()  # the lru cache does not know the knob
                cache[key] = factory(**kw)
            return cache[key]
        return make

    if env_var:
        def setting(name):
            return {fields[env_var]: values[name]}
    else:
        solvers = {"single_solver": per_value(batched.single_solver), "lanes_solver": per_value(batched.lanes_solver)}

        def setting(name):
            return solvers

    wl = throughput_datasets(1)[0] if args.workload == "tp" else WORKLOADS[args.workload]()
    lam = glmnet_grid(wl.X, wl.y, args.l1_ratio)
    foldid = foldid_for(wl.y)
    if args.task == "cv":
        def run():
            jaxlasso.cv_logistic_path(wl.X, wl.y, lambdas=lam, foldid=foldid, l1_ratio=args.l1_ratio)
    elif args.task == "boot100":
        from adapters import Jaxlasso
        from datasets import bootstrap_weights

        W = bootstrap_weights(len(wl.y), 100)

        def run():
            Jaxlasso(l1_ratio=args.l1_ratio).bootstrap(wl.X, wl.y, lam, W, 0)
    else:
        def run():
            jaxlasso.logistic_path(wl.X, wl.y, lambdas=lam, l1_ratio=args.l1_ratio)

    def timed(name):
        current["v"] = values[name]
        if not env_var:
            setattr(module, attr, values[name])
        with configure(**setting(name)):
            t = time.perf_counter()
            run()
            return time.perf_counter() - t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in "AB":
            print(f"{name} = {values[name]!r}: first run (compile) {timed(name):.1f} s", flush=True)
        secs, ratio = paired(timed, args.pairs)
    for name in "AB":
        print(f"{name} = {values[name]!r}: median {np.median(secs[name]):.3f} s  "
              + " ".join(f"{t:.2f}" for t in secs[name]))
    print(f"{args.knob} {args.workload} {args.task}: B / A per pair median {np.median(ratio):.3f} "
          f"[{ratio.min():.3f}-{ratio.max():.3f}] over {args.pairs} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
