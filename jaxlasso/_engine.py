"""Host-side driver of the kernels: dtype scope, working-set growth, status handling.

The kernels have a static working-set capacity ``k``. A lane whose active set outgrows it stops
with ``Status.OVERFLOW`` at some lambda; this driver resumes those lanes from that lambda with a
capacity at least 1.5x larger, from the state the kernel returned (``kernels.PathState``: warm
start, gradient and moments -- no pass over ``X`` to restart), and merges the outputs. Each
capacity compiles once per shape (cached by jit and, across processes, by JAX's persistent
compilation cache), so a path uses small working sets where the active set is small.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import threading
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from kernels import Problem, Settings, Status, datasets_solver, fresh_state, lanes_solver, single_solver

from ._config import PATH
from .exceptions import ConvergenceWarning
from .lambdas import weighted_square_sums

log = logging.getLogger("jaxlasso")


@contextlib.contextmanager
def precision_scope(dtype: np.dtype):
    """The numerical scope of every solve; JAX's global flags are never touched.

    float64 work runs inside ``jax.enable_x64(True)``. Every matrix product is traced with
    ``precision=HIGHEST``: on GPUs JAX's default for float32 products is TensorFloat-32 (a 10-bit
    mantissa, ~1e-3 relative error), under which the gradient ``X^T r`` cannot reach the KKT
    tolerance -- a float32 path on an H200 ran for minutes without finishing. On CPUs HIGHEST is
    what a float32 product does anyway.
    """
    with contextlib.ExitStack() as stack:
        if np.dtype(dtype) == np.float64:
            scope = getattr(jax, "enable_x64", None)
            if scope is None:  # jax releases before the top-level context manager
                from jax.experimental import enable_x64 as scope
            stack.enter_context(scope(True))
        stack.enter_context(jax.default_matmul_precision("highest"))
        yield


def env_whole(name: str, default: int, zero: str) -> int:
    """A whole number >= 0 from ``$name`` (``default`` when unset or empty); ``zero`` says what 0 means."""
    env = os.environ.get(name)
    if env is None or not env.strip():
        return default
    try:
        value = int(env)
    except ValueError:
        raise ValueError(f"{name} must be a whole number ({zero}), got {env!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0 ({zero}), got {env!r}")
    return value


def blas_threads() -> int:
    """Threads the BLAS / LAPACK libraries may use during a solve; 0 = leave them as they are.

    ``$JAXLASSO_BLAS_THREADS`` overrides; default 1. XLA:CPU runs the kernels' Cholesky
    factorisations and triangular solves through LAPACK (jaxlib calls SciPy's OpenBLAS), whose
    own thread pool then competes with XLA's intra-op threads and with the lane threads for the
    same cores. On the 2-core workplace machine (NOTES change 36, paired in-process A/B) one BLAS
    thread instead of OpenBLAS's default (one per core) cut a 10-fold CV of Gaussian 200 x 20k
    from 2.68 to 1.10 s and of 1000 x 20k from 23.5 to 12.7 s, their paths by 30% and 24%.
    """
    return env_whole("JAXLASSO_BLAS_THREADS", 1, "0: leave BLAS alone")


# Solves in flight inside blas_scope (any thread), the limiter the first of them set, and the
# threadpoolctl controller (its scan of the loaded libraries is made once).
_BLAS_LOCK = threading.Lock()
_BLAS_STATE: dict = {"depth": 0, "limiter": None, "controller": None}


@contextlib.contextmanager
def blas_scope():
    """Limit the BLAS libraries' threads to :func:`blas_threads` while solves run.

    Process-wide (``threadpoolctl``): the first solve to enter sets the limit and the last one
    to leave restores the caller's settings, so overlapping solves in several threads neither
    undo each other's limit nor leave it behind. Solves enter once, in the calling thread, around
    their lane threads. SciPy's LAPACK is loaded first (jaxlib loads it at its first
    factorisation), so that the limit reaches the library the kernels call.
    """
    threads = blas_threads()
    if threads == 0:
        yield
        return
    try:
        import scipy.linalg.cython_lapack  # noqa: F401  (the LAPACK jaxlib's CPU kernels call)
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - both are dependencies
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            if _BLAS_STATE["controller"] is None:
                _BLAS_STATE["controller"] = ThreadpoolController()
            _BLAS_STATE["limiter"] = _BLAS_STATE["controller"].limit(limits=threads, user_api="blas")
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()
                _BLAS_STATE["limiter"] = None


_CACHE_READY = False


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache (idempotent).

    Compiling a path solver takes seconds; with the cache a second process reuses the executable.
    The location is ``$JAXLASSO_CACHE_DIR``, else ``~/.cache/jaxlasso/xla``; set
    ``JAXLASSO_CACHE_DIR=off`` to disable it.
    """
    global _CACHE_READY
    target = path or os.environ.get("JAXLASSO_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "jaxlasso", "xla")
    if target == "off":
        return None
    if not _CACHE_READY:
        try:
            os.makedirs(target, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", target)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
            _CACHE_READY = True
        except (OSError, AttributeError) as exc:  # read-only home, older jax
            log.debug("persistent compilation cache unavailable: %s", exc)
            return None
    return target


#: On accelerators, lanes of problems with at least this many rows run as a loop (see below).
VMAP_MAX_ROWS = 128


def default_lane_mode(n_rows: int | None = None) -> str:
    """How B lanes of an ``n_rows``-sample problem run: ``"vmap"`` (batched calls, see :func:`vmap_lanes`) or ``"loop"``.

    On CPU: ``"loop"`` (lockstep lanes waste work that 2 cores cannot hide; :mod:`kernels.batched`).
    On accelerators: ``"vmap"`` below :data:`VMAP_MAX_ROWS` rows, ``"loop"`` from there on. Measured
    on an H100 (``benchmarks/RESULTS-gpu.md``, 10-fold CV, 11 lanes, first call = compile + run):
    vmap / loop run 0.50 / 0.82 s on seed-like 16 x 16k, 1.10 / 1.09 s on ALL 111 x 12.6k,
    1.98 / 1.78 s on Gaussian 200 x 20k (first call 73 / 14 s) and 7.66 / 3.20 s on 1000 x 20k
    (first call 49 / 32 s): batching is free while one lane's steps are too small to fill the
    GPU, and costs lockstep and compile time once they are not. ``n_rows=None``: vmap.
    ``JAXLASSO_LANE_MODE=vmap|loop`` overrides.
    """
    env = os.environ.get("JAXLASSO_LANE_MODE")
    if env in ("vmap", "loop"):
        return env
    if jax.default_backend() == "cpu":
        return "loop"
    return "loop" if n_rows is not None and n_rows >= VMAP_MAX_ROWS else "vmap"


def vmap_lanes() -> int | None:
    """At most this many lanes go into one vmapped call; more are solved in chunks of it.

    ``$JAXLASSO_VMAP_LANES`` overrides (``0``: no limit). Default 16: a 10-fold CV (11 lanes)
    fits one chunk, and every chunk of a larger batch (bootstrap resamples, repeated CV) reuses
    one compiled executable. Measured on an H100 (``benchmarks/RESULTS-gpu.md``): 16 vmapped
    lanes on ALL BCR/ABL compiled in 7.4 s, 128 lanes (100 bootstrap resamples, bucketed) had not
    finished compiling after 370 s. Chunks also bound the memory of a batch. Lanes are
    independent, so the chunking changes no result.
    """
    return env_whole("JAXLASSO_VMAP_LANES", 16, "0 for no limit") or None


def lane_threads(n_lanes: int) -> int:
    """How many looped lanes (folds, resamples) are solved at once, each in its own thread.

    ``$JAXLASSO_LANE_THREADS`` overrides. Default, on every backend: the cores this process may
    use, at most 4. On a CPU one lane's solve keeps ~1.6 of 2 cores busy (many of its steps are
    too small for XLA's intra-op threads), so two lanes at once fill the gaps: on the 2-core
    workplace machine 10-fold CV ran 36-37% faster with 2 threads than with 1 on seed-like and
    ALL, and -- with BLAS held to one thread (:func:`blas_scope`; before, OpenBLAS's own threads
    took the second core) -- 39% on Gaussian 200 x 20k and 25% on 1000 x 20k; 3 were slower.
    On a GPU one lane leaves the device idle between its many small launches and host round
    trips (the driver's loop over lambdas, KKT rounds and overflows), which other lanes'
    launches fill: on an H200 (16 host cores, NOTES change 33)
    2 threads against 1 cut a 10-fold CV of Gaussian 200 x 20k by 16% and of 1000 x 20k by 15%,
    100 bootstrap paths on 200 x 20k by 23% and 10 datasets' CVs by 20%; 4 against 2 a further
    4-7%. Lanes are independent: the results do not depend on it.
    """
    env = os.environ.get("JAXLASSO_LANE_THREADS")
    if env:
        try:
            want = int(env)
        except ValueError:
            raise ValueError(f"JAXLASSO_LANE_THREADS must be a whole number (got {env!r})") from None
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        want = min(cores, 4)
    return max(1, min(n_lanes, want))


def next_pow2(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


def grow_capacity(k: int, needed: int, cap: int) -> int:
    """The next working-set capacity after an overflow at ``k`` that needed ``needed`` slots.

    Capacities are the levels 2^j and 1.5 * 2^j (16, 24, 32, 48, 64, 96, ...): the smallest
    level that holds ``needed`` and is at least 1.5 k. Growing by at least 1.5x bounds the
    number of resumes (and compilations) as doubling does, while the finer levels keep the
    capacity closer to what the path needs -- the Gram matrix and Cholesky factor of the working
    set cost k^2 n and k^3, so a 768-slot set costs about half of a 1024-slot one.
    """
    target = max(needed, math.ceil(1.5 * k))
    level = next_pow2(target)
    if 3 * level // 4 >= target and level >= 4:
        level = 3 * level // 4
    return min(cap, level)


def initial_capacity(n: int, p: int, l1_ratio: float) -> int:
    """Working-set capacity to start with: all features for ridge-like penalties, else small."""
    if l1_ratio <= 0.0:
        return p
    return min(p, PATH.min_working_set)


@dataclass
class LaneOutputs:
    """Per-lane kernel outputs as numpy arrays (leading axis B = lanes)."""

    idx: np.ndarray  # (B, L, K) int
    coef: np.ndarray  # (B, L, K) standardised scale
    intercept: np.ndarray  # (B, L)
    n_iter: np.ndarray  # (B, L)
    n_kkt_rounds: np.ndarray  # (B, L)
    ws_needed: np.ndarray  # (B, L) working-set slots needed (active + KKT violators)
    kkt_gap: np.ndarray  # (B, L)
    deviance: np.ndarray  # (B, L)
    status: np.ndarray  # (B, L)
    eta: np.ndarray | None  # (B, L, n)
    xm: np.ndarray  # (B, p)
    xs: np.ndarray  # (B, p)
    excluded: np.ndarray  # (B, p)
    null_deviance: np.ndarray  # (B,)
    capacities: tuple[int, ...]  # working-set capacities used (one compile each)

    def path_length(self) -> np.ndarray:
        """(B,) number of lambdas solved before the path stopped."""
        return path_lengths(self.status)

    def dense_coef(self, lane: int, p: int) -> np.ndarray:
        """(L, p) standardised coefficients of one lane."""
        L = self.idx.shape[1]
        out = np.zeros((L, p), dtype=self.coef.dtype)
        rows = np.repeat(np.arange(L), self.idx.shape[2])
        np.add.at(out, (rows, self.idx[lane].ravel()), self.coef[lane].ravel())
        return out


def path_lengths(status: np.ndarray) -> np.ndarray:
    """(B,) index after the last solved lambda of each lane (0 if none was solved)."""
    solved = status != Status.SKIPPED
    last = solved.shape[1] - np.argmax(solved[:, ::-1], axis=1)
    return np.where(solved.any(axis=1), last, 0)


def _pad_k(a: np.ndarray, K: int, fill=0) -> np.ndarray:
    if a.shape[-1] == K:
        return a
    pad = [(0, 0)] * (a.ndim - 1) + [(0, K - a.shape[-1])]
    return np.pad(a, pad, constant_values=fill)


def _bucket_lanes(B: int) -> int:
    """Lane counts are padded to powers of two so that 5- and 7-fold CV share one executable."""
    return 1 if B == 1 else next_pow2(B)


def bucket_size(x: int) -> int:
    """Shape bucket of a dimension: a power of two up to 64, then at most 8 buckets per octave.

    Problems are padded to bucketed shapes (zero-weight rows, excluded zero columns) so that
    different datasets share compiled executables; the padding is at most 12.5% above 64.
    """
    if x <= 64:
        return next_pow2(x)
    step = 1 << (int(math.floor(math.log2(x))) - 3)
    return -(-x // step) * step


def _bucket_lambdas(L: int) -> int:
    """Grid lengths are padded to powers of two (>= 8); padded steps are skipped at no cost."""
    return max(8, next_pow2(L))


def _to_numpy(out, mom, null_dev, B, L):
    """``(PathOut, Moments, null_dev)`` on the host, for the first B lanes and L lambdas (``mom``:
    the moments of the state the kernel returned)."""
    out = jax.tree.map(lambda a: np.asarray(a)[:B, :L], out)
    mom = jax.tree.map(lambda a: np.asarray(a)[:B], mom)
    return out, mom, np.asarray(null_dev)[:B]


def _segments(run, B: int, L: int, Lp: int, k: int, stop: np.ndarray, cap: int, master: np.ndarray | None = None,
              group: np.ndarray | None = None):
    """Run ``run(k, state, start, stop)`` for B lanes, growing ``k`` on overflow.

    ``run`` returns ``(PathOut, Moments, null_dev, state)`` (numpy, except ``state``: the kernels'
    :class:`~kernels.PathState`, kept where it is and passed back as is; ``None`` asks for a
    fresh start). A lane that overflows at lambda m is resumed from m with a larger capacity
    (see :func:`grow_capacity`) from the state it stopped in -- exactly where an uninterrupted
    path would continue; the other lanes are skipped (``start = Lp``). ``cap`` is the number of
    real features (the largest capacity).

    ``master`` (vmapped lanes under glmnet's early stop): once the master lanes are done, their
    stop bounds the other lanes, as in one uninterrupted vmapped call (and as the lane loop does).
    Without it a lane resumed after an overflow in a later segment, without the masters, would
    run on to the end of the grid: results past the master's stop that nobody reads, at the
    dearest lambdas. ``group`` (B,) ints: lanes of different problems (stacked datasets), each
    bounded by its own masters only.
    """
    start = np.zeros(B, np.int32)
    group = np.zeros(B, int) if group is None else group
    state = None
    merged = moments = null_dev = None
    capacities = []
    while True:
        capacities.append(k)
        out, mom, nd, state = run(k, state, start, stop)
        if moments is None:
            moments, null_dev = mom, nd
        merged = _merge(merged, out, start, k)
        overflow = merged["status"] == Status.OVERFLOW
        if master is not None:
            for g in np.unique(group):
                lanes = group == g
                masters = master & lanes
                if not masters.any() or overflow[masters].any():
                    continue  # no master, or one still to be resumed: its stop is not known yet
                bound = int(path_lengths(merged["status"][masters]).min())
                others = lanes & ~master
                _skip_lambdas(merged, (np.arange(L)[None, :] >= bound) & others[:, None])
                stop = np.where(others, np.minimum(stop, bound), stop).astype(np.int32)
            overflow = merged["status"] == Status.OVERFLOW
        if not overflow.any():
            return merged, moments, null_dev, tuple(capacities)
        if k >= cap:  # cannot happen: with every feature in the working set nothing overflows
            raise RuntimeError("working set overflow at full capacity")
        first = np.where(overflow.any(axis=1), np.argmax(overflow, axis=1), L)
        # Grow by at least 1.5x; jump straight to what the overflowing lambda needed (ridge-like
        # penalties fill the working set at once), so each capacity compiles at most once.
        needed = max(int(merged["ws_needed"][b, first[b]]) for b in range(B) if first[b] < L)
        k = grow_capacity(k, needed, cap)
        start = np.where(first < L, first, Lp).astype(np.int32)
        log.debug("working set overflow: resuming %d lane(s) with capacity %d", int((first < L).sum()), k)


def solve_lanes(X, y, W, pf, l1_ratio: float, lambdas: np.ndarray, *, fit_intercept: bool,
                standardize: bool, early_stop: bool, keep_eta: bool, is_master: np.ndarray,
                tol: float, max_iter: int, max_sweeps: int, dtype, k0: int | None = None,
                mode: str | None = None) -> LaneOutputs:
    """Solve B paths sharing ``X`` (numpy in, numpy out), growing the working set as needed.

    ``y`` is (n,) or (B, n); ``W`` (B, n); ``pf`` (p,) or (B, p) (already rescaled). With
    ``early_stop``, glmnet's stopping rule is decided by the ``is_master`` lanes and ends every
    lane at the same lambda (cv.glmnet: the folds use the full fit's shortened grid).

    Shapes are padded to buckets -- rows with zero weight, columns of zeros with an infinite
    penalty factor, lanes (vmap) and lambdas that are skipped -- so that one compiled executable
    serves many problem sizes; the padding changes no result.
    """
    W = np.asarray(W, dtype=np.float64)
    B, n_real = W.shape
    mode = mode or default_lane_mode(n_real)
    if mode not in ("vmap", "loop"):
        raise ValueError(f"mode must be 'vmap' or 'loop' (got mode={mode!r})")
    enable_compilation_cache()
    p_real = X.shape[1]
    chunk = min(B, vmap_lanes() or B) if mode == "vmap" else 1  # lanes in one call
    # Looped lanes are solved lane_threads() at a time: that many are in memory at once.
    check_memory(n_real, p_real, chunk if mode == "vmap" else lane_threads(B), len(lambdas), "this fit")
    n, p = bucket_size(n_real), bucket_size(p_real)
    W = np.pad(W, ((0, 0), (0, n - n_real)))
    y = np.asarray(y, dtype=np.float64)
    y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - n_real)])
    pf = np.asarray(pf, dtype=np.float64)
    pf = np.pad(pf, [(0, 0)] * (pf.ndim - 1) + [(0, p - p_real)], constant_values=np.inf)
    L = len(lambdas)
    master = np.asarray(is_master, bool)
    k = min(p_real, k0 if k0 is not None else initial_capacity(n_real, p_real, l1_ratio))
    Lp = _bucket_lambdas(L)
    lam_p = np.concatenate([lambdas, np.repeat(lambdas[-1:], Lp - L)])
    statics = dict(fit_intercept=fit_intercept, standardize=standardize, keep_eta=keep_eta)

    with blas_scope(), precision_scope(dtype):
        jdt = jnp.float64 if np.dtype(dtype) == np.float64 else jnp.float32
        # On a CPU backend the device arrays alias the host buffers: reuse them across solves
        # (given back below, once nothing reads them; HostBufferPool).
        taken: list[np.ndarray] = []
        pooled = jax.default_backend() == "cpu" and HOST_BUFFERS.max_bytes > 0

        def alloc(shape, dtype):
            buf = HOST_BUFFERS.take(shape, dtype)
            taken.append(buf)
            return buf

        design = design_arrays(X, jdt, kkt_float32=mode == "loop" and kkt_float32_default(), shape=(n, p),
                               alloc=alloc if pooled else None)
        lam_d = jnp.asarray(lam_p, jdt)
        settings = Settings(jnp.asarray(tol, jdt), jnp.asarray(max_iter, jnp.int32),
                            jnp.asarray(max_sweeps, jnp.int32), jnp.asarray(bool(early_stop)))
        l1 = jnp.asarray(l1_ratio, jdt)

        if mode == "vmap":
            Bp = _bucket_lanes(chunk)  # every chunk is padded to one lane bucket: one executable

            def solve_chunk(lanes: np.ndarray, bound: int):
                Bc = len(lanes)

                def pad(a):
                    return np.concatenate([a, np.repeat(a[:1], Bp - Bc, axis=0)]) if Bp > Bc else a

                yc, pfc, Wc = (y[lanes] if y.ndim == 2 else y), (pf[lanes] if pf.ndim == 2 else pf), W[lanes]
                problem = Problem(*design, jnp.asarray(pad(yc) if yc.ndim == 2 else yc, jdt), jnp.asarray(pad(Wc), jdt),
                                  jnp.asarray(pad(pfc) if pfc.ndim == 2 else pfc, jdt), l1)
                master_d = jnp.asarray(np.r_[master[lanes], np.zeros(Bp - Bc, bool)])

                def run(k, state, start, stop):
                    fn = lanes_solver(k=k, y_batched=y.ndim == 2, pf_batched=pf.ndim == 2, **statics)
                    pad_start = np.r_[start, np.full(Bp - Bc, Lp, np.int32)]
                    res = fn(problem, lam_d, fresh_state(p, jdt, (Bp,)) if state is None else state,
                             jnp.asarray(pad_start), jnp.asarray(pad(stop)), settings, master_d)
                    return (*_to_numpy(res[0], res[2].mom, res[1], Bc, L), res[2])

                return _segments(run, Bc, L, Lp, k, np.full(Bc, bound, np.int32), p_real,
                                 master[lanes] if early_stop else None)

            # Masters first, in the first chunk: as in the loop below, their early stop bounds the
            # lanes of every later chunk (under vmap the first master to stop ends its chunk).
            if master.sum() > chunk:
                raise ValueError(f"{int(master.sum())} master lanes do not fit one vmapped chunk of {chunk} "
                                 "lanes; raise JAXLASSO_VMAP_LANES")
            order = np.r_[np.flatnonzero(master), np.flatnonzero(~master)]
            parts, bound = [], L
            for c0 in range(0, B, chunk):
                lanes = order[c0:c0 + chunk]
                parts.append(solve_chunk(lanes, bound))
                if early_stop and master[lanes].any():
                    bound = min(bound, int(path_lengths(parts[-1][0]["status"][master[lanes]]).min()))
            merged, moments, null_dev, caps = _concat_lanes(parts, np.argsort(order))
        else:
            lanes = [None] * B
            fresh = fresh_state(p, jdt)  # one for all lanes

            def solve_lane(b: int, bound: int):
                def run(k, state, start, stop):
                    fn = single_solver(k=k, fit_intercept=fit_intercept, standardize=standardize)
                    out, nd, state = fn(problem, lam_d, fresh if state is None else state,
                                        jnp.asarray(start[0]), jnp.asarray(stop[0]), settings,
                                        jnp.asarray(master[b]))
                    # One lane: add the lane axis on the host (no device op per array).
                    return (*_to_numpy(*jax.tree.map(lambda a: np.asarray(a)[None], (out, state.mom, nd)), 1, L), state)

                # JAX's config scopes (x64, matmul precision) are per thread: enter them here, before
                # any array is made, or a worker thread would silently build float32 arrays.
                with precision_scope(dtype):
                    problem = Problem(*design, jnp.asarray(y[b] if y.ndim == 2 else y, jdt),
                                      jnp.asarray(W[b], jdt), jnp.asarray(pf[b] if pf.ndim == 2 else pf, jdt), l1)
                    return _segments(run, 1, L, Lp, k, np.array([bound], np.int32), p_real)

            bound = L
            # Masters first: their early stop bounds every other lane.
            for b in np.flatnonzero(master):
                lanes[b] = solve_lane(b, bound)
                if early_stop:
                    # As the psum under vmap: the first master to stop ends every lane.
                    bound = min(bound, int(path_lengths(lanes[b][0]["status"])[0]))
            rest = [b for b in range(B) if not master[b]]
            threads = lane_threads(len(rest))
            if threads > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(threads) as pool:
                    for b, out in zip(rest, pool.map(lambda b: solve_lane(b, bound), rest)):
                        lanes[b] = out
            else:
                for b in rest:
                    lanes[b] = solve_lane(b, bound)
            merged, moments, null_dev, caps = _concat_lanes(lanes)
    # Every output is on the host: no computation reads the design any more.
    del design
    HOST_BUFFERS.give(taken)
    eta = merged.pop("eta")
    eta = eta[..., :n_real] if keep_eta else None
    padded = merged["idx"] >= p_real  # padding columns: never active, coefficient 0
    merged["idx"] = np.where(padded, 0, merged["idx"])
    merged["coef"] = np.where(padded, 0.0, merged["coef"])
    return LaneOutputs(**merged, eta=eta, xm=moments.xm[:, :p_real], xs=moments.xs[:, :p_real],
                       excluded=moments.excluded[:, :p_real], null_deviance=null_dev, capacities=caps)


# XLA:CPU reads a host buffer in place when its data is aligned to this many bytes.
_HOST_ALIGN = 64


def host_array(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised numpy array whose data starts on a ``_HOST_ALIGN``-byte boundary.

    ``jax.device_put`` on a CPU backend aliases such a buffer instead of copying it. A copy into
    XLA's allocator costs more than the arithmetic that fills the buffer: numpy backs large arrays
    with huge pages, while XLA's fresh buffers fault in 4 KiB at a time (``jnp.asarray`` of a
    160 MB matrix: 0.23 s, an aliased ``device_put``: < 1 ms).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _HOST_ALIGN, np.uint8)
    offset = (-raw.ctypes.data) % _HOST_ALIGN
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


