"""Options defined and validated once: one declaration per option, one constructor from a mapping
for the command line, manifest rows and the Python API, errors that name the option as the user
wrote it, and a command line that leaves the process as it found it."""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from jaxlasso._config import CV, PATH, SCREEN, SELECT
from jaxlasso.cli import main, read_manifest
from jaxlasso.options import (API, CLI, DATASET_KEYS, MANIFEST_COLUMNS, CVOptions, OptionError, PathOptions, Rule,
                              ScreenOptions, SelectOptions, Source)


# --- the options layer ------------------------------------------------------------------------
@pytest.mark.parametrize("text, rule", [("lambda_1se", Rule.LAMBDA_1SE), ("lambda.1se", Rule.LAMBDA_1SE),
                                        ("lambda_min", Rule.LAMBDA_MIN), ("lambda.min", Rule.LAMBDA_MIN),
                                        (Rule.LAMBDA_MIN, Rule.LAMBDA_MIN)])
def test_rule_accepts_both_spellings(text, rule):
    got = Rule.parse(text)
    assert got is rule and got == rule.value and f"{got}" == rule.value and str(got) == rule.value
    assert got.glmnet == rule.value.replace("_", ".")


@pytest.mark.parametrize("bad", ["lambda", "1se", "", None, 0.1])
def test_rule_refuses_anything_else(bad):
    with pytest.raises(OptionError, match=r"rule must be lambda\.1se or lambda\.min"):
        Rule.parse(bad)


def test_defaults_are_configs():
    opts = SelectOptions()
    assert opts.path == PathOptions() and opts.cv == CVOptions()
    assert (opts.path.l1_ratio, opts.path.n_lambdas, opts.path.max_iter) == (PATH.l1_ratio, PATH.n_lambdas,
                                                                            PATH.max_iter)
    assert (opts.cv.n_repeats, opts.cv.measure, opts.seed) == (SELECT.n_repeats, CV.measure, CV.seed)
    assert (opts.strategy, opts.rule, opts.n_permutations) == (SELECT.strategy, SELECT.rule, SELECT.n_permutations)
    screen = ScreenOptions().select
    assert (screen.strategy, screen.n_permutations, screen.cv.n_repeats) == (SCREEN.strategy, SCREEN.n_permutations,
                                                                              SCREEN.n_repeats)
    assert screen.stability is None, "a screen's stability default must be 'when it runs', as select's"
    assert SelectOptions.from_mapping(opts.to_mapping()) == opts


def test_text_is_parsed_only_from_text_sources():
    cli = SelectOptions.from_mapping({"stability": "10", "l1_ratio": "0.5", "rule": "lambda.min", "cpm": "yes",
                                      "top_variance": "2000", "nfolds": "auto"}, source=CLI)
    assert (cli.stability, cli.path.l1_ratio, cli.rule, cli.cpm) == (10, 0.5, Rule.LAMBDA_MIN, True)
    assert cli.top_variance == 2000 and isinstance(cli.top_variance, int) and cli.cv.nfolds is None
    assert SelectOptions.from_mapping({"top_variance": "1.0"}, source=CLI).top_variance == 1.0
    with pytest.raises(OptionError, match=r"^stability must be .*\(got stability='10'\)"):
        SelectOptions.from_mapping({"stability": "10"})  # the API takes Python values
    with pytest.raises(OptionError, match=r"^n_repeats must be .*\(got n_repeats=True\)"):
        SelectOptions(cv=CVOptions(n_repeats=True))


BAD = [  # key, bad text, what the message must say is allowed
    ("n_permutations", "-1", r">= 0"), ("seed", "-1", r"from 0 to 4294967295"),
    ("stability", "-5", r"0 \(off\) or a number of subsamples >= 2"),
    ("stability", "1", r"0 \(off\) or a number of subsamples >= 2"), ("nfolds", "1", r">= 2"),
    ("n_repeats", "0", r">= 1"), ("l1_ratio", "2", r"\[0, 1\]"), ("l1_ratio", "nan", r"\[0, 1\]"),
    ("top_variance", "0", r"fraction in \(0, 1\]"), ("top_variance", "1.5", r"fraction in \(0, 1\]"),
    ("measure", "accuracy", r"one of deviance"), ("rule", "lambda.2se", r"lambda\.1se or lambda\.min"),
    ("cpm", "maybe", r"true or false"), ("seed", "1.5", r"whole number"),
]


