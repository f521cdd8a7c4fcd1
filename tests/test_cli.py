"""The command-line tool: round trips per input format, the demo, errors, determinism."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
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
    assert summary["input"]["n_samples"] == 69 and summary["validated"] is True
    assert len(summary["selected"]) > 0


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
    for name in names:
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
    assert "planted" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["n_samples"] == 16 and summary["input"]["n_features"] == 600
    html = (out / "report.html").read_text()
    assert summary["verdict"].split(":")[0] in html


def test_entry_point_subprocess(tmp_path):
    res = subprocess.run([sys.executable, "-m", "jaxlasso", "select", str(tmp_path / "missing.tsv"), "--outcome",
                          "x", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: ") and "missing.tsv" in res.stderr
    assert "Traceback" not in res.stderr
    assert not Path(tmp_path / "o").exists()
