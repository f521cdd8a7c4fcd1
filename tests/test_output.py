"""The output protocol (jaxlasso.output): lock, staging inside --out, run manifest, journal,
recovery -- killed at every step of a publish, a real second process on the lock, a real tmpfs
mount or a simulated cross-device rename."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jaxlasso import output as jout
from jaxlasso.output import (JOURNAL, LOCK, RUN_MANIFEST, STAGING_PREFIX, OutputError, atomic_output_dir,
                             file_fingerprint, open_output, read_run_manifest, write_bytes_atomic,
                             write_text_atomic)

OUTPUT_PY = Path(jout.__file__)
CONTROL = {LOCK, RUN_MANIFEST, JOURNAL}


def tree(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` except the protocol's control files and staging."""
    files = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and p.name not in CONTROL and not any(
                part.startswith(STAGING_PREFIX) for part in p.relative_to(folder).parts):
            files[rel] = p.read_bytes()
    return files


def publish_files(out: Path, files: dict[str, str], **kw) -> None:
    with atomic_output_dir(out, notify=None, **kw) as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


# --- single-file writes ----------------------------------------------------------------------
def test_write_atomic(tmp_path):
    path = tmp_path / "f.txt"
    write_text_atomic(path, "one\ntwo\n")
    assert path.read_bytes() == b"one\ntwo\n"
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]  # no temporary file left
    assert (path.stat().st_mode & 0o777) == (0o666 & ~jout._umask())
    with pytest.raises(OutputError, match=r"cannot write into"):
        write_text_atomic(tmp_path / "no" / "such" / "dir.txt", "x")


# --- staging, manifest, stale files, user files ----------------------------------------------
def test_new_folder_staged_inside_and_published(tmp_path):
    out = tmp_path / "results"
    with atomic_output_dir(out, notify=None, record={"command": "test"}) as tmp:
        assert tmp.parent == out and tmp.name.startswith(f"{STAGING_PREFIX}{os.getpid()}-")
        assert (out / LOCK).is_file()
        assert json.loads((out / LOCK).read_text())["pid"] == os.getpid()
        (tmp / "a.txt").write_text("A")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("B")
        assert not (out / "a.txt").exists()
    assert tree(out) == {"a.txt": b"A", "sub/b.txt": b"B"}
    assert sorted(p.name for p in out.iterdir()) == [RUN_MANIFEST, "a.txt", "sub"]  # lock and staging gone
    manifest = read_run_manifest(out)
    assert manifest["files"] == ["a.txt", "sub/b.txt"] and manifest["command"] == "test"
    assert manifest["schema"] == "jaxlasso.run/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing beside --out


def test_second_run_removes_stale_files_and_keeps_user_files(tmp_path):
    out = tmp_path / "results"
    publish_files(out, {"selected.tsv": "1", "stability.tsv": "1", "plots/cv.png": "1"})
    (out / "notes.txt").write_text("mine")
    (out / "plots" / "mine.png").write_text("mine")
    publish_files(out, {"selected.tsv": "2", "cv.tsv": "2"})
    assert tree(out) == {"selected.tsv": b"2", "cv.tsv": b"2", "notes.txt": b"mine", "plots/mine.png": b"mine"}
    assert read_run_manifest(out)["files"] == ["cv.tsv", "selected.tsv"]
    publish_files(out, {"selected.tsv": "3"})
    assert tree(out) == {"selected.tsv": b"3", "notes.txt": b"mine", "plots/mine.png": b"mine"}


