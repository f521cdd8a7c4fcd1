"""Power of the permutation test's variants on planted signal, paired on the same studies.

    python benchmarks/fold_power.py --n-per-class 8 15 30 --effect 1.0 --replicates 50 --seed 7 \\
        --out benchmarks/fold-power-effect1.csv
    python benchmarks/fold_power.py --n-per-class 8 15 --effect 1.5 1.0 --replicates 50 --seed 11 \\
        --out benchmarks/fold-power-effect1.5-1.csv

Each study draws ``2 m`` samples of a real dataset without replacement, deals them new case /
control labels at random (so the dataset's own contrast is gone), and plants ``k`` genes shifted
by ``effect`` of their standard deviation in the cases (``jaxlasso.plan.plant``, as the power
plan does). One cross-validated lasso is fitted per study (``select_features``' default repeats),
then the label-permutation test runs once per fold count in ``--folds`` (capped at the CV's
own: at 8 per class the "10" column is the CV's 8 folds), with the same permutations' seeds: the detection rates are paired, and the discordant studies (detected by one
variant only) are the evidence of a difference (McNemar's exact test on them is printed).
``--effect 0`` plants nothing and measures each variant's false-signal rate instead.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="all_bcrabl")
    ap.add_argument("--genes", type=int, default=2000, help="the G most variable genes (unsupervised)")
    ap.add_argument("--n-per-class", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--effect", type=float, nargs="+", default=[1.0],
                    help="planted effect in SDs: one for every size, or one per --n-per-class")
    ap.add_argument("--replicates", type=int, default=40)
    ap.add_argument("--folds", type=int, nargs="+", default=[10, 5])
    ap.add_argument("--permutations", type=int, default=99)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from calibration import load
    from jaxlasso import cv_logistic_path
    from jaxlasso.diagnose import permutation_test
    from jaxlasso.plan import plant
    from jaxlasso.workflow import default_repeats

    X, _ = load(args.dataset, args.genes)
    Z = X.to_numpy()
    sd = Z.std(axis=0)
    if len(args.effect) not in (1, len(args.n_per_class)):
        ap.error("--effect takes one value or one per --n-per-class")
    effects = dict(zip(args.n_per_class, args.effect * len(args.n_per_class) if len(args.effect) == 1 else args.effect))
    rows = []
    for m in args.n_per_class:
        rng = np.random.default_rng([args.seed, m])
        for r in range(args.replicates):
            idx = rng.choice(len(Z), size=2 * m, replace=False)
            case = np.zeros(2 * m, bool)
            case[rng.permutation(2 * m)[:m]] = True
            genes = rng.choice(Z.shape[1], size=args.k, replace=False)
            shift = effects[m] * sd[genes] * rng.choice([-1.0, 1.0], size=args.k)
            study = plant(Z[idx], case, genes, shift)
            seed = int(rng.integers(2**31))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cv = cv_logistic_path(study, case.astype(float), n_repeats=default_repeats(2 * m), seed=seed)
                row = {"n_per_class": m, "effect_sd": effects[m], "replicate": r, "cv_nfolds": cv.nfolds}
                for f in args.folds:
                    f_eff = min(f, cv.nfolds)
                    t = time.perf_counter()
                    test = permutation_test(study, case.astype(float), cv, n_permutations=args.permutations,
                                            seed=seed, n_folds=f_eff)
                    row[f"p_{f}"] = test.p_value
                    row[f"detected_{f}"] = bool(test.p_value <= args.alpha)
                    row[f"seconds_{f}"] = time.perf_counter() - t
            rows.append(row)
            print(row, flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    a, b = args.folds[0], args.folds[-1]
    print(f"\n{args.dataset}, {args.genes} genes, k = {args.k}, effect {args.effect} SD, B = {args.permutations}, "
          f"alpha = {args.alpha}\n")
    print(f"| n per class | studies | CV folds | detected, {a} folds | detected, {b} folds | only {a} / only {b} "
          f"| McNemar p | test s, {a} / {b} folds (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for m, g in list(frame.groupby("n_per_class")) + [("all", frame)]:
        only_a = int((g[f"detected_{a}"] & ~g[f"detected_{b}"]).sum())
        only_b = int((~g[f"detected_{a}"] & g[f"detected_{b}"]).sum())
        print(f"| {m} | {len(g)} | {sorted(set(g.cv_nfolds))} | {g[f'detected_{a}'].mean():.2f} "
              f"| {g[f'detected_{b}'].mean():.2f} | {only_a} / {only_b} | {mcnemar_p(only_a, only_b):.2f} "
              f"| {g[f'seconds_{a}'].median():.2f} / {g[f'seconds_{b}'].median():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
