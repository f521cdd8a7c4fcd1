"""B paths sharing one design (CV folds, resamples, permutations): the lane strategies.

:func:`solve_lanes` pads the problem to a bucketed shape, builds the design once and hands the
lanes to one of two strategies: :func:`solve_vmapped` (chunks of lanes in batched calls,
``kernels.lanes_solver``) or :func:`solve_looped` (one lane per call of ``kernels.single_solver``,
several lanes at once in threads). :func:`default_lane_mode` picks one by backend and rows.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from kernels import Problem, Settings, fresh_state
from kernels.families import BINOMIAL

from .buffers import HOST_BUFFERS, design_arrays
from .config import EngineConfig, current
from .outputs import LaneOutputs, lane_outputs, path_lengths, to_numpy
from .programs import program
from .executables import register_cache, solve_scope
from .scopes import blas_scope, enable_compilation_cache, precision_scope
from .segments import concat_lanes, keep_moments, run_segments
from .shapes import bucket_lambdas, bucket_lanes, bucket_size, check_memory, initial_capacity

#: On accelerators, lanes of problems with at least this many rows run as a loop (see below).
VMAP_MAX_ROWS = 128


def default_lane_mode(n_rows: int | None = None, backend: str | None = None) -> str:
    """How B lanes of an ``n_rows``-sample problem run: ``"vmap"`` (:func:`solve_vmapped`) or ``"loop"``.

    The configured ``lane_mode`` (``$JAXLASSO_LANE_MODE``) decides where it is set. Else, on a
    CPU (``backend``, default JAX's default backend): ``"loop"`` -- lockstep lanes waste work
    that few cores cannot hide (:mod:`kernels.batched`). On accelerators: ``"vmap"`` below
    :data:`VMAP_MAX_ROWS` rows, ``"loop"`` from there on: batching is free while one lane's
    steps are too small to fill the device, and costs lockstep and compile time once they are
    not (``benchmarks/NOTES.md``). ``n_rows=None``: vmap.
    """
    mode = current().lane_mode
    if mode is not None:
        return mode
    if (backend or jax.default_backend()) == "cpu":
        return "loop"
    return "loop" if n_rows is not None and n_rows >= VMAP_MAX_ROWS else "vmap"


def lane_threads(n_lanes: int, cores: int | None = None) -> int:
    """How many looped lanes (folds, resamples) are solved at once, each in its own thread.

    The configured ``lane_threads`` (``$JAXLASSO_LANE_THREADS``), else the ``cores`` this process
    may use (default: its CPU affinity), at most 4 -- on every backend; never more than the
    lanes. On a CPU one lane's solve leaves part of the cores idle (many of its steps are too
    small for XLA's intra-op threads), and on a GPU one lane leaves the device idle between its
    many small launches and host round trips; other lanes fill those gaps (``benchmarks/NOTES.md``:
    two threads made CVs 15-40% faster; more than 4 gained little). Lanes are independent: the
    results do not depend on it.
    """
    want = current().lane_threads
    if want is None:
        if cores is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        want = min(cores, 4)
    return max(1, min(n_lanes, want))


def _host_response(y):
    """The response on the host: a plain array (binomial labels, a Gaussian outcome) in float64;
    in a pytree (a family's structured response) integer leaves -- indices such as a sort order
    -- stay integers (int32) and the rest become float64."""
    if jax.tree_util.treedef_is_leaf(jax.tree.structure(y)):
        return np.asarray(y, dtype=np.float64)

    def leaf(a):
        a = np.asarray(a)
        return a.astype(np.int32) if np.issubdtype(a.dtype, np.integer) else a.astype(np.float64)

    return jax.tree.map(leaf, y)


def _response_leaf(a: np.ndarray, jdt) -> jax.Array:
    return jnp.asarray(a, jnp.int32 if np.issubdtype(a.dtype, np.integer) else jdt)


@dataclass(frozen=True)
class LaneBatch:
    """One :func:`solve_lanes` call's problem, padded to its bucket and placed for the kernels."""

    design: tuple  # (X, XT, colnorm) device arrays over the bucketed (n, p)
    y: object  # the family's response pytree: leaves (n,) or (B, n), padded
    y_batched: bool  # the leaves carry a lane axis (per-lane labels)
    W: np.ndarray  # (B, n), padded
    pf: np.ndarray  # (p,) or (B, p), padded with inf
    master: np.ndarray  # (B,) bool
    keep_moments: np.ndarray  # (B,) bool: the lanes whose moments are returned
    lambdas: jax.Array  # (Lp,) the grid padded to its bucket
    settings: Settings
    l1_ratio: jax.Array
    L: int  # real grid length
    p_real: int  # real features: the largest working set
    k: int  # working-set capacity to start with
    early_stop: bool
    statics: dict  # fit_intercept, standardize, keep_eta, family
    dtype: np.dtype
    jdt: object  # the JAX dtype

    @property
    def B(self) -> int:
        return self.W.shape[0]

    @property
    def Lp(self) -> int:
        return int(self.lambdas.shape[0])

    @property
    def p(self) -> int:
        """The bucketed number of features."""
        return self.pf.shape[-1]

    def problem(self, lanes, pad_to: int | None = None, shared: tuple | None = None) -> Problem:
        """The kernels' problem of ``lanes`` (an index array: a lane axis, padded to ``pad_to``
        lanes by repeating the first -- valid weights, no 0/0 moments; the padding lanes are
        skipped) or of one lane (an int: no lane axis). ``shared``: :meth:`shared` of this batch,
        the leaves no lane changes already on the device."""
        def pick(a, batched=True):
            if not batched:
                return a
            a = a[lanes]
            if pad_to is not None and pad_to > len(a):
                a = np.concatenate([a, np.repeat(a[:1], pad_to - len(a), axis=0)])
            return a

        jdt = self.jdt
        y_d, pf_d = (None, None) if shared is None else shared
        y = y_d if y_d is not None else \
            jax.tree.map(lambda a: _response_leaf(pick(a, self.y_batched), jdt), self.y)
        pf = pf_d if pf_d is not None else jnp.asarray(pick(self.pf, self.pf.ndim == 2), jdt)
        return Problem(*self.design, y, jnp.asarray(pick(self.W), jdt), pf, self.l1_ratio)

    def shared(self) -> tuple:
        """``(y, pf)`` on the device where no lane changes them (else None): a loop of single
        lanes places them once, not once per lane (a lane of a permutation test costs ~10 ms, and
        each placement ~0.1 ms of the Python that lane threads take turns at). Call inside the
        batch's :func:`precision_scope`."""
        y = None if self.y_batched else jax.tree.map(lambda a: _response_leaf(a, self.jdt), self.y)
        pf = None if self.pf.ndim == 2 else jnp.asarray(self.pf, self.jdt)
        return y, pf


def solve_vmapped(batch: LaneBatch, chunk: int, config: EngineConfig):
    """The lanes in vmapped calls of at most ``chunk`` lanes, each padded to one lane bucket.

    ``chunk`` is the configured ``vmap_lanes`` (default 16): a 10-fold CV (11 lanes) fits one
    chunk, every chunk of a larger batch (bootstrap resamples, repeated CV) goes through one
    executable -- the compile time of a vmapped solver grows steeply with its lanes on a GPU
    (``benchmarks/NOTES.md``) -- and chunks bound the memory of a batch. Lanes are independent,
    so the chunking changes no result. Masters come first, in the first chunk: as in the loop,
    their early stop bounds the lanes of every later chunk (under vmap the first master to stop
    ends its chunk). Returns :func:`run_segments`' results in the caller's lane order.
    """
    master, L, Lp = batch.master, batch.L, batch.Lp
    Bp = bucket_lanes(chunk)

    def solve_chunk(lanes: np.ndarray, bound: int):
        Bc = len(lanes)
        problem = batch.problem(lanes, pad_to=Bp)
        master_d = jnp.asarray(np.r_[master[lanes], np.zeros(Bp - Bc, bool)])

        def run(k, state, start, stop):
            fn = program(config.lanes_solver, k=k, y_batched=batch.y_batched, pf_batched=batch.pf.ndim == 2,
                         **batch.statics)
            pad_start = np.r_[start, np.full(Bp - Bc, Lp, np.int32)]
            pad_stop = np.r_[stop, np.repeat(stop[:1], Bp - Bc)]
            state = fresh_state(batch.p, batch.jdt, (Bp,)) if state is None else state
            res = fn(problem, batch.lambdas, state, jnp.asarray(pad_start), jnp.asarray(pad_stop),
                     batch.settings, master_d)
            return (*to_numpy(res[0], res[2].mom, res[1], Bc, L), res[2])

        return keep_moments(run_segments(run, Bc, L, Lp, batch.k, np.full(Bc, bound, np.int32), batch.p_real,
                                         master[lanes] if batch.early_stop else None), batch.keep_moments[lanes])

    if master.sum() > chunk:
        raise ValueError(f"{int(master.sum())} master lanes do not fit one vmapped chunk of {chunk} "
                         "lanes; raise JAXLASSO_VMAP_LANES")
    order = np.r_[np.flatnonzero(master), np.flatnonzero(~master)]
    parts, bound = [], L
    for c0 in range(0, batch.B, chunk):
        lanes = order[c0:c0 + chunk]
        parts.append(solve_chunk(lanes, bound))
        if batch.early_stop and master[lanes].any():
            bound = min(bound, int(path_lengths(parts[-1][0]["status"][master[lanes]]).min()))
    return concat_lanes(parts, np.argsort(order), batch.keep_moments[order])


_COMPILE_LOCK = threading.Lock()
_CALLED: set = set()
# Its keys hold the jitted functions: forgotten with the executables (see .executables).
register_cache(_CALLED.clear)


def _first_call_alone(fn, args):
    """``fn(*args)``, the first call of each executable (function and argument shapes) in one
    thread at a time.

    Lane threads that reach a new working-set capacity together would otherwise each compile the
    same program (JAX does not merge compilations in flight): seconds of compiler time per thread
    and one more executable's memory mappings each, and concurrent writes of one persistent-cache
    entry. Later calls of a compiled executable run in parallel as before.
    """
    key = (fn, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args)))
    if key in _CALLED:
        return fn(*args)
    with _COMPILE_LOCK:
        result = fn(*args)
        _CALLED.add(key)
    return result


