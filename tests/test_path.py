"""logistic_path: API, optimality and invariances (no R needed)."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

import jaxlasso
from helpers import spy_solver_memory, synthetic
from jaxlasso._engine import EngineConfig, Lanes, configure, solve_lanes
from jaxlasso.path import PreparedProblem


@pytest.fixture(scope="module")
def small():
    return synthetic(50, 80, seed=11)


# --- API --------------------------------------------------------------------------------------
def test_float64_without_global_x64_flag(small):
    X, y = small
    assert not jax.config.jax_enable_x64
    fit = jaxlasso.logistic_path(X, y)
    assert fit.coef.dtype == np.float64
    assert not jax.config.jax_enable_x64, "the library must not flip JAX's global flag"
    assert fit.info["dtype"] == "float64"


def test_result_fields_and_frames(small):
    X, y = small
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(X.shape[1])])
    fit = jaxlasso.logistic_path(df, y, n_lambdas=20)
    L = len(fit.lambdas)
    assert fit.coef.shape == (L, 80) and fit.intercept.shape == (L,)
    assert fit.feature_names == tuple(df.columns)
    assert np.all(np.diff(fit.lambdas) < 0)
    assert fit.n_nonzero[0] == 0 and fit.n_nonzero[-1] > 0
    np.testing.assert_array_equal(fit.n_nonzero, (fit.coef != 0).sum(axis=1))
    frame = fit.to_frame()
    assert list(frame.columns[:3]) == ["lambda", "n_nonzero", "deviance_ratio"]
    assert len(frame) == L
    long = fit.coef_frame()
    assert set(long["feature"]) <= set(df.columns)
    assert len(long) == int(fit.n_nonzero.sum())
    assert np.all(np.diff(fit.deviance_ratio) >= -1e-9)


@pytest.mark.slow
def test_string_labels_case_is_second_sorted_level(small):
    X, y = small
    labels = np.where(y == 1, "tumour", "normal")
    fit = jaxlasso.logistic_path(X, labels, n_lambdas=10)
    ref = jaxlasso.logistic_path(X, y, n_lambdas=10)
    assert fit.classes == ("normal", "tumour")
    np.testing.assert_allclose(fit.coef, ref.coef)
    flipped = np.where(y == 1, "a_case", "b_control")  # now the controls sort second
    fit2 = jaxlasso.logistic_path(X, flipped, n_lambdas=10)
    np.testing.assert_allclose(fit2.coef, -ref.coef, atol=1e-8)


def test_categorical_labels_follow_category_order(small):
    X, y = small
    cat = pd.Categorical(np.where(y == 1, "yes", "no"), categories=["yes", "no"])
    fit = jaxlasso.logistic_path(X, pd.Series(cat), n_lambdas=10)
    assert fit.classes == ("yes", "no")


def test_predict_proba_and_interpolation(small):
    X, y = small
    fit = jaxlasso.logistic_path(X, y, n_lambdas=20)
    P = fit.predict_proba(X)
    assert P.shape == (50, len(fit.lambdas)) and np.all((P > 0) & (P < 1))
    # At a grid point coef_at returns that column; between two points a linear blend.
    b0, c = fit.coef_at(fit.lambdas[5])
    np.testing.assert_allclose(c, fit.coef[5])
    mid = 0.25 * fit.lambdas[5] + 0.75 * fit.lambdas[6]
    _, c_mid = fit.coef_at(mid)
    np.testing.assert_allclose(c_mid, 0.25 * fit.coef[5] + 0.75 * fit.coef[6])
    _, c_big = fit.coef_at(10 * fit.lambdas[0])
    np.testing.assert_allclose(c_big, fit.coef[0])


# --- optimality ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_kkt_gap_below_tol_everywhere(tissue, l1_ratio):
    X, y, _ = tissue
    fit = jaxlasso.logistic_path(X, y, l1_ratio=l1_ratio, tol=1e-8)
    assert np.all(fit.converged)
    assert np.all(fit.kkt_gap <= 1e-8)


def test_objective_not_improved_by_perturbations(tissue, rng):
    X, y, _ = tissue
    fit = jaxlasso.logistic_path(X, y, n_lambdas=30, tol=1e-9)
    for m in (5, 15, 29):
        base = jaxlasso.logistic_objective(X, y, fit.coef[m], fit.intercept[m], fit.lambdas[m])[0]
        for _ in range(20):
            dc = rng.normal(scale=1e-3, size=X.shape[1]) * (rng.uniform(size=X.shape[1]) < 0.05)
            db = rng.normal(scale=1e-3)
            pert = jaxlasso.logistic_objective(X, y, fit.coef[m] + dc, fit.intercept[m] + db,
                                               fit.lambdas[m])[0]
            assert pert >= base - 1e-12


@pytest.mark.slow
def test_ridge_end_of_elastic_net_runs(small):
    X, y = small
    fit = jaxlasso.logistic_path(X, y, l1_ratio=0.0, n_lambdas=15, tol=1e-8)
    assert np.all(fit.converged)
    assert np.all(fit.n_nonzero[1:] == X.shape[1])  # ridge keeps every feature


def _grown_problem(X, y, early_stop: bool) -> PreparedProblem:
    """A 40-lambda lasso path down to 1e-4 x lambda_max: its working set outgrows small capacities."""
    return PreparedProblem(X, y, l1_ratio=1.0, lambdas=None, n_lambdas=40, lambda_min_ratio=1e-4,
                           standardize=True, fit_intercept=True, sample_weight=None,
                           penalty_factor=None, early_stop=early_stop, tol=1e-9, max_iter=200,
                           dtype=np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["loop", "vmap"])
@pytest.mark.parametrize("early_stop", [False, True])
def test_working_set_growth_gives_the_same_path(tissue, early_stop, mode):
    # A lane that overflows resumes from the state it stopped in (warm start, gradient, last
    # lambda and deviance ratio for glmnet's stopping rule): the path, its length included, is
    # the one a single large capacity gives.
    X, y, _ = tissue
    prob = _grown_problem(X, y, early_stop)
    small_k = solve_lanes(prob, prob.lanes(k0=4), mode=mode)
    big_k = solve_lanes(prob, prob.lanes(k0=64), mode=mode)
    assert len(small_k.capacities) > 2, "k0=4 must overflow and grow"
    assert big_k.capacities == (64,)
    length = big_k.path_length()[0]
    if early_stop:
        assert length < len(prob.lambdas), "the stopping rule must end this path early"
    assert small_k.path_length()[0] == length
    np.testing.assert_allclose(small_k.dense_coef(0, prob.p)[:length], big_k.dense_coef(0, prob.p)[:length],
                               atol=1e-7)
    np.testing.assert_allclose(small_k.deviance[0, :length], big_k.deviance[0, :length], rtol=1e-7)


@pytest.mark.parametrize("early_stop", [False, True])
def test_a_looped_lane_steps_only_through_its_lambdas_with_the_scans_outputs(tissue, monkeypatch, early_stop):
    # A looped lane runs its lambdas from its segment's start to its stop or early stop, not the
    # whole padded grid; every output -- the skipped lambdas' status, NaN deviance and carried
    # intercept included -- is what the scan over the whole grid gives. Resumed segments
    # (k0=4 overflows), early stops and the grid's padding (40 lambdas in a bucket of 64) occur.
    import kernels
    from jaxlasso._engine import executables

    X, y, _ = tissue
    prob = _grown_problem(X, y, early_stop)
    W = np.ones((4, len(y)))
    for f in range(1, 4):
        W[f, f::3] = 0.0  # held-out rows, as CV folds
    lanes = Lanes(W=W, is_master=np.array([True, False, False, False]), keep_eta=True, k0=4)
    runs = {}
    for ranged in (True, False):
        monkeypatch.setattr(kernels.path, "_RANGE_LOOP", ranged)
        executables._RELEASER.release(0, 1)  # the other setting is another program
        with configure(cache_dir="off"):
            runs[ranged] = solve_lanes(prob, lanes, mode="loop")
    executables._RELEASER.release(0, 1)
    assert len(runs[True].capacities) > 2
    if early_stop:
        assert runs[True].path_length()[0] < len(prob.lambdas)
    for field in ("status", "deviance", "intercept", "idx", "coef", "n_iter", "n_kkt_rounds",
                  "ws_needed", "kkt_gap", "eta", "null_deviance"):
        np.testing.assert_array_equal(getattr(runs[True], field), getattr(runs[False], field), err_msg=field)


def test_one_lanes_loop_equals_the_scan_for_any_start_and_stop(monkeypatch):
    # The kernel's outputs of every lambda -- those before start, beyond stop or the grid, after an
    # overflow or early stop included -- and its end state are the scan's, bit for bit, also for
    # a segment resumed from an overflowed lane's end state.
    import jax.numpy as jnp

    import kernels.path as kpath
    from jaxlasso._engine import design_arrays, precision_scope
    from kernels import Problem, Settings, Status, fresh_state
    from kernels.batched import single_solver

    X, y = synthetic(30, 60, seed=4)
    lam = jnp.asarray(jaxlasso.logistic_path(X, y, n_lambdas=16, lambda_min_ratio=1e-4, early_stop=False).lambdas)
    runs = {}
    with precision_scope(np.float64):
        problem = Problem(*design_arrays(X, jnp.float64), jnp.asarray(y), jnp.ones(30), jnp.ones(60),
                          jnp.asarray(1.0))
        settings = Settings(jnp.asarray(1e-7), jnp.asarray(200, jnp.int32), jnp.asarray(1000, jnp.int32),
                            jnp.asarray(True))
        for ranged in (True, False):
            monkeypatch.setattr(kpath, "_RANGE_LOOP", ranged)
            small, large = (single_solver.__wrapped__(k=k, fit_intercept=True, standardize=True) for k in (4, 32))
            got = []
            for start, stop in [(0, 16), (3, 10), (12, 5), (0, 40), (20, 30), (-2, 8), (5, 5)]:
                for fn in (small, large):
                    got.append(jax.tree.map(np.asarray, fn(problem, lam, fresh_state(60, jnp.float64),
                                                           jnp.asarray(start, jnp.int32), jnp.asarray(stop, jnp.int32),
                                                           settings, jnp.asarray(True))))
            out, _, end = got[0]  # k = 4 from the start: it overflows
            at = int(np.argmax(out.status == Status.OVERFLOW))
            assert out.status[at] == Status.OVERFLOW
            got.append(jax.tree.map(np.asarray, large(problem, lam, jax.tree.map(jnp.asarray, end),
                                                      jnp.asarray(at, jnp.int32), jnp.asarray(16, jnp.int32),
                                                      settings, jnp.asarray(True))))
            runs[ranged] = got
    assert (runs[True][1][0].status == Status.SKIPPED).any()  # (0, 16) at k = 32: an early stop
    for a, b in zip(runs[True], runs[False]):
        jax.tree.map(np.testing.assert_array_equal, a, b)


def test_shape_buckets_pad_little_above_16():
    """Powers of two up to 16 (tiny problems share one program); above, 8 buckets per octave, so
    padding adds under 12.5% to a dimension (each padded row is a row of every pass over the
    design). Sizes never decrease with the dimension, and POW2_UP_TO is a power of two."""
    from jaxlasso._engine import bucket_size
    from jaxlasso._engine.shapes import POW2_UP_TO

    assert POW2_UP_TO & (POW2_UP_TO - 1) == 0
    assert [bucket_size(x) for x in (1, 2, 3, 5, 9, 16)] == [1, 2, 4, 8, 16, 16]
    assert [bucket_size(x) for x in (17, 19, 33, 34, 40, 48, 63, 64, 65, 111, 200_000)] == \
        [18, 20, 36, 36, 40, 48, 64, 64, 72, 112, 212_992]
    xs = np.arange(17, 5000)
    b = np.array([bucket_size(int(x)) for x in xs])
    assert (b >= xs).all() and (b < 1.125 * xs).all() and (np.diff(b) >= 0).all()


def test_row_padding_changes_no_result(monkeypatch):
    """34 rows solved padded to 36 (the buckets) and to 64 (powers of two up to 64): the same
    path and CV to rounding -- padded rows carry zero weight in every lane."""
    import jaxlasso._engine.shapes as shapes

    X, y = synthetic(34, 60, seed=11)
    fits = {}
    for limit in (16, 64):
        monkeypatch.setattr(shapes, "POW2_UP_TO", limit)
        fits[limit] = (shapes.bucket_size(34), jaxlasso.logistic_path(X, y, n_lambdas=30),
                       jaxlasso.cv_logistic_path(X, y, nfolds=5, seed=2, n_lambdas=30))
    (b16, path16, cv16), (b64, path64, cv64) = fits[16], fits[64]
    assert (b16, b64) == (36, 64)
    assert len(path16.lambdas) == len(path64.lambdas) and (path16.coef != 0).sum() > 30
    np.testing.assert_allclose(path16.coef, path64.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(path16.intercept, path64.intercept, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(cv16.cv_mean, cv64.cv_mean, rtol=1e-7)
    assert (cv16.index_min, cv16.index_1se) == (cv64.index_min, cv64.index_1se)


def test_capacity_growth_levels():
    from jaxlasso._engine import grow_capacity

    # Levels 2^j and 1.5 * 2^j holding what was needed, at least 2.5x the old capacity below
    # 256 slots (fewer programs to compile) and 1.5x from there on (less padding to solve).
    assert grow_capacity(32, 33, 20000) == 96
    assert grow_capacity(96, 97, 20000) == 256
    assert grow_capacity(128, 300, 20000) == 384  # what the lambda needed, when more
    assert grow_capacity(256, 257, 20000) == 384
    assert grow_capacity(512, 520, 20000) == 768  # not 1024: half the Gram / Cholesky work
    assert grow_capacity(256, 700, 20000) == 768
    assert grow_capacity(256, 769, 20000) == 1024
    assert grow_capacity(768, 800, 1000) == 1000  # capped at the number of features
    assert grow_capacity(32, 5000, 20000) == 128  # at most MAX_GROWTH = 4 times over
    assert grow_capacity(256, 5000, 20000) == 1024
    k, seen = 16, [16]
    while k < 5000:
        k = grow_capacity(k, k + 1, 10**6)
        seen.append(k)
    assert seen[:5] == [16, 48, 128, 384, 768]
    assert all(b >= (2.5 if a < 256 else 1.5) * a for a, b in zip(seen, seen[1:]))
    assert all(x & (x - 1) == 0 or (x // 3) & (x // 3 - 1) == 0 and x % 3 == 0 for x in seen)
    # The smallest level that holds a target, with no growth factor (a starting capacity).
    from jaxlasso._engine.shapes import capacity_level
    assert [capacity_level(t, 20000) for t in (32, 33, 48, 49, 64, 65, 96, 97)] == [32, 48, 48, 64, 64, 96, 96, 128]
    assert capacity_level(700, 500) == 500


@pytest.mark.slow
def test_float32_accuracy(tissue):
    X, y, _ = tissue
    f64 = jaxlasso.logistic_path(X, y, n_lambdas=30)
    f32 = jaxlasso.logistic_path(X, y, n_lambdas=30, dtype=np.float32)
    assert f32.info["dtype"] == "float32"
    o64 = jaxlasso.logistic_objective(X, y, f64.coef, f64.intercept, f64.lambdas)
    o32 = jaxlasso.logistic_objective(X, y, f32.coef, f32.intercept, f32.lambdas)
    # float32 objectives within 1e-4 relative of float64 (measured: ~1e-6 on this set).
    assert np.max((o32 - o64) / o64) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_solver_products_ask_for_full_precision(small, mode):
    """Every matrix product of a float32 solve is lowered with precision HIGHEST.

    JAX's default float32 product on GPUs is TensorFloat-32 (~1e-3 relative error): a float32
    path on an H200 then never reached its KKT tolerance. On CPU the precision changes no
    number, so the lowered program itself is checked.
    """
    import kernels

    name = "single_solver" if mode == "loop" else "lanes_solver"
    real = getattr(kernels, name)
    dots = []

    def spy(**kw):
        fn = real(**kw)

        def call(*args):
            text = fn.lower(*args).as_text()
            dots.extend(line for line in text.splitlines() if "dot_general" in line)
            return fn(*args)

        return call

    X, y = small
    with configure(lane_mode=mode, **{name: spy}):
        jaxlasso.cv_logistic_path(X, y, n_lambdas=5, nfolds=3, dtype=np.float32)
    assert dots, "no matrix product found in the lowered solver"
    assert all("precision = [HIGHEST, HIGHEST]" in line for line in dots), dots[:3]


@pytest.mark.slow
def test_vmapped_lanes_never_copy_the_design_per_lane():
    """The vmapped solver's temporaries hold no per-lane copies of the design.

    A ``lax.cond`` on a per-lane flag under ``vmap`` becomes a select that first broadcasts every
    operand -- the closed-over design too -- to the lane axis: B copies of X and a batched
    product over them (a 200 x 20k CV on an H100 ran 43 s instead of 3 s). Measured on this
    problem (8 lanes): temporaries 1.5x the design with the select of the fresh state, 16x (two
    copies per lane) with the ``lax.cond`` back -- the mutation this test catches (in
    test_screen.py too: 8x vs 35x for 16 lanes of two stacked datasets).
    """
    records = []
    X, y = synthetic(40, 2000, seed=5)
    with configure(lane_mode="vmap", **spy_solver_memory("lanes_solver", records)):
        jaxlasso.cv_logistic_path(X, y, n_lambdas=20, nfolds=4)
    assert records
    for temp, design, lanes in records:
        assert lanes >= 5  # 4 folds and the full-data lane
        assert temp < lanes * design, (temp, design, lanes)  # the bug adds two copies per lane


@pytest.mark.slow
def test_vmapped_lanes_that_skip_a_lambda_run_no_newton_iterations(monkeypatch):
    """Under vmap the KKT-round body runs for every lane, finished or skipping ones included,
    and its results are discarded for them; their Newton loops must not run, or they iterate on
    a stale state and hold every other lane in lockstep (vmapped CV of Gaussian 200 x 5,000 on
    CPU: 20 s with them, 3.9 s without). Lane 1 here skips every lambda (its labels are flipped,
    so the spy can tell the lanes apart); mutation-checked by passing ``settings.max_iter``
    to every lane again.
    """
    import jax.numpy as jnp

    import kernels.path as kpath
    from jaxlasso._engine import design_arrays, precision_scope
    from kernels import Problem, Settings, fresh_state
    from kernels.batched import lanes_solver

    X, y = synthetic(30, 60, seed=2)
    lam = jaxlasso.logistic_path(X, y, n_lambdas=8).lambdas
    seen = []
    real = kpath.newton_solve

    def spy(ws, y_lane, w, b, b0, eta, tol, max_iter, *rest, **kw):
        jax.debug.callback(lambda first_y, it: seen.append((float(first_y), int(it))), y_lane[0], max_iter)
        return real(ws, y_lane, w, b, b0, eta, tol, max_iter, *rest, **kw)

    monkeypatch.setattr(kpath, "newton_solve", spy)
    with precision_scope(np.float64):
        problem = Problem(*design_arrays(X, jnp.float64), jnp.asarray(np.stack([y, 1 - y])),
                          jnp.ones((2, 30)), jnp.ones(60), jnp.asarray(1.0))
        settings = Settings(jnp.asarray(1e-7), jnp.asarray(200, jnp.int32), jnp.asarray(1000, jnp.int32),
                            jnp.asarray(False))
        fn = lanes_solver.__wrapped__(k=32, fit_intercept=True, standardize=True, keep_eta=False, y_batched=True)
        out, _, _ = fn(problem, jnp.asarray(lam), fresh_state(60, jnp.float64, (2,)), jnp.asarray([0, 8], jnp.int32),
                       jnp.asarray([8, 8], jnp.int32), settings, jnp.asarray([True, False]))
        jax.effects_barrier()
    n_iter = np.asarray(out.n_iter)
    assert n_iter[0].sum() > 0 and (n_iter[1] == 0).all()
    lane0 = [it for first, it in seen if first == y[0]]
    lane1 = [it for first, it in seen if first == 1 - y[0]]
    assert lane0 and lane1 and len(lane0) == len(lane1)  # the body ran for both lanes
    assert all(it == 200 for it in lane0) and all(it == 0 for it in lane1)


def test_early_stop_shortens_default_grid_only(tissue):
    X, y, _ = tissue
    full = jaxlasso.logistic_path(X, y, lambda_min_ratio=1e-4)
    assert full.early_stopped and len(full.lambdas) < 100
    assert full.deviance_ratio[-1] > 0.999 or np.diff(full.deviance_ratio)[-1] < 1e-5 * full.deviance_ratio[-1]
    user = jaxlasso.logistic_path(X, y, lambdas=np.geomspace(full.lambdas[0], full.lambdas[0] * 1e-4, 100))
    assert not user.early_stopped and len(user.lambdas) == 100
    off = jaxlasso.logistic_path(X, y, lambda_min_ratio=1e-4, early_stop=False)
    assert len(off.lambdas) == 100


# --- invariances -----------------------------------------------------------------------------
def _fit(X, y, **kw):
    return jaxlasso.logistic_path(X, y, tol=1e-10, **kw)


def test_zero_weight_equals_dropped_row(small):
    X, y = small
    w = np.ones(len(y))
    w[[3, 17, 30]] = 0.0
    keep = w > 0
    a = _fit(X, y, sample_weight=w, n_lambdas=25)
    b = _fit(X[keep], y[keep], n_lambdas=25)
    np.testing.assert_allclose(a.lambdas, b.lambdas, rtol=1e-12)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-7)
    np.testing.assert_allclose(a.intercept, b.intercept, atol=1e-7)


@pytest.mark.slow
def test_integer_weights_equal_duplicated_rows(small):
    X, y = small
    counts = np.random.default_rng(5).integers(1, 4, size=len(y))
    a = _fit(X, y, sample_weight=counts.astype(float), n_lambdas=25)
    # Same lambdas: glmnet's default lambda_min_ratio depends on the number of rows.
    b = _fit(np.repeat(X, counts, axis=0), np.repeat(y, counts), lambdas=a.lambdas)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-7)


def test_feature_permutation_permutes_coefficients(small):
    X, y = small
    perm = np.random.default_rng(9).permutation(X.shape[1])
    a = _fit(X, y, n_lambdas=25)
    b = _fit(X[:, perm], y, n_lambdas=25)
    np.testing.assert_allclose(a.coef[:, perm], b.coef, atol=1e-8)


def test_row_permutation_changes_nothing(small):
    X, y = small
    perm = np.random.default_rng(10).permutation(len(y))
    a = _fit(X, y, n_lambdas=25)
    b = _fit(X[perm], y[perm], n_lambdas=25)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-8)


def test_column_rescaling_changes_nothing_under_standardize(small):
    X, y = small
    scale = np.exp(np.random.default_rng(3).uniform(-3, 3, X.shape[1]))
    shift = np.random.default_rng(4).uniform(-100, 100, X.shape[1])
    a = _fit(X, y, n_lambdas=25)
    b = _fit(X * scale + shift, y, n_lambdas=25)
    np.testing.assert_allclose(a.coef, b.coef * scale, atol=1e-7)
    np.testing.assert_allclose(a.deviance_ratio, b.deviance_ratio, atol=1e-9)


@pytest.mark.slow
def test_vmap_over_lanes_equals_python_loop(small):
    X, y = small
    prob = PreparedProblem(X, y, l1_ratio=0.8, lambdas=None, n_lambdas=20, lambda_min_ratio=None,
                           standardize=True, fit_intercept=True, sample_weight=None,
                           penalty_factor=None, early_stop=False, tol=1e-10, max_iter=200,
                           dtype=np.float64)
    rng = np.random.default_rng(0)
    W = np.stack([rng.poisson(1.0, len(y)).astype(float) + (np.arange(len(y)) < 4) for _ in range(4)])
    batched = solve_lanes(prob, Lanes(W=W, keep_eta=True, k0=32), mode="vmap")
    mapped = solve_lanes(prob, Lanes(W=W, keep_eta=True, k0=32), mode="loop")
    for b in range(4):
        single = solve_lanes(prob, Lanes(W=W[b:b + 1], keep_eta=True, k0=32))
        ref = single.dense_coef(0, prob.p)
        np.testing.assert_allclose(batched.dense_coef(b, prob.p), ref, atol=1e-9)
        np.testing.assert_allclose(mapped.dense_coef(b, prob.p), ref, atol=1e-9)
        np.testing.assert_allclose(batched.eta[b], single.eta[0], atol=1e-8)
    # Lanes advance in lockstep but each reports its own iteration counts.
    assert batched.n_iter.shape == (4, len(prob.lambdas))


@pytest.mark.slow
def test_vmapped_lanes_in_chunks_equal_one_call(small):
    """More lanes than ``JAXLASSO_VMAP_LANES`` run as chunks of one executable, with the same results.

    The master lane sits in the middle of the batch (chunks are formed masters first, results
    put back in the caller's order) and its early stop must bound the lanes of later chunks, as
    it ends every lane of a single vmapped call -- lanes resumed after a working-set overflow
    included (they ran on to the end of the grid before). Mutation-checked: without the bound
    the later chunks' or resumed lanes run past the master's stop; without the reordering the
    lanes come back shuffled.
    """
    import kernels

    X, y = small
    prob = PreparedProblem(X, y, l1_ratio=1.0, lambdas=None, n_lambdas=100, lambda_min_ratio=1e-4,
                           standardize=True, fit_intercept=True, sample_weight=None,
                           penalty_factor=None, early_stop=True, tol=1e-10, max_iter=200,
                           dtype=np.float64)
    rng = np.random.default_rng(7)
    W = np.stack([rng.poisson(1.0, len(y)).astype(float) + (np.arange(len(y)) < 4) for _ in range(7)])
    W[3] = 1.0
    master = np.arange(7) == 3
    lanes = Lanes(W=W, is_master=master, k0=32)
    calls = []
    real = kernels.lanes_solver

    def spy(**statics):
        fn = real(**statics)

        def call(problem, *args):
            calls.append(problem.w.shape[0])
            return fn(problem, *args)

        return call

    with configure(lanes_solver=spy, vmap_lanes=0):
        one = solve_lanes(prob, lanes, mode="vmap")
    assert set(calls) == {8}
    stop = int(one.path_length()[3])
    assert stop < len(prob.lambdas), "the master must stop early for this test to mean anything"
    calls.clear()
    with configure(lanes_solver=spy, vmap_lanes="3"):
        chunked = solve_lanes(prob, lanes, mode="vmap")
    assert set(calls) == {4} and len(calls) >= 3  # three chunks, all padded to one lane bucket
    # Every lane ends at the master's stop: in one call, in chunks, and in the lane loop --
    # also lanes resumed after a working-set overflow without the master.
    assert len(one.capacities) > 1 and set(one.path_length()) == {stop}
    looped = solve_lanes(prob, lanes, mode="loop")
    np.testing.assert_array_equal(looped.status, one.status)
    np.testing.assert_array_equal(chunked.path_length(), one.path_length())
    np.testing.assert_array_equal(chunked.status, one.status)
    for b in range(7):
        np.testing.assert_allclose(chunked.dense_coef(b, prob.p), one.dense_coef(b, prob.p), atol=1e-9)
        np.testing.assert_allclose(one.dense_coef(b, prob.p), looped.dense_coef(b, prob.p), atol=1e-9)
    np.testing.assert_allclose(chunked.null_deviance, one.null_deviance, rtol=1e-12)
    np.testing.assert_allclose(chunked.xs, one.xs, rtol=1e-12)
    with pytest.raises(ValueError, match="JAXLASSO_VMAP_LANES must be a whole number >= 0.*got '-2'"):
        EngineConfig.from_env({"JAXLASSO_VMAP_LANES": "-2"})


@pytest.mark.slow
def test_default_lane_mode_by_backend_and_rows(monkeypatch):
    """CPU: loop. Accelerators: vmap for small n, loop from VMAP_MAX_ROWS rows on (H100: 10-fold CV
    of 1000 x 20k 7.7 s vmapped vs 3.2 s looped, seed-like 0.50 vs 0.82). The engine asks with
    the caller's row count, before any padding to a bucket (mutation-checked: 121 rows are
    padded to 128, which would loop)."""
    from jaxlasso._engine import VMAP_MAX_ROWS, bucket_size, default_lane_mode

    with configure(lane_mode=None):
        for backend, expect in [("cpu", ["loop"] * 4), ("gpu", ["vmap", "vmap", "loop", "vmap"])]:
            got = [default_lane_mode(n, backend) for n in (16, VMAP_MAX_ROWS - 1, VMAP_MAX_ROWS, None)]
            assert got == expect, backend
            with configure(lane_mode="vmap"):
                assert default_lane_mode(10_000, backend) == "vmap"

        n = 121
        assert n < VMAP_MAX_ROWS <= bucket_size(n)
        X, y = synthetic(n, 30, seed=4)
        prob = PreparedProblem(X, y, l1_ratio=1.0, lambdas=None, n_lambdas=5, lambda_min_ratio=None,
                               standardize=True, fit_intercept=True, sample_weight=None, penalty_factor=None,
                               early_stop=False, tol=1e-7, max_iter=200, dtype=np.float64)
        # An accelerator's default: JAX's public backend query answers "gpu" (CPU arrays still).
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        out = solve_lanes(prob, Lanes(W=np.ones((2, n))))
    assert out.mode == "vmap"


@pytest.mark.slow
def test_stacked_datasets_lanes_stop_with_their_own_master():
    """Stacked datasets (``screen``'s batched mode) each end their lanes at their own master's stop,
    lanes resumed after a working-set overflow included -- as each dataset's lane loop does.
    Mutation-checked: one bound for the whole batch mixes the datasets' stops."""
    from jaxlasso._engine import solve_datasets

    rng = np.random.default_rng(9)
    problems, entries, loops = [], [], []
    for seed, n_lambdas in ((11, 100), (12, 90)):
        X, y = synthetic(50, 80, seed=seed)
        prob = PreparedProblem(X, y, l1_ratio=1.0, lambdas=None, n_lambdas=n_lambdas, lambda_min_ratio=1e-4,
                               standardize=True, fit_intercept=True, sample_weight=None, penalty_factor=None,
                               early_stop=True, tol=1e-10, max_iter=200, dtype=np.float64)
        W = np.stack([rng.poisson(1.0, len(y)).astype(float) + (np.arange(len(y)) < 4) for _ in range(4)])
        master = np.arange(4) == seed - 10  # the master sits at lane 1, then 2
        W[master] = 1.0
        problems.append(prob)
        entries.append(Lanes(W=W, is_master=master, k0=32))
        loops.append(solve_lanes(prob, entries[-1], mode="loop"))
    outs, _ = solve_datasets(problems, entries)
    assert max(len(o.capacities) for o in outs) > 1, "some lane must overflow and resume"
    stops = [int(loop.path_length()[m]) for loop, m in zip(loops, (1, 2))]
    assert stops[0] != stops[1]
    for out, loop, stop in zip(outs, loops, stops):
        assert set(out.path_length()) == {stop}
        np.testing.assert_array_equal(out.status, loop.status)


def test_threaded_lanes_are_bit_identical(small):
    """Looped lanes solved in worker threads give exactly the serial results.

    JAX's x64 scope is per thread: a worker that built its arrays outside it made the weights
    float32 (cv means moved by 3e-11); the comparison is exact so that cannot come back.
    """
    X, y = small
    fits = {}
    for threads in ("1", "2"):
        with configure(lane_mode="loop", lane_threads=threads):
            fits[threads] = jaxlasso.cv_logistic_path(X, y, nfolds=5, n_lambdas=30, keep=True)
    np.testing.assert_array_equal(fits["1"].cv_mean, fits["2"].cv_mean)
    np.testing.assert_array_equal(fits["1"].prevalidated, fits["2"].prevalidated)
    with pytest.raises(ValueError, match="JAXLASSO_LANE_THREADS"):
        EngineConfig.from_env({"JAXLASSO_LANE_THREADS": "two"})


def test_lane_threads_default_on_every_backend(monkeypatch):
    """One thread per usable core, at most 4, on CPUs and accelerators alike (H200: 4 threads cut
    looped 10-fold CVs of 200 x 20k and 1000 x 20k by ~20%; NOTES change 33); never more than
    the lanes; the variable overrides."""
    from jaxlasso._engine import lane_threads

    with configure(lane_threads=None):
        for backend in ("cpu", "gpu"):
            monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
            for cores, lanes, expect in [(2, 10, 2), (16, 10, 4), (16, 3, 3), (1, 10, 1)]:
                assert lane_threads(lanes, cores) == expect, (backend, cores, lanes)
        assert 1 <= lane_threads(10) <= 4  # the process's own cores
    with configure(lane_threads=3):
        assert lane_threads(10) == 3 and lane_threads(2) == 2


def _blas_threads() -> dict:
    """{library path: threads} of the BLAS libraries loaded (SciPy's LAPACK included)."""
    import scipy.linalg.cython_lapack  # noqa: F401  (loads the library the kernels call)
    from threadpoolctl import threadpool_info

    return {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


@pytest.mark.slow
def test_blas_threads_limited_during_a_solve(small):
    """The kernels' LAPACK calls (SciPy's OpenBLAS) run with one BLAS thread while a path is
    solved -- its own pool fought XLA's threads for the cores: 200 x 20k CV 2.68 -> 1.10 s
    (NOTES change 36) -- and the caller's setting is back afterwards; 0 leaves BLAS alone."""
    from threadpoolctl import threadpool_limits

    import kernels

    blas = _blas_threads
    seen = []
    real = kernels.single_solver

    def spy(**kw):
        fn = real(**kw)

        def call(*args):
            seen.append(blas())
            return fn(*args)
        return call

    X, y = small
    default = EngineConfig.from_env({}).blas_threads
    assert default == 1
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        assert before and set(before.values()) == {2}
        with configure(single_solver=spy, lane_mode="loop", blas_threads=default):
            jaxlasso.logistic_path(X, y, n_lambdas=5)
        assert seen and all(set(c.values()) == {1} for c in seen)
        assert blas() == before
        seen.clear()
        with configure(single_solver=spy, lane_mode="loop", blas_threads="0"):
            jaxlasso.logistic_path(X, y, n_lambdas=5)
        assert seen and all(c == before for c in seen)
    with pytest.raises(ValueError, match="JAXLASSO_BLAS_THREADS"):
        EngineConfig.from_env({"JAXLASSO_BLAS_THREADS": "one"})


def test_overlapping_blas_scopes_restore_once_all_have_left():
    """Solves in two threads overlap: the first to leave must not lift the other's limit, and
    the last must restore the caller's setting (mutation-checked: a plain limit per scope ends
    with BLAS at one thread)."""
    from threadpoolctl import threadpool_limits

    from jaxlasso._engine import blas_scope

    def blas():
        return set(_blas_threads().values())

    with configure(blas_threads=1), threadpool_limits(limits=2, user_api="blas"):
        a, b = blas_scope(), blas_scope()
        a.__enter__()
        b.__enter__()
        assert blas() == {1}
        a.__exit__(None, None, None)
        assert blas() == {1}, "the other solve still runs"
        b.__exit__(None, None, None)
        assert blas() == {2}


@pytest.mark.slow
def test_host_buffers_reused_across_solves_without_mixing_data():
    """Solves of one shape reuse the design's host buffers (page faults of fresh memory cost a
    1000 x 20k path a quarter of its time; NOTES change 37), yet every result equals the one
    computed in fresh buffers -- also for two solves at once in two threads, which must never
    share a buffer (mutation-checked: buffers given back before the solve ends mix the data)."""
    from concurrent.futures import ThreadPoolExecutor

    from jaxlasso._engine import HOST_BUFFERS

    data = [synthetic(60, 300, seed=s) for s in (1, 2, 3, 4)]
    HOST_BUFFERS.clear()
    with configure(buffer_pool_bytes=0):
        fresh = [jaxlasso.logistic_path(X, y, n_lambdas=20) for X, y in data]
    assert HOST_BUFFERS.nbytes == 0

    reused = HOST_BUFFERS.reused
    with configure(buffer_pool_bytes=EngineConfig.from_env({}).buffer_pool_bytes):
        first = jaxlasso.logistic_path(*data[0], n_lambdas=20)
        assert HOST_BUFFERS.nbytes > 0 and HOST_BUFFERS.reused == reused  # fresh buffers, given back
        held = HOST_BUFFERS.nbytes
        again = jaxlasso.logistic_path(*data[1], n_lambdas=20)
        # The design's two buffers (X^T, the float32 copy of X) come from the pool, and go back.
        assert HOST_BUFFERS.reused == reused + 2 and HOST_BUFFERS.nbytes == held, "the second solve reuses them"
    for got, want in [(first, fresh[0]), (again, fresh[1])]:
        np.testing.assert_array_equal(got.coef, want.coef)
        np.testing.assert_array_equal(got.intercept, want.intercept)
        with ThreadPoolExecutor(2) as pool:
            for _ in range(3):
                fits = list(pool.map(lambda d: jaxlasso.logistic_path(*d, n_lambdas=20), data))
                for got, want in zip(fits, fresh):
                    np.testing.assert_array_equal(got.coef, want.coef)
    HOST_BUFFERS.clear()
    assert HOST_BUFFERS.nbytes == 0


def test_host_buffer_pool_bounds_what_it_keeps():
    """At most max_bytes are kept, the first returned leaving first; a solve of another shape
    evicts the shapes before it; 0 keeps nothing; a malformed size is a clear error."""
    from jaxlasso._engine import HostBufferPool

    pool = HostBufferPool(max_bytes=3 * 800)
    a, b, c = pool.take((10, 10), np.float64), pool.take((10, 10), np.float64), pool.take((5, 20), np.float64)
    e = pool.take((5, 20), np.float64)
    pool.give([a, b, c, e])  # over the limit: the first returned, a, leaves
    assert pool.nbytes == 2400
    assert pool.take((5, 20), np.float64) is e and pool.take((5, 20), np.float64) is c
    assert pool.take((10, 10), np.float64) is b
    pool.give([b, c])
    d = pool.take((20, 5), np.float64)
    pool.give([d])  # another shape: the earlier solve's buffers go
    assert pool.nbytes == 800 and pool.take((20, 5), np.float64) is d
    with configure(buffer_pool_bytes="0"):
        empty = HostBufferPool()
        empty.give([np.zeros(4)])
        assert empty.nbytes == 0
    with pytest.raises(ValueError, match="JAXLASSO_BUFFER_POOL"):
        EngineConfig.from_env({"JAXLASSO_BUFFER_POOL": "lots"})


def test_memory_check_counts_the_lanes_solved_at_once(small):
    """Looped lanes in threads are in memory together: a budget that holds one lane's solve but
    not four refuses four threads and accepts one."""
    from jaxlasso._engine import estimate_bytes

    X, y = small
    n, p = X.shape
    one, four = estimate_bytes(n, p, 1, 10), estimate_bytes(n, p, 4, 10)
    assert four > one
    budget = dict(lane_mode="loop", max_memory=str((one + four) // 2))
    with configure(lane_threads=4, **budget), pytest.raises(ValueError, match=r"4 lane\(s\) solved together"):
        jaxlasso.cv_logistic_path(X, y, nfolds=5, n_lambdas=10)
    with configure(lane_threads=1, **budget):
        jaxlasso.cv_logistic_path(X, y, nfolds=5, n_lambdas=10)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_a_large_step_down_the_grid_keeps_the_working_set_small(shared_data, mode):
    """From lambda_max straight to the grid's end on ALL BCR/ABL (12,625 genes): thousands of genes
    violate the KKT conditions at the intercept-only fit, of which the solution keeps ~40. The
    working set takes the violators a slot-full at a time instead of growing to hold them all
    (8,192 slots, each solve a k x k Gram and Cholesky), and reaches the objective of the
    100-lambda path at that lambda."""
    from jaxlasso._engine import configure

    X, y, _ = shared_data("all_bcrabl")
    # Both solves at a tolerance tighter than the default, so that their objectives agree to 1e-7.
    full = jaxlasso.logistic_path(X, y, early_stop=False, tol=1e-7)
    lam = full.lambdas[[0, len(full.lambdas) - 1]]
    with configure(lane_mode=mode):
        cv = jaxlasso.cv_logistic_path(X, y, lambdas=lam, nfolds=3, seed=1, early_stop=False, keep=True,
                                       tol=1e-7)
    jump = cv.path
    # 32 -> 128 here; growing to hold every violator went to 8,192.
    assert max(cv.info["working_set_capacities"]) < 512
    assert (jump.coef[-1] != 0).sum() > 30
    o_jump = jaxlasso.logistic_objective(X, y, jump.coef[-1], jump.intercept[-1], lam[-1])
    o_full = jaxlasso.logistic_objective(X, y, full.coef[-1], full.intercept[-1], lam[-1])
    assert abs(o_jump - o_full) <= 1e-7 * o_full
    assert np.all(np.isfinite(cv.cv_mean))
