"""Memory: what the workflow keeps and copies grows with the data only where it must.

Results keep (lambdas x features) matrices sparse (``results.SparseRows``) with the dense arrays
made on request; the engine returns standardisation moments only for the lanes that need them
(``Lanes.keep_moments``); count detection reads the matrix in blocks. Each test checks the new
form against the computation it replaced (kept here as the reference) -- same numbers -- and,
where it is about memory, that the (L, p) or (lanes, p) arrays are really gone.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from jaxlasso._engine import Lanes, solve_lanes
from jaxlasso._scaling import to_original_scale
from jaxlasso.path import PreparedProblem, path_result_from_lane
from jaxlasso.results import SparseRows
from jaxlasso.selection import filters
from jaxlasso.selection.filters import CountsCheck, _COUNT_CELL_FRACTION
from jaxlasso.selection.stability import error_control, stability_selection, subsample_weights
from tests.helpers import synthetic


def _problem(n=24, p=300, seed=0, **kw):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    score = X[:, :3].sum(axis=1) + rng.normal(size=n)
    y = (score > np.median(score)).astype(int)  # balanced: no small-class warning
    args = dict(l1_ratio=1.0, lambdas=None, n_lambdas=30, lambda_min_ratio=None, standardize=True,
                fit_intercept=True, sample_weight=None, penalty_factor=None, early_stop=False,
                tol=1e-7, max_iter=200, dtype=np.float64)
    args.update(kw)
    return X, y, PreparedProblem(X, y, **args)


# --- SparseRows --------------------------------------------------------------------------------
def test_sparse_rows_round_trip():
    rng = np.random.default_rng(1)
    dense = np.where(rng.random((7, 40)) < 0.1, rng.normal(size=(7, 40)), 0.0)
    dense[2] = 0.0  # an empty row
    dense[4, 5] = -0.0  # a negative zero is a zero
    sp = SparseRows.from_dense(dense)
    np.testing.assert_array_equal(sp.toarray(), dense)
    assert sp.nnz == np.count_nonzero(dense)
    li, fj = sp.nonzero()
    ref_li, ref_fj = np.nonzero(dense)
    np.testing.assert_array_equal(li, ref_li)
    np.testing.assert_array_equal(fj, ref_fj)
    np.testing.assert_array_equal(sp.count_nonzero(), np.count_nonzero(dense, axis=1))
    for i in range(7):
        np.testing.assert_array_equal(sp.row(i), dense[i])
    np.testing.assert_array_equal(sp.rows(1, 5), dense[1:5])
    cols = np.array([0, 3, 17, 39])
    np.testing.assert_array_equal(sp.columns(cols), dense[:, cols])
    np.testing.assert_array_equal(sp.active(), np.nonzero(dense.any(axis=0))[0])
    assert sp.columns(np.zeros(0, int)).shape == (7, 0)
    empty = SparseRows.from_dense(np.zeros((0, 5)))
    assert empty.toarray().shape == (0, 5) and empty.nnz == 0


# --- the path's coefficients -----------------------------------------------------------------
def _dense_path(prob, out, lane, length):
    """The dense construction path_result_from_lane used before coefficients were kept sparse."""
    beta = out.dense_coef(lane, prob.p)[:length].astype(np.float64, copy=False)
    xm = out.xm[lane].astype(np.float64)
    xs = out.xs[lane].astype(np.float64)
    return to_original_scale(beta, out.intercept[lane, :length].astype(np.float64), xm, xs, prob.shift,
                             overwrite=True)


def test_path_coefficients_sparse_equal_the_dense_construction():
    """``PathResult.coef`` (made from ``coef_sparse``) is bit for bit the dense array the result
    held before; intercepts agree to rounding (their sums skip the zeros); the result holds no
    (L, p) array. Mutation-checked: dividing by other features' scales fails the equality."""
    X, y, prob = _problem()
    out = solve_lanes(prob, prob.lanes())
    length = int(out.path_length()[0])
    fit = path_result_from_lane(prob, out, 0, 0.0)
    coef, intercept = _dense_path(prob, out, 0, length)
    assert np.count_nonzero(coef) > 50, "the path must have many nonzeros for this test to mean anything"
    np.testing.assert_array_equal(fit.coef, coef)
    np.testing.assert_allclose(fit.intercept, intercept, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(fit.n_nonzero, np.count_nonzero(coef, axis=1))
    li, fj = np.nonzero(coef)
    frame = fit.coef_frame()
    np.testing.assert_array_equal(frame["lambda_index"], li)
    np.testing.assert_array_equal(frame["coefficient"], coef[li, fj])
    assert list(frame["feature"]) == [f"x{j}" for j in fj]
    assert len(fit.coef_frame(nonzero_only=False)) == coef.size
    for s in (fit.lambdas[3], 0.5 * (fit.lambdas[7] + fit.lambdas[8])):
        b0, c = fit.coef_at(s)
        from jaxlasso.results import interpolate_lambda

        left, right, frac = interpolate_lambda(fit.lambdas, s)
        np.testing.assert_array_equal(c, frac * coef[left] + (1 - frac) * coef[right])
    np.testing.assert_allclose(fit.decision_function(X), X @ coef.T + intercept[None, :], rtol=1e-12)
    # Nothing of (L, p) is kept: the dense array is made on access, a new one each time.
    held = [v for v in vars(fit).values() if isinstance(v, np.ndarray)]
    held += [v for v in vars(fit.coef_sparse).values() if isinstance(v, np.ndarray)]
    assert max(a.size for a in held) < coef.size / 4
    assert fit.coef is not fit.coef


def test_path_result_does_not_make_a_dense_path():
    """Building a path's result allocates far less than one dense (L, p) array (tracemalloc sees
    numpy's allocations). Mutation-checked: the dense construction peaks above 1 x (L, p)."""
    X, y, prob = _problem(n=20, p=20_000, seed=2, n_lambdas=100)
    out = solve_lanes(prob, prob.lanes())
    L = int(out.path_length()[0])
    dense_bytes = L * prob.p * 8
    tracemalloc.start()
    try:
        fit = path_result_from_lane(prob, out, 0, 0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert L > 50
    assert peak < dense_bytes / 4, f"peak {peak / 1e6:.1f} MB for a {dense_bytes / 1e6:.1f} MB dense path"
    assert fit.coef.shape == (L, prob.p)


# --- moments of the lanes --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_keep_moments_returns_only_the_lanes_asked_and_changes_nothing(mode):
    """``Lanes.keep_moments`` drops the (lanes, p) moments of the other lanes and nothing else:
    every per-lambda output is identical, the kept lanes' moments too. Mutation-checked: kept rows
    left in the vmapped chunks' order (masters first) fail the moments' equality."""
    X, y, prob = _problem(n=20, p=150, seed=3)
    rng = np.random.default_rng(0)
    W = (rng.random((5, prob.n)) < 0.8).astype(float)
    W[:, :4] = 1.0
    W[2] = 1.0
    master = np.arange(5) == 2  # the master in the middle: vmapped chunks put it first
    every = solve_lanes(prob, Lanes(W=W, is_master=master, keep_eta=True, k0=8), mode=mode)
    some = solve_lanes(prob, Lanes(W=W, is_master=master, keep_eta=True, k0=8, keep_moments=master),
                       mode=mode)
    none = solve_lanes(prob, Lanes(W=W, is_master=master, keep_eta=True, k0=8, keep_moments=False),
                       mode=mode)
    for name in ("idx", "coef", "intercept", "status", "deviance", "eta", "null_deviance"):
        np.testing.assert_array_equal(getattr(some, name), getattr(every, name), err_msg=name)
        np.testing.assert_array_equal(getattr(none, name), getattr(every, name), err_msg=name)
    assert every.xm.shape[0] == 5 and some.xm.shape[0] == 1 and none.xm.shape[0] == 0
    for got, ref in zip(some.moments(2), every.moments(2)):
        np.testing.assert_array_equal(got, ref)
    for lane in (0, 1, 3, 4):
        with pytest.raises(ValueError, match=f"moments of lane {lane} were not kept"):
            some.moments(lane)
    # The master and a lane before it: vmapped chunks solve the master first, so its row must
    # move behind lane 0's.
    mixed = np.array([True, False, True, False, False])
    part = solve_lanes(prob, Lanes(W=W, is_master=master, k0=8, keep_moments=mixed), mode=mode)
    assert part.xm.shape[0] == 2
    for lane in (0, 2):
        for got, ref in zip(part.moments(lane), every.moments(lane)):
            np.testing.assert_array_equal(got, ref)


def test_cv_keeps_the_moments_of_its_full_data_lane_only():
    from jaxlasso.cv import cv_logistic_path, plan_cv

    X, y, _ = _problem(n=30, p=200, seed=4)
    plan = plan_cv(X, y, nfolds=5, l1_ratio=1.0, lambdas=None, n_lambdas=20, lambda_min_ratio=None,
                   standardize=True, fit_intercept=True, sample_weight=None, penalty_factor=None,
                   early_stop=True, tol=None, max_iter=200, dtype=np.float64)
    out = solve_lanes(plan.prob, plan.lanes())
    assert out.xm.shape == (1, 200)
    cv = cv_logistic_path(X, y, nfolds=5, n_lambdas=20)
    ref = path_result_from_lane(plan.prob, solve_lanes(plan.prob, plan.prob.lanes()), 0, 0.0)
    np.testing.assert_array_equal(cv.path.x_scale, ref.x_scale)


# --- stability selection ---------------------------------------------------------------------
def test_stability_probabilities_sparse_equal_the_dense_counts():
    """The sparse counts give the dense tables the dense counting gave, bit for bit."""
    X, y, prob = _problem(n=30, p=250, seed=5, n_lambdas=25)
    st = stability_selection(X, y, n_resamples=10, n_lambdas=25, seed=3, tol=prob.tol)
    W = subsample_weights(prob.y, prob.w, n_resamples=10, fraction=0.5, complementary_pairs=True,
                          stratified=True, seed=3)
    out = solve_lanes(prob, Lanes(W=W))
    L, p = len(prob.lambdas), prob.p
    counts = np.zeros((L, p))
    for r in range(10):
        li, slot = np.nonzero(out.coef[r] != 0)
        np.add.at(counts, (li, out.idx[r][li, slot]), 1.0)
    counts /= 10
    np.testing.assert_array_equal(st.probabilities, counts)
    running = np.maximum.accumulate(counts, axis=0)
    np.testing.assert_array_equal(st.max_probability_path, running)
    np.testing.assert_array_equal(st.max_probability, running[st.region_index])
    assert 0 < st.probabilities_sparse.nnz < counts.size / 4


def test_stability_selection_makes_no_dense_table():
    """Stability selection at p >> n allocates less than one dense (L, p) table; before, it held
    two (counts and their running maximum) and the lanes' moments. Mutation-checked: dense
    counts fail it."""
    X, y, prob = _problem(n=16, p=20_000, seed=6, n_lambdas=100)
    stability_selection(X, y, n_resamples=4, seed=1)  # compile and fill the buffer pool
    tracemalloc.start()
    try:
        st = stability_selection(X, y, n_resamples=16, seed=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_bytes = len(st.lambdas) * 20_000 * 8
    assert peak < dense_bytes, f"peak {peak / 1e6:.1f} MB for a {dense_bytes / 1e6:.1f} MB table"


# --- count detection in blocks ---------------------------------------------------------------
def _detect_counts_whole(X) -> CountsCheck:
    """detect_counts as it was computed on the whole matrix at once (the reference)."""
    frame = X if isinstance(X, pd.DataFrame) else None
    A = np.asarray(X, dtype=np.float64)
    finite = np.isfinite(A)
    negative = finite & (A < 0)
    good = finite & ~negative & (A == np.round(A))
    n_cells = A.size
    integer_fraction = float(good.sum() / n_cells) if n_cells else 0.0
    values = A[good]
    sample = values if values.size <= 2_000_000 else values[:: values.size // 2_000_000 + 1]
    positive = sample[sample > 0]
    max_value = float(values.max()) if values.size else 0.0
    if positive.size:
        dynamic_range = float(np.quantile(positive, 0.999) / max(np.median(positive), 1e-12))
    else:
        dynamic_range = 0.0
    B = A if finite.all() else np.where(finite, A, 0.0)
    centered = B - B.mean(axis=0)
    sd = B.std(axis=0)
    ok = sd > 0
    skew = float(np.median((centered[:, ok] ** 3).mean(axis=0) / sd[ok] ** 3)) if ok.any() else 0.0
    n_negative = int(negative.sum())
    n_non_integer = int((~good & ~negative).sum())
    rows, cols = np.nonzero(~good)
    cells = list(zip(rows[:5].tolist(), cols[:5].tolist()))
    looks = integer_fraction >= _COUNT_CELL_FRACTION and (max_value > 1000 or dynamic_range > 100)
    return CountsCheck(looks, n_negative == 0, integer_fraction, max_value, dynamic_range, skew, "",
                       n_negative, n_non_integer,
                       filters._bad_cell_names(frame, A, cells) if looks and n_negative + n_non_integer else ())


def _cases():
    rng = np.random.default_rng(8)
    counts = rng.negative_binomial(2, 0.01, size=(16, 3000)).astype(float)
    corrupt = counts.copy()
    corrupt[0, 7], corrupt[3, 2], corrupt[9, 2999], corrupt[15, 0] = 2.5, -1.0, np.nan, np.inf
    corrupt[5, 11:20] = 0.5
    logged = np.log2(counts + 1) + rng.normal(scale=0.1, size=counts.shape)
    # > 2,000,000 whole cells: sampled every 2nd; an odd row length moves the stride's phase
    # from one block of rows to the next.
    big = rng.poisson(50.0, size=(20, 110_001)).astype(float)
    big[3, ::7] = 1e5
    frame = pd.DataFrame(counts.T, index=[f"g{j}" for j in range(3000)]).T  # F-ordered, as read
    return {"counts": counts, "corrupt": corrupt, "logged": logged, "big": big, "frame": frame,
            "fortran": np.asfortranarray(corrupt), "odd": np.ascontiguousarray(logged[:, :2999]),
            "one": counts[:, :1], "empty": np.zeros((3, 0)), "zeros": np.zeros((4, 6))}


@pytest.mark.parametrize("block", [37, 1 << 19])
@pytest.mark.parametrize("name", ["counts", "corrupt", "logged", "big", "frame", "fortran", "odd", "one", "empty",
                                  "zeros"])
def test_detect_counts_in_blocks_equals_the_whole_matrix(name, block, monkeypatch):
    """Every number of the check (the sampled dynamic range, the skewness, the first bad cells)
    is the whole-matrix computation's, for tiny blocks too. Mutation-checked: sampling each block
    from its own start (not the global stride) changes the dynamic range of ``big``."""
    X = _cases()[name]
    monkeypatch.setattr(filters, "_BLOCK_CELLS", block)
    got = filters.detect_counts(X)
    ref = _detect_counts_whole(X)
    for field in ("looks_like_counts", "non_negative", "integer_fraction", "max_value", "dynamic_range",
                  "skewness", "n_negative", "n_non_integer", "bad_cells"):
        assert getattr(got, field) == getattr(ref, field), field


def test_detect_counts_reads_without_copies():
    """Count detection on a 16 x 400,000 matrix allocates a fraction of it (it made ~5 copies;
    now blocks and a sample of at most 2,000,000 cells)."""
    X = np.random.default_rng(9).poisson(20.0, size=(16, 400_000)).astype(float)
    tracemalloc.start()
    try:
        filters.detect_counts(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 2, f"peak {peak / 1e6:.1f} MB for a {X.nbytes / 1e6:.1f} MB matrix"


def test_log_cpm_in_place_equals_the_chained_form():
    """One matrix transformed in place gives the chained pandas form's numbers bit for bit (a
    matrix above 1,000,000 cells, where pandas may hand arithmetic to numexpr); ``overwrite``
    writes into the frame given, and the default leaves it alone."""
    rng = np.random.default_rng(10)
    X = pd.DataFrame(rng.negative_binomial(2, 0.01, size=(12, 100_000)).astype(float))
    before = X.copy()
    lib = X.sum(axis=1)
    prior = filters.PRIOR_COUNT * lib / lib.mean()
    ref = np.log2(X.add(prior, axis=0).div(lib + 2.0 * prior, axis=0) * 1e6)
    got = filters.log_cpm(X)
    pd.testing.assert_frame_equal(X, before)
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    mine = X.copy()
    again = filters.log_cpm(mine, overwrite=True)
    np.testing.assert_array_equal(again.to_numpy(), ref.to_numpy())
    assert np.shares_memory(again.to_numpy(), mine.to_numpy())


def test_preprocess_counts_makes_one_copy():
    """Preprocessing raw counts (zero genes dropped, log-CPM, constant check) allocates about one
    matrix besides its input (it made four to five). Mutation-checked: the chained log-CPM form
    fails it."""
    rng = np.random.default_rng(11)
    counts = rng.negative_binomial(2, 0.01, size=(16, 200_000)).astype(float)
    counts[:, :100] = 0.0  # zero genes: dropped first
    X = pd.DataFrame(counts)
    tracemalloc.start()
    try:
        frame, report = filters.preprocess(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.log_applied and report.cpm_applied and frame.shape == (16, 199_900)
    assert peak < 1.6 * counts.nbytes, f"peak {peak / 1e6:.1f} MB for a {counts.nbytes / 1e6:.1f} MB matrix"


# --- preprocessing a matrix the caller gives up (the command line's) ----------------------------
def _reader_frame(values: np.ndarray) -> pd.DataFrame:
    """A frame laid out as the readers build it: one float64 block, column-major (n x p)."""
    n, p = values.shape
    return pd.DataFrame(np.asfortranarray(values), index=[f"s{i}" for i in range(n)],
                        columns=[f"g{j}" for j in range(p)])


@pytest.mark.filterwarnings("ignore:the data look unlogged")
@pytest.mark.parametrize("log", ["auto", "yes", "no"])
@pytest.mark.parametrize("zeros", [2, 37])
def test_preprocess_overwrite_equals_the_copy(log, zeros, monkeypatch):
    """``overwrite=True`` gives the default's frame and report exactly (values, gene order,
    memory layout) and, when a transform applies, in the input's own buffer -- also with all-zero
    genes compacted out block by block (a tiny block: several steps). Mutation-checked: moving
    the blocks from the last one down, or falling back to ``frame.loc``, fails it."""
    monkeypatch.setattr(filters, "_COMPACT_BLOCK", 7)
    rng = np.random.default_rng(12)
    depth = rng.uniform(0.5, 1.5, size=(9, 1))
    counts = rng.poisson(rng.lognormal(4, 2.5, size=300)[None, :] * depth).astype(float)
    counts[:, rng.choice(300, zeros, replace=False)] = 0.0
    ref, ref_report = filters.preprocess(_reader_frame(counts), log=log)
    given = _reader_frame(counts)
    buffer = given.to_numpy(copy=False)
    got, report = filters.preprocess(given, log=log, overwrite=True)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert report == ref_report
    assert got.to_numpy().flags.f_contiguous == ref.to_numpy().flags.f_contiguous
    assert report.n_constant_dropped >= 2
    # log2-CPM drops the zero genes in place; otherwise drop_constant's copy is the result.
    assert np.shares_memory(got.to_numpy(), buffer) == (log == "auto")
    assert report.log_applied == (log != "no")


def test_preprocess_overwrite_makes_no_copy_of_counts():
    """Raw counts with all-zero genes preprocessed in place allocate well under one matrix (the
    copy-making default: about one more; the largest allocation left is the count check's sample
    of at most 2,000,000 cells, 16 MB). Mutation-checked: ``frame.loc`` for the zero genes
    fails it."""
    rng = np.random.default_rng(11)
    counts = rng.negative_binomial(2, 0.01, size=(16, 400_000)).astype(float)
    counts[:, ::50] = 0.0
    X = _reader_frame(counts)
    del counts
    nbytes = X.to_numpy(copy=False).nbytes
    tracemalloc.start()
    try:
        frame, report = filters.preprocess(X, overwrite=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.log_applied and frame.shape == (16, 392_000)
    assert peak < 0.6 * nbytes, f"peak {peak / 1e6:.1f} MB for a {nbytes / 1e6:.1f} MB matrix"


def test_select_features_copy_x():
    """``select_features(copy_X=False)`` may transform the caller's counts in place; the default
    leaves them alone. Mutation-checked: ignoring ``copy_X`` fails the first assertion."""
    from jaxlasso.workflow import select_features

    rng = np.random.default_rng(13)
    counts = rng.negative_binomial(2, 0.01, size=(12, 40)).astype(float)
    y = np.repeat(["a", "b"], 6)
    kw = dict(strategy="lasso", n_permutations=0, n_repeats=1, nfolds=3, plan="off")
    given = _reader_frame(counts)
    report = select_features(given, y, copy_X=False, **kw)
    assert np.shares_memory(report.X.to_numpy(), given.to_numpy(copy=False))
    # ... and its CV keeps that matrix itself, not a copy (nor a centred copy) of it.
    assert np.shares_memory(report.cv.problem.X, given.to_numpy(copy=False))
    kept = _reader_frame(counts)
    default = select_features(kept, y, **kw)
    np.testing.assert_array_equal(kept.to_numpy(), counts)
    assert not np.shares_memory(default.cv.problem.X, kept.to_numpy(copy=False))
    pd.testing.assert_frame_equal(default.X, report.X, check_exact=True)
    np.testing.assert_array_equal(default.cv.cv_mean, report.cv.cv_mean)


# --- one copy of the design: the problem keeps X unshifted, the kernels get X - shift ----------
@pytest.mark.parametrize("order", ["C", "F"])
def test_problem_keeps_one_unshifted_copy_or_the_callers_array(order):
    """A prepared problem holds X (a copy by default, the caller's float64 array itself with
    ``copy_X=False``) and its column shift; the path, CV and permutation test are exactly those
    of the centred copy the problem used to keep. Mutation-checked: keeping ``X - shift`` in
    the problem (and dropping the shift in ``design_arrays``) fails the first assertions; a
    copy with ``copy_X=False`` fails ``shares_memory``."""
    from jaxlasso.diagnose import permutation_test
    from jaxlasso.path import PreparedProblem

    X, y = synthetic(40, 30, seed=5)
    X = np.asarray(X * 3.0 + 50.0, order=order)  # a large mean: the shift matters
    args = dict(l1_ratio=1.0, lambdas=None, n_lambdas=15, lambda_min_ratio=None, standardize=True,
                fit_intercept=True, sample_weight=None, penalty_factor=None, early_stop=True, tol=None,
                max_iter=200, dtype=np.float64)
    prob = PreparedProblem(X, y, **args)
    np.testing.assert_array_equal(prob.X, X)
    np.testing.assert_array_equal(prob.shift, X.mean(axis=0))
    assert not np.shares_memory(prob.X, X)
    alias = PreparedProblem(X, y, copy_X=False, **args)
    assert np.shares_memory(alias.X, X) and not alias.X.flags.writeable and X.flags.writeable
    # A conversion is already a private array: no second copy.
    X32 = X.astype(np.float32)
    assert not np.shares_memory(PreparedProblem(X32, y, **args).X, X32)
    # The same numbers as the kernels' centred design (a reference the problem no longer holds).
    Xc = X - X.mean(axis=0)
    from jaxlasso.lambdas import entry_lambdas

    np.testing.assert_array_equal(prob.scores, entry_lambdas(Xc, prob.y, prob.w, prob.pf, fit_intercept=True,
                                                             standardize=True))
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=4, n_lambdas=15, seed=0)
    cv_alias = jaxlasso.cv_logistic_path(X, y, nfolds=4, n_lambdas=15, seed=0, copy_X=False)
    np.testing.assert_array_equal(cv.cv_mean, cv_alias.cv_mean)
    np.testing.assert_array_equal(cv.path.coef, cv_alias.path.coef)
    centred = jaxlasso.cv_logistic_path(Xc, y, nfolds=4, lambdas=cv.path.lambdas, seed=0)
    np.testing.assert_allclose(cv.cv_mean, centred.cv_mean, rtol=1e-9)
    np.testing.assert_allclose(cv.path.coef, centred.path.coef, rtol=1e-7, atol=1e-10)
    a = permutation_test(X, y, cv, n_permutations=9, seed=1)
    b = permutation_test(X, y, cv_alias, n_permutations=9, seed=1)
    assert a.p_value == b.p_value and np.array_equal(a.null_statistics, b.null_statistics)
    # An object whose __array__ hands out its own buffer is copied too (the default copies always).
    class Holder:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    assert not np.shares_memory(PreparedProblem(Holder(X), y, **args).X, X)


def test_a_problem_pickled_with_the_centred_design_still_solves_it():
    """A problem pickled when the problem kept ``X - shift`` (no ``design_shift`` in its state)
    solves that centred X as it is and maps coefficients back with its ``shift``: the same path
    as a problem prepared now. Mutation-checked: subtracting ``shift`` again fails."""
    import pickle

    from jaxlasso.path import fit_prepared

    X, y = synthetic(40, 20, seed=8)
    X = X + 40.0
    args = dict(l1_ratio=1.0, lambdas=None, n_lambdas=12, lambda_min_ratio=None, standardize=True,
                fit_intercept=True, sample_weight=None, penalty_factor=None, early_stop=False, tol=None,
                max_iter=200, dtype=np.float64)
    prob = PreparedProblem(X, y, **args)
    state = dict(prob.__getstate__())
    state["X"] = prob.X - prob.shift
    del state["design_shift"]
    old = pickle.loads(pickle.dumps(prob))
    old.__dict__.clear()
    old.__setstate__(state)
    assert old.design_shift is None and prob.design_shift is prob.shift
    a, b = fit_prepared(prob), fit_prepared(old)
    np.testing.assert_allclose(b.coef, a.coef, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b.intercept, a.intercept, rtol=1e-8, atol=1e-10)
    back = pickle.loads(pickle.dumps(prob))
    assert back.design_shift is back.shift


def test_design_arrays_with_a_shift_equal_those_of_the_centred_copy():
    """``design_arrays(X, shift=s)`` writes exactly ``design_arrays(X - s)``: the float64
    transpose, the float32 copy and the column norms, padded or not, one design or a stack."""
    import jax.numpy as jnp

    from jaxlasso._engine import design_arrays

    rng = np.random.default_rng(3)
    X = rng.normal(7.0, 2.0, size=(23, 37))
    s = X.mean(axis=0)
    for kw in (dict(), dict(kkt_float32=True), dict(kkt_float32=True, shape=(32, 48))):
        got = design_arrays(X, jnp.float64, shift=s, **kw)
        want = design_arrays(X - s, jnp.float64, **kw)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == np.asarray(w).dtype
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_entry_lambdas_with_a_shift_and_many_labellings(monkeypatch):
    """``entry_lambdas(X, y, shift=s)`` scores the columns of ``X - s`` a block at a time
    (tiny blocks here), unpenalised columns included; ``y`` (B, n) gives each row's scores."""
    import jaxlasso.lambdas as lam

    rng = np.random.default_rng(4)
    X = rng.normal(30.0, 1.5, size=(25, 19))
    s = X.mean(axis=0)
    w = rng.uniform(0.5, 1.5, 25)
    pf = np.ones(19)
    pf[[2, 11]] = 0.0
    Y = (rng.uniform(size=(4, 25)) < 0.4).astype(float)
    want = np.stack([lam.entry_lambdas(X - s, yb, w, pf, fit_intercept=True, standardize=True) for yb in Y])
    monkeypatch.setattr(lam, "_SHIFT_BLOCK_CELLS", 25 * 4)
    got = lam.entry_lambdas(X, Y, w, pf, fit_intercept=True, standardize=True, shift=s)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    one = lam.entry_lambdas(X, Y[1], w, pf, fit_intercept=True, standardize=True, shift=s)
    np.testing.assert_allclose(one, want[1], rtol=1e-12)


def test_entry_lambda_max_is_each_labellings_lambda_max_from_column_blocks(monkeypatch):
    """``entry_lambda_max(X, Y, shift=s)`` gives, per labelling, ``lambda_max`` of its entry
    scores on ``X - s`` (unpenalised and constant columns, elastic net), scoring blocks of at
    most ``_MAX_BLOCK_CELLS`` cells; a labelling nothing can enter gets lambda_max's error."""
    import jaxlasso.lambdas as lam

    rng = np.random.default_rng(5)
    X = rng.normal(30.0, 1.5, size=(25, 41))
    X[:, 7] = 3.0
    s = X.mean(axis=0)
    w = rng.uniform(0.5, 1.5, 25)
    pf = rng.uniform(0.5, 2.0, 41)
    pf[[2, 11]] = 0.0
    Y = (rng.uniform(size=(6, 25)) < 0.4).astype(float)
    want = [lam.lambda_max(lam.entry_lambdas(X - s, yb, w, pf, fit_intercept=True, standardize=True), 0.5)
            for yb in Y]
    real, sizes = lam._entry_scores, []

    def spy(block, y, *a, **k):
        sizes.append((block.size, np.shape(y)[0] * block.shape[1]))
        return real(block, y, *a, **k)

    monkeypatch.setattr(lam, "_entry_scores", spy)
    monkeypatch.setattr(lam, "_MAX_BLOCK_CELLS", 25 * 4)
    got = lam.entry_lambda_max(X, Y, w, pf, l1_ratio=0.5, fit_intercept=True, standardize=True, shift=s)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert len(sizes) == 11 and max(max(c) for c in sizes) <= 25 * 4
    # One labelling that nothing can enter (every row a control) fails the whole call.
    Y[3] = 0.0
    with np.errstate(divide="ignore"), pytest.raises(ValueError, match="no penalised feature is associated"):
        lam.entry_lambda_max(X, Y, w, np.where(pf == 0, 1.0, pf), l1_ratio=0.5, fit_intercept=True,
                             standardize=True, shift=s)


def test_permutation_test_grid_top_needs_no_labelling_by_feature_scores(monkeypatch):
    """The permutation test's grid starts at the largest lambda_max over all its labellings
    (observed and permuted), found by ``entry_lambda_max`` without (B + 1, p) scores (160 MB at
    16 x 200,000 with 99 permutations); the test is the same whatever its block size."""
    import importlib

    import jaxlasso.lambdas as lam

    diagnose = importlib.import_module("jaxlasso.diagnose")  # the package's name is its function
    X, y = synthetic(30, 50, seed=6)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=3, n_lambdas=12, seed=0)
    seen, tops = [], []
    real_max, real_grid = diagnose.entry_lambda_max, diagnose.lambda_grid
    monkeypatch.setattr(diagnose, "entry_lambda_max",
                        lambda X_, Y, *a, **k: seen.append((Y, real_max(X_, Y, *a, **k))) or seen[-1][1])
    monkeypatch.setattr(diagnose, "lambda_grid", lambda top, *a: tops.append(top) or real_grid(top, *a))
    whole = diagnose.permutation_test(X, y, cv, n_permutations=7, seed=2)
    (Y, per_labelling), = seen
    assert Y.shape == (8, 30) and np.argmax(per_labelling) != 0  # a permutation sets the top here
    Xc = X - X.mean(axis=0)
    want = [lam.lambda_max(lam.entry_lambdas(Xc, yb, np.ones(30), np.ones(50), fit_intercept=True,
                                             standardize=True), 1.0) for yb in Y]
    np.testing.assert_allclose(per_labelling, want, rtol=1e-12)
    assert tops == [max(per_labelling)]
    blocks = []
    real = lam._entry_scores
    monkeypatch.setattr(lam, "_entry_scores", lambda b, *a, **k: blocks.append(b.shape) or real(b, *a, **k))
    monkeypatch.setattr(lam, "_MAX_BLOCK_CELLS", 30 * 6)
    small = diagnose.permutation_test(X, y, cv, n_permutations=7, seed=2)
    assert blocks and all(c <= 6 for _, c in blocks)
    assert small.p_value == whole.p_value
    np.testing.assert_array_equal(small.null_statistics, whole.null_statistics)


def test_buffer_pool_keeps_the_last_solves_shapes_only():
    """A solve of another shape evicts the pooled buffers of the shapes before it (a dead
    design does not stay beside the live one); buffers of the same solve stay together."""
    from jaxlasso._engine import HostBufferPool, host_array

    pool = HostBufferPool(max_bytes=1 << 30)
    a64, a32 = host_array((8, 16), np.float64), host_array((16, 8), np.float32)
    pool.give([a64, a32])
    assert pool.nbytes == a64.nbytes + a32.nbytes
    pool.give([host_array((8, 16), np.float64)])  # one shape of the last solve: kept beside, a32 out
    assert pool.nbytes == 2 * a64.nbytes
    b = host_array((4, 32), np.float64)
    pool.give([b])
    assert pool.nbytes == b.nbytes
    assert pool.take((4, 32), np.float64) is b and pool.nbytes == 0
    pool.give([])
    assert pool.nbytes == 0


# --- the univariate ranking's temporaries --------------------------------------------------------
def _welch_reference(X, y, w, stats):
    """The Welch computation as it was before its temporaries were cut (class copy, deviations,
    their squares, and a copy of every weighted row for the constant check)."""
    p = X.shape[1]
    means, variances, n_eff, flat = [], [], [], []
    for cls in (1, 0):
        rows = (y == cls) & (w > 0)
        Xc, wc = X[rows], w[rows]
        V1, V2 = wc.sum(), np.square(wc).sum()
        m = wc @ Xc / V1
        ss = wc @ np.square(Xc - m)
        var = ss / (V1 - V2 / V1)
        const = np.ptp(Xc, axis=0) == 0
        var[const] = 0.0
        means.append(m)
        variances.append(var)
        n_eff.append(V1 * V1 / V2)
        flat.append(const)
    (m1, m0), (v1, v0), (n1, n0) = means, variances, n_eff
    effect = m1 - m0
    constant = flat[0] & flat[1] & (np.ptp(X[w > 0], axis=0) == 0)
    effect[constant] = 0.0
    a1, a0 = v1 / n1, v0 / n0
    se2 = a1 + a0
    t, pval = np.zeros(p), np.ones(p)
    ok = se2 > 0
    t[ok] = effect[ok] / np.sqrt(se2[ok])
    df = np.square(se2[ok]) / (np.square(a1[ok]) / (n1 - 1) + np.square(a0[ok]) / (n0 - 1))
    pval[ok] = np.minimum(1.0, 2.0 * stats.t.sf(np.abs(t[ok]), df))
    separated = ~ok & ~constant
    t[separated] = np.sign(effect[separated]) * np.inf
    pval[separated] = 0.0
    return t, effect, pval


@pytest.mark.parametrize("seed", range(6))
def test_welch_equals_the_reference(seed):
    """Bit for bit the former computation, with constant, separated (each class constant) and
    +-0 columns, weights and a zero weight, both memory layouts. Mutation-checked: comparing
    the classes' first rows with ``!=`` fails it. The p-values come from ``scipy.special.stdtr``
    and equal ``scipy.stats.t.sf``'s bit for bit."""
    import scipy.special
    import scipy.stats

    from jaxlasso.selection.univariate import _welch

    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(6, 30)), int(rng.integers(8, 200))
    X = rng.normal(size=(n, p))
    y = np.repeat([0, 1], [n // 2, n - n // 2])
    rng.shuffle(y)
    X[:, 0] = 3.0
    X[:, 1] = np.where(y == 1, 1.0, 2.0)
    X[:, 2] = np.where(y == 1, 0.0, -0.0)
    if seed % 2:
        X = np.asfortranarray(X)
    w = rng.random(n) if seed % 3 == 0 else np.ones(n)
    w[0] = 0.0 if seed >= 3 else w[0]
    for got, ref in zip(_welch(X, y, w, scipy.special), _welch_reference(X, y, w, scipy.stats)):
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))


def test_univariate_ranking_temporaries():
    """The ranking allocates one class's rows (half the matrix) and per-feature vectors (the
    former computation: the class copy, its deviations and their squares, then a copy of every
    weighted row: about 1.5 matrices). Many samples, so that the per-feature vectors are small
    beside the matrix. Mutation-checked: the reference form fails it."""
    from jaxlasso.selection.univariate import univariate_ranking

    rng = np.random.default_rng(14)
    X = np.asfortranarray(rng.normal(size=(200, 20_000)))
    y = np.repeat([0, 1], 100)
    tracemalloc.start()
    try:
        univariate_ranking(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.75 * X.nbytes, f"peak {peak / 1e6:.1f} MB for a {X.nbytes / 1e6:.1f} MB matrix"


# --- the command line's select: what it keeps while it writes ------------------------------------
def test_cli_select_logs_counts_in_place_and_empties_the_pool(tmp_path, monkeypatch, capsys):
    """``jaxlasso select`` hands the matrix it read to the workflow to be transformed in place
    (its logCPM is the reader's buffer) and gives the pooled design buffers back before writing.
    Mutation-checked: ``copy_X=True`` in the command fails the first assertion, no
    ``HOST_BUFFERS.clear()`` the second."""
    import jaxlasso.cli.select as cli_select
    import jaxlasso.workflow as workflow
    from jaxlasso._engine import HOST_BUFFERS
    from jaxlasso.cli import main
    from jaxlasso.simulate import simulate_rnaseq

    sim = simulate_rnaseq(n_genes=300, seed=3, lfc_mean=1.5)
    counts = sim.counts.T
    counts.index.name = "gene_id"
    counts.to_csv(tmp_path / "counts.tsv", sep="\t")
    sim.samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    seen = {}
    select_features, write_outputs = workflow.select_features, cli_select.write_outputs

    def spy_select(X, y, **kw):
        seen["buffer"] = X.to_numpy(copy=False)
        report = select_features(X, y, **kw)
        seen["logcpm"] = report.X.to_numpy(copy=False)
        return report

    def spy_write(*a, **kw):
        seen["pool"] = HOST_BUFFERS.nbytes
        return write_outputs(*a, **kw)

    monkeypatch.setattr(workflow, "select_features", spy_select)
    monkeypatch.setattr(cli_select, "write_outputs", spy_write)
    code = main(["select", str(tmp_path / "counts.tsv"), "--samples", str(tmp_path / "samples.tsv"),
                 "--outcome", "group", "--case", "case", "--out", str(tmp_path / "out"), "--permutations", "9",
                 "--strategy", "lasso", "--plan", "off", "--quiet"])
    capsys.readouterr()
    assert code == 0
    assert np.shares_memory(seen["logcpm"], seen["buffer"])
    assert seen["pool"] == 0


def test_streamed_tsv_equals_the_string():
    """A table written by ``_write_tsv`` has exactly the bytes of ``_tsv``'s text in UTF-8
    (neutralised formula-like names, non-ASCII names, floats), ``raw_names`` too."""
    import tempfile
    from pathlib import Path

    from jaxlasso.cli.writers import _tsv, _write_tsv

    rng = np.random.default_rng(15)
    n = 30_000
    frame = pd.DataFrame({"feature": np.array([f"=g{i}" if i % 7 == 0 else f"gé{i}" for i in range(n)], dtype=object),
                          "rank": np.arange(1, n + 1), "p_value": rng.random(n),
                          "q_value": np.where(rng.random(n) < 0.1, np.nan, rng.random(n))})
    with tempfile.TemporaryDirectory() as d:
        for raw in (False, True):
            path = Path(d) / f"t{raw}.tsv"
            _write_tsv(path, frame, raw_names=raw)
            assert path.read_bytes() == _tsv(frame, raw_names=raw).encode("utf-8")


def test_permutation_test_reduces_each_group_of_labellings_before_solving_the_next():
    # The held-out predictions of every labelling x fold lane together are labellings x folds x
    # lambdas x n floats (102 MB at n = 1000 with 50 permutations); each group's predictions must
    # be reduced to statistics before the next group is solved, so the peak stays below that.
    import importlib

    import jaxlasso

    diagnose = importlib.import_module("jaxlasso.diagnose")
    rng = np.random.default_rng(3)
    n, p, B = 400, 40, 40
    X = rng.normal(size=(n, p))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(float)
    cv = jaxlasso.cv_logistic_path(X, y, nfolds=5, n_lambdas=50, seed=0)
    diagnose.permutation_test(X, y, cv, n_permutations=2, seed=0)  # compile outside the measurement
    tracemalloc.start()
    try:
        res = diagnose.permutation_test(X, y, cv, n_permutations=B, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(res.null_statistics) == B
    every_prediction = (B + 1) * 5 * 25 * n * 8  # labellings x folds x lambdas (~25) x rows, float64
    assert peak < every_prediction, (peak, every_prediction)


# --- the program's malloc settings -----------------------------------------------------------------
def _malloc_probe(source: str, mode: str, setting: str, **env: str):
    """Run ``source`` with ``mode`` in a fresh Python process whose environment holds none of the
    user's malloc choices but ``env`` (``setting`` and ``GLIBC_TUNABLES`` removed: either would
    make jaxlasso leave malloc alone): the finished process (stdout, stderr)."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in (setting, "GLIBC_TUNABLES")}
    return subprocess.run([sys.executable, "-c", source, mode], capture_output=True, text=True,
                          env={**base, **env}, check=True)


_ARENA_PROBE = r"""
import ctypes, sys, threading
import numpy as np
from jaxlasso.cli import limit_malloc_arenas
import os
print(limit_malloc_arenas() if sys.argv[1] == "limit" else None, os.environ.get("MALLOC_ARENA_MAX"), flush=True)
barrier, held = threading.Barrier(6), []
def work():
    barrier.wait()
    held.append([np.ones(500) for _ in range(200)])  # 4 KB blocks: malloc's arenas, not mmap
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_program_limits_malloc_arenas(monkeypatch):
    """``jaxlasso`` (``cli.run``) caps glibc's malloc arenas, so that memory freed by one solver
    thread is not kept out of reach of the others; ``MALLOC_ARENA_MAX`` set by the user wins,
    and ``main`` (callable from Python) leaves the caller's process alone. The control run, six
    threads allocating at once without the cap, shows that the probe can see more arenas."""
    import jaxlasso.cli as cli

    def arenas(mode, **env):
        out = _malloc_probe(_ARENA_PROBE, mode, "MALLOC_ARENA_MAX", **env)
        return out.stdout.strip(), out.stderr.count("Arena ")

    if arenas("plain")[1] <= cli.MALLOC_ARENAS:
        pytest.skip("this C library does not give threads arenas of their own")
    assert arenas("limit") == (f"True {cli.MALLOC_ARENAS}", cli.MALLOC_ARENAS)  # exported too
    said, count = arenas("limit", MALLOC_ARENA_MAX="3")
    assert said == "False 3" and count == 3
    called = []
    monkeypatch.setattr(cli, "limit_malloc_arenas", lambda *a: called.append(("arenas", a)))
    monkeypatch.setattr(cli, "fix_mmap_threshold", lambda *a: called.append(("mmap", a)))
    monkeypatch.setattr(cli, "main", lambda argv=None: 0)
    assert cli.run() == 0 and called == [("arenas", ()), ("mmap", ())]


_MMAP_PROBE = r"""
import os, sys
import numpy as np
from jaxlasso.cli import fix_mmap_threshold
said = fix_mmap_threshold() if sys.argv[1] == "fix" else None
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
big = np.ones(4 << 17)
del big  # a freed 4 MB block: glibc's own rule raises its mapping threshold to 4 MB
base = rss()
blocks, pins = [], []
for _ in range(100):  # 100 x 1 MB, each with a live 64 KB block after it: the heap cannot shrink
    blocks.append(np.ones(1 << 17))
    pins.append(np.ones(1 << 13))
del blocks
print(said, os.environ.get("MALLOC_MMAP_THRESHOLD_"), rss() - base, flush=True)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc")
def test_the_program_returns_freed_large_blocks_to_the_system():
    """``jaxlasso`` (``cli.run``) fixes glibc's mmap threshold: 100 freed 1 MB arrays are given
    back even after a larger block raised glibc's adaptive threshold above them, where a plain
    process keeps them (the control run); the user's ``MALLOC_MMAP_THRESHOLD_`` wins."""
    import jaxlasso.cli as cli

    def probe(mode, **env):
        said, exported, kept = _malloc_probe(_MMAP_PROBE, mode, "MALLOC_MMAP_THRESHOLD_", **env).stdout.split()
        return said, exported, int(kept)

    said, exported, kept = probe("plain")
    if kept < 50:
        pytest.skip("this C library gives freed heap blocks back by itself")
    assert probe("fix")[:2] == ("True", str(cli.MMAP_THRESHOLD))
    assert probe("fix")[2] < 20  # the 6.4 MB of live 64 KB blocks remain
    said, exported, kept = probe("fix", MALLOC_MMAP_THRESHOLD_=str(64 << 20))  # the user's: all from the heap
    assert (said, exported) == ("False", str(64 << 20)) and kept >= 50
