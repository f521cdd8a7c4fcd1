"""The lanes' outputs on the host: :class:`LaneOutputs`, path lengths and status reports."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import numpy as np

from kernels import Status

from ..exceptions import ConvergenceWarning


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
    xm: np.ndarray  # (B, p), or (kept lanes, p): see moment_rows
    xs: np.ndarray  # (B, p), or (kept lanes, p)
    excluded: np.ndarray  # (B, p), or (kept lanes, p)
    null_deviance: np.ndarray  # (B,)
    capacities: tuple[int, ...]  # working-set capacities used (one compile each)
    mode: str = "vmap"  # how the lanes ran: "vmap" (batched calls) or "loop" (one lane per call)
    moment_rows: np.ndarray | None = None
    """(B,) row of each lane's moments in ``xm``, ``xs``, ``excluded`` (-1: not kept, see
    ``Lanes.keep_moments``); None: every lane's, row ``b`` is lane ``b``."""

    def moments(self, lane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xm, xs, excluded)`` (p,) of one lane; an error when its moments were not kept."""
        row = lane if self.moment_rows is None else int(self.moment_rows[lane])
        if row < 0:
            raise ValueError(f"the moments of lane {lane} were not kept; solve it with "
                             f"Lanes(keep_moments=...) including it (got lane={lane})")
        return self.xm[row], self.xs[row], self.excluded[row]

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

    def sparse_coef(self, lane: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The nonzero standardised coefficients of one lane's first ``length`` lambdas, row by
        row: ``(indptr (length + 1,), feature (nnz,), value (nnz,))``, features increasing within
        a row -- :meth:`dense_coef` without its (L, p) array. A feature held by two slots of a
        row (never, but possible in principle) gets their sum, as in :meth:`dense_coef`."""
        idx, coef = self.idx[lane, :length], self.coef[lane, :length]
        li, slot = np.nonzero(coef)
        feat = idx[li, slot].astype(np.int64)
        order = np.lexsort((feat, li))
        li, feat, val = li[order], feat[order], coef[li[order], slot[order]]
        first = np.ones(len(li), bool)
        first[1:] = (li[1:] != li[:-1]) | (feat[1:] != feat[:-1])
        if not first.all():
            starts = np.flatnonzero(first)
            val = np.add.reduceat(val, starts)
            li, feat = li[starts], feat[starts]
        indptr = np.zeros(length + 1, np.int64)
        np.cumsum(np.bincount(li, minlength=length), out=indptr[1:])
        return indptr, feat, val


def path_lengths(status: np.ndarray) -> np.ndarray:
    """(B,) index after the last solved lambda of each lane (0 if none was solved)."""
    solved = status != Status.SKIPPED
    last = solved.shape[1] - np.argmax(solved[:, ::-1], axis=1)
    return np.where(solved.any(axis=1), last, 0)


def to_numpy(out, mom, null_dev, B: int, L: int):
    """``(PathOut, Moments, null_dev)`` on the host, for the first B lanes and L lambdas (``mom``:
    the moments of the state the kernel returned)."""
    out = jax.tree.map(lambda a: np.asarray(a)[:B, :L], out)
    mom = jax.tree.map(lambda a: np.asarray(a)[:B], mom)
    return out, mom, np.asarray(null_dev)[:B]


def lane_outputs(merged: dict, moments, null_dev: np.ndarray, capacities: tuple[int, ...], *, lanes=slice(None),
                 n: int, p: int, L: int | None = None, keep_eta: bool, mode: str,
                 kept: np.ndarray | None = None) -> LaneOutputs:
    """The :class:`LaneOutputs` of ``lanes`` (first ``L`` lambdas) of merged segment results,
    with the padding to a bucketed shape taken off: rows beyond ``n``, columns beyond ``p``
    (never active: their slots point at column 0 with coefficient 0). ``kept`` (bool, one per
    lane): ``moments`` holds these lanes' rows only, in lane order."""
    part = {key: value[lanes, :L] for key, value in merged.items()}
    eta = part.pop("eta")
    padded = part["idx"] >= p
    part["idx"] = np.where(padded, 0, part["idx"])
    part["coef"] = np.where(padded, 0.0, part["coef"])
    return LaneOutputs(**part, eta=eta[..., :n] if keep_eta else None, xm=moments.xm[lanes, :p],
                       xs=moments.xs[lanes, :p], excluded=moments.excluded[lanes, :p],
                       null_deviance=null_dev[lanes], capacities=capacities, mode=mode,
                       moment_rows=None if kept is None else np.where(kept, np.cumsum(kept) - 1, -1))


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
