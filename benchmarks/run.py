"""Run the benchmark table side by side with R glmnet and print / write ratios.

    python benchmarks/run.py                       # the full table (an hour or more on 2 cores)
    python benchmarks/run.py --quick               # seed-like + ALL BCR/ABL only, 3 repeats
    python benchmarks/run.py --workloads gauss200 --tasks path cv
    python benchmarks/run.py --workloads ngep --tasks path cv cold   # the n >= p and n ~ p rows only
    python benchmarks/run.py --tasks cli            # one-shot CLI vs Rscript on ALL BCR/ABL
    python benchmarks/run.py --workloads --tasks cox  # the Cox family's path and CV rows only
    python benchmarks/run.py --tasks path --peers   # + skglm (pip install -e .[bench]) on the paths
    python benchmarks/run.py --workloads all_bcrabl gauss200 --tasks gpath gcv --out /tmp/g   # family=gaussian rows
    python benchmarks/run.py --workloads all_bcrabl seedlike --tasks enet --out /tmp/e   # elastic-net rows
    python benchmarks/run.py --device-results DIR   # GPU table from benchmarks/device_run.py's output

Every row is measured in this one run, on this machine: the same lambdas (jaxlasso's glmnet
grid on the full data) and the same folds for everyone; medians of ``--repeats`` runs after a
warm-up; jaxlasso's compile time is reported apart (first call minus the median; the persistent
compilation cache is switched off for the run so compilation is really measured). Task ``cold``
measures the first call of a fresh process on an empty compilation cache per shape, and a second
process on the cache the first one filled (``benchmarks/cold_start.py``). Each path row's note
gives the early-stopped path length of a default call (glmnet's own grid, its fdev/devmax rule)
of both tools. glmnet is timed inside R around the literal call a user makes
(``jaxlasso/r/glmnet_bridge.R``; ``tests/test_benchmark_tools.py`` holds it to a plain Rscript,
``benchmarks/glmnet_direct.R``). Accuracy: the
largest relative excess of jaxlasso's objective over glmnet's across lambdas (negative = lower).
Writes benchmarks/results.csv, benchmarks/RESULTS.md and benchmarks/results.png.
"""

from __future__ import annotations

import argparse
import csv
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

from adapters import Glmnet, Jaxlasso, Skglm, SklearnSaga  # noqa: E402
from datasets import (  # noqa: E402
    GROUPS,
    WORKLOADS,
    bootstrap_weights,
    expand_workloads,
    fingerprint,
    foldid_for,
    throughput_datasets,
)

import jaxlasso  # noqa: E402


ENET_RATIOS = (0.01, 0.1, 0.5)
"""The elastic-net rows' l1_ratio values: a small one keeps thousands of genes where n is ~100."""


def glmnet_grid(X, y, l1_ratio: float = 1.0):
    """glmnet's default 100-lambda grid on the full data (no early stop): shared by all solvers."""
    from jaxlasso.path import PreparedProblem

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PreparedProblem(X, y, l1_ratio=l1_ratio, lambdas=None, n_lambdas=100, lambda_min_ratio=None,
                               standardize=True, fit_intercept=True, sample_weight=None,
                               penalty_factor=None, early_stop=False, tol=None, max_iter=200,
                               dtype=np.float64).lambdas


def gaussian_outcome(X, seed: int = 0, n_signal: int = 10) -> np.ndarray:
    """The Gaussian rows' numeric outcome on a workload's design: a sparse linear signal in
    standardised columns plus noise of equal variance (deterministic)."""
    rng = np.random.default_rng(seed)
    sd = X.std(axis=0)
    cols = rng.choice(np.flatnonzero(sd > 0), n_signal, replace=False)
    signal = ((X[:, cols] - X[:, cols].mean(axis=0)) / sd[cols]) @ rng.choice([-1.0, 1.0], n_signal)
    return 10.0 + signal / signal.std() + rng.normal(size=X.shape[0])


def gaussian_grid(X, y):
    """glmnet's default Gaussian grid (no early stop): shared by both solvers."""
    return jaxlasso.path.PreparedProblem(
        X, y, l1_ratio=1.0, lambdas=None, n_lambdas=100, lambda_min_ratio=None, standardize=True,
        fit_intercept=True, sample_weight=None, penalty_factor=None, early_stop=False, tol=None,
        max_iter=200, dtype=np.float64, family="gaussian").lambdas


