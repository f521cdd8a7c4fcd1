"""Counts done right: detection on the non-negative integer cells, corrupt cells named, edgeR's
log2-CPM as the default transform (with live parity against R's edgeR where it is installed)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from jaxlasso.selection.filters import PRIOR_COUNT, detect_counts, log_cpm, preprocess
from jaxlasso.simulate import simulate_rnaseq


@pytest.fixture(scope="module")
def counts():
    return simulate_rnaseq(n_genes=400, seed=5).counts


def reference_log_cpm(X: np.ndarray, prior: float = 2.0) -> np.ndarray:
    """edgeR's documented formula, written out per cell (independent of the vectorised code)."""
    n, p = X.shape
    lib = X.sum(axis=1)
    out = np.empty_like(X, dtype=float)
    for i in range(n):
        c = prior * lib[i] / lib.mean()
        for j in range(p):
            out[i, j] = np.log2((X[i, j] + c) / (lib[i] + 2 * c) * 1e6)
    return out


# --- the formula -----------------------------------------------------------------------------
def test_log_cpm_formula_by_hand():
    X = pd.DataFrame([[0, 10, 90], [5, 0, 395], [1, 1, 8]], dtype=float)
    got = log_cpm(X).to_numpy()
    np.testing.assert_allclose(got, reference_log_cpm(X.to_numpy()), rtol=0, atol=1e-12)
    # One cell by hand: lib = (100, 400, 10), mean 170; sample 0: c = 2 * 100/170.
    c0 = 2 * 100 / 170
    assert got[0, 1] == pytest.approx(np.log2((10 + c0) / (100 + 2 * c0) * 1e6), abs=1e-12)
    # A zero count lands on the same logCPM in every sample (the prior scales with the library).
    zeros = [got[0, 0], got[1, 1]]
    assert zeros[0] == pytest.approx(zeros[1], abs=1e-12)
    assert PRIOR_COUNT == 2.0


def test_default_for_counts_is_log_cpm(counts):
    X, rep = preprocess(counts)
    kept = [g for g in counts.columns if (counts[g] != 0).any()]
    assert list(X.columns) == [g for g in kept if counts[g].std() > 0]
    expected = reference_log_cpm(counts.to_numpy(dtype=float))
    np.testing.assert_allclose(X.to_numpy(), expected[:, [counts.columns.get_loc(g) for g in X.columns]],
                               rtol=0, atol=1e-10)
    assert rep.log_applied and rep.cpm_applied
    assert any("log2-CPM with prior count 2" in s and "edgeR" in s for s in rep.steps)


def test_all_zero_genes_are_dropped_not_kept_as_rounding_noise(counts):
    c = counts.copy()
    c["ZERO"] = 0
    X, rep = preprocess(c)
    assert "ZERO" not in X.columns and "ZERO" in rep.dropped_constant
    assert rep.n_features_in == c.shape[1]
    assert X.std(axis=0, ddof=0).min() > 1e-6


def test_manual_choices_keep_their_meaning(counts):
    X, rep = preprocess(counts, log="yes")                         # log2(x + 1), no library sizes
    g = X.columns[0]
    np.testing.assert_allclose(X[g], np.log2(counts[g] + 1), rtol=1e-15)
    assert rep.log_applied and not rep.cpm_applied
    X, rep = preprocess(counts, cpm_normalize=True)                # log2(CPM + 1)
    lib = counts.sum(axis=1)
    np.testing.assert_allclose(X[g], np.log2(counts[g] / lib * 1e6 + 1), rtol=1e-13)
    assert rep.log_applied and rep.cpm_applied
    with pytest.warns(jaxlasso.DataWarning, match="look unlogged"):
        X, rep = preprocess(counts, log="no", cpm_normalize=True)   # plain CPM
    np.testing.assert_allclose(X[g], counts[g] / lib * 1e6, rtol=1e-13)
    assert not rep.log_applied and rep.cpm_applied


