"""Command-line interface (a minimal demo until the full ``jaxlasso select`` lands)."""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from . import __version__


def _demo(args) -> int:
    from .cv import cv_logistic_path
    from .simulate import simulate_rnaseq

    sim = simulate_rnaseq(seed=args.seed)
    counts = sim.counts
    print(f"simulated RNA-seq study: {counts.shape[0]} samples x {counts.shape[1]} genes, "
          f"{int((sim.y == 'case').sum())} cases vs {int((sim.y == 'control').sum())} controls")
    logged = np.log2(counts.astype(float) + 1.0)
    logged = logged.loc[:, logged.std(axis=0) > 0]
    for label, X in (("raw counts", counts.loc[:, counts.std(axis=0) > 0].astype(float)),
                     ("log2(x+1)", logged)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = cv_logistic_path(X, sim.y, seed=args.seed)
        print(f"{label:>11}: lambda.min keeps {len(cv.selected('lambda_min'))} genes, "
              f"lambda.1se keeps {len(cv.selected('lambda_1se'))} "
              f"(CV deviance {cv.cv_mean[cv.index_min]:.3f} vs null {cv.cv_mean[0]:.3f})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxlasso", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jaxlasso {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run the workflow on the built-in simulated study")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        if args.command is None:
            args.seed = 0
        return _demo(args)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
