"""The command-line tool: round trips per input format, the demo, errors, determinism."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io as _io
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxlasso.cli import main
from jaxlasso.simulate import simulate_rnaseq

FAST = ["--permutations", "9", "--stability", "10", "--quiet"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small simulated study written as genes-in-rows TSV + a sample sheet."""
    d = tmp_path_factory.mktemp("study")
    sim = simulate_rnaseq(n_genes=400, seed=3, lfc_mean=1.5)
    counts = sim.counts.T  # genes in rows, samples in columns
    counts.index.name = "gene_id"
    counts.to_csv(d / "counts.tsv", sep="\t")
    sheet = sim.samples.rename(columns={"group": "condition"})
    sheet.to_csv(d / "samples.tsv", sep="\t", index=False)
    return d, sim


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert "jaxlasso" in capsys.readouterr().out
    for cmd in ("select", "demo"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_select_tsv_round_trip(study, tmp_path, capsys):
    d, sim = study
    out = tmp_path / "res"
    code, stdout, err = run(["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome",
                             "condition", "--case", "case", "--out", out, *FAST], capsys)
    assert code == 0, err
    for name in ("selected.tsv", "cv.tsv", "path.tsv.gz", "diagnosis.tsv", "stability.tsv", "summary.json",
                 "report.html", "cv.png", "cv.svg", "path.png"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema"] == "jaxlasso.summary/1"
    assert summary["classes"]["case"] == "case" and summary["classes"]["n_case"] == 7
    assert summary["input"]["n_samples"] == 16 and summary["input"]["orientation"] == "genes_in_rows"
    assert summary["preprocessing"]["log_applied"] is True
    codes = {f["code"] for f in summary["diagnosis"]}
    assert {"SMALL_N", "FEW_PER_CLASS"} <= codes
    assert summary["cv"]["lambda_1se"] >= summary["cv"]["lambda_min"]
    # The test's every labelling is a CV like the one reported: its folds, one repeat.
    assert summary["signal_test"]["test_folds"] == summary["cv"]["nfolds"] == 7
    assert summary["signal_test"]["test_repeats"] == 1
    cv = pd.read_csv(out / "cv.tsv", sep="\t")
    assert list(cv.columns[:3]) == ["lambda", "cv_mean", "cv_sd"]
    with gzip.open(out / "path.tsv.gz", "rt") as fh:
        path = pd.read_csv(fh, sep="\t")
    assert set(path.columns) == {"lambda_index", "lambda", "feature", "coefficient"}
    assert set(path["feature"]) <= set(sim.counts.columns)
    sel = pd.read_csv(out / "selected.tsv", sep="\t")
    # The simulated signal is found, and summary.json's selection is selected.tsv's lasso block.
    lasso = sel[sel["selected_by_lasso"]]
    assert len(lasso) > 0
    assert ({s["feature"]: s["coefficient"] for s in summary["selected"]}
            == pytest.approx(dict(zip(lasso["feature"], lasso["coefficient"])), rel=1e-9))


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "h5ad", "samples_in_rows"])
def test_select_other_formats(study, tmp_path, capsys, fmt):
    d, sim = study
    src = tmp_path / f"expr.{fmt.replace('samples_in_rows', 'tsv')}"
    genes_in_rows = sim.counts.T
    genes_in_rows.index.name = "gene_id"
    if fmt == "csv.gz":
        genes_in_rows.to_csv(src, compression="gzip")
        sheet = ["--samples", d / "samples.tsv"]
    elif fmt == "parquet":
        genes_in_rows.reset_index().to_parquet(src, index=False)
        sheet = ["--samples", d / "samples.tsv"]
    elif fmt == "samples_in_rows":
        sim.counts.rename_axis("sample").to_csv(src, sep="\t")
        sheet = ["--samples", d / "samples.tsv"]
    else:
        anndata = pytest.importorskip("anndata")
        obs = sim.samples.set_index("sample").rename(columns={"group": "condition"})
        anndata.AnnData(X=sim.counts.to_numpy(dtype=float), obs=obs,
                        var=pd.DataFrame(index=sim.counts.columns)).write_h5ad(src)
        sheet = []
    out = tmp_path / "res"
    code, _, err = run(["select", src, *sheet, "--outcome", "condition", "--case", "case", "--out", out,
                        "--strategy", "lasso", "--permutations", "0", "--no-plots", "--quiet"], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["n_samples"] == 16 and summary["input"]["n_features"] == 400


def test_npz_input_uses_its_labels(tmp_path, capsys):
    from helpers import real_data_path

    out = tmp_path / "res"
    code, stdout, err = run(["select", real_data_path("tissue_cerebellum_vs_hippocampus"), "--outcome", "y",
                             "--out", out, "--strategy", "lasso", "--permutations", "0", "--no-plots",
                             "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["input"]["n_samples"] == 69
    # --permutations 0: signal not tested, said in the flags and the words.
    assert summary["signal_detected"] is None and summary["permutation_p"] is None
    assert summary["signal_test"]["n_permutations"] == 0 and "not tested" in summary["verdict"]
    assert len(summary["selected"]) > 0
    assert summary["gene_list"] == ("selected by the lasso at lambda.1se; prediction tested by "
                                    "cross-validation; gene identities not validated")


@pytest.mark.parametrize("case, pattern", [
    ("missing_column", r"outcome"),
    ("unknown_case", r"case"),
    ("mismatched_ids", r"match"),
    ("non_numeric", r"non-numeric|not a number|NA"),
    ("empty_file", r"empty"),
])
def test_errors_exit_2_with_one_line_and_no_output(study, tmp_path, capsys, case, pattern):
    d, sim = study
    expr, samples = d / "counts.tsv", d / "samples.tsv"
    args = ["--outcome", "condition", "--case", "case"]
    if case == "missing_column":
        args = ["--outcome", "diagnosis"]
    elif case == "unknown_case":
        args = ["--outcome", "condition", "--case", "tumour"]
    elif case == "mismatched_ids":
        sheet = sim.samples.rename(columns={"group": "condition"}).assign(sample=[f"X{i}" for i in range(16)])
        samples = tmp_path / "other.tsv"
        sheet.to_csv(samples, sep="\t", index=False)
    elif case == "non_numeric":
        text = (d / "counts.tsv").read_text().splitlines()
        fields = text[3].split("\t")
        fields[2] = "NA"
        text[3] = "\t".join(fields)
        expr = tmp_path / "bad.tsv"
        expr.write_text("\n".join(text) + "\n")
    elif case == "empty_file":
        expr = tmp_path / "empty.tsv"
        expr.write_text("")
    out = tmp_path / "res"
    code, stdout, err = run(["select", expr, "--samples", samples, *args, "--out", out, "--quiet"], capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0], re.I), lines[0]
    assert "Traceback" not in err
    assert not out.exists(), "a failed run must not leave an output directory"


def test_failed_run_leaves_existing_directory_untouched(study, tmp_path, capsys):
    d, _ = study
    out = tmp_path / "res"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome", "nope",
                        "--out", out, "--quiet"], capsys)
    assert code == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_output_directory_that_is_a_file(study, tmp_path, capsys):
    d, _ = study
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome", "condition",
                        "--out", target, "--quiet"], capsys)
    assert code == 2 and err.startswith("error: ")


