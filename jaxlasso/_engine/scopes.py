"""The scopes every solve runs in: numerical precision, BLAS threads, and the compilation cache."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import jax
import numpy as np

from .config import current

log = logging.getLogger("jaxlasso")


@contextlib.contextmanager
def precision_scope(dtype: np.dtype):
    """The numerical scope of every solve; JAX's global flags are never touched.

    float64 work runs inside ``jax.enable_x64(True)``. Every matrix product is traced with
    ``precision=HIGHEST``: on GPUs JAX's default for float32 products is TensorFloat-32 (a 10-bit
    mantissa, ~1e-3 relative error), under which the gradient ``X^T r`` cannot reach the KKT
    tolerance, and a float32 path never finishes. On CPUs HIGHEST is what a float32 product does
    anyway. JAX's scopes are per thread: a worker thread enters its own.
    """
    with contextlib.ExitStack() as stack:
        if np.dtype(dtype) == np.float64:
            scope = getattr(jax, "enable_x64", None)
            if scope is None:  # jax releases before the top-level context manager
                from jax.experimental import enable_x64 as scope
            stack.enter_context(scope(True))
        stack.enter_context(jax.default_matmul_precision("highest"))
        yield


class _BlasLimiter:
    """The process-wide BLAS thread limit of the solves in flight.

    The BLAS libraries' thread pools belong to the process, so this state does too (one
    instance, :data:`_BLAS`): the number of solves inside :func:`blas_scope` in any thread, the
    ``threadpoolctl`` limiter the first of them set, and the controller (its scan of the loaded
    libraries is made once).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.limiter = None
        self.controller = None

    def enter(self, threads: int) -> None:
        from threadpoolctl import ThreadpoolController

        with self.lock:
            if self.depth == 0:
                if self.controller is None:
                    self.controller = ThreadpoolController()
                self.limiter = self.controller.limit(limits=threads, user_api="blas")
            self.depth += 1

    def leave(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self.limiter.restore_original_limits()
                self.limiter = None


_BLAS = _BlasLimiter()


@contextlib.contextmanager
def blas_scope():
    """Limit the BLAS libraries' threads to the configured ``blas_threads`` while solves run.

    XLA:CPU runs the kernels' Cholesky factorisations and triangular solves through LAPACK
    (jaxlib calls SciPy's OpenBLAS), whose own thread pool would compete with XLA's intra-op
    threads and with the lane threads for the same cores (``benchmarks/NOTES.md``: one BLAS
    thread made cross-validations up to twice as fast).
    ``blas_threads=0`` leaves BLAS alone.

    Process-wide (``threadpoolctl``): the first solve to enter sets the limit and the last one
    to leave restores the caller's settings, so overlapping solves in several threads neither
    undo each other's limit nor leave it behind. Solves enter once, in the calling thread, around
    their lane threads. SciPy's LAPACK is loaded first (jaxlib loads it at its first
    factorisation), so that the limit reaches the library the kernels call.
    """
    threads = current().blas_threads
    if threads == 0:
        yield
        return
    try:
        import scipy.linalg.cython_lapack  # noqa: F401  (the LAPACK jaxlib's CPU kernels call)
        import threadpoolctl  # noqa: F401
    except ImportError:  # pragma: no cover - both are dependencies
        yield
        return
    _BLAS.enter(threads)
    try:
        yield
    finally:
        _BLAS.leave()


# Whether JAX's (process-wide) persistent compilation cache has been set up by this process.
_CACHE_READY = False


CACHE_MAX_BYTES = 8 << 30
"""Size limit of the persistent compilation cache (least recently used entries go first)."""


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache (idempotent); returns the folder of its entries
    (``locked`` inside the configured directory) or None.

    Compiling a path solver takes seconds; with the cache a second process reuses the executable.
    The location is ``path``, else the configured ``cache_dir`` (``$JAXLASSO_CACHE_DIR``, default
    ``~/.cache/jaxlasso/xla``; ``off`` disables it). JAX's cache settings are process-wide: the
    first successful call fixes the directory for the process.
    """
    global _CACHE_READY
    target = path or current().cache_dir
    if target is None or target == "off":
        return None
    # Entries live in a subfolder that only size-limited (locking) writers use: JAX's eviction
    # expects an access-time file beside every entry, which entries written without a size limit
    # (an older jaxlasso, another tool) lack.
    target = os.path.join(target, "locked")
    if not _CACHE_READY:
        try:
            os.makedirs(target, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", target)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            # A size limit makes JAX guard every cache read and write with a file lock. Without
            # one it writes entries in place, unlocked: a process (a second jaxlasso run, a Dask
            # worker, a test worker) reading an entry another is writing deserialises a truncated
            # executable and crashes with a segmentation fault.
            jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
            _CACHE_READY = True
        except (OSError, AttributeError) as exc:  # read-only home, older jax
            log.debug("persistent compilation cache unavailable: %s", exc)
            return None
    return target
