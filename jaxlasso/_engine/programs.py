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
machine. An entry is keyed on what decides the traced program besides the arguments' tree,
shapes and dtypes: the factory and its statics, the source of ``kernels/`` and the values of its
module-level settings (``_F32_GRAM_MIN``, ...: tests and the A/B tool change them), the jax,
jaxlib and optax versions, the backend, the x64 and matmul-precision scopes of the calling
thread, ``XLA_FLAGS`` and the entry format. It carries a SHA-256 of its payload; an entry that
does not verify, does not deserialise or was exported for other arguments is deleted and
exported again. Writes are atomic (a temporary file renamed into place), so concurrent processes
never read a partial entry. The folder is pruned to :data:`MAX_BYTES`, least recently used first.

Stored only: the kernels' own factories (a spy or an A/B factory runs as it is) with statics of
the kernels' own types (a user-registered family runs as it is: its code is not in the key), on
a CPU backend, with arguments on one device (a program exported for several devices cannot run
on another count), while the compilation cache is on and its folder writable, and where
``jax.export`` can serialise (the ``flatbuffers`` package). Everything else runs the factory's
function unchanged.
"""

from __future__ import annotations

import contextlib
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

from .executables import register_cache
from .scopes import enable_compilation_cache

log = logging.getLogger("jaxlasso")

MAX_BYTES = 512 * 2**20
"""Prune the stored programs to this many bytes (a path solver's program is ~50-100 KB)."""

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
    """SHA-256 over the kernels' source files and the versions of what they trace (jax, jaxlib,
    optax): a changed kernel is a different program."""
    h = hashlib.sha256(_MAGIC)
    root = Path(kernels.__file__).resolve().parent
    for path in sorted(root.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    import jaxlib
    import optax

    h.update(f"{jax.__version__} {jaxlib.__version__} {optax.__version__}".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _setting_names() -> tuple:
    """(module, name) of the kernels' module-level settings: upper-case names of plain values."""
    import importlib
    import pkgutil

    out = []
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"kernels.{info.name}")
        for attr, value in sorted(vars(module).items()):
            if attr.lstrip("_").isupper() and isinstance(value, (bool, int, float, str, tuple)):
                out.append((module, attr))
    return tuple(out)


def _kernel_settings() -> tuple:
    """The kernels' settings as they are now: tests and ``benchmarks/ab.py`` change them at run
    time (``solver._F32_GRAM_MIN``, ...), and they change the traced program."""
    return tuple(repr(getattr(module, attr)) for module, attr in _setting_names())


def _storable_static(value) -> bool:
    """A static argument whose meaning the key captures: a plain value or one of the kernels'
    own objects (a family) -- not a user's type, whose code the key does not cover."""
    return value is None or isinstance(value, (bool, int, float, str)) or \
        type(value).__module__.split(".")[0] == "kernels"


def _dtype(a) -> str:
    """An argument's dtype, with JAX's weak-typing flag (it changes the traced program)."""
    dt = a.dtype if hasattr(a, "dtype") else np.result_type(a)
    return f"{np.dtype(dt).str}{'~' if getattr(a, 'weak_type', False) else ''}"


def _scopes() -> tuple | None:
    """The calling thread's x64 and matmul-precision scopes (they change what tracing makes), or
    None where this jax does not expose them (nothing is stored then)."""
    try:
        from jax._src import config as jax_config

        return bool(jax_config.enable_x64.value), str(jax_config.default_matmul_precision.value)
    except (ImportError, AttributeError):
        return None


# Folders a write failed in (read-only, full): this process stores nothing more there.
_UNWRITABLE: set = set()


def store_dir() -> Path | None:
    """Where programs are stored, or None when they are not (see the module docstring)."""
    if not _SERIALISABLE or jax.default_backend() != "cpu":
        return None
    locked = enable_compilation_cache()  # None: the cache is off or could not be set up
    if locked is None:
        return None
    folder = Path(locked).parent / _FOLDER
    return None if folder in _UNWRITABLE else folder


#: XLA options of the kernels' solver programs on a CPU backend (see :func:`compiler_options`).
CPU_COMPILER_OPTIONS = (("xla_cpu_use_fusion_emitters", False),)


@functools.lru_cache(maxsize=None)
def _known_to_xla(options: tuple) -> bool:
    """Whether this XLA accepts ``options`` (an XLA that does not know one refuses to compile)."""
    try:
        jax.jit(lambda x: x, compiler_options=dict(options)).lower(0).compile()
    except Exception as exc:  # noqa: BLE001 -- jaxlib raises its runtime error for an unknown option
        log.debug("compiling the solvers with XLA's default options (%s refused: %s)", dict(options), exc)
        return False
    return True


def compiler_options() -> dict | None:
    """XLA's compile options for the kernels' solver programs (None: XLA's defaults).

    On a CPU the solvers are compiled without XLA's MLIR fusion emitters: a solver is hundreds of
    small fusions inside nested while-loops, which the older emitters compile ~35% faster (each
    working-set capacity of a path is one program: seconds of compilation on a cold cache) into
    code that runs as fast (``benchmarks/NOTES.md`` has both measurements). Other backends, and an
    XLA that does not know the option, compile with the defaults. Compile options are part of
    JAX's compilation-cache key, not of a stored program (StableHLO, before compilation).
    """
    if jax.default_backend() != "cpu" or not CPU_COMPILER_OPTIONS or not _known_to_xla(CPU_COMPILER_OPTIONS):
        return None
    return dict(CPU_COMPILER_OPTIONS)


def program(factory, **statics):
    """``factory(**statics)``, stored and reloaded as an exported program where that applies, and
    compiled with :func:`compiler_options` where the factory is one of the kernels' own (a spy or
    an A/B factory runs exactly as it is)."""
    if factory not in _STORABLE:
        return factory(**statics)
    if not all(_storable_static(v) for v in statics.values()) or store_dir() is None:
        return _with_options(factory(**statics))
    return _stored(factory, tuple(sorted(statics.items(), key=lambda kv: kv[0])))


def _with_options(fn):
    """The kernels' jitted ``fn`` compiled with :func:`compiler_options`. Options can only be set
    on an outermost ``jit`` (a nested one is an error), so the kernels' factories leave them out
    and the engine's calls, which are outermost, add them."""
    options = compiler_options()
    return fn if options is None else _jit_with(fn, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=None)
def _jit_with(fn, options: tuple):
    return jax.jit(fn, compiler_options=dict(options))


register_cache(_jit_with.cache_clear)


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
        scopes = _scopes()
        if scopes is None or any(len(getattr(getattr(a, "sharding", None), "device_set", ())) > 1 for a in leaves):
            return _with_options(self.fn)(*args)
        sig = (tree, tuple((np.shape(a), _dtype(a)) for a in leaves)) + scopes + (_kernel_settings(),)
        call = self.calls.get(sig)
        if call is None:
            with self.lock:
                call = self.calls.get(sig)
                if call is None:
                    exp = self._exported(sig, args)
                    call = self.calls[sig] = _with_options(self.fn) if exp is None else \
                        jax.jit(exp.call, compiler_options=compiler_options())
        return call(*args)

    def _key(self, sig) -> str:
        tree, avals, x64, precision, settings = sig
        text = repr((self.factory.__module__, self.factory.__qualname__, self.statics, str(tree), avals, x64,
                     precision, settings, jax.default_backend(), os.environ.get("XLA_FLAGS", ""),
                     _source_digest()))
        return hashlib.sha256(text.encode()).hexdigest()

    def _exported(self, sig, args):
        """The exported program for this signature (read, or exported and written), or None when
        it cannot be exported and serialised: the factory's function then runs as it is."""
        from jax import export

        folder = store_dir()
        if folder is None:  # the cache was turned off since this program was made
            return None
        path = folder / f"{self._key(sig)}.bin"
        exp = _read(path, sig[0], sig[1])
        if exp is None:
            try:
                exp = export.export(self.fn)(*args)
                payload = exp.serialize()
            except Exception as exc:  # noqa: BLE001 -- e.g. an argument type export cannot serialise
                log.debug("running %s unstored: %s", self.factory.__qualname__, exc)
                return None
            _write(path, payload)
        return exp


def _read(path: Path, tree, avals: tuple):
    """The exported program stored at ``path`` for arguments of pytree ``tree`` with ``avals``
    ((shape, dtype) per leaf), or None (a missing entry; a corrupt or foreign one is deleted)."""
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
        if exp.nr_devices != 1 or [(tuple(a.shape), np.dtype(a.dtype).str) for a in exp.in_avals] != \
                [(tuple(shape), dt.rstrip("~")) for shape, dt in avals]:
            raise ValueError("exported for other arguments")
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any unreadable entry is exported again
        log.debug("discarding stored program %s: %s", path.name, exc)
        with contextlib.suppress(OSError):  # a read-only store: leave it, export in memory
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
        # Not *.bin until complete: the prune of another process only sees finished entries.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            # Readable by every user of a shared cache (mkstemp makes it owner-only).
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError as exc:
        _UNWRITABLE.add(path.parent)
        log.debug("could not store program %s (storing no more there): %s", path.name, exc)


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