def solve_looped(batch: LaneBatch, threads: int, config: EngineConfig):
    """The lanes one per call of a single-lane executable, ``threads`` lanes at once.

    Masters run first: their early stop bounds every other lane, as the ``psum`` does under
    vmap (the first master to stop ends every lane). Returns :func:`run_segments`' results.
    """
    master, L = batch.master, batch.L
    fresh = fresh_state(batch.p, batch.jdt)  # one for all lanes
    with precision_scope(batch.dtype):
        shared = batch.shared()

    def solve_lane(b: int, bound: int):
        def run(k, state, start, stop):
            fn = program(config.single_solver, k=k, fit_intercept=batch.statics["fit_intercept"],
                         standardize=batch.statics["standardize"], family=batch.statics["family"])
            # Scalars as numpy: the compiled call places them itself, without a Python device_put each.
            args = (problem, batch.lambdas, fresh if state is None else state, np.asarray(start[0], np.int32),
                    np.asarray(stop[0], np.int32), batch.settings, np.asarray(master[b], bool))
            out, nd, state = _first_call_alone(fn, args)
            # One lane: add the lane axis on the host (no device op per array).
            return (*to_numpy(*jax.tree.map(lambda a: np.asarray(a)[None], (out, state.mom, nd)), 1, L), state)

        # JAX's config scopes (x64, matmul precision) are per thread: enter them here, before
        # any array is made, or a worker thread would silently build float32 arrays.
        with precision_scope(batch.dtype):
            problem = batch.problem(b, shared=shared)
            return keep_moments(run_segments(run, 1, L, batch.Lp, batch.k, np.array([bound], np.int32),
                                             batch.p_real), batch.keep_moments[b:b + 1])

    lanes = [None] * batch.B
    bound = L
    for b in np.flatnonzero(master):
        lanes[b] = solve_lane(b, bound)
        if batch.early_stop:
            bound = min(bound, int(path_lengths(lanes[b][0]["status"])[0]))
    rest = [b for b in range(batch.B) if not master[b]]
    if min(threads, len(rest)) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(rest))) as pool:
            for b, out in zip(rest, pool.map(lambda b: solve_lane(b, bound), rest)):
                lanes[b] = out
    else:
        for b in rest:
            lanes[b] = solve_lane(b, bound)
    return concat_lanes(lanes)


