"""Batch screening: equals per-dataset CV, multi-device, Dask, broken rows, resume, memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxlasso
from helpers import spy_solver_memory
from jaxlasso.cli import main
from jaxlasso.screen import ScreenDataset, screen
from jaxlasso.selection.filters import preprocess
from jaxlasso.simulate import simulate_rnaseq

ROOT = Path(__file__).resolve().parents[1]


def labels(sim):
    return pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index)


def make_items(genes=(300, 300, 340)):
    items = []
    for i, g in enumerate(genes):
        sim = simulate_rnaseq(n_genes=g, seed=10 + i, lfc_mean=1.5)
        items.append(ScreenDataset(f"d{i}", sim.counts, labels(sim)))
    return items


def reference(item, seed=0):
    X, _ = preprocess(item.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlasso.FewObservationsWarning)
        return jaxlasso.cv_logistic_path(X, item.y, seed=seed)


@pytest.mark.slow
def test_stacked_datasets_never_copy_a_design_per_lane():
    """Datasets stacked in one vmapped call: the temporaries hold no copy of a dataset's design
    per lane (a ``lax.cond`` on a per-lane flag would broadcast each X to its lanes; see
    test_path.py::test_vmapped_lanes_never_copy_the_design_per_lane)."""
    from jaxlasso._engine import configure

    records = []
    items = []
    for i in range(2):
        sim = simulate_rnaseq(30, 34, n_genes=1000, seed=20 + i, lfc_mean=1.5)
        items.append(ScreenDataset(f"d{i}", sim.counts, labels(sim)))
    with configure(**spy_solver_memory("datasets_solver", records)):
        res = screen(items, mode="vmap")
    assert list(res.table["status"]) == ["ok", "ok"] and records
    for temp, design, lanes in records:
        assert temp < lanes * design, (temp, design, lanes)  # the bug adds two copies per lane


@pytest.mark.slow
@pytest.mark.parametrize("genes", [(300, 300), (300, 300, 340)], ids=["same-shape", "mixed-shape"])
def test_vmapped_screen_equals_loop_of_cv(genes):
    items = make_items(genes)
    res = screen(items, mode="vmap")
    assert list(res.table["status"]) == ["ok"] * len(items)
    # Datasets of one shape share a bucket (one stacked call, its executables shared); padding to
    # the bucket's shape is the only overhead: genes (300, 340) padded by at most 12.5%, the 16
    # samples not at all (a bucket size already).
    assert res.stats["mode"] == "vmap" and res.stats["buckets"] == len(set(genes))
    assert res.stats["buckets"] <= res.stats["executables"]
    assert 0 < res.stats["padding_overhead"] <= 0.125
    for item in items:
        ref = reference(item)
        got = res.reports[item.name].cv
        np.testing.assert_allclose(got.lambdas, ref.lambdas, rtol=1e-12)
        np.testing.assert_allclose(got.cv_mean, ref.cv_mean, rtol=1e-6)
        assert (got.index_min, got.index_1se) == (ref.index_min, ref.index_1se)
        row = res.table.set_index("name").loc[item.name]
        assert row["lambda_min"] == pytest.approx(ref.lambda_min)


@pytest.mark.slow
def test_one_device_loops_over_datasets_by_default():
    """Stacked datasets wait for the slowest (measured 3.4x slower on an H200): on one device the
    default is a loop over datasets, also where lanes are vmapped (accelerators)."""
    from jaxlasso._engine import configure

    items = make_items((300, 300))
    with configure(lane_mode="vmap"):  # what an accelerator defaults to
        res = screen(items)
    assert res.stats["mode"] == "loop" and res.stats["devices"] == 1
    assert list(res.table["status"]) == ["ok", "ok"]


def test_broken_dataset_does_not_stop_the_batch():
    items = make_items((300, 300))
    one_class = pd.Series(["a"] * 16, index=items[0].X.index)
    items.insert(1, ScreenDataset("broken", items[0].X, one_class))
    res = screen(items, mode="loop")
    table = res.table.set_index("name")
    assert table.loc["broken", "status"] == "error" and "one class" in table.loc["broken", "error"]
    assert (table.drop("broken")["status"] == "ok").all()


def test_memory_budget_refuses_oversize_dataset_with_estimate():
    items = make_items((300,))
    res = screen(items, mode="loop", max_memory=1e5)
    row = res.table.iloc[0]
    assert row["status"] == "error" and "GiB" in row["error"] and "max_memory" in row["error"]


SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np, pandas as pd
    sys.path.insert(0, {tests!r})
    from test_screen import make_items
    from jaxlasso.screen import screen
    import jax
    res = screen(make_items((300, 300, 340)), mode="vmap"{extra})
    print(json.dumps({{"devices": len(jax.devices()),
                      "cv": {{k: r.cv.cv_mean.tolist() for k, r in res.reports.items()}},
                      "stats": {{k: v for k, v in res.stats.items() if k in ("devices", "executables")}}}}))
""")


