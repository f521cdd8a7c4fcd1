"""Compiled solvers stored on disk (``jaxlasso._engine.stored``): a later process loads them
without tracing, gets bit-identical results, and never trusts a damaged or foreign entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import jaxlasso
from jaxlasso._engine import configure, executables, stored

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the store applies to the CPU runtime")


def _data(n, p, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] + X[:, 1] + rng.normal(size=n) > 0).astype(float)
    return X, y


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A private store for in-process tests, empty and with nothing loaded. The compilation cache
    setting itself stays off: turning it on would turn on JAX's process-wide persistent cache for
    the rest of this test worker."""
    folder = tmp_path / "executables"
    monkeypatch.setattr(stored, "store_dir", lambda: folder)
    stored._LOADED.clear()
    yield folder
    stored._LOADED.clear()


def _entries(folder):
    return sorted(folder.glob("*.exe")) if folder.exists() else []


_CHILD = textwrap.dedent("""
    import io, json, logging, sys
    import jax, numpy as np
    import jaxlasso
    from jaxlasso._engine import stored
    rng = np.random.default_rng(5)
    X = rng.normal(size=(43, 71)); y = (X[:, 0] + rng.normal(size=43) > 0).astype(float)
    buf = io.StringIO(); handler = logging.StreamHandler(buf); logging.getLogger("jax").addHandler(handler)
    logging.getLogger("jax").setLevel(logging.DEBUG)
    with jax.log_compiles(True):
        fit = jaxlasso.logistic_path(X, y, n_lambdas=30)
    np.save(sys.argv[1], np.c_[fit.intercept, fit.coef])
    traced = [line for line in buf.getvalue().splitlines() if "Finished tracing" in line and "one" in line]
    print(json.dumps({"traced": len(traced), "loaded": stored.loaded_count()}))
""")


def _child(tmp_path, cache, out):
    env = dict(os.environ, JAXLASSO_CACHE_DIR=str(cache))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_solver_without_tracing_it(tmp_path):
    cache = tmp_path / "cache"
    first = _child(tmp_path, cache, tmp_path / "a.npy")
    assert first["traced"] >= 1 and first["loaded"] >= 1  # compiled (traced) and stored
    assert _entries(cache / "executables")
    second = _child(tmp_path, cache, tmp_path / "b.npy")
    assert second["traced"] == 0 and second["loaded"] == first["loaded"]
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"))


def test_each_configuration_has_its_entry_and_a_loaded_entry_solves_as_the_jitted_solver(store, monkeypatch):
    X, y = _data(33, 58, 0)
    first = jaxlasso.logistic_path(X, y, n_lambdas=20)
    made = _entries(store)
    assert made, "the solve stored no executable"
    X2, y2 = _data(70, 140, 1)  # another shape bucket: its own executables
    other = jaxlasso.logistic_path(X2, y2, n_lambdas=20)
    assert len(_entries(store)) > len(made)
    # A fresh process in effect: nothing loaded, every executable read back from the store.
    stored._LOADED.clear()
    again, other_again = jaxlasso.logistic_path(X, y, n_lambdas=20), jaxlasso.logistic_path(X2, y2, n_lambdas=20)
    with monkeypatch.context() as m:
        m.setattr(stored, "store_dir", lambda: None)  # the plain jitted solver
        plain = jaxlasso.logistic_path(X, y, n_lambdas=20)
    for a, b in ((first, again), (other, other_again), (plain, first)):
        np.testing.assert_array_equal(a.coef, b.coef)
        np.testing.assert_array_equal(a.intercept, b.intercept)


def test_a_damaged_entry_is_deleted_and_compiled_again(store):
    X, y = _data(31, 52, 2)
    first = jaxlasso.logistic_path(X, y, n_lambdas=15)
    entries = _entries(store)
    for path in entries:  # flip one byte of every payload
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    # As in a new process: nothing loaded, and no compiled executable in JAX's memory either (an
    # executable that has run can no longer be serialised: XLA:CPU finishes parts of it lazily).
    stored._LOADED.clear()
    jax.clear_caches()
    again = jaxlasso.logistic_path(X, y, n_lambdas=15)
    np.testing.assert_array_equal(again.coef, first.coef)
    rewritten = _entries(store)
    assert [p.name for p in rewritten] == [p.name for p in entries]
    assert all(stored._read(p) is not None for p in rewritten)  # whole entries again


def test_a_replaced_solver_factory_is_called_as_given(store):
    calls = []

    def spy(**statics):
        fn = jaxlasso._engine.config.kernels.single_solver(**statics)
        return lambda *args: calls.append(statics) or fn(*args)

    X, y = _data(31, 52, 3)
    with configure(single_solver=spy):
        jaxlasso.logistic_path(X, y, n_lambdas=15)
    assert calls and not _entries(store)


def test_a_release_drops_the_loaded_executables(store):
    X, y = _data(31, 52, 4)
    jaxlasso.logistic_path(X, y, n_lambdas=15)
    assert stored.loaded_count() >= 1
    executables._RELEASER.release(executables.mapping_count() or 0, executables.mapping_limit() or 0)
    assert stored.loaded_count() == 0


def test_eviction_deletes_the_least_recently_used_entries(tmp_path):
    for i, name in enumerate("abcd"):
        path = tmp_path / f"{name}.exe"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    os.utime(tmp_path / "a.exe", (2000, 2000))  # a was used last
    stored._evict(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.glob("*.exe")) == ["a.exe", "d.exe"]


def test_an_entry_of_another_format_is_not_loaded(tmp_path):
    path = tmp_path / "x.exe"
    path.write_bytes(b"not an entry")
    assert stored._read(path) is None and not path.exists()



def test_lanes_in_threads_share_stored_executables_and_match_the_jitted_solver(store, monkeypatch):
    X, y = _data(60, 90, 7)
    with configure(lane_threads=2):
        cv = jaxlasso.cv_logistic_path(X, y, n_lambdas=20, nfolds=5, seed=0)
        loaded = stored.loaded_count()
        with monkeypatch.context() as m:
            m.setattr(stored, "store_dir", lambda: None)
            plain = jaxlasso.cv_logistic_path(X, y, n_lambdas=20, nfolds=5, seed=0)
    assert loaded >= 1 and len(_entries(store)) == loaded  # one entry per executable, however many threads
    np.testing.assert_array_equal(cv.cv_mean, plain.cv_mean)
    np.testing.assert_array_equal(cv.path.coef, plain.path.coef)