@pytest.mark.parametrize("key, text, allowed", BAD, ids=[f"{k}={t}" for k, t, _ in BAD])
def test_errors_name_the_option_as_each_source_writes_it(key, text, allowed):
    opt = SelectOptions.option(key)
    with pytest.raises(OptionError) as e:
        SelectOptions.from_mapping({key: text}, source=CLI)
    assert str(e.value).startswith(f"{opt.flag} must be ") and f"(got {opt.flag} {text})" in str(e.value)
    assert re.search(allowed, str(e.value))
    with pytest.raises(OptionError) as e:
        SelectOptions.from_mapping({key: text}, source=Source.manifest("m.tsv", 3))
    assert str(e.value).startswith(f"manifest 'm.tsv' line 3, column {opt.column!r} must be ")
    assert f"(got {opt.column}={text!r})" in str(e.value) and re.search(allowed, str(e.value))


def test_api_errors_name_the_keyword():
    with pytest.raises(OptionError, match=r"^stability must be 0 \(off\).*\(got stability=-5\)$"):
        SelectOptions(stability=-5)
    with pytest.raises(OptionError, match=r"^n_permutations must be .*\(got n_permutations=-1\)$"):
        SelectOptions.from_mapping({"n_permutations": -1}, source=API)
    with pytest.raises(OptionError, match=r"unknown option\(s\) \['stabilty'\]; valid: .*stability"):
        SelectOptions.from_mapping({"stabilty": 10})


def test_stability_runs_with_the_rankings_by_default():
    """None = the default number when the rankings run; 0 = off; a number runs it always."""
    default = SelectOptions()
    assert default.stability_resamples(True) == SELECT.stability_resamples
    assert default.stability_resamples(False) == 0
    assert SelectOptions(stability=0).stability_resamples(True) == 0
    assert SelectOptions(stability=7).stability_resamples(False) == 8  # complementary pairs


def test_screen_dataset_overrides_only_their_keys():
    batch = ScreenOptions.from_mapping({"nfolds": "5", "forest": True, "max_memory": "1.5G"}, source=CLI)
    assert batch.max_memory == 1.5 * 2**30 and batch.select.forest is True
    one = batch.dataset({"seed": 3, "rule": "lambda.min"})
    assert (one.seed, one.rule, one.cv.nfolds, one.forest) == (3, Rule.LAMBDA_MIN, 5, True)
    with pytest.raises(OptionError, match=r"cannot be set per dataset"):
        batch.dataset({"strategy": "full"})
    assert len(DATASET_KEYS) == len(MANIFEST_COLUMNS) and "permutations" in MANIFEST_COLUMNS


# --- the command line -------------------------------------------------------------------------
def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


CLI_BAD = [
    ("select", ["--permutations", "-1"], "--permutations"), ("select", ["--seed", "-1"], "--seed"),
    ("select", ["--stability", "-5"], "--stability"), ("select", ["--stability", "1"], "--stability"),
    ("select", ["--nfolds", "1"], "--nfolds"), ("select", ["--repeats", "0"], "--repeats"),
    ("select", ["--l1-ratio", "2"], "--l1-ratio"), ("select", ["--l1-ratio", "nan"], "--l1-ratio"),
    ("select", ["--top-variance", "0"], "--top-variance"), ("select", ["--measure", "acc"], "--measure"),
    ("select", ["--nfolds", "x"], "--nfolds"), ("demo", ["--genes", "0"], "--genes"),
    ("screen", ["--host-devices", "0"], "--host-devices"), ("screen", ["--max-memory", "abc"], "--max-memory"),
    ("screen", ["--stability", "-3"], "--stability"), ("screen", ["--permutations", "-1"], "--permutations"),
]


@pytest.mark.parametrize("command, extra, flag", CLI_BAD, ids=[f"{c}{' '.join(e)}" for c, e, _ in CLI_BAD])
def test_bad_option_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, command, extra, flag):
    out = tmp_path / "out"
    head = {"select": ["select", tmp_path / "x.tsv", "--outcome", "g"], "demo": ["demo"],
            "screen": ["screen", tmp_path / "m.tsv"]}[command]
    code, stdout, err = run([*head, "--out", out, *extra], capsys)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: {flag} must be ") and f"(got {flag} {extra[-1]})" in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == [] and stdout == ""


