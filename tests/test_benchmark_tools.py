"""The benchmark helpers that turn raw measurements into numbers (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from ab import paired  # noqa: E402
from datasets import bootstrap_weights, fingerprint, foldid_for  # noqa: E402
from gpu_compile_probe import ALARM, COMPILED, fusion_text, harvest  # noqa: E402
from xla_profile import exclusive_times  # noqa: E402


def test_exclusive_times_subtract_nested_events_per_thread():
    ev = [
        {"ph": "X", "name": "while", "ts": 0, "dur": 100, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot", "ts": 10, "dur": 30, "pid": 1, "tid": 1},
        {"ph": "X", "name": "chol", "ts": 50, "dur": 20, "pid": 1, "tid": 1},
        {"ph": "X", "name": "dot", "ts": 55, "dur": 5, "pid": 1, "tid": 1},  # nested in chol
        {"ph": "X", "name": "dot", "ts": 20, "dur": 40, "pid": 1, "tid": 2},  # other thread: not nested
        {"ph": "i", "name": "marker", "ts": 5},
    ]
    own, count = exclusive_times(ev)
    assert own == {"while": 50, "dot": 75, "chol": 15}
    assert count == {"while": 1, "dot": 3, "chol": 1}


def test_device_rows_are_rebuilt_identically_on_the_cpu_side():
    # The GPU half and the glmnet half of the accelerator table must see the same data, folds
    # and resampling weights; these are pure functions of their seeds.
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([0.0, 1.0, 1.0, 0.0])
    assert fingerprint(X, y) == fingerprint(X.copy(), y.copy())
    assert fingerprint(X, y) != fingerprint(X + 1e-9, y)
    np.testing.assert_array_equal(foldid_for(np.zeros(23)), foldid_for(np.zeros(23)))
    assert sorted(np.bincount(foldid_for(np.zeros(23)))[1:]) == [2, 2, 2, 2, 2, 2, 2, 3, 3, 3]
    W = bootstrap_weights(30, 5)
    np.testing.assert_array_equal(W, bootstrap_weights(30, 5))
    assert W.shape == (5, 30) and np.all(W.sum(axis=1) == 30)


def test_paired_ab_alternates_the_order_and_pairs_the_ratios():
    # A machine that slows down over time: every run takes longer than the one before. Pairs
    # alternate their order (A B, B A, ...) so neither variant always runs second, and each
    # ratio compares the two runs of one pair.
    calls = []

    def timed(name):
        calls.append(name)
        return len(calls) * (2.0 if name == "B" else 1.0)

    secs, ratio = paired(timed, 3)
    assert "".join(calls) == "ABBAAB"
    assert secs == {"A": [1.0, 4.0, 5.0], "B": [4.0, 6.0, 12.0]}
    np.testing.assert_allclose(ratio, [4.0, 1.5, 2.4])


_HLO = """HloModule jit_one

%fused_computation.25 (param_0.1: f64[128,48]) -> f64[128] {
  %param_0.1 = f64[128,48]{1,0} parameter(0)
  %constant.3 = f64[] constant(0)
  ROOT %reduce.7 = f64[128]{0} reduce(%param_0.1, %constant.3), dimensions={1}, to_apply=%add
}

%fused_computation.26 (param_0.2: f64[4]) -> f64[4] {
  ROOT %param_0.2 = f64[4]{0} parameter(0)
}