def test_same_inputs_and_seed_give_identical_files(study, tmp_path, capsys):
    d, _ = study
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        code, _, err = run(["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome",
                            "condition", "--case", "case", "--out", out, "--seed", "5", *FAST], capsys)
        assert code == 0, err
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir())
    runs = [json.loads((o / ".jaxlasso-run.json").read_text()) for o in outs]
    assert runs[0]["files"] == runs[1]["files"] == [n for n in names if not n.startswith(".")]
    for name in names:
        if name == ".jaxlasso-run.json":
            continue  # records the command line (--out differs) and when the inputs were hashed
        a, b = (outs[0] / name).read_bytes(), (outs[1] / name).read_bytes()
        if name == "summary.json":
            ja, jb = json.loads(a), json.loads(b)
            ja.pop("timings"), jb.pop("timings")
            ja.pop("command_line"), jb.pop("command_line")
            assert ja == jb
        elif name == "report.html":
            continue  # embeds the timings of the run
        else:
            assert a == b, f"{name} differs between two identical runs"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run(["demo", "--out", out, "--genes", "600", "--permutations", "9", "--stability", "10"],
                            capsys)
    assert code == 0, err
    assert "planted genes recovered (300 planted)" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["n_samples"] == 16 and summary["input"]["n_features"] == 600
    rec = summary["demo_recovery"]
    assert rec["n_planted"] == 300
    assert rec["lasso_lambda_min"]["genes"] == len(summary["lambda_min_exploratory"])
    assert 0 <= rec["lasso_lambda_min"]["planted"] <= rec["lasso_lambda_min"]["genes"]
    html = (out / "report.html").read_text()
    assert summary["verdict"].split("(")[0].strip() in html
    assert "planted genes recovered" in html
    # The gene list is described by what was tested, the same words on the CLI's line about it.
    assert f"{summary['gene_list']}" in stdout and summary["gene_list"] in html