def test_argparse_complaints_are_one_error_line_too(tmp_path, capsys):
    code, _, err = run(["select", tmp_path / "x.tsv", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--outcome" in one_error_line(err)
    code, _, err = run(["select", tmp_path / "x.tsv", "--outcome", "g", "--out", tmp_path / "o", "--bogus"], capsys)
    assert code == 2 and "--bogus" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def write_manifest(tmp_path, extra_columns: dict[str, str]) -> str:
    cols = ["name", "expression", "outcome", *extra_columns]
    lines = ["\t".join(cols), "\t".join(["d0", "d0.tsv", "group", *([""] * len(extra_columns))]),
             "\t".join(["d1", "d1.tsv", "group", *extra_columns.values()])]
    path = tmp_path / "m.tsv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("column, text", [("stability", "-5"), ("permutations", "-1"), ("seed", "-1"),
                                          ("nfolds", "1"), ("n_repeats", "0"), ("l1_ratio", "2"),
                                          ("top_variance", "0"), ("rule", "best"), ("cpm", "maybe"),
                                          ("samples_in_rows", "sometimes")])
def test_bad_manifest_cell_names_file_line_and_column(tmp_path, capsys, column, text):
    manifest = write_manifest(tmp_path, {column: text})
    out = tmp_path / "out"
    code, _, err = run(["screen", manifest, "--out", out], capsys)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"error: manifest 'm.tsv' line 3, column {column!r} must be "), line
    assert f"(got {column}={text!r})" in line
    assert not out.exists()


def test_manifest_rows_start_from_the_command_lines_options(tmp_path):
    manifest = write_manifest(tmp_path, {"nfolds": "4", "rule": "lambda.min", "permutations": "7"})
    batch = ScreenOptions.from_mapping({"nfolds": "5", "stability": "20", "strategy": "full"}, source=CLI)
    rows, _ = read_manifest(manifest, batch=batch)
    first, second = rows[0]["options"], rows[1]["options"]
    assert (first.cv.nfolds, first.rule, first.n_permutations, first.stability) == (5, Rule.LAMBDA_1SE, 0, 20)
    assert (second.cv.nfolds, second.rule, second.n_permutations, second.stability) == (4, Rule.LAMBDA_MIN, 7, 20)
    assert second.strategy == "full" and rows[1]["overrides"] == {"nfolds": 4, "rule": Rule.LAMBDA_MIN,
                                                                    "n_permutations": 7}


def test_help_shows_every_default(capsys):
    for command, permutations, repeats in (("select", SELECT.n_permutations, None),
                                           ("screen", SCREEN.n_permutations, SCREEN.n_repeats)):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        if repeats is None:  # select's automatic choice is said in words
            assert "default: 10 below 100 samples, else 1" in text.split(" --repeats ", 1)[1][:120]
        checks = (("--permutations", permutations),) + ((("--repeats", repeats),) if repeats else ())
        for flag, default in checks + (
                              ("--measure", CV.measure), ("--seed", CV.seed), ("--rule", "lambda.1se"),
                              ("--l1-ratio", PATH.l1_ratio), ("--strategy", "lasso" if command == "screen" else
                                                              SELECT.strategy)):
            block = text.split(f" {flag} ", 1)[1].split(" --", 1)[0]  # this option's help
            assert f"(default: {default})" in block, (flag, block)
        assert f"default: {SELECT.stability_resamples} when it runs" in text
        assert "rank-then-lasso" in text.split(" --rf ", 1)[1][:150]


# --- the stability bug: screen --strategy full runs stability selection like select -----------
@pytest.fixture
def spy_stability(monkeypatch):
    """Stability selection replaced by a spy that fails with the number of subsamples it was
    asked for: the run stops there, and the message carries the number out of select (its error
    line) and out of screen (the dataset's row)."""
    import jaxlasso.selection.stability as stability

    def spy(X, y, *, n_resamples, **kwargs):
        raise ValueError(f"spy: n_resamples={n_resamples}")

    monkeypatch.setattr(stability, "stability_selection", spy)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    from jaxlasso.simulate import simulate_rnaseq

    d = tmp_path_factory.mktemp("study")
    sim = simulate_rnaseq(n_genes=200, seed=5, lfc_mean=1.5)
    sim.counts.T.rename_axis("gene").to_csv(d / "counts.tsv", sep="\t")
    sim.samples.to_csv(d / "samples.tsv", sep="\t", index=False)
    (d / "m.tsv").write_text("name\texpression\tsamples\toutcome\tcase\nd0\tcounts.tsv\tsamples.tsv\tgroup\tcase\n")
    return d


