"""Host buffers: aligned arrays a CPU backend reads in place, a pool that reuses them, and the
design arrays built in them."""

from __future__ import annotations

import collections
import threading

import jax
import jax.numpy as jnp
import numpy as np

from ..lambdas import weighted_square_sums
from .config import current

# XLA:CPU reads a host buffer in place when its data is aligned to this many bytes.
_HOST_ALIGN = 64


def host_array(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised numpy array whose data starts on a ``_HOST_ALIGN``-byte boundary.

    ``jax.device_put`` on a CPU backend aliases such a buffer instead of copying it. A copy into
    XLA's allocator costs more than the arithmetic that fills the buffer: numpy backs large arrays
    with huge pages, while XLA's fresh buffers fault in 4 KiB at a time.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _HOST_ALIGN, np.uint8)
    offset = (-raw.ctypes.data) % _HOST_ALIGN
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


class HostBufferPool:
    """Aligned host buffers for the design, handed to later solves of the same shape (CPU backends).

    The design's arrays are hundreds of MB on large problems (1000 x 20,000: 240 MB), and writing
    them into fresh memory pays the page faults of every page, more than the copy itself
    (``benchmarks/NOTES.md``: a quarter of a large path's time). A solve takes its buffers with
    :meth:`take` and gives them back with :meth:`give` only once it has finished normally -- on a
    CPU backend its device arrays alias them, so a buffer is never handed out while a solve can
    still read it; two solves at once get different buffers. The pool keeps the buffers of the
    last solve that gave any back -- a solve of another shape (a subsample, a simulated study
    of another size) evicts the shapes before it, so that dead designs of earlier shapes do not
    pile up beside the live one -- and at most ``max_bytes`` (default: the configured
    ``buffer_pool_bytes``, ``$JAXLASSO_BUFFER_POOL``, 1 GiB; 0 disables it); :meth:`clear` frees
    everything. :attr:`reused` counts the buffers handed out again.
    """

    def __init__(self, max_bytes: float | None = None):
        self._max = max_bytes
        self._free: collections.OrderedDict[tuple, list[np.ndarray]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.reused = 0

    @property
    def max_bytes(self) -> float:
        return current().buffer_pool_bytes if self._max is None else self._max

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
                self.reused += 1
                return buf
        return host_array(shape, dtype)

    def give(self, buffers) -> None:
        """Return buffers no computation reads any more."""
        limit = self.max_bytes
        buffers = [b for b in buffers if b.nbytes <= limit]
        keys = {(b.shape, b.dtype.str) for b in buffers}
        with self._lock:
            if keys:
                for key in [k for k in self._free if k not in keys]:
                    del self._free[key]
            for buf in buffers:
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


#: The process's pool: host memory is a process-wide resource, and the solves that reuse each
#: other's buffers are calls of the functional API that share nothing else.
HOST_BUFFERS = HostBufferPool()


def to_device(a: np.ndarray) -> jax.Array:
    """Place a host array this package built (and never writes again) on the default device."""
    return jax.device_put(a, may_alias=True)


def _largest_magnitude(X: np.ndarray, shift: np.ndarray | None) -> float:
    """max |X - shift| over every entry, without forming ``X - shift``: rounding a difference is
    monotone in ``X``, so each column's extremes are its largest and smallest entries shifted."""
    if shift is None:
        return max(float(X.max()), -float(X.min()))
    axes = tuple(range(X.ndim - 1))
    return max(float((X.max(axis=axes) - shift).max()), -float((X.min(axis=axes) - shift).min()))


# Columns of X per strip of its transposing copy (see design_arrays).
_STRIP = 64


def design_arrays(X: np.ndarray, jdt, put=None, *, kkt_float32: bool = False, shape=None, alloc=None,
                  shift: np.ndarray | None = None):
    """The design as the kernels take it (``Problem.X``, ``Problem.XT``, ``Problem.colnorm``),
    over the last two axes, each placed on the device by ``put``.

    ``shift`` (p,): the kernels get ``X - shift`` (a :class:`jaxlasso.path.PreparedProblem`'s
    centred design), written straight into their buffers -- the same values as from a centred
    copy of ``X``, without one. ``None``: ``X`` as it is.

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
    put = to_device if put is None else put
    alloc = host_array if alloc is None else alloc
    X = np.asarray(X)
    shape = tuple(X.shape) if shape is None else tuple(shape)
    n, p = X.shape[-2:]
    npdt = np.dtype(np.float64) if jdt == jnp.float64 else np.dtype(np.float32)

    def fill(out, src, sh):
        if shift is None:
            np.copyto(out, src, casting="same_kind")
        else:
            # The difference is rounded in X's precision, then cast: as a copy of X - shift.
            np.subtract(src, sh, out=out, casting="same_kind")

    def padded(dtype):
        dst = alloc(shape, dtype)
        fill(dst[..., :n, :p], X, shift)
        dst[..., n:, :] = 0.0
        dst[..., :n, p:] = 0.0
        return dst

    def transposed(dtype):
        # X^T written from the unpadded X in strips of _STRIP columns: each strip is read while
        # it stays in cache, and its rows of X^T are written in order. One transposing copy
        # writes with a stride instead and misses the cache on almost every element (1000 x
        # 20,000: 140 ms against 25 ms); reading out of a power-of-two row stride (a bucketed
        # shape) would be slower again, as the strided reads collide in the cache.
        dst = alloc(shape[:-2] + (shape[-1], shape[-2]), dtype)
        for j in range(0, p, _STRIP):
            stop = min(j + _STRIP, p)
            fill(dst[..., j:stop, :n], np.swapaxes(X[..., :, j:stop], -1, -2),
                 None if shift is None else shift[j:stop, None])
        dst[..., p:, :] = 0.0
        dst[..., :p, n:] = 0.0
        return dst

    XTh = transposed(npdt)
    colnorm = np.zeros(shape[:-2] + (shape[-1],), npdt)
    # No float32 copy of entries beyond 2^100: products and sums of n of them must stay finite.
    if (kkt_float32 and jdt == jnp.float64
            and (X.size == 0 or _largest_magnitude(X, shift) <= 2.0 ** 100)):
        Xh = padded(np.float32)
        ones = np.ones(n)
        for i in np.ndindex(*X.shape[:-2]):
            colnorm[i][:p] = np.sqrt(weighted_square_sums(X[i], ones, shift=shift))
    else:
        Xh = padded(npdt)
    return put(Xh), put(XTh), put(colnorm)