#: ``Lanes.lambda_bucket`` pads a grid to at most this many times its own bucket: each lane's
#: outputs are (bucket, n) and (bucket, k) arrays, allocated and filled whatever it solves.
_MAX_LAMBDA_PADDING = 4


@dataclass(frozen=True)
class Lanes:
    """What varies between the calls of :func:`solve_lanes` on one problem: the lanes.

    ``W`` (B, n) the lanes' observation weights (zero: the row is held out); ``is_master`` (B,)
    the lanes whose early stop ends every lane (default none); ``Y`` (B, n) per-lane labels
    (default: the problem's ``y`` in every lane); ``pf`` (B, p) per-lane penalty factors, already
    rescaled (default: the problem's); ``lambdas`` a grid other than the problem's;
    ``early_stop`` (default: the problem's); ``keep_eta`` keep each lane's linear predictors;
    ``k0`` the working-set capacity to start with (default: :func:`initial_capacity`);
    ``keep_moments`` the lanes whose standardisation moments (``xm``, ``xs``, ``excluded``: 17
    bytes per feature and lane) are returned -- True every lane, False none, or (B,) bools.
    Only a lane whose coefficients go back to the original scale needs them; with p >> n the
    moments of hundreds of lanes outweigh the design. ``lambda_bucket``: where the lanes are
    looped, pad the grid to the bucket of this many lambdas and run the programs compiled for
    batches of that bucket (a permutation test's ~25 lambdas beside its CV's 100: two programs
    fewer to compile on a cold cache). A looped lane steps only through the lambdas it solves,
    so the padding costs only its larger output arrays; it is not applied beyond
    ``_MAX_LAMBDA_PADDING`` times the grid's own bucket, nor under vmap, where every padded
    lambda is a step of every lane.
    """

    W: np.ndarray
    is_master: np.ndarray | None = None
    Y: np.ndarray | None = None
    pf: np.ndarray | None = None
    lambdas: np.ndarray | None = None
    early_stop: bool | None = None
    keep_eta: bool = False
    k0: int | None = None
    keep_moments: bool | np.ndarray = True
    lambda_bucket: int | None = None


