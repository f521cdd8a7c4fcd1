"""The engine's runtime configuration: every ``JAXLASSO_*`` variable, read once, into one frozen object.

=========================  =====================  ==================================================
variable                   field                  meaning (unset or empty: the default)
=========================  =====================  ==================================================
``JAXLASSO_LANE_MODE``     ``lane_mode``          ``vmap`` or ``loop``; default: by backend and rows
``JAXLASSO_VMAP_LANES``    ``vmap_lanes``         lanes in one vmapped call (16); 0: no limit
``JAXLASSO_LANE_THREADS``  ``lane_threads``       looped lanes solved at once, >= 1; default: one per
                                                  usable core, at most 4
``JAXLASSO_BLAS_THREADS``  ``blas_threads``       BLAS threads during a solve (1); 0: leave BLAS alone
``JAXLASSO_KKT_FLOAT32``   ``kkt_float32``        float32 KKT passes for looped float64 lanes (on);
                                                  ``0``/``off``/``false``/``no`` or ``1``/``on``/...
``JAXLASSO_MAX_MEMORY``    ``max_memory``         bytes a solve may use (``8G``); default: 80% of the
                                                  memory available at each check
``JAXLASSO_BUFFER_POOL``   ``buffer_pool_bytes``  host-buffer pool bound (``1G``); 0: no pool
``JAXLASSO_CACHE_DIR``     ``cache_dir``          compilation cache (``~/.cache/jaxlasso/xla``);
                                                  ``off``: none
=========================  =====================  ==================================================

Every value -- from the environment or given to :func:`configure` -- goes through one parser,
:func:`_parse`, so ``configure(lane_threads="2")`` and ``JAXLASSO_LANE_THREADS=2`` mean the same,
and an error names the variable (or keyword) and the bad value as written. A negative or zero
``JAXLASSO_LANE_THREADS`` is an error, as every malformed value is: no value silently means
something else.

The environment is read at the first use (the first solve, cache or pool query), not at import,
so a program may still set the variables after ``import jaxlasso``; later changes of
``os.environ`` are not seen. :func:`configure` replaces fields for the duration of a ``with``
block -- for tests and the benchmarks' A/B tool.

The configuration is process-wide, as the environment it stands for: lane worker threads and
the caller's other threads see the same values, so it cannot be thread-local. :func:`configure`
is therefore not meant to be entered by several threads at once.

Three fields are no environment variables: the kernels' solver factories the engine calls
(``single_solver``, ``lanes_solver``, ``datasets_solver``). Tests wrap them to look at what the
engine hands the kernels (the lowered program, its memory, the lanes per call) and the A/B tool
to compile one executable per value of a kernel knob.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import operator
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import kernels

#: The default location of the persistent compilation cache.
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "jaxlasso", "xla")


@dataclass(frozen=True)
class _Variable:
    env: str  # the environment variable
    kind: str  # how its text is parsed: see _parse
    must: str  # what a valid value is, for the error message
    default: Any  # the field's value when the variable is unset or empty


#: field -> its variable, in the order of the module docstring.
VARIABLES: dict[str, _Variable] = {
    "lane_mode": _Variable("JAXLASSO_LANE_MODE", "mode", "vmap or loop (unset: by backend and rows)", None),
    "vmap_lanes": _Variable("JAXLASSO_VMAP_LANES", "limit", "a whole number >= 0 (0 for no limit)", 16),
    "lane_threads": _Variable("JAXLASSO_LANE_THREADS", "count",
                              "a whole number >= 1 (unset: one per usable core, at most 4)", None),
    "blas_threads": _Variable("JAXLASSO_BLAS_THREADS", "whole", "a whole number >= 0 (0: leave BLAS alone)", 1),
    "kkt_float32": _Variable("JAXLASSO_KKT_FLOAT32", "flag", "one of 1, on, true, yes, 0, off, false, no", True),
    "max_memory": _Variable("JAXLASSO_MAX_MEMORY", "size",
                            "a size in bytes >= 0 such as 8G, 512M or 1e9 (unset: 80% of the available memory)",
                            None),
    "buffer_pool_bytes": _Variable("JAXLASSO_BUFFER_POOL", "size",
                                   "a size in bytes >= 0 such as 1G, 512M or 0 (no pool)", float(2 ** 30)),
    "cache_dir": _Variable("JAXLASSO_CACHE_DIR", "path", "a directory, or off", DEFAULT_CACHE_DIR),
}

_SIZE_UNITS = {"k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}
_TRUE, _FALSE = ("1", "on", "true", "yes"), ("0", "off", "false", "no")
# None: the rule by backend and rows, no limit, one thread per core, 80% of the available
# memory, no compilation cache.
_NULLABLE = ("lane_mode", "vmap_lanes", "lane_threads", "max_memory", "cache_dir")


def parse_bytes(text: str, what: str) -> float:
    """``"8G"``, ``"512m"``, ``"1e9"`` -> bytes; ``what`` names the value in the error."""
    t = text.strip().lower().rstrip("b")
    try:
        value = float(t[:-1]) * _SIZE_UNITS[t[-1]] if t and t[-1] in _SIZE_UNITS else float(t)
    except ValueError:
        raise ValueError(f"{what} must be a size in bytes such as 8G, 512M or 1e9, got {text!r}") from None
    if math.isnan(value):
        raise ValueError(f"{what} must be a size in bytes such as 8G, 512M or 1e9, got {text!r}")
    return value


def _mode(value):
    text = value.strip() if isinstance(value, str) else None
    return text if text in ("vmap", "loop") else _BAD


def _path(value):
    if not isinstance(value, (str, os.PathLike)):
        return _BAD
    text = os.fspath(value)
    return None if text.strip().lower() == "off" else text


def _flag(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return text in _TRUE if text in _TRUE + _FALSE else _BAD


def _size(value):
    if isinstance(value, str):
        try:
            number = parse_bytes(value, "")
        except ValueError:
            return _BAD
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        return _BAD
    return _BAD if math.isnan(number) or number < 0 else number


def _whole(value, least: int):
    try:
        number = int(value.strip()) if isinstance(value, str) else operator.index(value)
    except (TypeError, ValueError):
        return _BAD
    return _BAD if isinstance(value, bool) or number < least else number


def _limit(value):
    number = _whole(value, 0)
    return None if number == 0 else number


# One reader per kind of variable; _BAD marks a value it cannot take.
_BAD = object()
_READERS = {"mode": _mode, "path": _path, "flag": _flag, "size": _size, "limit": _limit,
            "whole": lambda value: _whole(value, 0), "count": lambda value: _whole(value, 1)}


def _parse(field: str, value: Any, source: str) -> Any:
    """The value of ``field`` from ``value`` -- the variable's text, or a Python value given to
    :func:`configure` -- or a ``ValueError`` naming ``source`` (the variable or the keyword)."""
    var = VARIABLES[field]
    if isinstance(value, str) and not value.strip():
        return var.default
    if value is None and field in _NULLABLE:  # the fields where None has a meaning
        return None
    parsed = _BAD if value is None else _READERS[var.kind](value)
    if parsed is _BAD:
        raise ValueError(f"{source} must be {var.must}, got {value!r}")
    return parsed


@dataclass(frozen=True)
class EngineConfig:
    """The engine's runtime configuration (see the module docstring for every field)."""

    lane_mode: str | None = VARIABLES["lane_mode"].default
    vmap_lanes: int | None = VARIABLES["vmap_lanes"].default
    lane_threads: int | None = VARIABLES["lane_threads"].default
    blas_threads: int = VARIABLES["blas_threads"].default
    kkt_float32: bool = VARIABLES["kkt_float32"].default
    max_memory: float | None = VARIABLES["max_memory"].default
    buffer_pool_bytes: float = VARIABLES["buffer_pool_bytes"].default
    cache_dir: str | None = VARIABLES["cache_dir"].default
    single_solver: Callable = kernels.single_solver
    lanes_solver: Callable = kernels.lanes_solver
    datasets_solver: Callable = kernels.datasets_solver

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineConfig:
        """The configuration the variables in ``environ`` (default: ``os.environ``) describe."""
        environ = os.environ if environ is None else environ
        return cls(**{field: var.default if environ.get(var.env) is None else _parse(field, environ[var.env], var.env)
                      for field, var in VARIABLES.items()})

    def replace(self, **fields: Any) -> EngineConfig:
        """A copy with ``fields`` replaced; values are parsed as the variables' texts are."""
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"unknown engine setting(s) {unknown}; known: {sorted(VARIABLES)} and the solver "
                            "factories single_solver, lanes_solver, datasets_solver")
        parsed = {k: _parse(k, v, k) if k in VARIABLES else v for k, v in fields.items()}
        for k, v in parsed.items():
            if k not in VARIABLES and not callable(v):
                raise TypeError(f"{k} must be a solver factory (callable), got {v!r}")
        return dataclasses.replace(self, **parsed)


# The process-wide configuration (see the module docstring): None until the first use reads
# the environment. Swapped, never mutated, under the lock.
_LOCK = threading.Lock()
_CURRENT: EngineConfig | None = None


def current() -> EngineConfig:
    """The configuration in force: the environment as read at the first call, or what an
    enclosing :func:`configure` set. A malformed variable raises here, naming it, at every call
    until it is fixed."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is None:
            _CURRENT = EngineConfig.from_env()
        return _CURRENT


@contextlib.contextmanager
def configure(**fields: Any) -> Iterator[EngineConfig]:
    """Replace configuration fields inside a ``with`` block; yields the configuration in force.

    ``configure(lane_threads=1, buffer_pool_bytes=0)``; values may be given as the variables'
    texts (``lane_mode="loop"``, ``max_memory="8G"``) or as Python values (``vmap_lanes=None`` for
    no limit, ``cache_dir=None`` for no cache). Blocks nest; leaving one restores what was in
    force when it was entered.
    """
    global _CURRENT
    previous = current()
    new = previous.replace(**fields)
    with _LOCK:
        _CURRENT = new
    try:
        yield new
    finally:
        with _LOCK:
            _CURRENT = previous