class HostBufferPool:
    """Aligned host buffers for the design, handed to later solves of the same shape (CPU backends).

    The design's arrays are hundreds of MB on large problems (1000 x 20,000: 240 MB), and writing
    them into fresh memory pays the page faults of every page, more than the copy itself: on the
    2-core workplace machine a 1000 x 20,000 path took 2.52 s with fresh buffers and 1.90 s with
    reused ones (NOTES change 37). A solve takes its buffers with :meth:`take` and gives them back
    with :meth:`give` only once it has finished normally -- on a CPU backend its device arrays
    alias them, so a buffer is never handed out while a solve can still read it; two solves at
    once get different buffers. The pool keeps at most ``max_bytes``
    (``$JAXLASSO_BUFFER_POOL``, e.g. ``512M``; default 1 GiB; 0 disables it), the least recently
    returned shapes leave first; :meth:`clear` frees everything.
    """

    def __init__(self, max_bytes: float | None = None):
        self._max = max_bytes
        self._free: collections.OrderedDict[tuple, list[np.ndarray]] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> float:
        if self._max is not None:
            return self._max
        env = os.environ.get("JAXLASSO_BUFFER_POOL")
        return 2.0 ** 30 if env is None or not env.strip() else parse_bytes(env, "JAXLASSO_BUFFER_POOL")

    def _held(self) -> int:
        return sum(b.nbytes for bufs in self._free.values() for b in bufs)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._held()

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A buffer of this shape and dtype (contents undefined): a returned one, else a new one."""
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            bufs = self._free.get(key)
            if bufs:
                buf = bufs.pop()
                if not bufs:
                    del self._free[key]
                return buf
        return host_array(shape, dtype)

    def give(self, buffers) -> None:
        """Return buffers no computation reads any more."""
        limit = self.max_bytes
        with self._lock:
            for buf in buffers:
                if buf.nbytes > limit:
                    continue
                key = (buf.shape, buf.dtype.str)
                self._free.setdefault(key, []).append(buf)
                self._free.move_to_end(key)
            total = self._held()
            while total > limit and self._free:
                key, bufs = next(iter(self._free.items()))
                total -= bufs.pop(0).nbytes
                if not bufs:
                    del self._free[key]

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


HOST_BUFFERS = HostBufferPool()


def _to_device(a: np.ndarray) -> jax.Array:
    """Place a host array this module built (and never writes again) on the default device."""
    return jax.device_put(a, may_alias=True)


def design_arrays(X: np.ndarray, jdt, put=None, *, kkt_float32: bool = False, shape=None, alloc=None):
    """The design as the kernels take it (``Problem.X``, ``Problem.XT``, ``Problem.colnorm``),
    over the last two axes, each placed on the device by ``put``.

    ``X`` for the full-gradient passes is a float32 copy for a float64 problem when
    ``kkt_float32`` (lanes solved one at a time; see ``Problem.X``) and no entry exceeds 2^100
    in magnitude, else the design in ``jdt``; ``XT`` the contiguous transpose in ``jdt``;
    ``colnorm`` the column norms (float64 arithmetic), zeros when ``X`` is exact. A float64
    problem thus holds 1.5 copies of its design (1000 x 20,000: 240 MB), not 3.5.

    ``shape`` pads the last two axes with zeros (the bucketed problem size; default: none). The
    arrays are built in aligned host buffers from ``alloc(shape, dtype)`` (default: fresh ones,
    :func:`host_array`; :meth:`HostBufferPool.take` hands out reused ones): with the default
    ``put`` a CPU backend uses them in place, with no copy into XLA's memory, so they must not be
    written again while a solve reads them. The caller's array is never aliased.
    """
    put = _to_device if put is None else put
    alloc = host_array if alloc is None else alloc
    X = np.asarray(X)
    shape = tuple(X.shape) if shape is None else tuple(shape)
    n, p = X.shape[-2:]
    npdt = np.dtype(np.float64) if jdt == jnp.float64 else np.dtype(np.float32)

    def padded(dtype, transpose=False):
        # Written from the unpadded X: a transposing copy out of a power-of-two row stride (the
        # bucketed shapes) runs ~3x slower, as the strided reads collide in the cache.
        dst = alloc(shape[:-2] + (shape[-1], shape[-2]) if transpose else shape, dtype)
        if transpose:
            dst = np.swapaxes(dst, -1, -2)  # a view: filled in X's layout, stored as X^T's
        np.copyto(dst[..., :n, :p], X, casting="same_kind")
        dst[..., n:, :] = 0.0
        dst[..., :n, p:] = 0.0
        return np.swapaxes(dst, -1, -2) if transpose else dst

    XTh = padded(npdt, transpose=True)
    colnorm = np.zeros(shape[:-2] + (shape[-1],), npdt)
    # No float32 copy of entries beyond 2^100: products and sums of n of them must stay finite.
    if (kkt_float32 and jdt == jnp.float64
            and (X.size == 0 or max(float(X.max()), -float(X.min())) <= 2.0 ** 100)):
        Xh = padded(np.float32)
        ones = np.ones(n)
        for i in np.ndindex(*X.shape[:-2]):
            colnorm[i][:p] = np.sqrt(weighted_square_sums(X[i], ones))
    else:
        Xh = padded(npdt)
    return put(Xh), put(XTh), put(colnorm)


def kkt_float32_default() -> bool:
    """Whether float64 lanes solved one at a time make their KKT passes in float32 (certified).

    On by default; ``JAXLASSO_KKT_FLOAT32=0`` turns it off (results are identical either way up
    to the last bits of the solver's path: the same violators are found; see
    ``kernels.path.kkt_pass``). Batched (vmap) lanes always use the float64 pass.
    """
    return os.environ.get("JAXLASSO_KKT_FLOAT32", "1").strip().lower() not in ("0", "off", "false", "no")


def estimate_bytes(n: int, p: int, lanes: int, n_lambdas: int, k: int = 256, itemsize: int = 8) -> int:
    """Rough peak memory of solving ``lanes`` paths of one (bucketed) n x p problem at once.

    The design and its transpose (working-set gathers) per problem (for float64 lanes solved
    one at a time the first is a float32 copy: 1.5 copies, counted as 2); per lane, dense coefficient / gradient vectors of
    length p, a k x n working block and its k x k Gram, and the per-lambda outputs. A factor 1.5
    covers XLA temporaries.
    """
    nb, pb = bucket_size(n), bucket_size(p)
    per_problem = 2 * nb * pb
    per_lane = 4 * pb + 3 * k * nb + 2 * k * k + n_lambdas * (2 * k + nb + 8)
    return int(1.5 * itemsize * (per_problem + lanes * per_lane))


def parse_bytes(text: str, what: str) -> float:
    """``"8G"``, ``"512m"``, ``"1e9"`` -> bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    t = text.strip().lower().rstrip("b")
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise ValueError(f"{what} must be a size in bytes such as 8G, 512M or 1e9 (got {text!r})") from None