# --- corrupt cells ---------------------------------------------------------------------------
def test_one_negative_cell_is_an_error_naming_it(counts):
    c = counts.copy()
    c.iloc[3, 7] = -4
    check = detect_counts(c)
    assert check.looks_like_counts and check.n_negative == 1 and check.n_non_integer == 0
    with pytest.raises(ValueError, match=r"1 cell is not a count: 1 negative.*gene "
                                         + c.columns[7] + " in sample " + c.index[3] + " = -4"):
        preprocess(c)
    for kw in (dict(log="yes"), dict(cpm_normalize=True), dict(log="no", cpm_normalize=True)):
        with pytest.raises(ValueError, match="1 cell is not a count"):
            preprocess(c, **kw)


def test_fractional_cells_are_an_error_with_their_count(counts):
    c = counts.astype(float)
    c.iloc[0, 1] = 2.5
    c.iloc[5, 9] = np.inf
    with pytest.raises(ValueError, match=r"2 cells are not counts: 0 negative, 2 fractional or not finite"
                                         r".*gene GENE002 in sample S01 = 2\.5"):
        preprocess(c)
    # Unnamed matrices: preprocess names columns x0, x1, ...; detect_counts rows and columns.
    with pytest.raises(ValueError, match=r"gene x1 in sample 0 = 2\.5"):
        preprocess(c.to_numpy())
    assert detect_counts(c.to_numpy()).bad_cells == ("column 1 in row 0 = 2.5", "column 9 in row 5 = inf")


def test_declared_final_scale_warns_instead(counts):
    c = counts.copy()
    c.iloc[2, 2] = -1
    with pytest.warns(jaxlasso.DataWarning) as record:
        X, rep = preprocess(c, log="no")
    assert any("1 cell is not a count" in str(w.message) for w in record)
    assert X.iloc[2, 2] == -1 and not rep.log_applied


def test_logged_data_with_many_negatives_are_not_counts(shared_data):
    X, _, _ = shared_data("tissue_cerebellum_vs_hippocampus")
    centred = X - X.mean(axis=0)
    check = detect_counts(centred)
    assert not check.looks_like_counts and check.bad_cells == ()
    frame = pd.DataFrame(centred)
    out, rep = preprocess(frame)                                   # no error, no transform
    np.testing.assert_array_equal(out.to_numpy(), frame[out.columns].to_numpy())
    assert not rep.log_applied


# --- parity with R's edgeR -------------------------------------------------------------------
def _edger_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "suppressMessages(library(edgeR))"],
                          capture_output=True).returncode == 0


def edger_log_cpm(X: np.ndarray, tmp_path) -> np.ndarray:
    """``edgeR::cpm(t(X), log = TRUE)`` (genes in rows for edgeR), exchanged as raw doubles."""
    n, p = X.shape
    src, dst = tmp_path / "counts.bin", tmp_path / "logcpm.bin"
    np.ascontiguousarray(X, dtype="<f8").tofile(src)   # row-major samples x genes = R's genes x samples
    script = textwrap.dedent(f"""
        suppressMessages(library(edgeR))
        y <- matrix(readBin("{src}", "double", {n * p}, endian = "little"), nrow = {p}, ncol = {n})
        writeBin(as.vector(cpm(y, log = TRUE)), "{dst}", endian = "little")
    """)
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    return np.fromfile(dst, dtype="<f8").reshape(n, p)


@pytest.mark.r
@pytest.mark.parametrize("dataset", ["demo", "all_bcrabl"])
def test_log_cpm_matches_edger(dataset, tmp_path, shared_data):
    if not _edger_available():
        pytest.skip("R's edgeR is not installed (apt-get install -y r-bioc-edger)")
    if dataset == "demo":
        counts = simulate_rnaseq(seed=0).counts                     # `jaxlasso demo`'s data
    else:
        # A real count-like matrix: ALL's RMA intensities back on the linear scale, rounded.
        X, _, genes = shared_data("all_bcrabl")
        counts = pd.DataFrame(np.round(2.0 ** X), columns=genes)
    A = counts.to_numpy(dtype=np.float64)
    expected = edger_log_cpm(A, tmp_path)
    np.testing.assert_allclose(log_cpm(counts).to_numpy(), expected, rtol=0, atol=1e-10)
    out, rep = preprocess(counts)                                   # the default path, too
    cols = [counts.columns.get_loc(g) for g in out.columns]
    np.testing.assert_allclose(out.to_numpy(), expected[:, cols], rtol=0, atol=1e-10)
    assert rep.cpm_applied
