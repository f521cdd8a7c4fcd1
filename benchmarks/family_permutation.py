"""Wall time of ``jaxlasso select`` (default B = 99 permutations) on a Gaussian and a Cox outcome.

The outcomes are planted on the real tissue expression (69 samples x 500 genes) exactly as
``tests/test_family_cli.py`` plants them (three weakly co-expressed genes, seed 24). Each
outcome runs ``select`` once on the default settings and prints the total wall time, the
diagnosis step's time (the permutation test) and the permutation p-value. Numbers and the
machine's load go in ``benchmarks/NOTES.md``.

    PYTHONPATH=$PWD python benchmarks/family_permutation.py [--only gaussian|cox]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import load_real  # noqa: E402

from jaxlasso.cli import main  # noqa: E402

PLANTED = (475, 311, 348)


def planted_files(root: Path) -> tuple[Path, Path]:
    X, _, genes = load_real("tissue_cerebellum_vs_hippocampus")
    rng = np.random.default_rng(24)
    frame = pd.DataFrame(X, index=[f"s{i:02d}" for i in range(X.shape[0])], columns=[str(g) for g in genes])
    Z = (X[:, PLANTED] - X[:, PLANTED].mean(0)) / X[:, PLANTED].std(0)
    signature = Z @ np.array([1.0, -1.0, 0.8])
    signature /= signature.std()
    age = 50 + 4 * signature + rng.normal(scale=2.0, size=len(frame))
    t = rng.exponential(np.exp(-1.6 * signature)) * 10
    c = rng.uniform(2, 25, len(frame))
    sheet = pd.DataFrame({"sample": frame.index, "age": np.round(age, 4), "os": np.round(np.minimum(t, c), 4),
                          "dead": np.where(t <= c, "TRUE", "FALSE")})
    frame.T.to_csv(root / "expr.tsv", sep="\t")
    sheet.to_csv(root / "s.tsv", sep="\t", index=False)
    return root / "expr.tsv", root / "s.tsv"


def main_() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("gaussian", "cox"))
    args = ap.parse_args()
    runs = {"gaussian": ["--outcome", "age"], "cox": ["--time", "os", "--event", "dead"]}
    with tempfile.TemporaryDirectory() as tmp:
        expr, sheet = planted_files(Path(tmp))
        for family, flags in runs.items():
            if args.only and family != args.only:
                continue
            out = Path(tmp) / family
            t0 = time.perf_counter()
            code = main(["select", str(expr), "--samples", str(sheet), *flags, "--out", str(out), "--quiet"])
            wall = time.perf_counter() - t0
            summary = json.loads((out / "summary.json").read_text()) if code == 0 else {}
            timings = summary.get("timings", summary.get("seconds", {}))
            print(json.dumps({"family": family, "exit": code, "wall_s": round(wall, 2),
                              "timings": timings, "permutation_p": summary.get("permutation_p")}), flush=True)


if __name__ == "__main__":
    main_()
