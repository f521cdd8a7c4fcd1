"""Calibration of the "signal detected" decision on real data.

False-signal rate: the real datasets in ``../shared/data`` are subsampled to ``n`` samples
(16 to 111, class proportions kept, at least 3 per class), their labels are permuted (so there
is no signal left), and the whole decision of :func:`jaxlasso.select_features` runs on them
(preprocessing, repeated CV by the default rule, the label-permutation test with ``B``
permutations). The share of runs that announce ``signal_detected`` estimates the false-signal
rate; its binomial SE is ``sqrt(r (1 - r) / runs)``. The old rule (signal when the CV gain beats
one SE *or* p < 0.05) and the 1-SE comparison alone are recorded on the same runs for contrast.

Detection rate: the same on subsamples with their real labels where the contrast is strong
(ALL T- vs B-cell, cerebellum vs hippocampus).

    python benchmarks/calibration.py --null-runs 100 --power-runs 30 --out benchmarks/calibration.csv

``--genes G`` keeps the ``G`` most variable genes of each dataset (an unsupervised filter
computed on all samples, so it leaks nothing; it makes a run cheaper). Results are a CSV of
runs and a printed Markdown summary (copy it to benchmarks/NOTES.md).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NULL_SETS = ("all_bcrabl", "all_bt", "tissue_cerebellum_vs_hippocampus")
POWER_SETS = ("all_bt", "tissue_cerebellum_vs_hippocampus")
SIZES = (16, 24, 32, 48, 69, 111)


def load(name: str, genes: int | None, data: Path = DATA) -> tuple[pd.DataFrame, np.ndarray]:
    d = np.load(data / f"{name}.npz")
    X = pd.DataFrame(np.asarray(d["X"], dtype=np.float64), columns=[str(g) for g in d["genes"]])
    if genes:
        keep = np.argsort(-X.var(axis=0).to_numpy(), kind="stable")[:genes]
        X = X.iloc[:, np.sort(keep)]
    return X, np.asarray(d["y"], dtype=int)


def subsample(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a subsample of size n keeping the class proportions (>= 3 per class)."""
    cases, controls = np.nonzero(y == 1)[0], np.nonzero(y == 0)[0]
    n_case = int(round(n * len(cases) / len(y)))
    n_case = min(max(n_case, 3), len(cases), n - 3)
    return np.sort(np.r_[rng.choice(cases, n_case, replace=False), rng.choice(controls, n - n_case, replace=False)])


def one_run(X: pd.DataFrame, y: np.ndarray, *, seed: int, n_permutations: int, alpha: float,
            n_repeats: int | None) -> dict:
    """The decision of select_features on (X, y), with the old rules computed on the same run."""
    from jaxlasso import select_features

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = select_features(X, y, strategy="lasso", n_permutations=n_permutations, alpha=alpha,
                              n_repeats=n_repeats, seed=seed, plan="off")  # the quick plan does not decide
    best, se, null = rep.cv_error
    gain = null - best
    return {"signal_detected": bool(rep.signal_detected), "p": rep.permutation_p, "gain": gain, "se": se,
            "one_se_rule": bool(gain > se), "old_or_rule": bool(gain > se or rep.permutation_p < 0.05),
            "n_repeats": rep.cv.n_repeats, "n_selected": len(rep.selected), "seconds": time.perf_counter() - t}


def plan(kind: str, runs: int, seed: int) -> list[tuple[str, int, int]]:
    """(dataset, n, run seed) for each run: datasets and sizes cycle so every pair is used."""
    sets = NULL_SETS if kind == "permuted" else POWER_SETS
    sizes = SIZES if kind == "permuted" else (16, 24, 32)
    pairs = []
    for name in sets:
        d = np.load(DATA / f"{name}.npz")
        pairs += [(name, n) for n in sizes if n <= len(d["y"])]
    return [(*pairs[i % len(pairs)], seed + i) for i in range(runs)]


def binomial(hits: int, runs: int) -> tuple[float, float]:
    r = hits / runs if runs else float("nan")
    return r, math.sqrt(r * (1 - r) / runs) if runs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--null-runs", type=int, default=102)
    ap.add_argument("--power-runs", type=int, default=30)
    ap.add_argument("--permutations", type=int, default=99)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=None, help="CV repeats (default: select_features' rule)")
    ap.add_argument("--genes", type=int, default=None, help="keep the G most variable genes of each dataset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/calibration.csv")
    args = ap.parse_args(argv)

    cache: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    rows = []
    out = Path(args.out)
    # Kinds are "permuted" and "real" (not "null": pandas reads that word back as a missing value).
    for kind, runs in (("permuted", args.null_runs), ("real", args.power_runs)):
        for name, n, seed in plan(kind, runs, args.seed + (0 if kind == "permuted" else 100_000)):
            if name not in cache:
                cache[name] = load(name, args.genes)
            X, y = cache[name]
            rng = np.random.default_rng([seed, n])
            idx = subsample(y, n, rng)
            ys = y[idx] if kind == "real" else rng.permutation(y[idx])
            res = one_run(X.iloc[idx].reset_index(drop=True), ys, seed=seed, n_permutations=args.permutations,
                          alpha=args.alpha, n_repeats=args.repeats)
            rows.append({"kind": kind, "dataset": name, "n": n, "n_case": int(ys.sum()), "genes": X.shape[1],
                         "seed": seed, "B": args.permutations, **res})
            print(f"{kind} {name} n={n}: p={res['p']:.3f} signal={res['signal_detected']} "
                  f"old={res['old_or_rule']} ({res['seconds']:.1f} s)", flush=True)
            pd.DataFrame(rows).to_csv(out, index=False)  # keep what is done if the run is stopped
    frame = pd.DataFrame(rows)
    print(summary(frame, args))
    return 0


def summary(frame: pd.DataFrame, args) -> str:
    lines = [f"B = {args.permutations}, alpha = {args.alpha}, genes = {args.genes or 'all'}, "
             f"repeats = {args.repeats or 'default rule'}", "",
             "| runs | kind | rule | rate | binomial SE |", "|---|---|---|---|---|"]
    for kind in ("permuted", "real"):
        sub = frame[frame["kind"] == kind]
        if sub.empty:
            continue
        for rule in ("signal_detected", "old_or_rule", "one_se_rule"):
            r, se = binomial(int(sub[rule].sum()), len(sub))
            lines.append(f"| {len(sub)} | {kind} | {rule} | {r:.3f} | {se:.3f} |")
    lines += ["", "| kind | dataset | n | runs | signal_detected | old_or_rule |", "|---|---|---|---|---|---|"]
    for (kind, name, n), g in frame.groupby(["kind", "dataset", "n"]):
        lines.append(f"| {kind} | {name} | {n} | {len(g)} | {g['signal_detected'].mean():.2f} | "
                     f"{g['old_or_rule'].mean():.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