def gaussian_accuracy(X, y, lambdas, ours, ref) -> float:
    o = jaxlasso.gaussian_objective(X, y, ours.coef, ours.intercept, lambdas)
    r = jaxlasso.gaussian_objective(X, y, ref.coef, ref.intercept, lambdas)
    return float(np.max((o - r) / np.abs(r)))


def accuracy(X, y, lambdas, ours, ref, l1_ratio: float = 1.0) -> float:
    o = jaxlasso.logistic_objective(X, y, ours.coef, ours.intercept, lambdas, l1_ratio=l1_ratio)
    r = jaxlasso.logistic_objective(X, y, ref.coef, ref.intercept, lambdas, l1_ratio=l1_ratio)
    return float(np.max((o - r) / np.abs(r)))


def path_lengths(X, y) -> str:
    """Early-stopped path lengths of a default call of each tool (own grid, glmnet's fdev/devmax rule).

    The timed rows pass glmnet's full 100-lambda grid to both; this note says whether jaxlasso
    stops where glmnet does when each is called as a user calls it.
    """
    from jaxlasso import rglmnet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = len(jaxlasso.logistic_path(X, y).lambdas)
    theirs = len(rglmnet.run_glmnet(X, y).lambdas)
    return f"default-call path length: jaxlasso {ours}, glmnet {theirs}"


