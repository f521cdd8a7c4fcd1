"""The ``jaxlasso`` command: from an expression table and a sample sheet to a readable answer.

    jaxlasso demo --out demo-out
    jaxlasso select counts.tsv --samples samples.tsv --outcome group --case tumour --out results
    jaxlasso screen manifest.tsv --out screen-out
    jaxlasso plan counts.tsv --samples samples.tsv --outcome group --out plan-out

Errors exit with status 2 and one line ``error: ...`` on stderr (``--debug`` shows the
traceback). Selecting no gene is a result, not a failure: the exit status is 0 and the verdict
says why. ``screen`` exits 1 when any dataset failed. Results are published into ``--out`` by the
protocol of :mod:`jaxlasso.output` (lock, staging inside ``--out``, run manifest, journal), so a
failed or killed run leaves the previous complete result or the new complete one, never a mix.

The package holds one module per concern: :mod:`.parser` (argparse from the options layer),
:mod:`.inputs` (the one input loader), :mod:`.select` (``select`` and ``demo``), :mod:`.screen`
(the manifest and ``screen``), :mod:`.plan`
(``plan``: what would it take), :mod:`.summary` (``summary.json``), :mod:`.writers` (output files).
This module is the process scope and the error handling around them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import warnings

from ..options import CLI, DemoOptions, OptionError
from .common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Progress
from .parser import _UsageError, build_parser, options_from_args
from .plan import cmd_plan
from .screen import SCREEN_FILES, cmd_screen, read_manifest
from .select import cmd_demo, cmd_select
from .summary import SUMMARY_SCHEMA, build_summary, display_summary, gene_list_line, recovery_line
from .writers import _tsv, write_outputs

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_USAGE", "SCREEN_FILES", "SUMMARY_SCHEMA", "build_parser", "build_summary",
           "display_summary", "gene_list_line", "main", "options_from_args", "read_manifest", "recovery_line",
           "write_outputs"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr if file is None else file)


@contextlib.contextmanager
def _process_scope(args: argparse.Namespace, quiet: bool):
    """The process-wide settings a command needs, undone when it returns (``main`` may be
    called from Python, e.g. in a notebook or a test, and must leave the process as it was):
    warnings shown as ``warning: ...`` lines (or silenced by --quiet), a log handler when none is
    configured, and ``--host-devices``' XLA flag.

    XLA reads ``XLA_FLAGS`` once, when JAX starts its CPU backend; jaxlasso imports JAX lazily,
    so the flag set here still takes effect in the ``jaxlasso`` process. Restoring the variable
    afterwards cannot un-split a backend that started, but keeps child processes and later
    calls from inheriting it."""
    saved_flags = os.environ.get("XLA_FLAGS")
    host_devices = getattr(args.options, "host_devices", None)
    root = logging.getLogger()
    handler = None
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    try:
        with warnings.catch_warnings():  # restores filters and showwarning on exit
            if quiet:
                warnings.simplefilter("ignore")
            else:
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
            if host_devices:
                _warn_if_jax_started(host_devices)
                flag = f"--xla_force_host_platform_device_count={host_devices}"
                os.environ["XLA_FLAGS"] = ((saved_flags or "") + " " + flag).strip()
            yield
    finally:
        if host_devices:
            if saved_flags is None:
                os.environ.pop("XLA_FLAGS", None)
            else:
                os.environ["XLA_FLAGS"] = saved_flags
        if handler is not None:
            root.removeHandler(handler)


def _warn_if_jax_started(host_devices: int) -> None:
    if "jax" not in sys.modules:
        return
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # pragma: no cover - JAX moved the helper; the flag still applies if it can
        return
    if backends_are_initialized():
        warnings.warn(f"--host-devices {host_devices} has no effect: JAX already started in this process "
                      f"(run the jaxlasso command in a new process)", stacklevel=3)


# glibc's mallopt parameters (malloc.h: M_ARENA_MAX, M_MMAP_THRESHOLD).
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
"""Malloc arenas of a ``jaxlasso`` process (:func:`limit_malloc_arenas`)."""
MMAP_THRESHOLD = 256 << 10
"""Blocks from this size up are mapped on their own in a ``jaxlasso`` process (:func:`fix_mmap_threshold`)."""


def _mallopt(param: int, value: int, env: str, tunable: str) -> bool:
    """Set glibc's malloc parameter ``param`` unless the user set it (``env``, or ``tunable`` in
    ``GLIBC_TUNABLES``) or the C library is not glibc; export ``env`` to the processes this one
    starts (the screen's Dask workers read it at their start). True when it was set."""
    if env in os.environ or tunable in os.environ.get("GLIBC_TUNABLES", "") or not _glibc():
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(param, int(value)) != 1:
        return False
    os.environ[env] = str(int(value))
    return True


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most ``arenas`` arenas in this process; True when it was set.

    glibc gives each thread that allocates an arena of its own, up to 8 per core. The solver's
    threads (XLA's pool, the lane threads) free blocks in arenas that other threads cannot reuse,
    so the process keeps that memory -- a large share of a select's peak on a large matrix, for
    a few percent of solve time (``benchmarks/NOTES.md``, "Peak memory, fifth pass"). A
    ``MALLOC_ARENA_MAX`` (or ``glibc.malloc.arena_max`` in ``GLIBC_TUNABLES``) in the
    environment is the user's choice and is left alone, as is any C library but glibc; once
    set, the variable is exported to the processes this one starts. Only the program's own
    process calls this (:func:`run`): it cannot be undone, and :func:`main` leaves a caller's
    process as it was.
    """
    return _mallopt(_M_ARENA_MAX, arenas, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max")


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Map every malloc block of ``nbytes`` or more on its own, for the life of the process; True
    when it was set.

    glibc starts by mapping blocks of 128 KiB and more, but each time such a block is freed it
    raises that threshold to the block's size (up to 32 MiB): after the first per-gene vector of
    a 200,000-gene matrix (1.6 MB) is freed, every later one comes from the heap, where a freed
    block below a live one is never returned to the system. Each step of a select then keeps the
    high-water mark of the steps before it. A fixed threshold stops that adjustment: large
    arrays are unmapped when freed (``benchmarks/NOTES.md``, "Peak memory, sixth pass"). The
    user's ``MALLOC_MMAP_THRESHOLD_`` (or ``glibc.malloc.mmap_threshold``) wins, as for
    :func:`limit_malloc_arenas`; only :func:`run` calls this.
    """
    return _mallopt(_M_MMAP_THRESHOLD, nbytes, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold")


def _glibc() -> bool:
    """Whether this process runs on glibc (the mallopt parameters set here are glibc's)."""
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def run() -> int:
    """The ``jaxlasso`` program (the console script and ``python -m jaxlasso``): :func:`main` in a
    process of its own, with the process-wide settings only a program may make
    (:func:`limit_malloc_arenas`, :func:`fix_mmap_threshold`)."""
    limit_malloc_arenas()
    fix_mmap_threshold()
    return main()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        # Every option is parsed and checked here, before any input is read or output written.
        args.options = options_from_args(args)
        if args.command == "demo":
            args.demo = DemoOptions.from_mapping(
                {k: getattr(args, k) for k in DemoOptions.keys() if getattr(args, k) is not None}, source=CLI)
    except (_UsageError, OptionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    progress = Progress(enabled=not quiet)
    commands = {"select": cmd_select, "demo": cmd_demo, "screen": cmd_screen, "plan": cmd_plan}
    try:
        with _process_scope(args, quiet):
            return commands[args.command](args, ["jaxlasso", *argv], progress)
    except (ValueError, TypeError, OSError, KeyError) as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