def test_folder_from_before_manifests_is_only_overwritten(tmp_path):
    """An --out written by a jaxlasso without run manifests: a run overwrites the names it
    writes and deletes nothing, since nothing says which files are ours."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "selected.tsv").write_text("old")
    (out / "stability.tsv").write_text("old")
    publish_files(out, {"selected.tsv": "new"})
    assert tree(out) == {"selected.tsv": b"new", "stability.tsv": b"old"}


def test_failure_leaves_folder_as_it_was(tmp_path):
    out = tmp_path / "results"
    publish_files(out, {"a.txt": "previous A"})
    before = tree(out)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output_dir(out, notify=None) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("boom")
    assert tree(out) == before and sorted(p.name for p in out.iterdir()) == [RUN_MANIFEST, "a.txt"]
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(fresh, notify=None):
            raise KeyboardInterrupt
    assert not fresh.exists()  # created by the run, removed again with its lock


def test_errors_name_the_folder(tmp_path, monkeypatch):
    target = tmp_path / "results"
    target.write_text("I am a file")
    with pytest.raises(OutputError, match=r"output directory '.*results' is an existing file"):
        with atomic_output_dir(target, notify=None):
            pass  # pragma: no cover
    locked = tmp_path / "ro"
    locked.mkdir()
    if os.geteuid() == 0:
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(jout.os, "open", denied)
    else:  # pragma: no cover - the test machines run as root
        locked.chmod(0o500)
    with pytest.raises(OutputError, match=r"cannot write into '.*ro' \(Permission denied\).*write permission"):
        with atomic_output_dir(locked, notify=None):
            pass  # pragma: no cover


def test_manifest_entries_cannot_reach_outside(tmp_path):
    """A tampered manifest or journal never makes a run delete outside the folder or its own
    control files."""
    out = tmp_path / "results"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    publish_files(out, {"a.txt": "1"})
    manifest = read_run_manifest(out)
    manifest["files"] += ["../victim.txt", str(victim), "./a.txt", LOCK, "sub/../../victim.txt"]
    (out / RUN_MANIFEST).write_text(json.dumps(manifest))
    publish_files(out, {"b.txt": "2"})
    assert victim.read_text() == "keep"
    assert tree(out) == {"b.txt": b"2"}


# --- a kill at every step of the publish ------------------------------------------------------
CHILD = textwrap.dedent("""
    import importlib.util, json, os, sys
    spec = importlib.util.spec_from_file_location("jaxlasso_output_alone", {path!r})
    out = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(out)
    folder, kill_at, files, folders = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
    steps = []

    def hook(step, path):
        if len(steps) == kill_at:
            os._exit(77)
        steps.append([step, os.path.relpath(path, folder)])

    out.fault_hook = hook
    with out.open_output(folder, notify=None) as o, o.stage(folders=folders) as tmp:
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            with open(os.path.join(tmp, name), "w") as fh:
                fh.write(text)
    print(json.dumps(steps))
