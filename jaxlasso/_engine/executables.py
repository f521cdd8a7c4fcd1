"""Compiled executables: the memory mappings they hold, and releasing them before a process runs
out of mappings.

XLA:CPU loads every compiled program with LLVM's JIT linker, which maps the code, read-only data
and data of each compiled kernel separately: one configuration of the path solver (a family, a
capacity, a shape bucket, its statics) holds some 500-750 mappings. JAX keeps every executable
it compiled for the life of the process, and Linux caps the mappings of a process
(``vm.max_map_count``, 65,530 by default). A process that compiles enough distinct
configurations -- a test worker, a notebook, a Dask worker screening datasets of many shapes --
then aborts inside LLVM ("Unable to allocate section memory") or faults in whatever maps memory
next (a compile, a cache read, numpy). :func:`solve_scope` prevents that: a solve that starts
while the process holds more than :data:`RELEASE_FRACTION` of its limit first drops JAX's
compiled executables (and the solver factories' caches), so that the next solves compile afresh
into a process with room.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable

import jax

log = logging.getLogger("jaxlasso")

RELEASE_FRACTION = 0.5
"""Release compiled executables once the process holds this fraction of its mapping limit.

Half the default limit is ~50 solver configurations: a one-shot run never reaches it, and the
other half leaves room for the several executables one solve may compile before the next check.
"""

CHECK_INTERVAL_S = 1.0
"""Count the mappings at most this often (a count reads ``/proc/self/maps``: ~1 ms per 3,000
mappings); a solver configuration takes longer than this to compile, so no check is skipped
that could have found the process much closer to its limit."""

_MAPS = "/proc/self/maps"
_LIMIT = "/proc/sys/vm/max_map_count"


def mapping_count() -> int | None:
    """The number of memory mappings of this process, or None where the system does not say."""
    try:
        with open(_MAPS, "rb") as f:
            return f.read().count(b"\n")
    except OSError:
        return None


def mapping_limit() -> int | None:
    """The system's limit on a process's memory mappings, or None where it has none or hides it."""
    try:
        with open(_LIMIT) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class _Releaser:
    """The process's solves in flight and its mapping checks (one instance, :data:`_RELEASER`).

    Executables are released only when no solve is in flight: a solve in another thread keeps
    running the executables it holds, but would compile again the ones it has not reached yet.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.next_check = 0.0
        self.releases = 0
        self.caches: list[Callable[[], None]] = []

    def enter(self) -> None:
        with self.lock:
            if self.in_flight == 0 and time.monotonic() >= self.next_check:
                self.next_check = time.monotonic() + CHECK_INTERVAL_S
                count, limit = mapping_count(), mapping_limit()
                if count is not None and limit is not None and count > RELEASE_FRACTION * limit:
                    self.release(count, limit)
            self.in_flight += 1

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def release(self, count: int, limit: int) -> None:
        for clear in self.caches:
            clear()
        jax.clear_caches()
        gc.collect()  # executables referenced from reference cycles go now, not at a later collection
        self.releases += 1
        log.info("released compiled executables: the process held %d memory mappings of its limit %d "
                 "(vm.max_map_count); %d after", count, limit, mapping_count() or -1)


_RELEASER = _Releaser()


def register_cache(clear: Callable[[], None]) -> None:
    """Have ``clear()`` called whenever compiled executables are released: a cache that holds
    jitted functions (or keys naming them) would otherwise keep their executables alive."""
    _RELEASER.caches.append(clear)


def _clear_solver_factories() -> None:
    from kernels import batched

    for factory in (batched.single_solver, batched.lanes_solver, batched.datasets_solver):
        factory.cache_clear()


register_cache(_clear_solver_factories)


def release_count() -> int:
    """How many times this process has released its compiled executables."""
    return _RELEASER.releases


@contextlib.contextmanager
def solve_scope():
    """The scope of one solve: on entry, compiled executables are released if the process is
    close to its limit of memory mappings (see the module docstring). Solves nest and overlap
    across threads; the release happens only on entry of a solve that finds none in flight."""
    _RELEASER.enter()
    try:
        yield
    finally:
        _RELEASER.leave()
