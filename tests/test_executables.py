"""Compiled executables are released before a process runs out of memory mappings
(``jaxlasso._engine.executables``): a full test run once aborted inside LLVM's JIT linker with
the worker at exactly ``vm.max_map_count`` mappings."""

from __future__ import annotations

import numpy as np
import pytest

import jaxlasso
from jaxlasso._engine import executables, lanes

pytestmark = pytest.mark.skipif(executables.mapping_count() is None or executables.mapping_limit() is None,
                                reason="the system does not report memory mappings (/proc/self/maps)")


def _data(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(float)
    return X, y


@pytest.fixture
def release_always(monkeypatch):
    """Every solve that finds none in flight releases (a limit the process is always above)."""
    monkeypatch.setattr(executables, "RELEASE_FRACTION", 0.0)
    monkeypatch.setattr(executables, "CHECK_INTERVAL_S", 0.0)
    monkeypatch.setattr(executables._RELEASER, "next_check", 0.0)


def test_compiled_solvers_hold_mappings_and_a_release_returns_them():
    # A shape bucket no other test uses: this process has no executable for it yet (it compiles,
    # or loads one from a compilation cache kept across sessions; either maps its sections).
    X, y = _data(37, 61, 0)
    # Released first: a worker that earlier tests left near the limit would otherwise release
    # during this solve, and the count would fall instead of rising.
    executables._RELEASER.release(executables.mapping_count(), executables.mapping_limit())
    before = executables.mapping_count()
    jaxlasso.logistic_path(X, y, n_lambdas=20)
    compiled = executables.mapping_count()
    assert compiled - before > 100  # the premise: every executable maps its sections
    executables._RELEASER.release(compiled, executables.mapping_limit())
    assert compiled - executables.mapping_count() > 100
    assert not lanes._CALLED


def test_a_solve_near_the_limit_releases_first_and_gives_the_same_path(release_always):
    X, y = _data(29, 45, 1)
    first = jaxlasso.logistic_path(X, y, n_lambdas=15)
    released = executables.release_count()
    again = jaxlasso.logistic_path(X, y, n_lambdas=15)  # a new executable after the release (compiled or loaded)
    assert executables.release_count() == released + 1
    np.testing.assert_array_equal(again.coef, first.coef)
    np.testing.assert_array_equal(again.intercept, first.intercept)


def test_no_release_while_another_solve_is_in_flight(release_always):
    X, y = _data(29, 45, 2)
    released = executables.release_count()
    with executables.solve_scope():  # entered with none in flight: this one releases
        assert executables.release_count() == released + 1
        jaxlasso.logistic_path(X, y, n_lambdas=15)  # a second solve while the first is in flight
        assert executables.release_count() == released + 1
    assert executables._RELEASER.in_flight == 0
