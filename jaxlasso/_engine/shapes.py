"""Shapes: the buckets problems are padded to, working-set capacities, and memory estimates."""

from __future__ import annotations

import math

from .._config import PATH
from .config import current


def next_pow2(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


#: Dimensions up to this many are padded to a power of two, larger ones to 8 buckets per octave.
#: A power of two itself (else the buckets would not increase with the size across it).
POW2_UP_TO = 16


def bucket_size(x: int) -> int:
    """Shape bucket of a dimension: a power of two up to :data:`POW2_UP_TO`, then at most 8
    buckets per octave.

    Problems are padded to bucketed shapes (zero-weight rows, excluded zero columns) so that
    different datasets share compiled executables; above :data:`POW2_UP_TO` the padding is under
    12.5%. Bounded padding matters because a padded row is a row of every pass over the design,
    in memory and time (2.5 MB of design per row at p = 200,000); the price of finer buckets is
    more shapes to compile.
    """
    if x <= POW2_UP_TO:
        return next_pow2(x)
    step = 1 << (int(math.floor(math.log2(x))) - 3)
    return -(-x // step) * step


def bucket_lanes(B: int) -> int:
    """Lane counts are padded to powers of two so that 5- and 7-fold CV share one executable."""
    return 1 if B == 1 else next_pow2(B)


def bucket_lambdas(L: int) -> int:
    """Grid lengths are padded to powers of two (>= 8), so that nearby lengths share a program. A
    lane solved alone steps only through its lambdas; under vmap a padded step is a skipped
    step of every lane (a trip of the scan)."""
    return max(8, next_pow2(L))


#: Working sets below this many slots grow at least 2.5x per overflow, larger ones at least 1.5x.
FAST_GROWTH_BELOW = 256
#: An overflow grows the working set at most this many times over (see :func:`grow_capacity`).
MAX_GROWTH = 4


def grow_capacity(k: int, needed: int, cap: int) -> int:
    """The next working-set capacity after an overflow at ``k`` that needed ``needed`` slots.

    Capacities are the levels 2^j and 1.5 * 2^j (16, 24, 32, 48, 64, 96, ...): the smallest
    level that holds ``needed`` and is at least 2.5 k below :data:`FAST_GROWTH_BELOW` slots, 1.5 k
    from there on -- but not beyond :data:`MAX_GROWTH` k. Every level a path passes through is one
    more compiled program (seconds of XLA on a cold cache) and one more resumed segment per lane,
    while an oversized capacity costs in every solve through the padded k x k model (coordinate
    descent, the polish's products, top-k of k). Below a few hundred slots that padding is cheap,
    so small sets grow fast (fewer programs); above, the finer 1.5x steps keep the capacity close
    to what the path needs -- the Gram and Cholesky of the working set cost k^2 n and k^3, so a
    768-slot set costs about half of a 1024-slot one (``benchmarks/NOTES.md`` has both
    measurements). ``needed`` counts the active features and the KKT violators at the old
    solution, which after a large step down the grid are thousands where the new solution keeps
    a few dozen: the kernel adds violators a slot-full at a time while its active set fills at
    most half the slots, so a capacity a few times the old one is enough to go on, and a
    ridge-like penalty, whose violators all enter, reaches them in a few larger steps.
    """
    factor = 2.5 if k < FAST_GROWTH_BELOW else 1.5
    return capacity_level(max(min(needed, MAX_GROWTH * k), math.ceil(factor * k)), cap)


def reached_capacity(needed: int, start: int, cap: int) -> int:
    """The capacity a path that starts at ``start`` slots has grown to once it holds ``needed``
    slots, growing one overflow at a time (each overflow needing a slot more than it has, as
    features enter a few at a time): the levels such paths pass through. A batch told to start
    at one of them runs a program its predecessors compiled; any other level is one more
    program to compile (seconds, on a cold cache) and, between two such levels, a larger
    overshoot once it overflows."""
    k = min(start, cap)
    while k < min(needed, cap):
        k = grow_capacity(k, k + 1, cap)
    return k


def capacity_level(target: int, cap: int) -> int:
    """The smallest capacity level (2^j or 1.5 * 2^j) that holds ``target`` slots, at most ``cap``."""
    level = next_pow2(target)
    if 3 * level // 4 >= target and level >= 4:
        level = 3 * level // 4
    return min(cap, level)


def initial_capacity(n: int, p: int, l1_ratio: float) -> int:
    """Working-set capacity to start with: all features for ridge-like penalties, else small."""
    if l1_ratio <= 0.0:
        return p
    return min(p, PATH.min_working_set)


def estimate_bytes(n: int, p: int, lanes: int, n_lambdas: int, k: int = 256, itemsize: int = 8) -> int:
    """Rough peak memory of solving ``lanes`` paths of one (bucketed) n x p problem at once.

    The design and its transpose (working-set gathers) per problem (for float64 lanes solved
    one at a time the first is a float32 copy: 1.5 copies, counted as 2); per lane, dense
    coefficient / gradient vectors of length p, a k x n working block and its k x k Gram, and the
    per-lambda outputs. A factor 1.5 covers XLA temporaries.
    """
    nb, pb = bucket_size(n), bucket_size(p)
    per_problem = 2 * nb * pb
    per_lane = 4 * pb + 3 * k * nb + 2 * k * k + n_lambdas * (2 * k + nb + 8)
    return int(1.5 * itemsize * (per_problem + lanes * per_lane))


def memory_budget() -> float:
    """Bytes a solve may use: the configured ``max_memory`` (``$JAXLASSO_MAX_MEMORY``), else 80%
    of the memory available now (it changes while the process runs, so it is read at each check)."""
    budget = current().max_memory
    if budget is not None:
        return budget
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return 0.8 * int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


class MemoryBudgetError(ValueError):
    """A solve refused by :func:`check_memory`: its estimated memory exceeds the budget. A
    ``ValueError`` (bad input, to a caller), with its own class so that a caller trying sizes in
    turn (the quick power plan) can stop at the first that does not fit; ``need`` and ``budget``
    are the bytes compared."""

    def __init__(self, message: str, need: float = float("nan"), budget: float = float("nan")):
        super().__init__(message)
        self.need, self.budget = need, budget


def check_memory(n: int, p: int, lanes: int, n_lambdas: int, what: str) -> None:
    """Refuse a job whose estimated memory exceeds :func:`memory_budget`, saying how much it needs
    (:class:`MemoryBudgetError`)."""
    need = estimate_bytes(n, p, lanes, n_lambdas)
    budget = memory_budget()
    if need > budget:
        raise MemoryBudgetError(
            f"{what} needs about {need / 2**30:.2f} GiB ({n} samples x {p} features, {lanes} lane(s) "
            f"solved together), more than the {budget / 2**30:.2f} GiB available; filter features "
            f"(e.g. --top-variance) or raise JAXLASSO_MAX_MEMORY (got estimate={need} bytes)", need, budget)