@pytest.mark.parametrize("strategy, expected", [("full", SELECT.stability_resamples), ("lasso", None)])
def test_screen_and_select_run_the_same_stability_selection(small_study, tmp_path, capsys, spy_stability,
                                                           strategy, expected):
    d = small_study
    common = ["--strategy", strategy, "--permutations", "0", "--quiet", "--no-plots"]
    code, _, err = run(["select", d / "counts.tsv", "--samples", d / "samples.tsv", "--outcome", "group",
                        "--case", "case", "--out", tmp_path / "sel", *common], capsys)
    if expected is None:
        assert code == 0, err
    else:
        assert code == 2 and one_error_line(err) == f"error: spy: n_resamples={expected}"
    run(["screen", d / "m.tsv", "--out", tmp_path / "scr", *common], capsys)
    row = pd.read_csv(tmp_path / "scr" / "screen.tsv", sep="\t").iloc[0]
    if expected is None:
        assert row["status"] == "ok", row["error"]
    else:
        assert row["status"] == "error" and row["error"] == f"spy: n_resamples={expected}"


# --- progress and process state ---------------------------------------------------------------
DEMO = ["demo", "--genes", "150", "--strategy", "lasso", "--permutations", "0", "--no-plots"]


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    code, _, err = run([*DEMO, "--out", tmp_path / "a"], capsys)  # capsys: stderr is not a tty
    assert code == 0, err
    assert "\r" not in err
    steps = [ln for ln in err.splitlines() if re.fullmatch(r"\[ *\d+\.\ds\] .+ \.\.\.", ln)]
    names = [re.sub(r"^\[ *\d+\.\ds\] | \.\.\.$", "", s) for s in steps]
    assert names[:3] == ["simulating the study", "preprocess", "cross-validated lasso"], err
    assert "diagnosis" in names and names[-1] == "writing outputs"
    for quiet in ("--quiet", "--json"):
        code, _, err = run([*DEMO, "--out", tmp_path / quiet.strip("-"), quiet], capsys)
        assert code == 0 and err == "", err


def test_main_leaves_warnings_and_environment_as_it_found_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    before = (warnings.formatwarning, warnings.showwarning, list(warnings.filters))
    code, _, err = run([*DEMO, "--out", tmp_path / "a"], capsys)
    assert code == 0, err
    manifest = write_manifest(tmp_path, {})
    run(["screen", manifest, "--out", tmp_path / "s", "--host-devices", "2", "--quiet"], capsys)
    assert (warnings.formatwarning, warnings.showwarning, list(warnings.filters)) == before
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false"
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["n_error"] == 2  # the manifest's files do not exist: the run went through


def test_warnings_print_as_one_line_during_a_run(capsys):
    from jaxlasso.cli import _process_scope

    class Args:
        options = SelectOptions()

    with _process_scope(Args(), quiet=False):
        warnings.warn("counts look unlogged", UserWarning)
    assert capsys.readouterr().err == "warning: counts look unlogged\n"


# --- the Python API validates through the same objects ----------------------------------------
def test_select_features_and_screen_refuse_bad_keywords_before_any_work():
    from jaxlasso.screen import ScreenDataset, screen
    from jaxlasso.workflow import report_from_cv, select_features

    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])  # would fail later, if validation came late
    with pytest.raises(OptionError, match=r"^stability must be .*\(got stability=-5\)"):
        select_features(X, y, stability=-5)
    with pytest.raises(OptionError, match=r"^rule must be lambda\.1se or lambda\.min"):
        select_features(X, y, rule="lambda.2se")
    with pytest.raises(OptionError, match=r"^n_permutations must be"):
        report_from_cv(None, y, None, None, n_permutations=-1)
    with pytest.raises(OptionError, match=r"^mode must be"):
        screen([], mode="stack")
    with pytest.raises(OptionError, match=r"unknown option\(s\) \['bogus'\]"):
        screen([], options={"bogus": 1})
    res = screen([ScreenDataset("d0", X, y, {"nfolds": 1})])
    assert res.table.iloc[0]["error"].startswith("dataset 'd0': nfolds must be a whole number >= 2")
