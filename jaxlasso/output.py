"""The output protocol: a run owns the files it writes in its output folder.

Every command that writes results (``select``, ``demo``, ``screen``) goes through this module:

* **Lock.** ``OUT/.jaxlasso.lock`` is created with ``O_CREAT | O_EXCL`` and holds the writer's
  PID, host and start time. A second run into the same folder fails at once naming that run
  (or waits for it with ``wait=True``). A lock left by a process that no longer runs on this host
  is reported and taken over; a lock of another host is never second-guessed.
* **Recovery** (under the lock, before anything else): an interrupted publish
  (``.jaxlasso-publish.json`` present) is rolled forward, and staging folders of dead runs
  (``.jaxlasso-tmp-*``) are removed -- in ``OUT`` and in its immediate subfolders (a screen's
  dataset folders).
* **Staging inside the target folder** (``OUT/.jaxlasso-tmp-<pid>-<random>/``): the results are
  built on the target's own filesystem, so the publish only renames within one folder tree and
  works when ``OUT`` is a mount point (a container volume); nothing crosses ``OUT``'s boundary.
* **Run manifest** ``.jaxlasso-run.json``: schema, command line, options, input fingerprints
  and the sorted list of files (and, for a screen, subfolders) the run owns.
* **Publish as a journal.** With everything staged and fsynced, the journal
  ``.jaxlasso-publish.json`` is written atomically: that is the commit point. Then the previous
  run's files that this run does not rewrite are removed, each new file is moved in with
  ``os.replace`` (the run manifest last), the staging folder and then the journal are removed.
  Every step is idempotent, so a kill at any moment leaves either the previous complete result
  (no journal yet: the next run only deletes the staging folder) or a journal from which the next
  run completes the new result. Files that no manifest lists -- the user's own, or those of an
  older jaxlasso that wrote no manifest -- are never deleted (a run overwrites only the names it
  writes).

The steps call :data:`fault_hook` (``None`` in normal use) with the step's name and path, so that
tests can kill a process at any chosen step.

This module uses only the standard library, so the protocol can be exercised without JAX.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping, Sequence

__all__ = [
    "JOURNAL",
    "LOCK",
    "RUN_MANIFEST",
    "STAGING_PREFIX",
    "OutputError",
    "OutputFolder",
    "atomic_output_dir",
    "file_fingerprint",
    "open_output",
    "read_run_manifest",
    "recover",
    "write_bytes_atomic",
    "write_text_atomic",
]

LOCK = ".jaxlasso.lock"
RUN_MANIFEST = ".jaxlasso-run.json"
JOURNAL = ".jaxlasso-publish.json"
STAGING_PREFIX = ".jaxlasso-tmp-"
RUN_SCHEMA = "jaxlasso.run/1"
JOURNAL_SCHEMA = "jaxlasso.publish/1"
LOCK_SCHEMA = "jaxlasso.lock/1"
_CONTROL = (LOCK, RUN_MANIFEST, JOURNAL)

PUBLISH_STEPS = ("staged", "journal", "remove", "remove-folder", "replace", "manifest", "cleanup", "done")
"""The named steps of a publish, in order (``remove``/``remove-folder``/``replace`` once per entry)."""

fault_hook: Callable[[str, Path], None] | None = None
"""Called as ``fault_hook(step, path)`` at every step of a publish (see ``PUBLISH_STEPS``); tests
set it to kill the process at a chosen step. ``None``: no call."""

_RACY_NS = 2_000_000_000
"""A stored hash is reused only for a file whose mtime was at least this much older than the
moment it was hashed: a file written in the same clock tick as the hash could change again without
changing its mtime (git's "racily clean" problem)."""


class OutputError(ValueError):
    """The output folder cannot be used (a file, not writable, locked by another run)."""


def _step(name: str, path: Path) -> None:
    if fault_hook is not None:
        fault_hook(name, path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes renames durable; some filesystems (and platforms) refuse it.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# single files


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{str(target)!r} is a directory; give a file path (got path={str(target)!r})")
    try:
        # The staging prefix: a copy left by a kill is removed by the next run's recovery.
        fd, tmp = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-{target.name}.", dir=target.parent)
    except OSError as e:
        raise OutputError(f"cannot write into {str(target.parent)!r} ({e.strerror or e}); choose "
                          f"a directory that exists and is writable (got path={str(target)!r})") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically (see :func:`write_bytes_atomic`); newlines are written as given."""
    return write_bytes_atomic(path, text.encode(encoding))


def _write_json_durable(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------------------------
# input fingerprints


def file_fingerprint(path: str | os.PathLike, previous: Mapping[str, Any] | None = None) -> dict | None:
    """``{path, size, mtime_ns, sha256, hashed_ns}`` of a file, or ``None`` if it cannot be read.

    The content hash of ``previous`` (a fingerprint stored by an earlier run) is reused when the
    size and mtime are unchanged and the file was not modified just before it was hashed; any
    other file is hashed again. Take the fingerprint *before* reading the file, so that a change
    during the read shows up as a new mtime next time.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    if (previous and previous.get("size") == st.st_size and previous.get("mtime_ns") == st.st_mtime_ns
            and isinstance(previous.get("sha256"), str)
            and st.st_mtime_ns < int(previous.get("hashed_ns", 0)) - _RACY_NS):
        digest, hashed_ns = previous["sha256"], int(previous["hashed_ns"])
    else:
        hashed_ns = time.time_ns()
        h = hashlib.sha256()
        try:
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return None
        digest = h.hexdigest()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest,
            "hashed_ns": hashed_ns}


def same_content(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two fingerprints describe the same bytes (both missing counts as the same)."""
    if a is None or b is None:
        return a is None and b is None
    return a.get("size") == b.get("size") and a.get("sha256") == b.get("sha256")


# --------------------------------------------------------------------------------------------
# manifests and names


def _safe_rel(name: Any) -> str | None:
    """``name`` as a relative path strictly inside a folder, or ``None`` (absolute, ``..``,
    a control file): entries read from disk are checked before anything is deleted."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        return None
    p = PurePosixPath(name)
    if p.is_absolute() or any(part in ("", ".", "..") for part in p.parts) or str(p) != name:
        return None
    if p.name in _CONTROL or any(part.startswith(STAGING_PREFIX) for part in p.parts):
        return None
    return name


def _inside(folder: Path, rel: str) -> Path | None:
    """``folder / rel`` if its parent resolves inside ``folder`` (no symlinked way out)."""
    target = folder / rel
    try:
        parent = target.parent.resolve()
        root = folder.resolve()
    except OSError:
        return None
    if parent != root and root not in parent.parents:
        return None
    return target


def read_run_manifest(folder: str | os.PathLike) -> dict | None:
    """The run manifest of ``folder`` (``None`` when absent or unreadable)."""
    try:
        data = json.loads((Path(folder) / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != RUN_SCHEMA:
        return None
    return data


def _owned(manifest: Mapping[str, Any] | None, key: str) -> list[str]:
    if not manifest or not isinstance(manifest.get(key), list):
        return []
    return sorted({n for n in (_safe_rel(x) for x in manifest[key]) if n is not None})


# --------------------------------------------------------------------------------------------
# lock


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _describe(holder: Mapping[str, Any]) -> str:
    return (f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started', '?')}")


class _Lock:
    def __init__(self, folder: Path, *, wait: bool, notify: Callable[[str], None], poll: float):
        self.path = folder / LOCK
        self.folder = folder
        self.wait = wait
        self.notify = notify
        self.poll = poll
        self.record = {"schema": LOCK_SCHEMA, "pid": os.getpid(), "host": socket.gethostname(),
                       "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "command_line": sys.argv}
        self.held = False

    def _read(self) -> dict | None:
        # A lock file is written right after its O_EXCL creation; an empty or partial one is
        # being written, so read it a few times before calling it unreadable.
        for _ in range(20):
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return {}
            except OSError:
                text = ""
            try:
                data = json.loads(text)
                if isinstance(data, dict):
                    return data
            except ValueError:
                pass
            time.sleep(0.05)
        return None

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except FileNotFoundError:
            # The run we waited for created the folder and removed it again, empty.
            self.folder.mkdir(parents=True, exist_ok=True)
            return self._try_create()
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.held = True
        return True

    def _take_over_stale(self, holder: dict) -> bool:
        """Remove a dead process's lock, making sure it is still that lock (not a new one a
        concurrent run has just taken over)."""
        aside = self.path.with_name(f"{STAGING_PREFIX}{os.getpid()}-stale-lock")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = None
        if moved == holder:
            aside.unlink(missing_ok=True)
            return True
        with contextlib.suppress(OSError):  # someone else's fresh lock: put it back
            os.link(aside, self.path)
        aside.unlink(missing_ok=True)
        return False

    def acquire(self) -> None:
        announced = False
        while True:
            if self._try_create():
                return
            holder = self._read()
            if holder == {}:
                continue  # released between our attempt and the read
            if holder is None:
                raise OutputError(
                    f"cannot read the lock {str(self.path)!r}; if no jaxlasso run is writing to "
                    f"{str(self.folder)!r}, delete that file (got lock={str(self.path)!r})")
            same_host = holder.get("host") == socket.gethostname()
            pid = holder.get("pid")
            if same_host and isinstance(pid, int) and not _pid_alive(pid):
                if self._take_over_stale(holder):
                    self.notify(f"took over a stale lock in {str(self.folder)!r}: jaxlasso run "
                                f"({_describe(holder)}) is no longer running")
                continue
            if not self.wait:
                raise OutputError(
                    f"another jaxlasso run ({_describe(holder)}) is writing to {str(self.folder)!r}; "
                    f"wait for it or pass --wait (got lock={str(self.path)!r})")
            if not announced:
                self.notify(f"waiting for jaxlasso run ({_describe(holder)}) to finish writing "
                            f"{str(self.folder)!r}")
                announced = True
            time.sleep(self.poll)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        holder = self._read()
        if holder and holder.get("pid") == self.record["pid"] and holder.get("started") == self.record["started"]:
            self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# publish and recovery


def _remove_owned_folder(folder: Path) -> None:
    """Delete what the run manifest of ``folder`` lists (files, then owned subfolders, then the
    manifest) and the folder itself if nothing else is left in it. A folder without a manifest
    is left alone: nothing says which of its files are ours."""
    if not folder.is_dir() or folder.is_symlink() or _held_by_live_run(folder):
        return
    recover(folder)
    manifest = read_run_manifest(folder)
    if manifest is None:
        return
    _remove_listed(folder, _owned(manifest, "files"), _owned(manifest, "folders"))
    (folder / RUN_MANIFEST).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # fails (and is meant to) when user files remain


def _unlink_file(target: Path) -> None:
    """Delete a file (or a link); anything else that now has its name is not ours to delete."""
    if target.is_symlink() or target.is_file():
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


def _prune_empty_parents(folder: Path, target: Path) -> None:
    parent = target.parent
    while parent != folder and folder in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def _remove_listed(folder: Path, files: list[str], folders: list[str], *, step=None) -> None:
    """Remove the listed files (and parents they leave empty) and folders of ``folder``, skipping
    entries that would lead outside it; ``step(name, path)`` is called before each removal."""
    for rel in files:
        target = _inside(folder, rel)
        if target is None:
            continue
        if step is not None:
            step("remove", target)
        _unlink_file(target)
        _prune_empty_parents(folder, target)
    for rel in folders:
        target = _inside(folder, rel)
        if target is None:
            continue
        if step is not None:
            step("remove-folder", target)
        _remove_owned_folder(target)


def _roll_forward(folder: Path, journal: Mapping[str, Any]) -> None:
    """Complete a committed publish; every step is safe to repeat after a kill."""
    staging_name = journal.get("staging")
    staging = folder / staging_name if isinstance(staging_name, str) and staging_name.startswith(
        STAGING_PREFIX) and "/" not in staging_name else None
    _remove_listed(folder, _owned(journal, "remove"), _owned(journal, "remove_folders"), step=_step)
    if staging is not None and staging.is_dir():
        for rel in _owned(journal, "files"):
            src = staging / rel
            dest = _inside(folder, rel)
            if dest is None or not src.exists():
                continue  # moved before the interruption
            _step("replace", dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        src = staging / RUN_MANIFEST
        if src.exists():
            _step("manifest", folder / RUN_MANIFEST)
            os.replace(src, folder / RUN_MANIFEST)
        _fsync_dir(folder)
        _step("cleanup", staging)
        shutil.rmtree(staging, ignore_errors=True)
    _step("done", folder / JOURNAL)
    (folder / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(folder)


def _read_journal(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recover(folder: str | os.PathLike, *, notify: Callable[[str], None] | None = None,
            depth: int = 1) -> None:
    """Finish an interrupted publish in ``folder`` and delete what dead runs left there
    (staging folders and temporary files, all named ``.jaxlasso-tmp-*``).

    Call it only while holding the folder's lock (no live run can then own a staging folder).
    Subfolders (a screen's dataset folders) are recovered ``depth`` levels down.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    journal = _read_journal(folder)
    if journal is not None:
        if journal.get("schema") == JOURNAL_SCHEMA:
            if notify:
                notify(f"completing an interrupted publish in {str(folder)!r} "
                       f"(jaxlasso PID {journal.get('pid', '?')})")
            _roll_forward(folder, journal)
        else:
            # The journal is written atomically, so an unreadable one was never a commit point.
            (folder / JOURNAL).unlink(missing_ok=True)
    with os.scandir(folder) as entries:
        children = list(entries)
    for entry in children:
        if entry.name.startswith(STAGING_PREFIX):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    if depth > 0:
        for entry in children:
            if (entry.is_dir(follow_symlinks=False) and not entry.name.startswith(STAGING_PREFIX)
                    and not _held_by_live_run(Path(entry.path))
                    and any(n.startswith((JOURNAL, STAGING_PREFIX)) for n in os.listdir(entry.path))):
                recover(entry.path, notify=notify, depth=depth - 1)


def _held_by_live_run(folder: Path) -> bool:
    """Whether ``folder`` has a lock of a run that may still be writing into it."""
    try:
        holder = json.loads((folder / LOCK).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # being written: its run is alive
    if not isinstance(holder, dict):
        return True
    pid = holder.get("pid")
    return holder.get("host") != socket.gethostname() or not isinstance(pid, int) or _pid_alive(pid)


def _staged_files(staging: Path) -> list[str]:
    files = []
    for root, dirs, names in os.walk(staging):
        for n in names:
            rel = Path(root, n).relative_to(staging).as_posix()
            if rel != RUN_MANIFEST:
                files.append(rel)
    return sorted(files)


def _fsync_tree(staging: Path) -> None:
    for root, dirs, names in os.walk(staging):
        for n in names:
            fd = os.open(Path(root, n), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def publish(folder: Path, staging: Path, record: Mapping[str, Any] | None = None,
            folders: Sequence[str] = ()) -> list[str]:
    """Publish the files of ``staging`` (a staging folder inside ``folder``) as ``folder``'s run.

    ``record`` goes into the run manifest; ``folders`` are the subfolders this run owns (each
    with its own manifest; those the previous run owned and this one does not are removed).
    Returns the published file names. The caller holds the folder's lock.
    """
    files = _staged_files(staging)
    bad = [f for f in files if _safe_rel(f) is None]
    if bad:
        raise OutputError(f"a run cannot publish a file named like jaxlasso's own control files (got {bad[:3]})")
    blocked = [f for f in files if (folder / f).is_dir() and not (folder / f).is_symlink()]
    if blocked:  # checked before the commit point: os.replace cannot put a file over a folder
        raise OutputError(f"{str(folder / blocked[0])!r} is a folder, but this run writes a file of that name; "
                          f"move the folder away (got path={str(folder / blocked[0])!r})")
    folders = sorted(set(folders))
    manifest = {**dict(record or {}), "schema": RUN_SCHEMA, "files": files, "folders": folders}
    (staging / RUN_MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n",
                                        encoding="utf-8")
    _fsync_tree(staging)
    _step("staged", staging)
    previous = read_run_manifest(folder)
    remove = sorted(set(_owned(previous, "files")) - set(files))
    remove_folders = sorted(set(_owned(previous, "folders")) - set(folders) - set(files))
    journal = {"schema": JOURNAL_SCHEMA, "pid": os.getpid(), "staging": staging.name, "files": files,
               "remove": remove, "remove_folders": remove_folders}
    _step("journal", folder / JOURNAL)
    _write_json_durable(folder / JOURNAL, journal)
    _roll_forward(folder, journal)
    return files


# --------------------------------------------------------------------------------------------
# the folder API


def _check_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise OutputError(f"output directory {str(path)!r} is an existing file; choose another output "
                          f"path or remove the file (got path={str(path)!r})")


class OutputFolder:
    """A locked output folder (from :func:`open_output`): stage and publish runs into it."""

    def __init__(self, path: Path, notify: Callable[[str], None], *, wait: bool = False, poll: float = 0.5):
        self.path = path
        self.notify = notify
        self.wait = wait
        self.poll = poll

    def previous(self, sub: str | None = None) -> dict | None:
        """The run manifest currently in the folder (or in its subfolder ``sub``)."""
        return read_run_manifest(self.path if sub is None else self.path / sub)

    @contextlib.contextmanager
    def stage(self, sub: str | None = None, *, record: Mapping[str, Any] | None = None,
              folders: Sequence[str] = ()) -> Iterator[Path]:
        """Yield a fresh staging folder inside the target (``OUT`` or ``OUT/sub``); on normal exit
        publish what was written there, on an exception delete it (the target stays as it was).

        A subfolder is locked (and recovered) for the duration, as its own output folder.

        ``record`` may be a dict the caller fills while the block runs; it is read at publish time.
        """
        target = self.path
        if sub is not None:
            rel = _safe_rel(sub)
            if rel is None or "/" in rel:
                raise OutputError(f"output subfolder name {sub!r} is not a plain folder name (got sub={sub!r})")
            target = self.path / rel
            _check_folder(target)
        created = not target.exists()
        sublock = None
        try:
            target.mkdir(parents=False, exist_ok=True)
            if sub is not None:
                # A subfolder has its own lock while it is published: a run writing into it
                # directly (e.g. ``select --out OUT/NAME``) and this one never interleave.
                sublock = _Lock(target, wait=self.wait, notify=self.notify, poll=self.poll)
                sublock.acquire()
                recover(target, notify=self.notify, depth=0)
            staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=target))
            os.chmod(staging, 0o777 & ~_umask())
        except OSError as e:
            if sublock is not None:
                sublock.release()
            raise OutputError(f"cannot write into {str(target)!r} ({e.strerror or e}); choose an output "
                              f"directory where you have write permission (got path={str(target)!r})") from e
        except BaseException:
            if sublock is not None:
                sublock.release()
            raise
        try:
            yield staging
            publish(target, staging, record, folders)
        except BaseException:
            journal = _read_journal(target)
            if not (journal and journal.get("staging") == staging.name):
                # Not committed: drop the staging folder. (Committed: the next run into the
                # folder completes the publish from it.)
                shutil.rmtree(staging, ignore_errors=True)
                if sublock is not None:
                    sublock.release()
                    sublock = None
                if created:
                    with contextlib.suppress(OSError):
                        target.rmdir()
            raise
        finally:
            if sublock is not None:
                sublock.release()


def _stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def open_output(path: str | os.PathLike, *, wait: bool = False,
                notify: Callable[[str], None] | None = _stderr_warning,
                poll: float = 0.5) -> Iterator[OutputFolder]:
    """Lock the output folder ``path`` (creating it), recover it, and yield an :class:`OutputFolder`.

    The lock is released however the block ends (normally, by an exception, by Ctrl-C). A folder
    this call created is removed again if the run leaves it empty.

    Raises
    ------
    OutputError
        ``path`` is a file, cannot be created or written, or another run holds its lock (unless
        ``wait``).
    """
    notify = notify or (lambda _m: None)
    folder = Path(path)
    _check_folder(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output directory {str(folder)!r} ({e.strerror or e}); choose "
                          f"a directory where you have write permission (got path={str(folder)!r})") from e
    lock = _Lock(folder, wait=wait, notify=notify, poll=poll)
    try:
        try:
            lock.acquire()
        except PermissionError as e:
            raise OutputError(f"cannot write into {str(folder)!r} ({e.strerror or e}); choose an output "
                              f"directory where you have write permission (got path={str(folder)!r})") from e
        recover(folder, notify=notify)
        yield OutputFolder(folder, notify, wait=wait, poll=poll)
    finally:
        lock.release()
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if the run left it empty


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, *, record: Mapping[str, Any] | None = None,
                      wait: bool = False, notify: Callable[[str], None] | None = _stderr_warning) -> Iterator[Path]:
    """Lock ``path``, yield a staging folder inside it, and publish what was written there.

    The protocol of this module in one call: on normal exit the folder holds exactly the new
    run's files (plus files no run manifest lists); on an exception it is left as it was.
    """
    with open_output(path, wait=wait, notify=notify) as out, out.stage(record=record) as staging:
        yield staging