ENTRY %main.9 (Arg_0.1: f64[128,48]) -> f64[128] {
  %Arg_0.1 = f64[128,48]{1,0} parameter(0)
  ROOT %input_reduce_fusion.25 = f64[128]{0} fusion(%Arg_0.1), kind=kInput, calls=%fused_computation.25
}
"""


def test_compile_probe_finds_the_fusion_that_xla_names_slow(tmp_path):
    # The GPU compile probe must turn XLA's alarm into the text of the fusion it names (and
    # nothing else), and keep only small files of a dump that comes back from the device.
    log = ("E1126 15:15:57.357092 587 slow_operation_alarm.cc:73]\n****\n[Compiling module "
           "input_reduce_fusion.25 for GPU] Very slow compile? If you want to file a bug...\n"
           "Finished XLA compilation of jit(one) in 6.25 sec\n")
    assert ALARM.findall(log) == ["input_reduce_fusion.25"]
    assert COMPILED.findall(log) == [("jit(one)", "6.25")]
    text = fusion_text(_HLO, "input_reduce_fusion.25")
    assert "kind=kInput" in text and "%reduce.7" in text and "fused_computation.26" not in text
    assert "not in the module" in fusion_text(_HLO, "input_reduce_fusion.2")
    dump = tmp_path / "dump"
    (dump / "module_1.jit_one").mkdir(parents=True)
    (dump / "module_1.jit_one" / "module_1.jit_one.sm_90_gpu_after_optimizations.txt").write_text(_HLO)
    (dump / "module_1.jit_one" / "module_1.jit_one.before_optimizations.txt").write_text("big")
    harvest(dump, ["input_reduce_fusion.25"], tmp_path)
    assert not dump.exists()
    assert "%reduce.7" in (tmp_path / "slow-fusions.txt").read_text()
    assert len(list(tmp_path.glob("hlo-0-*after_optimizations.txt.gz"))) == 1


def test_device_rows_name_their_lane_mode(monkeypatch):
    # ``cv-loop`` / ``boot100-vmap`` force a mode for that row only; other rows record the
    # library's default for their row count (what a user gets), not a global guess.
    import jax
    from device_run import lane_mode

    from jaxlasso._engine import configure, current, default_lane_mode

    with configure(lane_mode="loop"):
        with lane_mode("boot100-vmap", 10) as used:
            assert used == "vmap" and default_lane_mode(10) == "vmap"
        assert default_lane_mode(10) == "loop"
    with configure(lane_mode=None):
        # An accelerator's default: JAX's public backend query answers "gpu".
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        for n, expect in [(16, "vmap"), (1000, "loop")]:
            with lane_mode("cv", n) as used:
                assert used == expect
        with lane_mode("cv-loop", 16) as used:
            assert used == "loop"
        assert current().lane_mode is None


def test_device_rows_named_on_the_command_line():
    from device_run import plan, select_rows

    assert select_rows(None) == plan(False)
    rows = select_rows(["gauss1000:cv-loop", "seedlike:boot100-loop", "datasets10:screen"])
    assert rows == [("gauss1000", "cv-loop", 3), ("seedlike", "boot100-loop", 3), ("datasets10", "screen", 1)]
    for bad in ["seedlike:cv-batch", "datasets10:cv", "gauss200:cv-threads", "nope:cv", "seedlike"]:
        with pytest.raises(ValueError, match="unknown rows"):
            select_rows([bad])


HARNESS_FACTOR = 2.0
"""How far the bridge's fastest repeat may sit from the plain Rscript's for the same call, either way.

