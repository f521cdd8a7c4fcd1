"""Benchmark workloads: the seed-like RNA-seq study, ALL BCR/ABL and Gaussian designs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("JAXLASSO_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
"""The real datasets (``../shared/data``; ``$JAXLASSO_SHARED_DATA`` points elsewhere, e.g. on a machine
where only a copy travels)."""


@dataclass(frozen=True)
class Workload:
    name: str
    X: np.ndarray
    y: np.ndarray
    description: str


def seedlike() -> Workload:
    """The seed problem: 16 x 16,293 simulated RNA-seq counts (7 vs 9), log2(x+1), constant genes dropped."""
    from jaxlasso.simulate import simulate_rnaseq

    sim = simulate_rnaseq(seed=0)
    X = np.log2(sim.counts.to_numpy(dtype=np.float64) + 1.0)
    X = X[:, X.std(axis=0) > 0]
    return Workload("seedlike_16x16k", X, (sim.y.to_numpy() == "case").astype(float),
                    f"simulated RNA-seq, log2(x+1), {X.shape[0]} x {X.shape[1]}, 7 vs 9")


def all_bcrabl() -> Workload:
    d = np.load(SHARED / "all_bcrabl.npz", allow_pickle=False)
    X = d["X"].astype(np.float64)
    return Workload("all_bcrabl_111x12625", X, d["y"].astype(float), "ALL BCR/ABL vs NEG, log2 RMA")


def top_variance(wl: Workload, keep: int | float, name: str) -> Workload:
    """The ``keep`` most variable columns (a count, or a fraction of them): the usual gene filter.

    Ties in variance go to the earlier column, so the selection is the same on every machine.
    """
    var = wl.X.var(axis=0)
    k = keep if isinstance(keep, int) else int(round(keep * wl.X.shape[1]))
    cols = np.sort(np.argsort(-var, kind="stable")[:k])
    X = np.ascontiguousarray(wl.X[:, cols])
    return Workload(name, X, wl.y, f"{wl.description}, the {k} most variable genes")


def all_bcrabl_top500() -> Workload:
    """ALL BCR/ABL's 111 samples x its 500 most variable genes: a real n ~ p case."""
    return top_variance(all_bcrabl(), 500, "all_bcrabl_111x500")


def all_bt_top25() -> Workload:
    """ALL T- vs B-lineage (128 samples) x its top 25% variance genes: the seed's own filter advice."""
    d = np.load(SHARED / "all_bt.npz", allow_pickle=False)
    wl = Workload("all_bt", d["X"].astype(np.float64), d["y"].astype(float), "ALL T vs B lineage, log2 RMA")
    top = top_variance(wl, 0.25, "")
    return Workload(f"all_bt_{top.X.shape[0]}x{top.X.shape[1]}", top.X, top.y, top.description)


def gaussian(n: int, p: int, *, seed: int = 0, n_signal: int = 20, rho: float = 0.5) -> Workload:
    """Equicorrelated Gaussian design (rho) with a sparse logistic signal."""
    rng = np.random.default_rng(seed)
    X = np.sqrt(1 - rho) * rng.standard_normal((n, p)) + np.sqrt(rho) * rng.standard_normal((n, 1))
    beta = np.zeros(p)
    beta[:n_signal] = rng.choice([-1.0, 1.0], n_signal) * rng.uniform(0.5, 1.0, n_signal)
    eta = X @ beta
    eta = 2.0 * eta / eta.std()
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return Workload(f"gaussian_{n}x{p}", X, y, f"Gaussian rho={rho}, {n_signal} signals")


def throughput_datasets(count: int) -> list[Workload]:
    """The same-shape datasets of the throughput row: Gaussian 200 x 20,000, seeds 100, 101, ..."""
    return [gaussian(200, 20000, seed=100 + i) for i in range(count)]


def foldid_for(y, seed: int = 0, nfolds: int = 10) -> np.ndarray:
    """The benchmark's fixed fold assignment (1..nfolds) for everyone: jaxlasso, glmnet, any machine."""
    return np.random.default_rng(seed).permutation(np.resize(np.arange(1, nfolds + 1), len(y)))


def bootstrap_weights(n: int, B: int, seed: int = 1) -> np.ndarray:
    """B bootstrap resamples of n rows as count weights (B, n)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(B)]).astype(float)


def fingerprint(X, y) -> str:
    """Shape and sums of the data: the two halves of the GPU table check they saw the same matrix."""
    return f"{X.shape[0]}x{X.shape[1]}:{float(np.sum(X)):.10e}:{float(np.sum(X * X)):.10e}:{float(np.sum(y)):.1f}"


WORKLOADS = {
    "seedlike": seedlike,
    "all_bcrabl": all_bcrabl,
    "gauss200": lambda: gaussian(200, 20000),
    "gauss1000": lambda: gaussian(1000, 20000, seed=1),
    # n >= p and n ~ p: the shapes where working sets reach hundreds of genes.
    "gauss500x5k": lambda: gaussian(500, 5000, seed=2),
    "gauss1000x2k": lambda: gaussian(1000, 2000, seed=3),
    "gauss2000x500": lambda: gaussian(2000, 500, seed=4),
    "gauss5000x1k": lambda: gaussian(5000, 1000, seed=5),
    "gauss2000x2k": lambda: gaussian(2000, 2000, seed=6),
    "all_bcrabl_top500": all_bcrabl_top500,
    "all_bt_top25": all_bt_top25,
}

GROUPS = {
    "wide": ["seedlike", "all_bcrabl", "gauss200", "gauss1000"],
    "ngep": ["gauss500x5k", "gauss1000x2k", "gauss2000x500", "gauss5000x1k", "gauss2000x2k",
             "all_bcrabl_top500", "all_bt_top25"],
}
"""Names that stand for several workloads on ``run.py --workloads`` (``ngep``: the n >= p and n ~ p rows)."""


def expand_workloads(names: list[str]) -> list[str]:
    """Workload keys from names and group names, in order, each once; an unknown name is an error."""
    out: list[str] = []
    for name in names:
        keys = GROUPS.get(name, [name])
        for key in keys:
            if key not in WORKLOADS:
                raise ValueError(f"unknown workload {name!r}: choose from {', '.join([*WORKLOADS, *GROUPS])}")
            if key not in out:
                out.append(key)
    return out