def run_script(extra="", env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    code = SCRIPT.format(tests=str(ROOT / "tests"), extra=extra)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_host_devices_equal_one_device():
    one = screen(make_items((300, 300, 340)), mode="vmap")
    two = run_script(env_extra={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert two["devices"] == 2 and two["stats"]["devices"] == 2
    for name, rep in one.reports.items():
        np.testing.assert_allclose(two["cv"][name], rep.cv.cv_mean, rtol=1e-9)


@pytest.mark.slow
def test_dask_local_cluster_equals_local_run():
    pytest.importorskip("distributed")
    one = screen(make_items((300, 300, 340)), mode="vmap")
    remote = run_script(extra=', dask="local"')
    for name, rep in one.reports.items():
        np.testing.assert_allclose(remote["cv"][name], rep.cv.cv_mean, rtol=1e-9)


# --- the CLI: manifest, broken rows, resume, safety ------------------------------------------
@pytest.fixture
def manifest_dir(tmp_path):
    rows = []
    for i in range(3):
        sim = simulate_rnaseq(n_genes=300, seed=20 + i, lfc_mean=1.5)
        sim.counts.T.rename_axis("gene").to_csv(tmp_path / f"s{i}.tsv", sep="\t")
        sim.samples.to_csv(tmp_path / f"s{i}_samples.tsv", sep="\t", index=False)
        rows.append(f"s{i}\ts{i}.tsv\ts{i}_samples.tsv\tgroup\tcase")
    (tmp_path / "bad.tsv").write_text("gene\tS01\tS02\nG1\t1\tx\n")
    rows.insert(1, "broken\tbad.tsv\ts0_samples.tsv\tgroup\tcase")
    (tmp_path / "manifest.tsv").write_text("name\texpression\tsamples\toutcome\tcase\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_cli_screen_writes_table_and_folders(manifest_dir, tmp_path, capsys):
    out = tmp_path / "screen"
    code = main(["screen", str(manifest_dir / "manifest.tsv"), "--out", str(out), "--no-plots"])
    stdout, err = capsys.readouterr()
    assert code == 1, err  # one dataset failed
    assert err.strip().splitlines()[-1] == (f"error: 1 of 4 datasets failed: broken (their errors are in "
                                            f"{out}/screen.tsv)")
    assert "3 ok, 1 failed" in stdout
    table = pd.read_csv(out / "screen.tsv", sep="\t")
    assert list(table["name"]) == ["s0", "broken", "s1", "s2"]
    assert table.set_index("name").loc["broken", "status"] == "error"
    assert (table.set_index("name").drop("broken")["status"] == "ok").all()
    for name in ("s0", "s1", "s2"):
        assert (out / name / "summary.json").exists() and (out / name / "cv.tsv").exists()
        manifest = json.loads((out / name / ".jaxlasso-run.json").read_text())
        assert manifest["files"] == sorted(p.name for p in (out / name).iterdir() if not p.name.startswith("."))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 3 and summary["n_error"] == 1 and summary["failed"] == ["broken"]
    own = json.loads((out / ".jaxlasso-run.json").read_text())
    assert own["files"] == ["screen.tsv", "summary.json"] and own["folders"] == ["s0", "s1", "s2"]
    assert not (out / "broken").exists()

    # all datasets fine: exit 0; the folder of a dataset no longer listed is removed, unrelated files stay
    text = (manifest_dir / "manifest.tsv").read_text().splitlines()
    (manifest_dir / "manifest.tsv").write_text("\n".join(ln for ln in text if not ln.startswith(("broken", "s2")))
                                              + "\n")
    (out / "mine.txt").write_text("mine")
    (out / "s0" / "notes.txt").write_text("mine")
    (out / "s2" / "notes.txt").write_text("mine")
    code = main(["screen", str(manifest_dir / "manifest.tsv"), "--out", str(out), "--quiet", "--no-plots",
                 "--resume"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "mine.txt", "s0", "s1", "s2", "screen.tsv", "summary.json"]
    assert [p.name for p in (out / "s2").iterdir()] == ["notes.txt"]  # only the user's file is left
    assert (out / "s0" / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["resumed"] == ["s0", "s1"]
    assert list(pd.read_csv(out / "screen.tsv", sep="\t")["name"]) == ["s0", "s1"]


KILL = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import jaxlasso.output as output
    from jaxlasso.cli import main

    target = Path(sys.argv[1]) / "s1" / "cv.tsv"

    def hook(step, path):  # die in the middle of publishing s1: after its journal, before all files moved
        if step == "replace" and Path(path) == target:
            os._exit(77)

    output.fault_hook = hook
    main(sys.argv[2:])
""")


def test_cli_screen_resume_after_kill(manifest_dir, tmp_path):
    """A screen killed at a known step (s0 published, s1 half-published): the resumed screen
    completes s1 from its journal, redoes neither, and computes the rest."""
    out = tmp_path / "screen"
    args = ["screen", str(manifest_dir / "manifest.tsv"), "--out", str(out), "--quiet", "--no-plots", "--mode",
            "loop"]
    res = subprocess.run([sys.executable, "-c", KILL, str(out), *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 77, res.stderr[-3000:]
    assert json.loads((out / "s0" / ".jaxlasso-run.json").read_text())["files"]
    journal = json.loads((out / "s1" / ".jaxlasso-publish.json").read_text())
    assert "cv.tsv" in journal["files"] and not (out / "s2").exists() and not (out / "summary.json").exists()
    first_mtime = (out / "s0" / "summary.json").stat().st_mtime_ns
    loud = [a for a in args if a != "--quiet"]  # --quiet would silence the recovery notices too
    res = subprocess.run([sys.executable, "-m", "jaxlasso", *loud, "--resume"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 1, res.stderr  # 'broken' fails
    assert "completing an interrupted publish" in res.stderr and "stale lock" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == ["s0", "s1"]
    assert (out / "s0" / "summary.json").stat().st_mtime_ns == first_mtime, "finished work was redone"
    assert not (out / "s1" / ".jaxlasso-publish.json").exists()
    s1 = json.loads((out / "s1" / ".jaxlasso-run.json").read_text())
    assert s1["files"] == sorted(p.name for p in (out / "s1").iterdir() if not p.name.startswith("."))
    table = pd.read_csv(out / "screen.tsv", sep="\t")
    assert list(table["name"]) == ["s0", "broken", "s1", "s2"]
    assert (table["status"] == "ok").sum() == 3


def test_cli_screen_resume_notices_changed_inputs(manifest_dir, tmp_path, capsys):
    """Resume by content: labels swapped in one sample sheet (same size) -> that dataset is
    computed again, the others are resumed."""
    out = tmp_path / "screen"
    args = ["screen", str(manifest_dir / "manifest.tsv"), "--out", str(out), "--quiet", "--no-plots"]
    assert main(args) == 1
    before = json.loads((out / "s1" / "summary.json").read_text())
    sheet_path = manifest_dir / "s1_samples.tsv"
    sheet = pd.read_csv(sheet_path, sep="\t")
    sheet["group"] = sheet["group"].map({"case": "control", "control": "case"})
    sheet.to_csv(sheet_path, sep="\t", index=False)
    assert main([*args, "--resume"]) == 1
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] == ["s0", "s2"]
    after = json.loads((out / "s1" / "summary.json").read_text())
    assert (after["classes"]["n_case"], after["classes"]["n_control"]) == (
        before["classes"]["n_control"], before["classes"]["n_case"])
    stored = json.loads((out / "s1" / ".jaxlasso-run.json").read_text())["inputs"]["samples"]
    assert stored["sha256"] == hashlib.sha256(sheet_path.read_bytes()).hexdigest()
    # unchanged now: a third resume skips all three
    assert main([*args, "--resume"]) == 1
    assert json.loads((out / "summary.json").read_text())["resumed"] == ["s0", "s1", "s2"]


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "x y"])
def test_manifest_names_cannot_escape_the_output_dir(manifest_dir, tmp_path, capsys, name):
    text = (manifest_dir / "manifest.tsv").read_text().replace("s2\t", f"{name}\t", 1)
    (manifest_dir / "manifest.tsv").write_text(text)
    code = main(["screen", str(manifest_dir / "manifest.tsv"), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "not a safe folder name" in err
    assert not (tmp_path / "escape").exists()


def test_manifest_with_a_nul_byte_is_refused_not_truncated(tmp_path, capsys):
    # pandas ends a cell at a NUL byte, so 'ab\x00cd' would silently become dataset 'ab'.
    manifest = tmp_path / "m.tsv"
    manifest.write_bytes(b"name\texpression\toutcome\nok\tx.tsv\tgroup\nab\x00cd\tx.tsv\tgroup\n")
    out = tmp_path / "out"
    code = main(["screen", str(manifest), "--out", str(out), "--quiet"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: manifest 'm.tsv' line 3 holds a NUL byte"), err
    assert not out.exists()
