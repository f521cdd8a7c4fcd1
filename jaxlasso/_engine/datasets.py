"""Stacked datasets: several datasets' lanes in one vmapped call, sharded over devices."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from kernels import Problem, Settings, fresh_state
from kernels.families import BINOMIAL

from .buffers import design_arrays
from .config import current
from .lanes import Lanes, _host_response, _response_leaf
from .outputs import LaneOutputs, lane_outputs
from .programs import program
from .executables import solve_scope
from .scopes import blas_scope, enable_compilation_cache, precision_scope
from .segments import run_segments
from .shapes import bucket_lambdas, bucket_lanes, bucket_size, initial_capacity


@dataclass
class DatasetLanes:
    """One dataset of a batched solve: its lanes share its ``X``."""

    X: np.ndarray  # (n, p) design
    shift: np.ndarray | None  # (p,): the kernels solve X - shift (None: X)
    y: object  # the family's response: (n,), or a pytree of (n,) leaves (Cox's CoxData)
    W: np.ndarray  # (B, n) lane weights
    pf: np.ndarray  # (p,)
    lambdas: np.ndarray  # (L,)
    is_master: np.ndarray  # (B,)


@dataclass(frozen=True)
class _Stack:
    """The datasets padded to one shape (leading axis: datasets, a whole number per device)."""

    X: np.ndarray  # (Dp, nb, pb)
    Y: object  # the responses' pytree, every leaf (Dp, nb)
    W: np.ndarray  # (Dp, Bb, nb)
    PF: np.ndarray  # (Dp, pb)
    LAM: np.ndarray  # (Dp, Lb)
    MASTER: np.ndarray  # (Dp, Bb)
    stop: np.ndarray  # (Dp, Bb): lambdas to solve per lane, 0 for padding lanes and datasets


def _stack(datasets: list[DatasetLanes], n_devices: int) -> _Stack:
    """Pad every dataset to the largest (bucketed) rows, columns, lanes and grid length: zero-weight
    rows, zero columns with an infinite penalty factor, skipped lanes and steps -- none of which
    changes a result -- and the datasets to a multiple of ``n_devices`` (copies of the first).
    A pytree response (every dataset's of one structure, as one family gives) is padded leaf by
    leaf with zeros, as :func:`jaxlasso._engine.solve_lanes` pads one (integer leaves stay
    integers)."""
    D = len(datasets)
    nb = max(bucket_size(d.X.shape[0]) for d in datasets)
    pb = max(bucket_size(d.X.shape[1]) for d in datasets)
    Bb = bucket_lanes(max(d.W.shape[0] for d in datasets))
    Lb = bucket_lambdas(max(len(d.lambdas) for d in datasets))
    Dp = -(-D // n_devices) * n_devices
    ys = [_host_response(d.y) for d in datasets]
    Y = jax.tree.map(lambda a: np.zeros((Dp, nb), a.dtype), ys[0])
    s = _Stack(np.zeros((Dp, nb, pb)), Y, np.zeros((Dp, Bb, nb)), np.full((Dp, pb), np.inf),
               np.ones((Dp, Lb)), np.zeros((Dp, Bb), bool), np.zeros((Dp, Bb), np.int32))
    for i in range(Dp):
        d = datasets[i] if i < D else datasets[0]
        n, p = d.X.shape
        B, L = d.W.shape[0], len(d.lambdas)
        if d.shift is None:
            s.X[i, :n, :p] = d.X
        else:
            np.subtract(d.X, d.shift, out=s.X[i, :n, :p])
        for into, leaf in zip(jax.tree.leaves(s.Y), jax.tree.leaves(ys[i if i < D else 0])):
            into[i, :n] = leaf
        s.W[i, :B, :n] = d.W
        s.W[i, B:, :n] = d.W[:1]  # valid weights for skipped padding lanes (no 0/0 moments)
        s.PF[i, :p] = d.pf
        s.LAM[i, :L] = d.lambdas
        s.LAM[i, L:] = d.lambdas[-1]
        s.MASTER[i, :B] = d.is_master
        if i < D:
            s.stop[i, :B] = L
    return s


def _placement(devices: list):
    """``put``: an array onto the devices, its leading (dataset) axis sharded over them."""
    if len(devices) > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        sharding = NamedSharding(Mesh(np.array(devices), ("d",)), PartitionSpec("d"))
        return lambda a: jax.device_put(a, sharding)
    return lambda a: jax.device_put(a, devices[0])


#: What the datasets of one stacked call must share: one executable, one set of solve settings.
SHARED = ("l1_ratio", "fit_intercept", "standardize", "early_stop", "tol", "max_iter", "max_sweeps", "dtype",
          "family")


def _kernel_lambdas(prob) -> np.ndarray:
    scale = getattr(prob, "y_scale", 1.0)
    return prob.lambdas if scale == 1.0 else np.asarray(prob.lambdas, np.float64) / scale


def solve_datasets(problems: list, lanes: list[Lanes], *, devices=None) -> tuple[list[LaneOutputs], dict]:
    """Solve several problems' lanes in one vmapped call, sharded over ``devices``.

    ``problems[i]`` (as :func:`jaxlasso._engine.solve_lanes` takes it) is solved on
    ``lanes[i]``. The problems must share the settings in :data:`SHARED`, and the lanes
    ``keep_eta`` and ``k0``; per-lane labels, penalty factors or grids are not stacked.
    """
    if len(problems) != len(lanes) or not problems:
        raise ValueError(f"give one Lanes per problem, at least one (got {len(problems)} problems, "
                         f"{len(lanes)} Lanes)")
    first, ln0 = problems[0], lanes[0]
    for prob, ln in zip(problems, lanes):
        differ = [k for k in SHARED if getattr(prob, k) != getattr(first, k)]
        if differ or (ln.keep_eta, ln.k0) != (ln0.keep_eta, ln0.k0):
            raise ValueError(f"stacked datasets must share {', '.join(SHARED)}, keep_eta and k0 "
                             f"(got different {', '.join(differ) or 'keep_eta or k0'})")
        if ln.Y is not None or ln.pf is not None or ln.lambdas is not None or ln.early_stop is not None:
            raise ValueError("stacked datasets take the problems' labels, penalty factors, grids and "
                             "early stop (got Lanes with Y, pf, lambdas or early_stop)")
    # A family on a standardised response solves the user's lambdas / y_scale (see solve_lanes).
    datasets = [DatasetLanes(prob.X, getattr(prob, "design_shift", None), prob.y, np.asarray(ln.W, np.float64), prob.pf,
                             _kernel_lambdas(prob),
                             np.zeros(len(ln.W), bool) if ln.is_master is None else np.asarray(ln.is_master, bool))
                for prob, ln in zip(problems, lanes)]
    return _solve_stacked(datasets, **{k: getattr(first, k) for k in SHARED}, keep_eta=ln0.keep_eta,
                          devices=devices, k0=ln0.k0)


def _solve_stacked(datasets: list[DatasetLanes], *, l1_ratio: float, fit_intercept: bool, standardize: bool,
                   early_stop: bool, keep_eta: bool, tol: float, max_iter: int, max_sweeps: int, dtype,
                   family=BINOMIAL, devices=None, k0: int | None = None) -> tuple[list[LaneOutputs], dict]:
    """:func:`solve_datasets` on the datasets' arrays and the shared settings.

    Every dataset is padded to the largest (bucketed) shape of the batch (:func:`_stack`). The
    dataset axis is sharded across ``devices`` (default: all local devices) with
    ``jax.sharding``; on one device it is a plain vmap.

    Returns the per-dataset :class:`LaneOutputs` and bookkeeping (padding overhead, shapes).
    """
    config = current()
    enable_compilation_cache()
    devices = list(jax.local_devices() if devices is None else devices)
    s = _stack(datasets, len(devices))
    Dp, nb, pb = s.X.shape
    Bb, Lb = s.W.shape[1], s.LAM.shape[1]
    cap = max(d.X.shape[1] for d in datasets)
    k = min(cap, k0 if k0 is not None else initial_capacity(nb, cap, l1_ratio))
    real = sum(d.X.shape[0] * d.X.shape[1] for d in datasets)
    stats = {"datasets": len(datasets), "padded_shape": (Dp, nb, pb), "lanes": Bb, "lambdas": Lb,
             "padding_overhead": float(Dp * nb * pb / max(real, 1) - 1.0), "devices": len(devices)}

    with solve_scope(), blas_scope(), precision_scope(dtype):
        jdt = jnp.float64 if np.dtype(dtype) == np.float64 else jnp.float32
        put = _placement(devices)
        Y = jax.tree.map(lambda a: put(_response_leaf(a, jdt)), s.Y)
        problem = Problem(*design_arrays(s.X, jdt, put), Y, put(jnp.asarray(s.W, jdt)),
                          put(jnp.asarray(s.PF, jdt)), jnp.asarray(l1_ratio, jdt))
        lam_d = put(jnp.asarray(s.LAM, jdt))
        master_d = put(jnp.asarray(s.MASTER))
        settings = Settings(jnp.asarray(tol, jdt), jnp.asarray(max_iter, jnp.int32),
                            jnp.asarray(max_sweeps, jnp.int32), jnp.asarray(bool(early_stop)))

        def run(k, state, start, stop_flat):
            fn = program(config.datasets_solver, k=k, fit_intercept=fit_intercept, standardize=standardize,
                         keep_eta=keep_eta, family=family)
            if state is None:
                state = jax.tree.map(put, fresh_state(pb, jdt, (Dp, Bb)))
            res = fn(problem, lam_d, state, put(jnp.asarray(start.reshape(Dp, Bb))),
                     put(jnp.asarray(stop_flat.reshape(Dp, Bb))), settings, master_d)
            out, nd, mom = jax.tree.map(lambda a: np.asarray(a).reshape((Dp * Bb,) + a.shape[2:]),
                                        (res[0], res[1], res[2].mom))
            return out, mom, nd, res[2]

        merged, moments, null_dev, caps = run_segments(run, Dp * Bb, Lb, Lb, k, s.stop.reshape(-1), cap,
                                                       s.MASTER.reshape(-1) if early_stop else None,
                                                       np.repeat(np.arange(Dp), Bb))
    outs = [lane_outputs(merged, moments, null_dev, caps, lanes=slice(i * Bb, i * Bb + d.W.shape[0]),
                         n=d.X.shape[0], p=d.X.shape[1], L=len(d.lambdas), keep_eta=keep_eta, mode="vmap")
            for i, d in enumerate(datasets)]
    stats["capacities"] = caps
    return outs, stats
