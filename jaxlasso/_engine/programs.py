"""The solver programs the engine runs, stored as exported StableHLO so that a later process need
not trace them again.

JAX's persistent compilation cache keys an executable on its *lowered* program, so every process
still traces and lowers each path solver (one per working-set capacity, tenths of a second to
seconds each) before the cache can answer. :func:`program` puts ``jax.export`` in between: the
first process that meets a configuration -- a solver factory, its static arguments, the
arguments' tree, shapes and dtypes -- exports it (trace and lower, as ``jit`` would) and writes
the serialised StableHLO to ``<cache_dir>/exported/``; a later process reads it back, and
``jax.jit(exported.call)`` lowers that module (no tracing of the solver) and finds the compiled
executable in the persistent cache. Both processes run the exported module, so they share one
cache entry and one compilation.

What is stored is a program, not an executable: XLA still compiles it (or loads it from JAX's
cache), so an entry cannot be an executable another process half-completed or a build of another
machine. An entry is keyed on everything that decides the traced program besides the arguments:
the factory and its statics, the source of ``kernels/``, the jax and jaxlib versions, the
backend, the x64 and matmul-precision scopes of the calling thread and ``XLA_FLAGS``. It carries
a SHA-256 of its payload; an entry that does not verify, does not deserialise or does not take
the arguments is deleted and exported again. Writes are atomic (a temporary file renamed into
place), so concurrent processes never read a partial entry. The folder is pruned to
:data:`MAX_BYTES`, least recently used first.

Only the kernels' own factories on a CPU backend are stored (a spy or an A/B factory is run as
it is), and nothing is stored when the compilation cache is off or ``jax.export``'s serialisation
(the ``flatbuffers`` package) is missing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import jax
import numpy as np

import kernels
from kernels import _types

from .config import current
from .executables import register_cache

log = logging.getLogger("jaxlasso")

MAX_BYTES = 512 * 2**20
"""Prune the stored programs to this many bytes (a path solver's program is 0.3-2 MB)."""

_MAGIC = b"jaxlasso-exported-1\n"
_STORABLE = (kernels.single_solver, kernels.lanes_solver, kernels.datasets_solver)
_FOLDER = "exported"


def _register_pytrees() -> bool:
    """Make the kernels' argument and result tuples serialisable; False when export cannot
    serialise at all here."""
    try:
        from jax import export
        from jax._src.export import serialization  # noqa: F401  (needs flatbuffers)
    except ImportError:
        return False
    from kernels.cox import CoxData

    for T in (_types.Problem, _types.PathState, _types.Settings, _types.Moments, _types.PathOut, CoxData):
        try:
            export.register_namedtuple_serialization(T, serialized_name=f"jaxlasso.kernels.{T.__name__}")
        except ValueError:  # already registered (a module reload)
            pass
    return True


_SERIALISABLE = _register_pytrees()


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """SHA-256 over the kernels' source files: a changed kernel is a different program."""
    h = hashlib.sha256()
    root = Path(kernels.__file__).resolve().parent
    for path in sorted(root.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    import jaxlib

    h.update(f"{jax.__version__} {jaxlib.__version__}".encode())
    return h.hexdigest()


def _dtype(a) -> str:
    """An argument's dtype, with JAX's weak-typing flag (it changes the traced program)."""
    dt = a.dtype if hasattr(a, "dtype") else np.result_type(a)
    return f"{np.dtype(dt).str}{'~' if getattr(a, 'weak_type', False) else ''}"


def _scopes() -> tuple:
    """The calling thread's x64 and matmul-precision scopes (they change what tracing makes)."""
    from jax._src import config as jax_config

    return bool(jax_config.enable_x64.value), str(jax_config.default_matmul_precision.value)


def store_dir() -> Path | None:
    """Where programs are stored, or None when they are not (see the module docstring)."""
    cache = current().cache_dir
    if not _SERIALISABLE or cache is None or cache == "off" or jax.default_backend() != "cpu":
        return None
    return Path(cache) / _FOLDER


def program(factory, **statics):
    """``factory(**statics)``, stored and reloaded as an exported program where that applies."""
    if factory not in _STORABLE or store_dir() is None:
        return factory(**statics)
    return _stored(factory, tuple(sorted(statics.items(), key=lambda kv: kv[0])))


@functools.lru_cache(maxsize=None)
def _stored(factory, statics: tuple) -> StoredProgram:
    return StoredProgram(factory, statics)


register_cache(_stored.cache_clear)


class StoredProgram:
    """A solver configuration's callable: per argument signature, the exported program read from
    the store (or exported and written there), run through ``jax.jit(exported.call)``."""

    def __init__(self, factory, statics: tuple):
        self.factory, self.statics = factory, statics
        self.fn = factory(**dict(statics))
        self.calls: dict = {}
        self.lock = threading.Lock()

    def __call__(self, *args):
        leaves, tree = jax.tree.flatten(args)
        sig = (tree, tuple((np.shape(a), _dtype(a)) for a in leaves)) + _scopes()
        call = self.calls.get(sig)
        if call is None:
            with self.lock:
                call = self.calls.get(sig)
                if call is None:
                    exp = self._exported(sig, args)
                    call = self.calls[sig] = self.fn if exp is None else jax.jit(exp.call)
        return call(*args)

    def _key(self, sig) -> str:
        tree, avals, x64, precision = sig
        text = repr((self.factory.__module__, self.factory.__qualname__, self.statics, str(tree), avals, x64,
                     precision, jax.default_backend(), os.environ.get("XLA_FLAGS", ""), _source_digest()))
        return hashlib.sha256(text.encode()).hexdigest()

    def _exported(self, sig, args):
        """The exported program for this signature (read, or exported and written), or None when
        it cannot be exported and serialised: the factory's function then runs as it is."""
        from jax import export

        path = store_dir() / f"{self._key(sig)}.bin"
        exp = _read(path, sig[0])
        if exp is None:
            try:
                exp = export.export(self.fn)(*args)
                payload = exp.serialize()
            except Exception as exc:  # noqa: BLE001 -- e.g. an argument type export cannot serialise
                log.debug("running %s unstored: %s", self.factory.__qualname__, exc)
                return None
            _write(path, payload)
        return exp


def _read(path: Path, tree):
    """The exported program stored at ``path`` for arguments of pytree ``tree``, or None (a
    missing entry; a corrupt or foreign one is deleted)."""
    from jax import export

    try:
        blob = path.read_bytes()
    except OSError:
        return None
    try:
        head, digest, payload = blob[:len(_MAGIC)], blob[len(_MAGIC):len(_MAGIC) + 32], blob[len(_MAGIC) + 32:]
        if head != _MAGIC or hashlib.sha256(payload).digest() != digest:
            raise ValueError("checksum mismatch")
        exp = export.deserialize(bytearray(payload))
        if exp.in_tree != jax.tree.structure((tree.unflatten([0] * tree.num_leaves), {})):
            raise ValueError("argument tree mismatch")
    except Exception as exc:  # noqa: BLE001 -- any unreadable entry is exported again
        log.debug("discarding stored program %s: %s", path.name, exc)
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return exp


def _write(path: Path, payload: bytes) -> None:
    """Store ``payload`` at ``path`` atomically (a failure to write only loses the entry)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError as exc:
        log.debug("could not store program %s: %s", path.name, exc)


def _prune(folder: Path, max_bytes: int = MAX_BYTES) -> None:
    """Delete the least recently used entries until the folder holds at most ``max_bytes``."""
    entries = []
    for p in folder.glob("*.bin"):
        try:
            st = p.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        total -= size
