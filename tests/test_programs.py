"""Stored solver programs (``jaxlasso._engine.programs``): a later process reads the exported
program back instead of tracing the solver again, and gets the same path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import jaxlasso
import kernels
from jaxlasso._engine import configure, executables, programs

ROOT = Path(__file__).resolve().parents[1]


def test_programs_can_be_serialised_here():
    # flatbuffers is a dependency: without it every process would trace its solvers again.
    assert programs._SERIALISABLE


def _data(n=31, p=53, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=n) > 0).astype(float)
    return X, y


def _verifies(path) -> bool:
    import hashlib

    blob, m = path.read_bytes(), len(programs._MAGIC)
    return blob[:m] == programs._MAGIC and hashlib.sha256(blob[m + 32:]).digest() == blob[m:m + 32]


def _forget_executables():
    """What a new process starts without: every jitted function, executable and stored-program
    object of this one (the store on disk and JAX's persistent cache stay)."""
    executables._RELEASER.release(0, 1)


@pytest.fixture
def traces(monkeypatch):
    """Counts how often the path solver is traced (once per traced program)."""
    count = [0]
    real = kernels.batched.solve_path

    def counting(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels.batched, "solve_path", counting)
    _forget_executables()
    yield count
    _forget_executables()


def test_a_later_process_reads_the_stored_program_instead_of_tracing(tmp_path, traces):
    X, y = _data()
    with configure(cache_dir=str(tmp_path)):
        first = jaxlasso.logistic_path(X, y, n_lambdas=30)
        assert traces[0] >= 1
        stored = sorted(p.name for p in (tmp_path / "exported").glob("*.bin"))
        assert stored and not list((tmp_path / "exported").glob(".tmp-*"))
        _forget_executables()
        traces[0] = 0
        again = jaxlasso.logistic_path(X, y, n_lambdas=30)
    assert traces[0] == 0
    assert sorted(p.name for p in (tmp_path / "exported").glob("*.bin")) == stored
    np.testing.assert_array_equal(again.coef, first.coef)
    np.testing.assert_array_equal(again.intercept, first.intercept)


def test_without_the_cache_nothing_is_stored_and_the_solver_is_traced(tmp_path, traces):
    X, y = _data(seed=1)
    with configure(cache_dir="off"):
        assert programs.store_dir() is None
        jaxlasso.logistic_path(X, y, n_lambdas=20)
        _forget_executables()
        traces[0] = 0
        jaxlasso.logistic_path(X, y, n_lambdas=20)
    assert traces[0] >= 1


def test_a_corrupt_or_foreign_entry_is_exported_again(tmp_path, traces):
    X, y = _data(seed=2)
    with configure(cache_dir=str(tmp_path)):
        first = jaxlasso.logistic_path(X, y, n_lambdas=20)
        entries = sorted((tmp_path / "exported").glob("*.bin"))
        assert entries
        blob = entries[0].read_bytes()
        entries[0].write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))  # one flipped bit
        for other in entries[1:]:
            other.write_bytes(b"not a program")
        _forget_executables()
        traces[0] = 0
        again = jaxlasso.logistic_path(X, y, n_lambdas=20)
    assert traces[0] == len(entries)  # every damaged entry traced and exported afresh
    for entry in entries:
        assert _verifies(entry)
    np.testing.assert_array_equal(again.coef, first.coef)


def test_a_changed_kernel_setting_is_a_different_program(tmp_path, traces, monkeypatch):
    """The kernels' module-level settings are part of the key: a test or the A/B tool that
    changes one (here: the float32 Gram from capacity 1 on) traces its own program."""
    X, y = _data(seed=5)
    with configure(cache_dir=str(tmp_path)):
        first = jaxlasso.logistic_path(X, y, n_lambdas=20)
        n_entries = len(list((tmp_path / "exported").glob("*.bin")))
        _forget_executables()
        traces[0] = 0
        monkeypatch.setattr(kernels.solver, "_F32_GRAM_MIN", 1)
        changed = jaxlasso.logistic_path(X, y, n_lambdas=20)
    assert traces[0] >= 1
    assert len(list((tmp_path / "exported").glob("*.bin"))) == 2 * n_entries
    assert not np.array_equal(changed.coef, first.coef)  # a float32 Gram: other rounding
    np.testing.assert_allclose(changed.coef, first.coef, atol=1e-6)


def test_a_changed_kernel_source_is_a_different_program(tmp_path, traces, monkeypatch):
    X, y = _data(seed=3)
    with configure(cache_dir=str(tmp_path)):
        jaxlasso.logistic_path(X, y, n_lambdas=20)
        n_entries = len(list((tmp_path / "exported").glob("*.bin")))
        _forget_executables()
        traces[0] = 0
        monkeypatch.setattr(programs, "_source_digest", lambda: "an edited kernels/ folder")
        jaxlasso.logistic_path(X, y, n_lambdas=20)
    assert traces[0] >= 1
    assert len(list((tmp_path / "exported").glob("*.bin"))) == 2 * n_entries


