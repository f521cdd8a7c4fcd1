"""The benchmark helpers that turn raw measurements into numbers (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from ab import paired  # noqa: E402
from datasets import bootstrap_weights, fingerprint, foldid_for  # noqa: E402
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