def memory_budget() -> float:
    """Bytes a solve may use: ``$JAXLASSO_MAX_MEMORY`` (e.g. ``8G``), else 80% of the available RAM."""
    env = os.environ.get("JAXLASSO_MAX_MEMORY")
    if env:
        return parse_bytes(env, "JAXLASSO_MAX_MEMORY")
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return 0.8 * int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def check_memory(n: int, p: int, lanes: int, n_lambdas: int, what: str) -> None:
    """Refuse a job whose estimated memory exceeds :func:`memory_budget`, saying how much it needs."""
    need = estimate_bytes(n, p, lanes, n_lambdas)
    budget = memory_budget()
    if need > budget:
        raise ValueError(
            f"{what} needs about {need / 2**30:.2f} GiB ({n} samples x {p} features, {lanes} lane(s) "
            f"solved together), more than the {budget / 2**30:.2f} GiB available; filter features "
            f"(e.g. --top-variance) or raise JAXLASSO_MAX_MEMORY (got estimate={need} bytes)")


@dataclass
class DatasetLanes:
    """One dataset of a batched solve: its lanes share its ``X``."""

    X: np.ndarray  # (n, p) shifted design
    y: np.ndarray  # (n,)
    W: np.ndarray  # (B, n) lane weights
    pf: np.ndarray  # (p,)
    lambdas: np.ndarray  # (L,)
    is_master: np.ndarray  # (B,)