def index_note(X, y, lambdas, foldid, ours, ref, l1_ratio: float = 1.0) -> str:
    """Whether lambda.min / lambda.1se agree; if not, which one a tightly converged glmnet picks.

    glmnet's default thresh (1e-7) leaves its fold fits less accurate than jaxlasso's, and on a
    flat CV curve that can move the chosen index: the tie-break is glmnet at thresh 1e-12.
    """
    mine, theirs = (ours.index_min, ours.index_1se), (ref.index_min, ref.index_1se)
    if mine == theirs:
        return "lambda.min/1se match"
    tight = Glmnet(thresh=1e-12, l1_ratio=l1_ratio).cv(X, y, lambdas, foldid, 1)
    exact = (tight.index_min, tight.index_1se)
    return (f"lambda.min/1se indices differ: jaxlasso {mine[0]}/{mine[1]}, glmnet {theirs[0]}/{theirs[1]}; "
            f"glmnet at thresh 1e-12 picks {exact[0]}/{exact[1]} "
            f"({'= jaxlasso' if exact == mine else '= glmnet default' if exact == theirs else 'neither'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS),
                    help=f"workload names ({', '.join(WORKLOADS)}) or groups ({', '.join(GROUPS)})")
    ap.add_argument("--tasks", nargs="*", default=["path", "cv", "cold", "bootstrap", "datasets", "cli"],
                    help="path, cv, cold (first call of a fresh process per workload), bootstrap, datasets, cli; "
                         "gpath, gcv: the Gaussian family on each workload's design (not in the default run); "
                         "enet: elastic-net paths and 10-fold CVs at l1_ratio (glmnet's alpha) 0.01, 0.1 and "
                         "0.5 on each workload, each on its own glmnet grid (not in the default run); "
                         "cox: the Cox family's path and CV rows (their own workloads; not in the default run)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap paths on ALL BCR/ABL")
    ap.add_argument("--datasets", type=int, default=10, help="200 x 20,000 datasets for the throughput row")
    ap.add_argument("--sklearn", action="store_true", help="also time scikit-learn saga (slow)")
    ap.add_argument("--peers", action="store_true",
                    help="also time the Python peers that are installed (skglm; with --sklearn also saga)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--device-results", metavar="DIR",
                    help="merge the rows that benchmarks/device_run.py measured on an accelerator with glmnet "
                         "run here on the same data; writes RESULTS-gpu.md / results-gpu.csv")
    args = ap.parse_args(argv)
    try:
        args.workloads = expand_workloads(args.workloads)
    except ValueError as exc:
        ap.error(f"--workloads: {exc}")
    os.environ.setdefault("JAXLASSO_CACHE_DIR", "off")  # measure compilation honestly
    if args.quick:
        args.workloads = ["seedlike", "all_bcrabl"]
        args.tasks = ["path", "cv"]
        args.repeats = 3
    jx, gl = Jaxlasso(), Glmnet()
    if not gl.available():
        print("R glmnet is not available: install r-base-core r-cran-glmnet (ratios need it)", file=sys.stderr)
        return 2
    if args.device_results:
        return merge_device(Path(args.device_results), Path(args.out), args.repeats)
    rows = []

    def add(workload, task, ours, ref, acc=None, note="", compile_s=None):
        row = {
            "workload": workload, "task": task,
            "jaxlasso_s": ours.median, "jaxlasso_min": min(ours.seconds), "jaxlasso_max": max(ours.seconds),
            "compile_s": ours.compile if compile_s is None else compile_s,
            "glmnet_s": ref.median, "glmnet_min": min(ref.seconds),
            "glmnet_max": max(ref.seconds), "ratio": ours.median / ref.median, "accuracy": acc, "note": note,
        }
        rows.append(row)
        comp = "" if row["compile_s"] is None else f" (+{row['compile_s']:.1f}s compile)"
        print(f"{workload:>22} {task:>9}: jaxlasso {ours.median:8.3f}s{comp}  glmnet {ref.median:8.3f}s  "
              f"ratio {row['ratio']:.2f}  {'' if acc is None else f'obj {acc:+.1e}'} {note}", flush=True)

    for name in args.workloads:
        wl = WORKLOADS[name]()
        X, y = wl.X, wl.y
        lam = glmnet_grid(X, y)
        ref_path = None
        if "path" in args.tasks:
            ours = jx.path(X, y, lam, args.repeats)
            ref = ref_path = gl.path(X, y, lam, args.repeats)
            add(wl.name, "path", ours, ref, accuracy(X, y, lam, ours, ref), path_lengths(X, y))
            if args.sklearn and X.shape[1] <= 20000:
                sk = SklearnSaga().path(X, y, lam, 1)
                add(wl.name, "path-sk", sk, ref, accuracy(X, y, lam, sk, ref), "scikit-learn saga vs glmnet")
            if args.peers and Skglm().available():
                sg = Skglm().path(X, y, lam, max(1, args.repeats // 2))
                add(wl.name, "path-skglm", sg, ref, accuracy(X, y, lam, sg, ref), "skglm vs glmnet")
        if "cv" in args.tasks:
            foldid = foldid_for(y)
            ours = jx.cv(X, y, lam, foldid, args.repeats)
            ref = gl.cv(X, y, lam, foldid, args.repeats)
            add(wl.name, "cv", ours, ref, None, index_note(X, y, lam, foldid, ours, ref))
        if "enet" in args.tasks:
            foldid = foldid_for(y)
            for a in ENET_RATIOS:
                elam = glmnet_grid(X, y, a)
                ours = Jaxlasso(l1_ratio=a).path(X, y, elam, args.repeats)
                ref = Glmnet(l1_ratio=a).path(X, y, elam, args.repeats)
                add(wl.name, f"enet{a:g}", ours, ref, accuracy(X, y, elam, ours, ref, a),
                    f"elastic net, l1_ratio = alpha = {a:g}, its own 100-lambda grid; "
                    f"{int(np.count_nonzero(ours.coef[-1]))} genes at the end")
                ours = Jaxlasso(l1_ratio=a).cv(X, y, elam, foldid, args.repeats)
                ref = Glmnet(l1_ratio=a).cv(X, y, elam, foldid, args.repeats)
                add(wl.name, f"enet-cv{a:g}", ours, ref, None,
                    "10-fold CV of that elastic net; " + index_note(X, y, elam, foldid, ours, ref, a))
        if "gpath" in args.tasks or "gcv" in args.tasks:
            yg = gaussian_outcome(X)
            glam = gaussian_grid(X, yg)
            jg, gg = Jaxlasso(family="gaussian"), Glmnet(family="gaussian")
            if "gpath" in args.tasks:
                ours, ref = jg.path(X, yg, glam, args.repeats), gg.path(X, yg, glam, args.repeats)
                add(wl.name, "gauss-path", ours, ref, gaussian_accuracy(X, yg, glam, ours, ref),
                    "family=gaussian on a synthetic sparse outcome over this design")
            if "gcv" in args.tasks:
                foldid = foldid_for(yg)
                ours, ref = jg.cv(X, yg, glam, foldid, args.repeats), gg.cv(X, yg, glam, foldid, args.repeats)
                same = (ours.index_min, ours.index_1se) == (ref.index_min, ref.index_1se)
                add(wl.name, "gauss-cv", ours, ref, None,
                    "family=gaussian, mse; lambda.min/1se " + ("match" if same else
                    f"differ: jaxlasso {ours.index_min}/{ours.index_1se}, glmnet {ref.index_min}/{ref.index_1se}"))
        if "cold" in args.tasks:
            from adapters import Timing
            from cold_start import dominant, measure

            m = measure(name)
            cold, warm = m["cold"], m["warm_process"]
            ref = ref_path if ref_path is not None else gl.path(X, y, lam, args.repeats)
            add(wl.name, "cold", Timing([cold["first_s"]], None), ref, None,
                f"jaxlasso: first call of a fresh process on an empty compilation cache (a default call, "
                f"its own grid; compile = that minus the process's second call, {cold['second_s']:.2f} s); a "
                f"second process "
                f"on that cache: first call {warm['first_s']:.2f} s, second {warm['second_s']:.2f} s; "
                f"largest compiles: {dominant(cold)}",
                compile_s=max(0.0, cold["first_s"] - cold["second_s"]))
    if "bootstrap" in args.tasks:
        wl = WORKLOADS["all_bcrabl"]()
        lam = glmnet_grid(wl.X, wl.y)
        weights = bootstrap_weights(len(wl.y), args.bootstrap)
        ours = jx.bootstrap(wl.X, wl.y, lam, weights, max(1, args.repeats // 2))
        ref = gl.bootstrap(wl.X, wl.y, lam, weights, 1)
        add(wl.name, f"boot{args.bootstrap}", ours, ref, None,
            f"{args.bootstrap / ours.median:.1f} vs {args.bootstrap / ref.median:.1f} paths/s")
    if "datasets" in args.tasks:
        sets = throughput_datasets(args.datasets)
        secs_j, secs_r = [], []
        first = None
        for i, wl in enumerate(sets):
            lam = glmnet_grid(wl.X, wl.y)
            foldid = foldid_for(wl.y, i)
            t = jx.cv(wl.X, wl.y, lam, foldid, 1)
            if first is None:
                first = t.first
            secs_j.append(t.median)
            secs_r.append(gl.cv(wl.X, wl.y, lam, foldid, 1).median)
        from adapters import Timing

        ours = Timing([float(np.sum(secs_j))], float(np.sum(secs_j)) + (first - secs_j[0]))
        ref = Timing([float(np.sum(secs_r))], None)
        add(f"{args.datasets}x gaussian_200x20000", "cv-batch", ours, ref, None,
            f"{args.datasets / ours.median * 60:.1f} vs {args.datasets / ref.median * 60:.1f} datasets/min")
    if "cox" in args.tasks:
        cox_rows(add, args.repeats)
    if "cli" in args.tasks:
        import tempfile

        from adapters import one_shot

        wl = WORKLOADS["all_bcrabl"]()
        with tempfile.TemporaryDirectory() as tmp:
            ours, ref = one_shot(wl.X, wl.y, args.repeats, tmp)
        add(wl.name, "cli", ours, ref, None,
            "whole process: `jaxlasso select` (TSV in, lasso CV, outputs written) vs `Rscript` reading the "
            "same TSV + cv.glmnet; compile = first run on an empty persistent cache")
    write(rows, Path(args.out), args)
    return 0


def cox_workloads():
    """(name, X, time, event) of the Cox rows: glmnet's CoxExample and p >> n sets with tied
    times and censoring (exponential times, a 3-feature signal, times rounded to 1/grid)."""
    from jaxlasso import rglmnet

    d = rglmnet.run_coxnet(task="coxexample").extra
    yield "cox CoxExample 1000x30", d["X"], d["time"], d["event"]
    for n, p, seed, grid in ((100, 5000, 11, 2.0), (200, 20000, 5, 4.0)):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, p))
        beta = np.zeros(p)
        beta[:3] = rng.choice([-1.0, 1.0], 3) * np.linspace(1.0, 0.5, 3)
        t = rng.exponential(1.0 / np.exp(X @ beta))
        c = rng.exponential(1.5, n)
        yield f"cox synthetic {n}x{p}", X, np.ceil(np.minimum(t, c) * grid) / grid, (t <= c).astype(float)


def cox_rows(add, repeats: int) -> None:
    """Cox path and 10-fold CV rows: jaxlasso's default grid (no early stop) for both tools, one
    foldid; accuracy = largest relative excess of jaxlasso's objective over glmnet's."""
    from adapters import CoxTimings

    from jaxlasso._config import PATH
    from jaxlasso.survival import CoxProblem, cox_objective

    ct = CoxTimings()
    for name, X, t, e in cox_workloads():
        # The grid without a solve, so that the first timed call pays the compilation.
        lam = CoxProblem(X, t, e, ties="breslow", l1_ratio=1.0, lambdas=None, n_lambdas=100, lambda_min_ratio=None,
                         standardize=True, sample_weight=None, penalty_factor=None, early_stop=False, tol=None,
                         max_iter=PATH.max_iter, dtype=np.float64).lambdas
        foldid = np.random.default_rng(7).permutation(np.resize(np.arange(1, 11), len(t)))
        ours = ct.jax_path(X, t, e, lam, repeats)
        ref = ct.glmnet_path(X, t, e, lam, repeats)
        mine = cox_objective(X, t, e, ct.last_path.coef, lam)
        theirs = cox_objective(X, t, e, ct.last_glmnet_coef, lam)
        add(name, "cox-path", ours, ref, float(np.max((mine - theirs) / np.abs(theirs))))
        ours = ct.jax_cv(X, t, e, lam, foldid, max(1, repeats // 2))
        ref = ct.glmnet_cv(X, t, e, lam, foldid, max(1, repeats // 2))
        cv, rcv = ct.last_cv, ct.last_glmnet_cv
        add(name, "cox-cv", ours, ref, None,
            f"max |cvm - glmnet's| {np.max(np.abs(cv.cv_mean - rcv.cvm)):.1e}; lambda.min/1se index "
            f"{cv.index_min}/{cv.index_1se} vs {rcv.index_min}/{rcv.index_1se}")


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def merge_device(folder: Path, out: Path, repeats: int) -> int:
    """The accelerator table: jaxlasso's rows from ``device_run.py`` against glmnet run here.

    glmnet has no GPU version, so its column is R glmnet on this CPU, measured now on the very
    same data (checked by fingerprint), lambda grid, folds and bootstrap weights; the objective
    check compares the paths the accelerator returned with glmnet's at every lambda.
    """
    import json

    env = json.loads((folder / "device_env.json").read_text())
    with open(folder / "device.csv", newline="") as fh:
        dev = list(csv.DictReader(fh))
    objs = dict(np.load(folder / "device_objectives.npz")) if (folder / "device_objectives.npz").exists() else {}
    gl = Glmnet()
    workloads = {wl.name: wl for wl in (make() for make in WORKLOADS.values())}  # each built once
    ref_cache: dict = {}
    rows = []
    for r in dev:
        secs, first = float(r["seconds"]), float(r["first"]) if r["first"] else None
        wl_name, task = r["workload"], r["task"]
        if wl_name.startswith("10x"):
            if "datasets" not in ref_cache:
                tot = 0.0
                for i, d in enumerate(throughput_datasets(10)):
                    lam = glmnet_grid(d.X, d.y)
                    tot += gl.cv(d.X, d.y, lam, foldid_for(d.y, i), 1).median
                ref_cache["datasets"] = tot
            ref_s, acc = ref_cache["datasets"], None
            note = f"{r['note']}; {10 / secs * 60:.1f} vs {10 / ref_s * 60:.1f} datasets/min"
        else:
            wl = workloads[wl_name]
            if fingerprint(wl.X, wl.y) != r["fingerprint"]:
                print(f"{wl_name}: the device saw other data ({r['fingerprint']}); row skipped", file=sys.stderr)
                continue
            lam = glmnet_grid(wl.X, wl.y)
            reps = 3 if wl.X.shape[0] >= 1000 else repeats
            acc, note = None, r["note"]
            if task.startswith("path"):
                key = (wl_name, "path")
                if key not in ref_cache:
                    ref_cache[key] = gl.path(wl.X, wl.y, lam, reps)
                ref = ref_cache[key]
                ref_s = ref.median
                o = objs.get(f"{wl_name}:{task}")
                if o is not None:
                    g = jaxlasso.logistic_objective(wl.X, wl.y, ref.coef, ref.intercept, lam)
                    acc = float(np.max((o - g) / np.abs(g)))
            elif task.startswith("cv"):
                key = (wl_name, "cv")
                if key not in ref_cache:
                    ref_cache[key] = gl.cv(wl.X, wl.y, lam, foldid_for(wl.y), reps)
                ref = ref_cache[key]
                ref_s = ref.median
                idx = objs.get(f"{wl_name}:{task}:index")
                if idx is not None:
                    same = (int(idx[0]), int(idx[1])) == (ref.index_min, ref.index_1se)
                    note += "; glmnet picks " + ("the same" if same else f"{ref.index_min}/{ref.index_1se}")
            else:  # boot100
                W = bootstrap_weights(len(wl.y), 100)
                ref_s = gl.bootstrap(wl.X, wl.y, lam, W, 1).median
                note = f"{100 / secs:.1f} vs {100 / ref_s:.1f} paths/s"
        row = {"workload": wl_name, "task": task, "mode": r["mode"], "dtype": r["dtype"], "device_s": secs,
               "device_min": float(r["min"]), "device_max": float(r["max"]),
               "compile_s": None if first is None else max(0.0, first - secs), "glmnet_cpu_s": ref_s,
               "ratio": secs / ref_s, "accuracy": acc, "note": note}
        rows.append(row)
        print(f"{wl_name:>22} {task:>9}: device {secs:8.3f}s  glmnet(cpu) {ref_s:8.3f}s  ratio {row['ratio']:.2f}"
              f"  {'' if acc is None else f'obj {acc:+.1e}'} {note}", flush=True)
    write_csv(rows, out / "results-gpu.csv")
    from jaxlasso import rglmnet

    lines = [
        "# Benchmark results on an accelerator",
        "",
        f"Device: {env['device_kind']} ({env['backend']}, jax {env['jax']}, Python {env['python']}, "
        f"{env['cpus']} CPU cores), measured {env['date']}{' at commit ' + env['commit'] if env.get('commit') else ''} "
        "with `python benchmarks/device_run.py`; lanes "
        f"(folds, resamples) as `{env['lane_mode']}`. glmnet: R glmnet {rglmnet.glmnet_version()} on "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (glmnet has no GPU version), "
        f"measured {time.strftime('%Y-%m-%d %H:%M')} with `python benchmarks/run.py --device-results DIR` on the "
        "same data (fingerprint-checked), lambda grid, folds and bootstrap weights.",
        "",
        "Medians of the repeats after a warm-up call (min-max in brackets); compile = first call minus the "
        "median; ratio = jaxlasso on the device / glmnet on the CPU; objective = largest relative excess of "
        "the device path's objective over glmnet's across the grid. Different machines: read the ratio as "
        "'what a GPU buys over glmnet on this workplace's CPU', not as a same-machine race.",
        "",
        "| workload | task | lanes | dtype | jaxlasso device s | compile s | glmnet CPU s | ratio | objective | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        acc = "" if r["accuracy"] is None else f"{r['accuracy']:+.1e}"
        lines.append(f"| {r['workload']} | {r['task']} | {r['mode']} | {r['dtype']} | {r['device_s']:.3f} "
                     f"[{r['device_min']:.3f}-{r['device_max']:.3f}] | {comp} | {r['glmnet_cpu_s']:.3f} | "
                     f"**{r['ratio']:.2f}** | {acc} | {r['note']} |")
    notes = folder / "notes.md"  # hand-written observations of that run (what did not finish, why)
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    (out / "RESULTS-gpu.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'RESULTS-gpu.md'}")
    return 0


def write(rows, out: Path, args) -> None:
    write_csv(rows, out / "results.csv")
    from jaxlasso import rglmnet

    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"jax {__import__('jax').__version__}; R glmnet {rglmnet.glmnet_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        f"Command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`. Medians of {args.repeats} runs "
        "after warm-up (min-max in brackets); ratio = jaxlasso / glmnet (< 1: jaxlasso faster); "
        "compile time apart; objective = largest relative excess of jaxlasso's objective over "
        "glmnet's (default thresh) across the grid. Rows `path-sk` / `path-skglm` put that peer "
        "(scikit-learn saga / skglm) in the jaxlasso columns.",
        "",
        "| workload | task | jaxlasso s | compile s | glmnet s | ratio | objective | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        comp = "" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        acc = "" if r["accuracy"] is None else f"{r['accuracy']:+.1e}"
        lines.append(
            f"| {r['workload']} | {r['task']} | {r['jaxlasso_s']:.3f} [{r['jaxlasso_min']:.3f}-{r['jaxlasso_max']:.3f}] "
            f"| {comp} | {r['glmnet_s']:.3f} [{r['glmnet_min']:.3f}-{r['glmnet_max']:.3f}] | "
            f"**{r['ratio']:.2f}** | {acc} | {r['note']} |")
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
        labels = [f"{r['workload']} {r['task']}" for r in rows]
        ax.barh(labels, [r["ratio"] for r in rows], color=["#2a7" if r["ratio"] <= 1 else "#c52" for r in rows])
        ax.axvline(1.0, color="k", lw=1)
        ax.set_xlabel("time ratio jaxlasso / glmnet (< 1: faster)")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "results.png", dpi=120)
    except ImportError:
        pass
    print(f"wrote {out / 'RESULTS.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