""")


def run_child(folder: Path, kill_at: int, files: dict, folders=()) -> subprocess.CompletedProcess:
    # The module is loaded alone (standard library only): a child process starts in milliseconds.
    return subprocess.run([sys.executable, "-c", CHILD.format(path=str(OUTPUT_PY)), str(folder), str(kill_at),
                           json.dumps(files), json.dumps(list(folders))], capture_output=True, text=True,
                          timeout=120)


def as_bytes(files: dict) -> dict:
    return {k: v.encode() for k, v in files.items()}


def select_like(folder: Path) -> dict:
    """A selection run over a previous one: two stale files (one in a subfolder), user files."""
    old = {"selected.tsv": "old selected", "stability.tsv": "old stability", "plots/cv.png": "old png",
           "summary.json": "old summary"}
    user = {"notes.txt": "mine", "plots/mine.png": "mine too"}
    publish_files(folder, old)
    for name, text in user.items():
        (folder / name).write_text(text)
    new = {"selected.tsv": "new selected", "cv.tsv": "new cv", "summary.json": "new summary"}
    return {"new": new, "folders": [], "old_tree": {**old, **user}, "new_tree": {**new, **user},
            "old_files": sorted(old), "old_folders": [],
            "steps": [("remove", "stability.tsv"), ("remove", "plots/cv.png")]}


def screen_like(folder: Path) -> dict:
    """A screen over a previous one that had one dataset more (d2, whose folder goes)."""
    datasets = {"d1": {"cv.tsv": "d1 cv", "summary.json": "d1"}, "d2": {"cv.tsv": "d2 cv", "summary.json": "d2"}}
    old = {"screen.tsv": "old table", "summary.json": "old summary"}
    with open_output(folder, notify=None) as out:
        for name, files in datasets.items():
            with out.stage(name) as tmp:
                for f, text in files.items():
                    (tmp / f).write_text(text)
        with out.stage(folders=sorted(datasets)) as tmp:
            for f, text in old.items():
                (tmp / f).write_text(text)
    (folder / "d2" / "notes.txt").write_text("mine")
    kept = {f"d1/{f}": t for f, t in datasets["d1"].items()}
    gone = {f"d2/{f}": t for f, t in datasets["d2"].items()}
    new = {"screen.tsv": "new table", "summary.json": "new summary"}
    return {"new": new, "folders": ["d1"], "old_tree": {**old, **kept, **gone, "d2/notes.txt": "mine"},
            "new_tree": {**new, **kept, "d2/notes.txt": "mine"}, "old_files": sorted(old),
            "old_folders": ["d1", "d2"], "steps": [("remove-folder", "d2")]}


@pytest.mark.parametrize("scenario", [select_like, screen_like], ids=["select", "screen"])
def test_kill_at_every_publish_step_leaves_old_or_new_complete(tmp_path, scenario):
    # A run to completion lists the steps (and checks the end state).
    full = tmp_path / "full"
    case = scenario(full)
    res = run_child(full, -1, case["new"], case["folders"])
    assert res.returncode == 0, res.stderr
    steps = [tuple(s) for s in json.loads(res.stdout)]
    assert tree(full) == as_bytes(case["new_tree"])
    names = [s for s, _ in steps]
    assert names[:2] == ["staged", "journal"] and names[-3:] == ["manifest", "cleanup", "done"]
    assert set(case["steps"]) <= set(steps)
    assert {p for s, p in steps if s == "replace"} == set(case["new"])
    commit = names.index("journal")  # the journal is written right after this hook

    outcomes = []
    for k in range(len(steps)):
        folder = tmp_path / f"k{k}"
        scenario(folder)
        res = run_child(folder, k, case["new"], case["folders"])
        assert res.returncode == 77, (k, res.stderr)
        journal = folder / JOURNAL
        # Before recovery the journal tells the state: absent = the old result is intact.
        if k <= commit:
            assert not journal.exists(), steps[k]
            assert tree(folder) == as_bytes(case["old_tree"]), steps[k]
            assert any(p.name.startswith(STAGING_PREFIX) for p in folder.iterdir())
        else:
            assert json.loads(journal.read_text())["files"] == sorted(case["new"]), steps[k]
        assert (folder / LOCK).exists()  # the killed run's lock, of a dead process
        with open_output(folder, notify=outcomes.append):
            pass
        old = k <= commit
        state = tree(folder)
        assert state == as_bytes(case["old_tree" if old else "new_tree"]), (steps[k], sorted(state))
        manifest = read_run_manifest(folder)
        assert manifest["files"] == (case["old_files"] if old else sorted(case["new"])), steps[k]
        assert manifest["folders"] == (case["old_folders"] if old else case["folders"]), steps[k]
        hidden = sorted(p.relative_to(folder).as_posix() for p in folder.rglob(".*"))
        assert hidden == sorted([RUN_MANIFEST] + [f"{d}/{RUN_MANIFEST}" for d in manifest["folders"]]), steps[k]
    assert sum("stale lock" in m for m in outcomes) == len(steps)
    assert sum("interrupted publish" in m for m in outcomes) == len(steps) - commit - 1


def test_recovery_cleans_dead_staging_in_dataset_folders(tmp_path):
    out = tmp_path / "screen"
    (out / "d1" / f"{STAGING_PREFIX}999999-abc").mkdir(parents=True)
    (out / "d1" / f"{STAGING_PREFIX}999999-abc" / "cv.tsv").write_text("half")
    (out / f"{STAGING_PREFIX}999999-xyz").mkdir()
    (out / f"{STAGING_PREFIX}999999-screen.tsv.k2j4").write_text("half")  # a single-file write, killed
    (out / "user").mkdir()
    (out / "user" / "x.txt").write_text("mine")
    with open_output(out, notify=None):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["d1", "user"]
    assert list((out / "d1").iterdir()) == [] and (out / "user" / "x.txt").read_text() == "mine"


# --- the lock -----------------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("jaxlasso_output_alone", {path!r})
    out = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(out)
    with out.open_output(sys.argv[1], notify=None):
        print("locked", flush=True)
        sys.stdin.readline()  # hold the lock until the test says so
""")


