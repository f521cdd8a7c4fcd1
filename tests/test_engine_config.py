"""The engine's runtime configuration (``jaxlasso._engine.config``): every ``JAXLASSO_*`` variable
through one parser, read once, replaced for a ``with`` block by ``configure``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxlasso._engine import EngineConfig, configure, current
from jaxlasso._engine.config import DEFAULT_CACHE_DIR, VARIABLES

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_when_nothing_is_set():
    config = EngineConfig.from_env({})
    assert config == EngineConfig()
    assert (config.lane_mode, config.vmap_lanes, config.lane_threads, config.blas_threads) == (None, 16, None, 1)
    assert config.kkt_float32 is True and config.max_memory is None
    assert config.buffer_pool_bytes == 2 ** 30 and config.cache_dir == DEFAULT_CACHE_DIR
    # An empty variable is an unset one.
    assert EngineConfig.from_env({var.env: " " for var in VARIABLES.values()}) == config


def test_every_variable_is_parsed():
    env = {"JAXLASSO_LANE_MODE": "vmap", "JAXLASSO_VMAP_LANES": "0", "JAXLASSO_LANE_THREADS": "3",
           "JAXLASSO_BLAS_THREADS": "0", "JAXLASSO_KKT_FLOAT32": "Off", "JAXLASSO_MAX_MEMORY": "8G",
           "JAXLASSO_BUFFER_POOL": "512m", "JAXLASSO_CACHE_DIR": "off"}
    assert set(env) == {var.env for var in VARIABLES.values()}
    config = EngineConfig.from_env(env)
    assert config.lane_mode == "vmap" and config.vmap_lanes is None and config.lane_threads == 3
    assert config.blas_threads == 0 and config.kkt_float32 is False and config.max_memory == 8 * 2 ** 30
    assert config.buffer_pool_bytes == 512 * 2 ** 20 and config.cache_dir is None
    assert EngineConfig.from_env({"JAXLASSO_CACHE_DIR": "/tmp/x", "JAXLASSO_MAX_MEMORY": "1e9"}).cache_dir == "/tmp/x"


@pytest.mark.parametrize("name, value", [
    ("JAXLASSO_LANE_MODE", "Vectorised"), ("JAXLASSO_VMAP_LANES", "-2"), ("JAXLASSO_VMAP_LANES", "2.5"),
    ("JAXLASSO_LANE_THREADS", "two"), ("JAXLASSO_LANE_THREADS", "-1"), ("JAXLASSO_LANE_THREADS", "0"),
    ("JAXLASSO_BLAS_THREADS", "one"), ("JAXLASSO_KKT_FLOAT32", "maybe"), ("JAXLASSO_MAX_MEMORY", "-1G"),
    ("JAXLASSO_MAX_MEMORY", "nan"), ("JAXLASSO_BUFFER_POOL", "lots"),
])
def test_a_malformed_variable_is_an_error_naming_it_and_its_value(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be .*, got '{value}'$"):
        EngineConfig.from_env({name: value})


def test_configure_parses_as_the_environment_and_restores():
    before = current()
    with configure(lane_threads="2", max_memory="1M", kkt_float32="off") as inner:
        assert current() is inner and inner.lane_threads == 2 and inner.max_memory == 2 ** 20
        assert inner.kkt_float32 is False
        with configure(lane_threads=1, vmap_lanes=0):
            assert (current().lane_threads, current().vmap_lanes, current().max_memory) == (1, None, 2 ** 20)
        assert current() is inner
    assert current() is before


def test_configure_names_the_keyword_and_the_value():
    with pytest.raises(ValueError, match=r"^lane_threads must be a whole number >= 1.*, got -1$"):
        with configure(lane_threads=-1):
            pass
    with pytest.raises(ValueError, match=r"^buffer_pool_bytes must be a size .*, got 'lots'$"):
        with configure(buffer_pool_bytes="lots"):
            pass
    with pytest.raises(ValueError, match=r"^blas_threads must be .*, got None$"):
        with configure(blas_threads=None):
            pass
    with pytest.raises(TypeError, match="unknown engine setting.*lane_thread"):
        with configure(lane_thread=1):
            pass
    with pytest.raises(TypeError, match="lanes_solver must be a solver factory"):
        with configure(lanes_solver=3):
            pass
    assert current() == current()  # nothing was left behind by the failed blocks


def test_the_environment_is_read_once_at_the_first_use():
    """Set after import it is seen (the first use reads it); changed after the first use it is
    not; a malformed value fails the first use, naming the variable."""
    code = """
import os
from jaxlasso._engine import current
os.environ["JAXLASSO_LANE_THREADS"] = "3"
first = current().lane_threads
os.environ["JAXLASSO_LANE_THREADS"] = "2"
print(first, current().lane_threads)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXLASSO_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "3"]
    bad = subprocess.run([sys.executable, "-c", "from jaxlasso._engine import current; current()"],
                         env={**env, "JAXLASSO_LANE_THREADS": "-1"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "JAXLASSO_LANE_THREADS must be a whole number >= 1" in bad.stderr


def test_compilation_cache_is_locked_and_apart_from_unlocked_entries(tmp_path):
    """The persistent cache runs with a size limit (JAX then locks every read and write: unlocked
    in-place writes let a concurrent process load a truncated executable and crash) in a
    subfolder of its own (JAX's eviction fails on entries written without their access-time file)."""
    stray = tmp_path / "jit_old-0-cache"  # an entry an unlocked writer left, without its -atime file
    stray.write_bytes(b"x")
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import jax, numpy as np, jaxlasso\n"
            "X = np.random.default_rng(0).normal(size=(20, 30)); y = (X[:, 0] > 0).astype(float)\n"
            "jaxlasso.logistic_path(X, y, n_lambdas=5)\n"
            "print(jax.config.jax_compilation_cache_max_size)\n")
    env = dict(os.environ, JAXLASSO_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.split()[-1]) > 0
    entries = sorted(p.name for p in (tmp_path / "locked").iterdir())
    cached = [e for e in entries if e.endswith("-cache")]
    assert cached and all(e.replace("-cache", "-atime") in entries for e in cached)