Both are the least disturbed in-R timings of one call on a machine that others share (the medians
moved by 1.5x between runs under load); a harness that timed the R process, its library load or
its wall time instead misses by 4x or more on these shapes, whatever the number of repeats."""

HARNESS_ROUNDS = 3
"""Rounds of five repeats each side, alternated, before the band is judged failed. Under load a
single round's fastest repeat can itself be disturbed (a 0.04 s call seen at 0.08-0.16 s); the
fastest of more repeats approaches the undisturbed time on both sides, while a harness that times
something else stays out of the band however many rounds run."""


@pytest.mark.r
@pytest.mark.slow
@pytest.mark.parametrize("workload,task", [("seedlike", "path"), ("seedlike", "cv"), ("gauss2000x500", "path")])
def test_glmnet_harness_times_the_call_a_user_makes(workload, task):
    # The table's glmnet column comes from the bridge (jaxlasso/r/glmnet_bridge.R, through the
    # Glmnet adapter); benchmarks/glmnet_direct.R is an independent plain Rscript that calls
    # glmnet / cv.glmnet literally on data already loaded. Same data, lambdas and folds.
    from adapters import Glmnet, GlmnetDirect
    from datasets import WORKLOADS
    from run import glmnet_grid

    wl = WORKLOADS[workload]()
    lam = glmnet_grid(wl.X, wl.y)
    foldid = foldid_for(wl.y)
    harness, direct = Glmnet(), GlmnetDirect()
    hs, ds = [], []
    for _ in range(HARNESS_ROUNDS):
        if task == "path":
            h, d = harness.path(wl.X, wl.y, lam, 5), direct.path(wl.X, wl.y, lam, 5)
        else:
            h, d = harness.cv(wl.X, wl.y, lam, foldid, 5), direct.cv(wl.X, wl.y, lam, foldid, 5)
        assert len(h.seconds) == len(d.seconds) == 5
        hs += list(h.seconds)
        ds += list(d.seconds)
        ratio = min(hs) / min(ds)
        if 1 / HARNESS_FACTOR <= ratio <= HARNESS_FACTOR:
            break
    assert 1 / HARNESS_FACTOR <= ratio <= HARNESS_FACTOR, (
        f"{workload} {task}: harness {hs} s vs direct call {ds} s")


def test_workload_groups_expand_in_order_and_unknown_names_are_named():
    from datasets import GROUPS, WORKLOADS, expand_workloads

    assert expand_workloads(["ngep"]) == GROUPS["ngep"]
    assert expand_workloads(["seedlike", "ngep", "gauss2000x500"])[:2] == ["seedlike", "gauss500x5k"]
    assert len(expand_workloads(["ngep", "gauss2000x500"])) == len(GROUPS["ngep"])
    assert all(key in WORKLOADS for keys in GROUPS.values() for key in keys)
    with pytest.raises(ValueError, match="unknown workload 'gauss2000'"):
        expand_workloads(["gauss2000"])


def test_top_variance_keeps_the_most_variable_columns_in_their_order():
    from datasets import Workload, top_variance

    X = np.array([[0.0, 5.0, 1.0, 9.0], [0.0, -5.0, 2.0, -9.0], [0.0, 5.0, 3.0, 9.0]])
    wl = top_variance(Workload("w", X, np.array([0.0, 1.0, 0.0]), "toy"), 2, "top2")
    np.testing.assert_array_equal(wl.X, X[:, [1, 3]])
    assert top_variance(Workload("w", X, np.zeros(3), "toy"), 0.75, "q").X.shape == (3, 3)


def test_compile_log_is_summed_per_executable_and_phase():
    # The lines JAX writes under jax.log_compiles, and a persistent-cache hit of a second process.
    from cold_start import dominant, parse_compile_log

    log = ("Finished tracing run_segment for jit in 0.500000000 sec\n"
           "Finished jaxpr to MLIR module conversion jit(run_segment) in 0.250000000 sec\n"
           "Finished XLA compilation of jit(run_segment) in 2.000000000 sec\n"
           "Finished XLA compilation of jit(run_segment) in 1.000000000 sec\n"
           "Finished XLA compilation of jit(_where) in 0.010000000 sec\n"
           "Persistent compilation cache hit for 'jit_run_segment' with key 'jit_run_segment-abc'\n")
    got = parse_compile_log(log)
    assert got["run_segment"] == {"trace": 0.5, "n_trace": 1, "lower": 0.25, "n_lower": 1, "compile": 3.0,
                                  "n_compile": 2, "cache_hits": 1}
    assert got["_where"] == {"compile": 0.01, "n_compile": 1}
    assert dominant({"executables": got}, top=1) == "run_segment 3.8 s"


def test_factor_reuse_replay_counts_pcg_iterations_and_refreshes():
    """The replay behind NOTES' factor-reuse figures: PCG with the exact factor converges in one
    iteration and with an older weight's factor in a few; weights that never move need one
    refresh over the whole path, weights that jump every lambda need one each time."""
    from factor_reuse import cholesky_preconditioner, pcg, replay

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    H = X.T @ X
    b = rng.standard_normal(8)
    x, it = pcg(lambda u: H @ u, b, cholesky_preconditioner(H))
    assert it == 1
    np.testing.assert_allclose(H @ x, b, rtol=1e-9)
    older = X.T @ (rng.uniform(0.5, 2.0, 60)[:, None] * X)
    assert 1 < pcg(lambda u: H @ u, b, cholesky_preconditioner(older))[1] <= 8  # exact in at most k steps
    supports = [np.arange(k) for k in (2, 3, 5, 8)]
    still = replay(X, supports, [np.full(60, 0.25)] * 4, threshold=2)
    assert still["refreshes"] == 1 and still["pcg_max"] == 1 and still["systems"] == 8
    jumps = [rng.uniform(0.01, 1.0, 60) ** (3 * i + 1) for i in range(4)]
    moving = replay(X, supports, jumps, threshold=2)
    assert moving["refreshes"] > 3 and moving["reuse_gflop"] > still["reuse_gflop"]


def test_factor_reuse_newton_path_reaches_the_lasso_optimum():
    """``factor_reuse.py --model``'s prototype solver (active-set PCG on the Newton model with a
    reused factor) must solve the same problem as jaxlasso before its counts mean anything: on
    a small binomial problem its objective is within 1e-9 of ``logistic_path``'s at every lambda."""
    from factor_reuse import check_newton_path
    from run import glmnet_grid

    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 30))
    y = (X[:, :3].sum(axis=1) + rng.standard_normal(80) > 0).astype(float)
    lam = glmnet_grid(X, y)[:40]
    r = check_newton_path(X, y, lam, threshold=20)
    assert abs(r["worst_objective_excess"]) < 1e-9
    assert r["model_solves"] >= r["newton"] >= len(lam) and r["refreshes"] >= 1