def test_a_wrapped_factory_runs_as_it_is(tmp_path):
    import jax

    calls = []
    real = kernels.single_solver

    def spy(**kw):  # a jitted function, as export would take one
        fn = real(**kw)

        def call(*args):
            calls.append(kw["k"])
            return fn(*args)
        return jax.jit(call)

    X, y = _data(seed=4)
    with configure(cache_dir=str(tmp_path), single_solver=spy, lane_mode="loop"):
        jaxlasso.logistic_path(X, y, n_lambdas=10)
    assert calls
    assert not (tmp_path / "exported").exists()


def test_prune_drops_the_least_recently_used_entries(tmp_path):
    import os

    for i in range(5):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "unrelated.txt").write_bytes(b"y" * 1000)
    programs._prune(tmp_path, max_bytes=250)
    assert sorted(p.name for p in tmp_path.glob("*.bin")) == ["3.bin", "4.bin"]
    assert (tmp_path / "unrelated.txt").exists()


def test_statics_of_a_users_type_are_not_stored():
    from kernels.families import BINOMIAL

    class UserFamily:  # its code is not in the key
        pass

    assert programs._storable_static(BINOMIAL) and programs._storable_static(64)
    assert not programs._storable_static(UserFamily())


def test_an_entry_that_cannot_be_deleted_is_skipped(tmp_path, monkeypatch):
    entry = tmp_path / "x.bin"
    entry.write_bytes(b"junk")

    def refuse(self, missing_ok=False):
        raise PermissionError("read-only store")

    monkeypatch.setattr(Path, "unlink", refuse)
    assert programs._read(entry, None, ()) is None  # no exception: the solve exports in memory


_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jaxlasso, kernels
    count = [0]
    real = kernels.batched.solve_path
    def counting(*a, **k):
        count[0] += 1
        return real(*a, **k)
    kernels.batched.solve_path = counting
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 41))
    y = (X[:, 0] + rng.normal(size=23) > 0).astype(float)
    t = rng.exponential(size=23)
    e = (rng.random(23) < 0.7).astype(float)
    fits = [jaxlasso.logistic_path(X, y, n_lambdas=15), jaxlasso.gaussian_path(X, X[:, 1], n_lambdas=15),
            jaxlasso.cox_path(X, t, e, n_lambdas=15)]
    print(json.dumps({"traces": count[0], "coef": [float(np.abs(np.asarray(f.coef)).sum()) for f in fits]}))
""")


def test_a_second_process_traces_no_solver(tmp_path):
    """Two real processes on one cache: the second runs binomial, Gaussian and Cox paths with no
    trace of the solver (the stored programs' keys are the same in a new process) and gets the
    same paths."""
    env = dict(os.environ, JAXLASSO_CACHE_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    runs = [json.loads(subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                                      check=True, cwd=tmp_path).stdout.strip().splitlines()[-1]) for _ in range(2)]
    assert runs[0]["traces"] >= 3 and runs[1]["traces"] == 0
    assert runs[1]["coef"] == runs[0]["coef"]


@pytest.mark.parametrize("cache_dir", ["store", "off"])
@pytest.mark.parametrize("lane_mode", ["loop", "vmap"])
def test_every_solver_compiles_with_the_engines_compile_options(tmp_path, monkeypatch, cache_dir, lane_mode):
    # An option XLA refuses makes the compile fail: it reaches the solver's compilation whether
    # the program is stored (jit of the exported call) or not (the factory's own jit).
    monkeypatch.setattr(programs, "CPU_COMPILER_OPTIONS", (("xla_cpu_no_such_option", True),))
    monkeypatch.setattr(programs, "_known_to_xla", lambda options: True)
    _forget_executables()
    X, y = _data(seed=7)
    try:
        with configure(cache_dir=str(tmp_path) if cache_dir == "store" else "off", lane_mode=lane_mode), \
                pytest.raises(Exception, match="xla_cpu_no_such_option"):
            jaxlasso.cv_logistic_path(X, y, n_lambdas=10, nfolds=3)
    finally:
        _forget_executables()


def test_an_xla_that_does_not_know_the_options_compiles_with_its_defaults(tmp_path, monkeypatch):
    X, y = _data(seed=8)
    with configure(cache_dir=str(tmp_path)):
        ours = jaxlasso.logistic_path(X, y, n_lambdas=20)
    assert programs.compiler_options() == dict(programs.CPU_COMPILER_OPTIONS)
    programs._known_to_xla.cache_clear()
    monkeypatch.setattr(programs, "CPU_COMPILER_OPTIONS", (("xla_cpu_no_such_option", True),))
    _forget_executables()
    try:
        assert programs.compiler_options() is None
        with configure(cache_dir=str(tmp_path)):
            theirs = jaxlasso.logistic_path(X, y, n_lambdas=20)
    finally:
        programs._known_to_xla.cache_clear()
        _forget_executables()
    np.testing.assert_allclose(theirs.coef, ours.coef, rtol=0, atol=1e-10)