def solve_lanes(problem, lanes: Lanes, *, mode: str | None = None) -> LaneOutputs:
    """Solve the B paths of ``lanes`` on ``problem`` (numpy in, numpy out).

    ``problem`` holds what no lane changes (a ``jaxlasso.path.PreparedProblem``): the design
    ``X`` (n, p) and its ``design_shift`` (the kernels solve ``X - design_shift``; None: ``X``), labels
    ``y``, rescaled penalty factors ``pf``, ``l1_ratio``, ``lambdas``, ``fit_intercept``,
    ``standardize``, ``early_stop``, ``tol``, ``max_iter``, ``max_sweeps`` and ``dtype``, and
    its ``family`` (the kernel datafit, default binomial) and ``y_scale`` (the kernel's lambdas
    are ``lambdas / y_scale``; default 1). Per-lane labels ``lanes.Y`` are on the kernel's scale.
    ``mode``: ``"vmap"`` or ``"loop"`` (default: :func:`default_lane_mode` of the problem's rows).
    """
    W = np.asarray(lanes.W, dtype=np.float64)
    B = W.shape[0]
    lambdas = problem.lambdas if lanes.lambdas is None else lanes.lambdas
    scale = getattr(problem, "y_scale", 1.0)
    if scale != 1.0:
        # The kernel solves on the family's standardised response (Gaussian: glmnet's y / sd):
        # its lambdas are the user's divided by that scale.
        lambdas = np.asarray(lambdas, dtype=np.float64) / scale
    return _solve(problem.X, problem.y if lanes.Y is None else lanes.Y, W,
                  problem.pf if lanes.pf is None else lanes.pf, problem.l1_ratio, lambdas,
                  fit_intercept=problem.fit_intercept, standardize=problem.standardize,
                  early_stop=problem.early_stop if lanes.early_stop is None else lanes.early_stop,
                  keep_eta=lanes.keep_eta,
                  is_master=np.zeros(B, bool) if lanes.is_master is None else lanes.is_master,
                  tol=problem.tol, max_iter=problem.max_iter, max_sweeps=problem.max_sweeps,
                  dtype=problem.dtype, k0=lanes.k0, mode=mode,
                  family=getattr(problem, "family", BINOMIAL),
                  keep_moments=np.broadcast_to(np.asarray(lanes.keep_moments, bool), (B,)),
                  shift=getattr(problem, "design_shift", None), lambda_bucket=lanes.lambda_bucket)