@pytest.fixture
def holder(tmp_path):
    """A real second process holding the lock of tmp_path/'out' until ``release()``."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(path=str(OUTPUT_PY)), str(out)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"

    def release():
        if proc.poll() is None:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            proc.wait(timeout=60)

    yield out, proc, release
    release()
    proc.stdin.close()
    proc.stdout.close()


def test_lock_held_by_another_process_fails_fast_naming_it(holder):
    out, proc, release = holder
    with pytest.raises(OutputError) as e:
        with open_output(out, notify=None):
            pass  # pragma: no cover
    msg = str(e.value)
    assert f"another jaxlasso run (PID {proc.pid} on {socket.gethostname()}, started " in msg
    assert "--wait" in msg and str(out) in msg
    assert (out / LOCK).exists() and json.loads((out / LOCK).read_text())["pid"] == proc.pid


def test_wait_takes_the_lock_after_the_other_run_releases_it(holder):
    out, proc, release = holder
    notes = []

    def notify(message):  # released the moment we start waiting: no timing involved
        notes.append(message)
        release()

    with open_output(out, wait=True, notify=notify, poll=0.05):
        assert json.loads((out / LOCK).read_text())["pid"] == os.getpid()
    assert proc.returncode == 0
    assert len(notes) == 1 and f"waiting for jaxlasso run (PID {proc.pid}" in notes[0]
    assert not (out / LOCK).exists()


def test_subfolder_written_by_another_run_is_left_to_it(tmp_path):
    """A screen's dataset folder that another run is writing into directly (``select --out
    OUT/NAME``): the screen's recovery leaves its staging alone and publishing there fails
    naming that run."""
    out = tmp_path / "screen"
    sub = out / "s0"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(path=str(OUTPUT_PY)), str(sub)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        live = sub / f"{STAGING_PREFIX}{proc.pid}-live"
        live.mkdir()
        with open_output(out, notify=None) as folder:
            assert live.is_dir()
            with pytest.raises(OutputError, match=rf"another jaxlasso run \(PID {proc.pid} on "):
                with folder.stage("s0"):
                    pass  # pragma: no cover
            with folder.stage("s1") as tmp:
                (tmp / "cv.tsv").write_text("x")
        assert live.is_dir() and (out / "s1" / "cv.tsv").read_text() == "x"
        assert not (out / "s1" / LOCK).exists()
    finally:
        proc.stdin.write("go\n")
        proc.stdin.close()
        proc.wait(timeout=60)
        proc.stdout.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pid = dead_pid()
    (out / LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "then"}))
    notes = []
    with open_output(out, notify=notes.append):
        assert json.loads((out / LOCK).read_text())["pid"] == os.getpid()
    assert notes == [f"took over a stale lock in {str(out)!r}: jaxlasso run (PID {pid} on "
                     f"{socket.gethostname()}, started then) is no longer running"]
    # a lock of another host is never taken over: its process cannot be checked from here
    (out / LOCK).write_text(json.dumps({"pid": pid, "host": "elsewhere.invalid", "started": "then"}))
    with pytest.raises(OutputError, match=r"PID \d+ on elsewhere.invalid"):
        with open_output(out, notify=None):
            pass  # pragma: no cover


def test_lock_released_on_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError):
        with open_output(out, notify=None):
            raise ValueError("x")
    assert not (out / LOCK).exists()


# --- input fingerprints -------------------------------------------------------------------------
def test_fingerprint_reuses_the_hash_only_for_unchanged_files(tmp_path, monkeypatch):
    f = tmp_path / "sheet.tsv"
    f.write_text("id\tgroup\nA\tcase\nB\tcontrol\n")
    os.utime(f, ns=(10**18, 10**18))
    first = file_fingerprint(f)
    assert first["size"] == f.stat().st_size and len(first["sha256"]) == 64
    calls = []
    real = jout.hashlib.sha256
    monkeypatch.setattr(jout.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    stored = {**first, "hashed_ns": 10**18 + 10**10}  # hashed well after its last change
    assert file_fingerprint(f, stored)["sha256"] == first["sha256"] and calls == []
    f.write_text("id\tgroup\nA\tcontrol\nB\tcase\n")  # labels swapped: same size
    changed = file_fingerprint(f, stored)
    assert calls == [1] and changed["sha256"] != first["sha256"] and changed["size"] == first["size"]
    # same size and mtime but hashed in the same instant as its last change: hashed again
    os.utime(f, ns=(10**18, 10**18))
    file_fingerprint(f, {**first, "hashed_ns": 10**18})
    assert calls == [1, 1]
    assert file_fingerprint(tmp_path / "missing") is None


# --- cross-device: --out is a mount point --------------------------------------------------------
def exdev_outside(monkeypatch, root: Path) -> list:
    """Make os.rename / os.replace fail with EXDEV for any rename not inside ``root`` (what a
    mount point at ``root`` does)."""
    base = os.path.realpath(root)
    seen = []

    def inside(p) -> bool:
        rp = os.path.realpath(os.fspath(p))
        return rp == base or rp.startswith(base + os.sep)

    for name in ("rename", "replace"):
        real = getattr(os, name)

        def patched(src, dst, *a, _real=real, **k):
            seen.append((os.fspath(src), os.fspath(dst)))
            if not (inside(src) and inside(dst)):
                raise OSError(errno.EXDEV, "Invalid cross-device link", os.fspath(src))
            return _real(src, dst, *a, **k)

        monkeypatch.setattr(os, name, patched)
    return seen


def test_publish_never_renames_across_the_folder_boundary(tmp_path, monkeypatch):
    out = tmp_path / "mnt"
    out.mkdir()
    seen = exdev_outside(monkeypatch, out)
    publish_files(out, {"a.txt": "1", "old.txt": "1"})
    publish_files(out, {"a.txt": "2"})
    assert tree(out) == {"a.txt": b"2"} and seen


def test_user_folder_where_a_file_goes_fails_before_the_commit(tmp_path):
    out = tmp_path / "results"
    publish_files(out, {"a.txt": "1", "b.txt": "1"})
    (out / "b.txt").unlink()
    (out / "b.txt").mkdir()  # the user put a folder where the previous run had a file
    (out / "b.txt" / "mine").write_text("mine")
    publish_files(out, {"a.txt": "2"})  # the stale name is not a file any more: left alone
    assert tree(out) == {"a.txt": b"2", "b.txt/mine": b"mine"}
    with pytest.raises(OutputError, match=r"b.txt' is a folder, but this run writes a file of that name"):
        publish_files(out, {"a.txt": "3", "b.txt": "3"})
    assert tree(out) == {"a.txt": b"2", "b.txt/mine": b"mine"} and not (out / JOURNAL).exists()
