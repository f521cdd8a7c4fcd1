"""A deterministic RNA-seq count simulator: the seed's regime (16 samples x 16,293 genes, 7 vs 9).

Counts are negative binomial (a gamma-Poisson mixture), the model of DESeq2 and edgeR:

* gene baseline means are log-normal with a heavy right tail, clipped to [0.1, 1e5] reads
  (most genes are low, a few are very high, as in real libraries);
* dispersions follow the usual mean trend ``phi_g = a + b / mu_g`` with log-normal scatter;
* samples have library-size factors (log-normal, SD 0.25 on the log scale);
* ``n_de`` genes, drawn among genes with mean >= 10 reads, are differentially expressed between
  the classes with log2 fold changes of random sign and magnitude ``|N(lfc_mean, lfc_sd)|``.

Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SimulatedCounts:
    """A simulated study: counts, labels and the truth."""

    counts: pd.DataFrame
    """(n_samples, n_genes) integer counts; index = sample IDs, columns = gene IDs."""
    samples: pd.DataFrame
    """Sample sheet: ``sample`` (ID), ``group`` ("case"/"control"), ``library_size`` factor."""
    y: pd.Series
    """Labels "case"/"control" indexed by sample ID."""
    log2_fold_change: pd.Series
    """True log2 fold change (case vs control) per gene; 0 for non-DE genes."""

    @property
    def de_genes(self) -> list[str]:
        return list(self.log2_fold_change.index[self.log2_fold_change != 0])


def simulate_rnaseq(n_cases: int = 7, n_controls: int = 9, n_genes: int = 16293, *, n_de: int = 300,
                    lfc_mean: float = 0.6, lfc_sd: float = 0.35, dispersion_asymptote: float = 0.3,
                    dispersion_slope: float = 1.0, seed: int = 0,
                    null: bool = False) -> SimulatedCounts:
    """Simulate raw RNA-seq counts for a case/control study.

    Parameters
    ----------
    n_cases, n_controls, n_genes : int
        Study size; the default is the seed problem (7 vs 9 samples, 16,293 genes).
    n_de : int
        Number of differentially expressed genes ("a few hundred, modestly DE").
    lfc_mean, lfc_sd : float
        Magnitudes of the true log2 fold changes, ``|N(lfc_mean, lfc_sd)|`` with random sign.
    dispersion_asymptote, dispersion_slope : float
        Negative-binomial dispersion trend ``phi = a + b / mu`` (DESeq2's parametric fit).
    seed : int
        Seed of every random draw.
    null : bool
        No differential expression at all (a pure-noise study for honesty checks).
    """
    rng = np.random.default_rng(seed)
    n = n_cases + n_controls
    # Baseline means: log-normal, median ~ 30 reads, heavy right tail; clipped to [0.1, 1e5].
    mu = np.clip(np.exp(rng.normal(np.log(30.0), 2.2, n_genes)), 0.1, 1e5)
    phi = (dispersion_asymptote + dispersion_slope / mu) * np.exp(rng.normal(0.0, 0.4, n_genes))
    size_factor = np.exp(rng.normal(0.0, 0.25, n))
    is_case = np.zeros(n, bool)
    is_case[rng.permutation(n)[:n_cases]] = True

    lfc = np.zeros(n_genes)
    if not null and n_de > 0:
        eligible = np.nonzero(mu >= 10.0)[0]
        de = rng.choice(eligible, size=min(n_de, len(eligible)), replace=False)
        lfc[de] = rng.choice([-1.0, 1.0], size=len(de)) * np.abs(rng.normal(lfc_mean, lfc_sd, len(de)))
    # Split each fold change symmetrically between the two groups.
    group_effect = np.where(is_case[:, None], 2.0 ** (lfc / 2.0), 2.0 ** (-lfc / 2.0))
    mean = size_factor[:, None] * mu[None, :] * group_effect
    # Gamma-Poisson: NB with mean `mean` and variance mean + phi * mean^2.
    shape = 1.0 / phi
    lam = rng.gamma(shape[None, :], mean / shape[None, :])
    counts = rng.poisson(lam)

    width_g = len(str(n_genes))
    genes = [f"GENE{j + 1:0{width_g}d}" for j in range(n_genes)]
    width_s = max(2, len(str(n)))
    samples = [f"S{i + 1:0{width_s}d}" for i in range(n)]
    labels = np.where(is_case, "case", "control")
    counts_df = pd.DataFrame(counts.astype(np.int64), index=samples, columns=genes)
    sheet = pd.DataFrame({"sample": samples, "group": labels, "library_size": size_factor})
    return SimulatedCounts(
        counts=counts_df,
        samples=sheet,
        y=pd.Series(labels, index=samples, name="group"),
        log2_fold_change=pd.Series(lfc, index=genes, name="log2_fold_change"),
    )