def solve_datasets(datasets: list[DatasetLanes], *, l1_ratio: float, fit_intercept: bool, standardize: bool,
                   early_stop: bool, keep_eta: bool, tol: float, max_iter: int, max_sweeps: int, dtype,
                   devices=None, k0: int | None = None) -> tuple[list[LaneOutputs], dict]:
    """Solve several datasets' lanes in one vmapped call, sharded over ``devices``.

    Every dataset is padded to the largest (bucketed) rows, columns, lanes and grid length of
    the batch: zero-weight rows, zero columns with an infinite penalty factor, skipped lanes
    and steps -- none of which changes a result. The dataset axis is sharded across ``devices``
    (default: all local devices) with ``jax.sharding``; on one device it is a plain vmap.

    Returns the per-dataset :class:`LaneOutputs` and bookkeeping (padding overhead, shapes).
    """
    enable_compilation_cache()
    devices = list(jax.local_devices() if devices is None else devices)
    D = len(datasets)
    nb = max(bucket_size(d.X.shape[0]) for d in datasets)
    pb = max(bucket_size(d.X.shape[1]) for d in datasets)
    Bb = _bucket_lanes(max(d.W.shape[0] for d in datasets))
    Lb = _bucket_lambdas(max(len(d.lambdas) for d in datasets))
    Dp = -(-D // len(devices)) * len(devices)  # whole number of datasets per device
    cap = max(d.X.shape[1] for d in datasets)
    k = min(cap, k0 if k0 is not None else initial_capacity(nb, cap, l1_ratio))
    X = np.zeros((Dp, nb, pb))
    Y = np.zeros((Dp, nb))
    W = np.zeros((Dp, Bb, nb))
    PF = np.full((Dp, pb), np.inf)
    LAM = np.ones((Dp, Lb))
    MASTER = np.zeros((Dp, Bb), bool)
    stop = np.zeros((Dp, Bb), np.int32)  # padding lanes / datasets: nothing to solve
    for i in range(Dp):
        d = datasets[i] if i < D else datasets[0]
        n, p = d.X.shape
        B, L = d.W.shape[0], len(d.lambdas)
        X[i, :n, :p] = d.X
        Y[i, :n] = d.y
        W[i, :B, :n] = d.W
        W[i, B:, :n] = d.W[:1]  # valid weights for skipped padding lanes (no 0/0 moments)
        PF[i, :p] = d.pf
        LAM[i, :L] = d.lambdas
        LAM[i, L:] = d.lambdas[-1]
        MASTER[i, :B] = d.is_master
        if i < D:
            stop[i, :B] = L
    real = sum(d.X.shape[0] * d.X.shape[1] for d in datasets)
    stats = {"datasets": D, "padded_shape": (Dp, nb, pb), "lanes": Bb, "lambdas": Lb,
             "padding_overhead": float(Dp * nb * pb / max(real, 1) - 1.0), "devices": len(devices)}

    with blas_scope(), precision_scope(dtype):
        jdt = jnp.float64 if np.dtype(dtype) == np.float64 else jnp.float32
        if len(devices) > 1:
            from jax.sharding import Mesh, NamedSharding, PartitionSpec

            mesh = Mesh(np.array(devices), ("d",))
            put = lambda a: jax.device_put(a, NamedSharding(mesh, PartitionSpec("d")))  # noqa: E731
        else:
            put = lambda a: jax.device_put(a, devices[0])  # noqa: E731
        problem = Problem(*design_arrays(X, jdt, put), put(jnp.asarray(Y, jdt)), put(jnp.asarray(W, jdt)),
                          put(jnp.asarray(PF, jdt)), jnp.asarray(l1_ratio, jdt))
        lam_d = put(jnp.asarray(LAM, jdt))
        master_d = put(jnp.asarray(MASTER))
        settings = Settings(jnp.asarray(tol, jdt), jnp.asarray(max_iter, jnp.int32),
                            jnp.asarray(max_sweeps, jnp.int32), jnp.asarray(bool(early_stop)))

        def run(k, state, start, stop_flat):
            fn = datasets_solver(k=k, fit_intercept=fit_intercept, standardize=standardize, keep_eta=keep_eta)
            if state is None:
                state = jax.tree.map(put, fresh_state(pb, jdt, (Dp, Bb)))
            res = fn(problem, lam_d, state, put(jnp.asarray(start.reshape(Dp, Bb))),
                     put(jnp.asarray(stop_flat.reshape(Dp, Bb))), settings, master_d)
            out, nd, mom = jax.tree.map(lambda a: np.asarray(a).reshape((Dp * Bb,) + a.shape[2:]),
                                        (res[0], res[1], res[2].mom))
            return out, mom, nd, res[2]

        merged, moments, null_dev, caps = _segments(run, Dp * Bb, Lb, Lb, k, stop.reshape(-1), cap,
                                                    MASTER.reshape(-1) if early_stop else None,
                                                    np.repeat(np.arange(Dp), Bb))
    outs = []
    for i, d in enumerate(datasets):
        n, p = d.X.shape
        B, L = d.W.shape[0], len(d.lambdas)
        lanes = slice(i * Bb, i * Bb + B)
        part = {key: v[lanes, :L] for key, v in merged.items()}
        eta = part.pop("eta")
        padded = part["idx"] >= p
        part["idx"] = np.where(padded, 0, part["idx"])
        part["coef"] = np.where(padded, 0.0, part["coef"])
        outs.append(LaneOutputs(**part, eta=eta[..., :n] if keep_eta else None, xm=moments.xm[lanes, :p],
                                xs=moments.xs[lanes, :p], excluded=moments.excluded[lanes, :p],
                                null_deviance=null_dev[lanes], capacities=caps))
    stats["capacities"] = caps
    return outs, stats


def _skip_lambdas(merged: dict, mask: np.ndarray) -> None:
    """Mark the (lane, lambda) entries in ``mask`` as skipped, as the kernel reports them."""
    merged["status"] = np.where(mask, Status.SKIPPED, merged["status"])
    merged["deviance"] = np.where(mask, np.nan, merged["deviance"])
    for key in ("n_iter", "n_kkt_rounds"):
        merged[key] = np.where(mask, 0, merged[key])
    merged["coef"] = np.where(mask[..., None], 0.0, merged["coef"])


def _concat_lanes(parts, order=None):
    """Join the ``_segments`` results of groups of lanes along the lane axis (``order``: a
    permutation of the joined lanes into their original order)."""
    K = max(part[0]["idx"].shape[-1] for part in parts)
    merged = {key: np.concatenate([_pad_k(part[0][key], K) if key in ("idx", "coef") else part[0][key]
                                   for part in parts]) for key in parts[0][0]}
    moments = jax.tree.map(lambda *a: np.concatenate(a), *[part[1] for part in parts])
    null_dev = np.concatenate([part[2] for part in parts])
    if order is not None:
        merged = {key: value[order] for key, value in merged.items()}
        moments = jax.tree.map(lambda a: a[order], moments)
        null_dev = null_dev[order]
    return merged, moments, null_dev, tuple(sorted({c for part in parts for c in part[3]}))


def _merge(merged, out, start, k):
    """Overlay a segment's outputs on the lanes' earlier results from each lane's start index."""
    new = {
        "idx": out.ws_idx, "coef": out.ws_coef, "intercept": out.intercept, "n_iter": out.n_iter,
        "n_kkt_rounds": out.n_kkt_rounds, "ws_needed": out.ws_needed, "kkt_gap": out.kkt_gap, "deviance": out.deviance,
        "status": out.status, "eta": out.eta,
    }
    if merged is None:
        return {key: np.array(v) for key, v in new.items()}
    K = max(k, merged["idx"].shape[-1])
    for key in ("idx", "coef"):
        merged[key] = _pad_k(merged[key], K)
        new[key] = _pad_k(new[key], K)
    L = merged["status"].shape[1]
    take = np.arange(L)[None, :] >= start[:, None]  # (B, L)
    for key, value in new.items():
        mask = take.reshape(take.shape + (1,) * (value.ndim - 2))
        merged[key] = np.where(mask, value, merged[key])
    return merged


def report_status(status: np.ndarray, lambdas: np.ndarray, what: str = "path") -> None:
    """Raise on non-finite fits, warn on unconverged lambdas (statuses are per lambda)."""
    status = np.asarray(status)
    if np.any(status == Status.NONFINITE):
        bad = np.nonzero((status == Status.NONFINITE).any(axis=tuple(range(status.ndim - 1))))[0]
        raise ValueError(
            f"the {what} produced non-finite values at lambda={lambdas[bad[0]]:.4g}: "
            f"{Status.NONFINITE.message} (got NONFINITE at {len(bad)} lambda(s))")
    unconverged = status == Status.MAX_ITER
    if np.any(unconverged):
        idx = np.nonzero(unconverged.any(axis=tuple(range(status.ndim - 1))))[0]
        warnings.warn(
            f"the {what} did not reach the KKT tolerance at {len(idx)} lambda(s) "
            f"(smallest lambda={lambdas[idx[-1]]:.4g}): {Status.MAX_ITER.message}",
            ConvergenceWarning, stacklevel=3)