def test_entry_point_subprocess(tmp_path):
    res = subprocess.run([sys.executable, "-m", "jaxlasso", "select", str(tmp_path / "missing.tsv"), "--outcome",
                          "x", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    # stderr is a pipe here: the progress lines come first, then the one error line.
    *steps, last = res.stderr.strip().splitlines()
    assert last.startswith("error: ") and "missing.tsv" in last
    assert steps and all(re.fullmatch(r"\[ *\d+\.\ds\] .+ \.\.\.", s) for s in steps), steps
    assert "Traceback" not in res.stderr
    assert not Path(tmp_path / "o").exists()


# --- the output protocol through the CLI (jaxlasso/output.py; unit tests in test_output.py) -----
LASSO = ["--strategy", "lasso", "--permutations", "0", "--no-plots", "--quiet"]


def select_args(d, out, *extra):
    return ["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome", "condition", "--out", out,
            *extra]


def visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def comparable(files: dict[str, bytes]) -> dict[str, bytes]:
    """Files of a run without what legitimately differs between two identical runs."""
    out = dict(files)
    out.pop("report.html", None)  # embeds the timings
    if "summary.json" in out:
        s = json.loads(out["summary.json"])
        s.pop("timings"), s.pop("command_line")
        out["summary.json"] = json.dumps(s, sort_keys=True).encode()
    return out


@pytest.mark.slow
def test_second_run_replaces_exactly_the_previous_runs_files(study, tmp_path, capsys):
    """The issue's scenario: a full run (with plots), then a lasso-only run with the other case
    label into the same --out: nothing of the first run is left (no stability.tsv computed with
    the other label, no plot),
    the user's file stays, and the folder equals a fresh run of the second command."""
    d, _ = study
    out = tmp_path / "res"
    code, _, err = run(select_args(d, out, "--case", "case", "--strategy", "full", "--stability", "10", "--rf",
                                   "--permutations", "0", "--quiet"), capsys)
    assert code == 0, err
    first = set(visible(out))
    assert {"stability.tsv", "univariate.tsv", "random_forest.tsv", "rank_then_lasso.tsv", "cv.png", "cv.svg",
            "stability.png"} <= first
    assert json.loads((out / ".jaxlasso-run.json").read_text())["files"] == sorted(first)
    (out / "notes.txt").write_text("mine")
    code, _, err = run(select_args(d, out, "--case", "control", *LASSO), capsys)
    assert code == 0, err
    fresh = tmp_path / "fresh"
    code, _, err = run(select_args(d, fresh, "--case", "control", *LASSO), capsys)
    assert code == 0, err
    assert comparable(visible(out)) == comparable({**visible(fresh), "notes.txt": b"mine"})
    manifest = json.loads((out / ".jaxlasso-run.json").read_text())
    assert manifest["files"] == sorted(visible(fresh)) and manifest["options"]["case"] == "control"
    assert manifest["inputs"]["samples"]["sha256"] == hashlib.sha256((d / "samples.tsv").read_bytes()).hexdigest()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".jaxlasso-run.json"]


def test_select_into_a_real_mount_point(study, tmp_path, capsys):
    """--out is a tmpfs mount (a container volume): the run never renames across it."""
    d, _ = study
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        assert os.stat(mnt).st_dev != os.stat(tmp_path).st_dev
        for case in ("case", "control"):
            code, _, err = run(select_args(d, mnt, "--case", case, *LASSO), capsys)
            assert code == 0, err
        assert json.loads((mnt / "summary.json").read_text())["classes"]["case"] == "control"
        assert not [p for p in mnt.iterdir() if p.name.startswith(".jaxlasso-tmp")]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_select_when_renames_out_of_out_fail_with_exdev(study, tmp_path, capsys, monkeypatch):
    """Simulated mount point: any rename in the test folder that is not inside --out fails with
    EXDEV, as it does across filesystems; the run still succeeds (twice: new and existing --out)."""
    d, _ = study
    out = tmp_path / "mnt"
    out.mkdir()
    area, base = str(tmp_path), os.path.realpath(out)
    crossed = []

    def inside(p, root):
        rp = os.path.realpath(os.fspath(p))
        return rp == root or rp.startswith(root + os.sep)

    for name in ("rename", "replace"):
        real = getattr(os, name)

        def patched(src, dst, *a, _real=real, **k):
            if (inside(src, area) or inside(dst, area)) and not (inside(src, base) and inside(dst, base)):
                crossed.append((src, dst))
                raise OSError(errno.EXDEV, "Invalid cross-device link", os.fspath(src))
            return _real(src, dst, *a, **k)

        monkeypatch.setattr(os, name, patched)
    for _ in range(2):
        code, _, err = run(select_args(d, out, "--case", "case", *LASSO), capsys)
        assert code == 0, err
    assert crossed == [] and (out / "summary.json").is_file()


HOLD = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("jaxlasso_output_alone", sys.argv[1])
    out = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(out)
    with out.open_output(sys.argv[2], notify=None):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_second_run_into_a_locked_out_fails_fast_or_waits(study, tmp_path, capsys, monkeypatch):
    import jaxlasso.output as jout

    d, _ = study
    out = tmp_path / "res"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, jout.__file__, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run(select_args(d, out, "--case", "case", *LASSO), capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert re.fullmatch(rf"error: another jaxlasso run \(PID {holder.pid} on .+, started .+\) is writing to "
                            rf"'{re.escape(str(out))}'; wait for it or pass --wait \(got lock=.+\)", lines[0])
        assert sorted(p.name for p in out.iterdir()) == [".jaxlasso.lock"]  # the holder's, untouched

        notes = []

        def release_when_waiting(message):  # the holder lets go once we wait: no timing involved
            notes.append(message)
            holder.stdin.write("go\n")
            holder.stdin.flush()

        monkeypatch.setattr(jout, "_stderr_warning", release_when_waiting)
        code, _, err = run(select_args(d, out, "--case", "case", "--wait", *LASSO[:-1]), capsys)
        assert code == 0, err
        assert len(notes) == 1 and f"PID {holder.pid}" in notes[0]
        assert holder.wait(timeout=60) == 0 and (out / "summary.json").is_file()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    # a lock left by a dead process is reported in one line and taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".jaxlasso.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                    "started": "earlier"}))
    monkeypatch.undo()
    code, _, err = run(select_args(d, out, "--case", "case", *LASSO[:-1]), capsys)
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "stale lock" in ln] == [
        f"warning: took over a stale lock in {str(out)!r}: jaxlasso run (PID {dead.pid} on "
        f"{socket.gethostname()}, started earlier) is no longer running"]
    assert not (out / ".jaxlasso.lock").exists()


def test_formula_like_names_are_neutralised_in_tsv_unless_raw_names(study, tmp_path, capsys):
    from jaxlasso.cli import _tsv

    frame = pd.DataFrame({"feature": ["=HYPERLINK(\"http://x\")", "+cmd", "@SUM(A1)", "-1+2", "\tx", "\rx",
                                      "GENE1", None], "value": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
                          "rank": [-1, 2, 3, 4, 5, 6, 7, 8]})
    assert _tsv(frame).split("\n") == [
        "feature\tvalue\trank", "\"'=HYPERLINK(\"\"http://x\"\")\"\t-1.5\t-1", "'+cmd\t2\t2", "'@SUM(A1)\t-3\t3",
        "'-1+2\t4\t4", "\"'\tx\"\t5\t5", "'\rx\t6\t6", "GENE1\t7\t7", "\t8\t8", ""]  # numbers untouched
    cat = frame.assign(feature=pd.Categorical(frame["feature"]))
    assert _tsv(cat) == _tsv(frame)  # categorical text columns too
    back = pd.read_csv(_io.StringIO(_tsv(frame, raw_names=True)), sep="\t", keep_default_na=False, nrows=5)
    assert back["feature"].tolist() == frame["feature"].tolist()[:5]

    # through the CLI: the planted genes get formula-like names
    d, sim = study
    evil = {g: f"{'=+@-'[i % 4]}{g}" for i, g in enumerate(sim.de_genes)}
    counts = sim.counts.T.rename(index=evil)
    counts.index.name = "gene_id"
    counts.to_csv(tmp_path / "evil.tsv", sep="\t")
    for flag, expect in (([], lambda n: "'" + n), (["--raw-names"], lambda n: n)):
        out = tmp_path / f"out{len(flag)}"
        code, _, err = run(["select", tmp_path / "evil.tsv", "--samples", d / "samples.tsv", "--outcome",
                            "condition", "--case", "case", "--out", out, *LASSO, *flag], capsys)
        assert code == 0, err
        summary = json.loads((out / "summary.json").read_text())
        chosen = [s["feature"] for s in summary["selected"] if s["feature"] in evil.values()]
        assert chosen, "the planted genes should be selected"  # summary.json keeps the raw names
        table = pd.read_csv(out / "selected.tsv", sep="\t")
        assert set(map(expect, chosen)) <= set(table["feature"])
        if not flag:
            assert not set(chosen) & set(table["feature"])