def _solve(X, y, W, pf, l1_ratio: float, lambdas: np.ndarray, *, fit_intercept: bool,
           standardize: bool, early_stop: bool, keep_eta: bool, is_master: np.ndarray,
           tol: float, max_iter: int, max_sweeps: int, dtype, k0: int | None = None,
           mode: str | None = None, family=BINOMIAL,
           keep_moments: np.ndarray | None = None, shift: np.ndarray | None = None,
           lambda_bucket: int | None = None) -> LaneOutputs:
    """Solve B paths sharing ``X - shift`` (``shift`` None: ``X``; numpy in, numpy out), growing
    the working set as needed.

    ``y`` is the family's response (:mod:`kernels.families`): an array (n,) or (B, n), or a
    pytree of such arrays (every leaf with the rows on its last axis; padded rows are zeros
    with zero weight); ``W`` (B, n); ``pf`` (p,) or (B, p) (already rescaled). With
    ``early_stop``, glmnet's stopping rule is decided by the ``is_master`` lanes and ends every
    lane at the same lambda (cv.glmnet: the folds use the full fit's shortened grid). ``mode``:
    ``"vmap"`` or ``"loop"`` (default: :func:`default_lane_mode` of the caller's rows).

    Shapes are padded to buckets -- rows with zero weight, columns of zeros with an infinite
    penalty factor, lanes (vmap) and lambdas that are skipped -- so that one compiled executable
    serves many problem sizes; the padding changes no result.
    """
    config = current()
    W = np.asarray(W, dtype=np.float64)
    B, n_real = W.shape
    mode = mode or default_lane_mode(n_real)
    keep_moments = np.ones(B, bool) if keep_moments is None else np.asarray(keep_moments, bool)
    if mode not in ("vmap", "loop"):
        raise ValueError(f"mode must be 'vmap' or 'loop' (got mode={mode!r})")
    enable_compilation_cache()
    p_real = X.shape[1]
    chunk = min(B, config.vmap_lanes or B)
    threads = lane_threads(B)
    L, Lp = len(lambdas), bucket_lambdas(len(lambdas))
    if lambda_bucket is not None and mode == "loop" and bucket_lambdas(lambda_bucket) <= _MAX_LAMBDA_PADDING * Lp:
        Lp = max(Lp, bucket_lambdas(lambda_bucket))
    # Looped lanes are solved `threads` at a time: that many are in memory at once.
    check_memory(n_real, p_real, chunk if mode == "vmap" else threads, Lp, "this fit")
    n, p = bucket_size(n_real), bucket_size(p_real)
    y = _host_response(y)
    y_batched = jax.tree.leaves(y)[0].ndim == 2
    pf = np.asarray(pf, dtype=np.float64)

    with solve_scope(), blas_scope(), precision_scope(dtype):
        jdt = jnp.float64 if np.dtype(dtype) == np.float64 else jnp.float32
        # On a CPU backend the device arrays alias the host buffers: reuse them across solves
        # (given back below, once nothing reads them; see HostBufferPool).
        taken: list[np.ndarray] = []
        pooled = jax.default_backend() == "cpu" and HOST_BUFFERS.max_bytes > 0

        def alloc(shape, dtype):
            taken.append(HOST_BUFFERS.take(shape, dtype))
            return taken[-1]

        batch = LaneBatch(
            design=design_arrays(X, jdt, kkt_float32=mode == "loop" and config.kkt_float32, shape=(n, p),
                                 alloc=alloc if pooled else None, shift=shift),
            y=jax.tree.map(lambda a: np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, n - n_real)]), y),
            y_batched=y_batched, W=np.pad(W, ((0, 0), (0, n - n_real))),
            pf=np.pad(pf, [(0, 0)] * (pf.ndim - 1) + [(0, p - p_real)], constant_values=np.inf),
            master=np.asarray(is_master, bool), keep_moments=keep_moments,
            lambdas=jnp.asarray(np.concatenate([lambdas, np.repeat(lambdas[-1:], Lp - L)]), jdt),
            settings=Settings(jnp.asarray(tol, jdt), jnp.asarray(max_iter, jnp.int32),
                              jnp.asarray(max_sweeps, jnp.int32), jnp.asarray(bool(early_stop))),
            l1_ratio=jnp.asarray(l1_ratio, jdt), L=L, p_real=p_real,
            k=min(p_real, k0 if k0 is not None else initial_capacity(n_real, p_real, l1_ratio)),
            early_stop=bool(early_stop), statics=dict(fit_intercept=fit_intercept, standardize=standardize,
                                                      keep_eta=keep_eta, family=family), dtype=np.dtype(dtype), jdt=jdt)
        if mode == "vmap":
            merged, moments, null_dev, caps = solve_vmapped(batch, chunk, config)
        else:
            merged, moments, null_dev, caps = solve_looped(batch, threads, config)
    # Every output is on the host: no computation reads the design any more.
    del batch
    HOST_BUFFERS.give(taken)
    return lane_outputs(merged, moments, null_dev, caps, n=n_real, p=p_real, keep_eta=keep_eta, mode=mode,
                        kept=None if keep_moments.all() else keep_moments)
