"""Compiled solvers stored on disk and loaded by later processes without tracing them again.

JAX's persistent compilation cache saves the XLA compilation, but its key is the lowered
program: every process still traces and lowers each solver executable (one per working-set
capacity a path passes through) before it can even look the entry up -- about a third of a
second per executable on a quiet 2-core machine, most of a warm process's start
(``benchmarks/NOTES.md``). This store keys a compiled executable on what determines it without
tracing -- the solver factory and its static arguments, the arguments' shapes and dtypes, the
kernels' source, the jax / jaxlib versions and the backend -- and keeps the serialised executable
(``jax.experimental.serialize_executable``) in the compilation cache directory, beside JAX's own
entries (``<cache_dir>/executables``). A later process deserialises it directly.

Contract:

* Only the kernels' own factories are stored (a factory replaced through
  :func:`jaxlasso._engine.configure` -- a test's spy, the A/B tool's knob -- is called as given),
  and only while the compilation cache is on (``JAXLASSO_CACHE_DIR`` not ``off``).
* An entry is written to a temporary file and renamed into place, and carries a SHA-256 of its
  payload: a reader sees a whole entry or none, and a damaged entry is deleted and recompiled.
  Any failure of the store (a read-only or full disk, an entry of another build) falls back to
  compiling; a result never depends on whether an entry was used.
* The entries are pickles (the executable and its argument / output tree structures): the
  directory must be as trusted as the code, like the rest of the user's cache.
* The store keeps at most :data:`MAX_BYTES`; the least recently used entries go first.
* Loaded executables are dropped with every other compiled executable when the process nears
  its limit of memory mappings (:mod:`.executables`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import jax
import numpy as np

import kernels

from .config import current
from .executables import register_cache

log = logging.getLogger("jaxlasso")

MAX_BYTES = 2 << 30
"""Size limit of the stored executables (least recently used entries are deleted first)."""

_MAGIC = b"jaxlasso-executable-1\n"
_FACTORIES = ("single_solver", "lanes_solver")

#: First calls of jitted (not stored) solvers one at a time: lane threads reaching a new capacity
#: together would otherwise each compile the same program (JAX does not merge compilations in
#: flight). Stored executables are made once per key instead (:func:`_obtain`), several keys at
#: once.
COMPILE_LOCK = threading.Lock()

_LOADED: dict = {}
_PENDING: dict = {}  # keys being loaded or compiled: their futures
_LOADED_LOCK = threading.Lock()
register_cache(_LOADED.clear)
_CALLED: set = set()
# Its keys hold the jitted functions: forgotten with the executables (see .executables).
register_cache(_CALLED.clear)

_SOURCE_HASH: str | None = None


def _kernels_source_hash() -> str:
    """SHA-256 of the kernels' source files: the traced program is a function of them."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        h = hashlib.sha256()
        root = Path(kernels.__file__).resolve().parent
        for path in sorted(root.glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _SOURCE_HASH = h.hexdigest()
    return _SOURCE_HASH


_RUNTIME_READY: bool | None = None


def _runtime_ready() -> bool:
    """Whether a deserialised executable can run in this process: the CPU runtime's LAPACK and
    BLAS kernels (the solver's Cholesky factorisations and triangular solves) are bound to
    SciPy's routines only when JAX lowers a program that uses them, and an executable loaded
    without any lowering would call unbound routines (a segmentation fault). Bind them first."""
    global _RUNTIME_READY
    if _RUNTIME_READY is None:
        try:
            from jaxlib import lapack

            lapack.prepare_lapack_call("potrf_ffi", np.dtype(np.float64))
            _RUNTIME_READY = True
        except Exception as exc:  # another jaxlib layout: never load, always compile
            log.debug("stored executables disabled: %s", exc)
            _RUNTIME_READY = False
    return _RUNTIME_READY


def store_dir() -> Path | None:
    """The folder of stored executables, or None where the store does not apply: the
    compilation cache is off, the backend is not a CPU (the store has been proven on the CPU
    runtime only), or the runtime cannot be prepared for loading (:func:`_runtime_ready`)."""
    target = current().cache_dir
    if target is None or target == "off" or jax.default_backend() != "cpu" or not _runtime_ready():
        return None
    return Path(target) / "executables"


def _avals(leaves) -> tuple:
    out = []
    for a in leaves:
        aval = jax.typeof(a)
        out.append((tuple(aval.shape), str(aval.dtype), bool(getattr(aval, "weak_type", False))))
    return tuple(out)


def _disk_key(name: str, statics: tuple, treedef, avals: tuple) -> str:
    import jaxlib

    backend = jax.default_backend()
    device = jax.devices()[0]
    parts = [
        _MAGIC.decode(), jax.__version__, getattr(jaxlib, "__version__", "?"), backend,
        getattr(device, "device_kind", "?"), str(len(jax.devices())), _kernels_source_hash(), name,
        repr(statics), str(treedef), repr(avals), str(jax.dtypes.canonicalize_dtype(np.float64)),
        os.environ.get("XLA_FLAGS", ""),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _read(path: Path):
    """The (executable bytes, in_tree, out_tree) of an entry, or None if absent or damaged (a
    damaged entry is deleted)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_MAGIC)
    if data[:head] == _MAGIC and hashlib.sha256(data[head + 32:]).digest() == data[head:head + 32]:
        try:
            return pickle.loads(data[head + 32:])
        except Exception as exc:  # an entry of another build whose classes moved
            log.debug("stored executable %s unreadable: %s", path.name, exc)
    try:
        path.unlink()
    except OSError:
        pass
    return None


def _write(folder: Path, path: Path, entry) -> None:
    payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    data = _MAGIC + hashlib.sha256(payload).digest() + payload
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".exe")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _evict(folder, MAX_BYTES)


def _evict(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used entries (by modification time: a load touches its entry)
    until the store holds at most ``max_bytes``."""
    entries = []
    for p in folder.glob("*.exe"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        try:
            p.unlink()
            total -= size
        except OSError:
            pass


def _load_or_compile(fn, args, name: str, statics: tuple, treedef, avals: tuple):
    from jax.experimental.serialize_executable import deserialize_and_load, serialize

    folder = store_dir()
    path = folder / f"{_disk_key(name, statics, treedef, avals)}.exe"
    entry = _read(path)
    if entry is not None:
        try:
            compiled = deserialize_and_load(*entry)
            os.utime(path)
            return compiled
        except Exception as exc:  # an entry this runtime cannot load: compile afresh
            log.debug("stored executable %s not loadable: %s", path.name, exc)
    # Serialised before its first run: XLA:CPU completes parts of an executable lazily when it
    # runs, after which it can no longer be serialised (JAX may also hand back an executable
    # compiled and run earlier in this process: then it is simply not stored).
    compiled = fn.lower(*args).compile()
    try:
        _write(folder, path, serialize(compiled))
    except Exception as exc:  # read-only or full disk: the executable still runs
        log.debug("executable not stored: %s", exc)
    return compiled


def first_call_alone(fn, args):
    """``fn(*args)``, the first call of each executable (function and argument shapes) in one
    thread at a time (:data:`COMPILE_LOCK`); later calls of a compiled executable run in
    parallel. Also avoids concurrent writes of one persistent-cache entry."""
    key = (fn, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args)))
    if key in _CALLED:
        return fn(*args)
    with COMPILE_LOCK:
        result = fn(*args)
        _CALLED.add(key)
    return result


def _obtain(key: tuple, make):
    """The executable of ``key``: loaded already, being made by another thread (waited for),
    or made here by ``make()`` -- once per key however many threads ask together."""
    with _LOADED_LOCK:
        compiled = _LOADED.get(key)
        if compiled is not None:
            return compiled
        pending = _PENDING.get(key)
        if pending is None:
            pending = _PENDING[key] = Future()
            owner = True
        else:
            owner = False
    if not owner:
        try:
            return pending.result()
        except Exception:  # the other thread failed: try here (and fail here, if it must)
            return make()
    try:
        compiled = make()
    except BaseException as exc:
        pending.set_exception(exc)
        raise
    finally:
        with _LOADED_LOCK:
            del _PENDING[key]
    with _LOADED_LOCK:
        _LOADED[key] = compiled
    pending.set_result(compiled)
    return compiled


def call(factory, name: str, statics: dict, args: tuple):
    """``factory(**statics)(*args)``: the executable loaded from the store, or compiled and
    stored, where the store applies (see the module docstring); else the jitted function, its
    first call alone (:func:`first_call_alone`)."""
    fn = factory(**statics)
    if name not in _FACTORIES or factory is not getattr(kernels, name) or store_dir() is None:
        return first_call_alone(fn, args)
    leaves, treedef = jax.tree.flatten(args)
    avals = _avals(leaves)

    key = (name, tuple(sorted(statics.items())), treedef, avals)
    compiled = _obtain(key, lambda: _load_or_compile(fn, args, name, key[1], treedef, avals))
    return compiled(*args)


def loaded_count() -> int:
    """How many stored executables this process holds loaded."""
    with _LOADED_LOCK:
        return len(_LOADED)
