"""The ``jaxlasso`` command: from an expression table and a sample sheet to a readable answer.

    jaxlasso demo --out demo-out
    jaxlasso select counts.tsv --samples samples.tsv --outcome group --case tumour --out results
    jaxlasso screen manifest.tsv --out screen-out

Errors exit with status 2 and one line ``error: ...`` on stderr (``--debug`` shows the
traceback). Selecting no gene is a result, not a failure: the exit status is 0 and the verdict
says why. ``screen`` exits 1 when any dataset failed. Results are published into ``--out`` by the
protocol of :mod:`jaxlasso.output` (lock, staging inside ``--out``, run manifest, journal), so a
failed or killed run leaves the previous complete result or the new complete one, never a mix.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io as _io
import json
import logging
import os
import platform
import sys
import textwrap
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._config import MEASURES, SCREEN_MODES
from .options import (CLI, MANIFEST_COLUMNS, DemoOptions, Opt, OptionError, Rule, ScreenOptions, SelectOptions,
                      optional_boolean)

SUMMARY_SCHEMA = "jaxlasso.summary/1"
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

EPILOG_SELECT = """examples:
  jaxlasso select counts.tsv.gz --samples samples.tsv --outcome condition --case tumour --out results
  jaxlasso select expr.h5ad --outcome status --out results --rule lambda.min --stability 200 --rf
  jaxlasso select GSE12345_series_matrix.txt.gz --samples pheno.csv --outcome group --out r --json

input layout: genes in rows and samples in columns (first column = gene IDs), as GEO series
matrices and featureCounts / HTSeq / DESeq2 exports; samples in rows is detected from the sample
sheet's IDs (or forced with --samples-in-rows). Formats: .tsv/.csv/.txt (optionally .gz),
.parquet, .h5ad (obs = sample sheet), .npz (X, y, genes, samples)."""

EPILOG_DEMO = """examples:
  jaxlasso demo --out demo-out            # the seed study: 16 samples x 16,293 genes, 7 vs 9
  jaxlasso demo --out null-out --null     # the same design with no signal at all"""


EPILOG_SCREEN = """manifest (TSV, paths relative to the manifest's folder):
  name    expression          samples           outcome    case
  gse1    gse1_counts.tsv.gz  gse1_samples.tsv  condition  tumour
  gse2    gse2.h5ad                             status     1
{manifest_columns}

examples:
  jaxlasso screen manifest.tsv --out screen-out
  jaxlasso screen manifest.tsv --out screen-out --resume          # finish an interrupted screen
  jaxlasso screen manifest.tsv --out screen-out --host-devices 2  # shard over 2 CPU devices
  jaxlasso screen manifest.tsv --out screen-out --dask tcp://scheduler:8786""".format(manifest_columns=textwrap.fill(
    "optional columns set an option for their row (as the flag of that name: top_variance is "
    "--top-variance, n_repeats is --repeats; empty = the command line's value): "
    + ", ".join(MANIFEST_COLUMNS) + "; and describe its files: samples, case, id_column, samples_in_rows, "
    "allow_missing.", width=92))


class _Progress:
    """One plain line per stage on stderr (``[  12.3s] step ...``), also when stderr is a log
    file or a pipe: a batch job's log then shows where a long run is. No carriage returns, so
    the lines read the same in a terminal and in a file. ``--quiet`` and ``--json`` silence it."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, step: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {step} ...", file=sys.stderr, flush=True)


class _UsageError(Exception):
    """argparse's own complaint (unknown option, missing argument), shown as one error line."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage and exits; the CLI's contract is one ``error:`` line and status 2
    # for every bad input, so its complaints go through main's error path like an option check's.
    def error(self, message: str):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _shown(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Rule):
        return value.glmnet
    return str(value)


def _add(group, cls, key: str, defaults, *, flag_only: bool = False, **kwargs) -> None:
    """An argparse option for ``cls``'s option ``key``: flag, help and the default shown in
    ``--help`` come from the option's declaration and ``defaults`` (an options object). argparse
    keeps the raw text (default None = not given); :meth:`from_mapping` parses and checks it."""
    opt = cls.option(key)
    help_ = next(f.metadata["help"] for f in _all_fields(cls) if f.metadata.get("opt") is opt)
    if flag_only:
        group.add_argument(opt.flag, dest=key, action="store_true", default=None, help=help_)
        return
    default = defaults.to_mapping()[key] if defaults is not None else None
    shown = "" if default is None and "default" in help_ else f" (default: {_shown(default)})"
    group.add_argument(opt.flag, dest=key, default=None, help=help_ + shown, **kwargs)


def _all_fields(cls):
    import dataclasses

    out = list(dataclasses.fields(cls))
    for part in cls.PARTS.values():
        out.extend(_all_fields(part))
    return out


def _add_method_options(p: argparse.ArgumentParser, defaults: SelectOptions) -> None:
    from ._config import DTYPES, LOG_MODES, STRATEGIES

    g = p.add_argument_group("model and cross-validation")
    _add(g, SelectOptions, "l1_ratio", defaults, metavar="ALPHA")
    _add(g, SelectOptions, "nfolds", defaults, metavar="K")
    _add(g, SelectOptions, "n_repeats", defaults, metavar="N")
    _add(g, SelectOptions, "measure", defaults, metavar="{" + ",".join(MEASURES) + "}")
    _add(g, SelectOptions, "rule", defaults, metavar="{lambda.1se,lambda.min}")
    _add(g, SelectOptions, "strategy", defaults, metavar="{" + ",".join(STRATEGIES) + "}")
    g = p.add_argument_group("preprocessing")
    _add(g, SelectOptions, "log", defaults, metavar="{" + ",".join(LOG_MODES) + "}")
    _add(g, SelectOptions, "cpm", defaults, flag_only=True)
    _add(g, SelectOptions, "top_variance", defaults, metavar="FRACTION_OR_COUNT")
    g = p.add_argument_group("rankings and tests")
    _add(g, SelectOptions, "stability", defaults, metavar="N")
    _add(g, SelectOptions, "forest", defaults, flag_only=True)
    _add(g, SelectOptions, "boruta", defaults, flag_only=True)
    _add(g, SelectOptions, "n_permutations", defaults, metavar="N")
    _add(g, SelectOptions, "alpha", defaults, metavar="P")
    g = p.add_argument_group("run")
    _add(g, SelectOptions, "seed", defaults, metavar="N")
    _add(g, SelectOptions, "dtype", defaults, metavar="{" + ",".join(DTYPES) + "}")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    g.add_argument("--json", action="store_true", help="print summary.json to stdout (implies --quiet)")
    g.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots and keep the HTML report text-only")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="if another jaxlasso run is writing to --out, wait for it instead of failing")
    p.add_argument("--raw-names", action="store_true",
                   help="write text cells starting with = + - @ (spreadsheet formulas) as they are in the "
                        "TSV outputs (default: prefixed with ' so that spreadsheets show them as text)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxlasso",
        description="Find the genes that predict a binary outcome when p >> n: glmnet-exact lasso "
                    "logistic regression in JAX, cross-validation, stability selection and an "
                    "honest diagnosis when nothing is selected.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"jaxlasso {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sel = sub.add_parser("select", help="select genes for a binary outcome", epilog=EPILOG_SELECT,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sel.add_argument("expression", help="expression matrix (tsv/csv[.gz], parquet, h5ad, npz)")
    sel.add_argument("--samples", help="sample sheet (tsv/csv); optional for h5ad/npz, whose obs is used")
    sel.add_argument("--outcome", required=True, help="column of the sample sheet holding the outcome")
    sel.add_argument("--case", help="outcome level treated as the case (default: the second level in sorted order)")
    sel.add_argument("--out", required=True, help="output directory")
    sel.add_argument("--id-column", help="sample-ID column of the sheet (default: auto-detected)")
    sel.add_argument("--samples-in-rows", action="store_true", default=None,
                     help="the matrix has samples in rows (default: auto-detected)")
    sel.add_argument("--allow-missing", action="store_true",
                     help="drop samples missing from the matrix or the sheet instead of failing")
    _add_method_options(sel, SelectOptions())
    _add_output_options(sel)

    demo = sub.add_parser("demo", help="run the whole workflow on the built-in simulated study",
                          epilog=EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", required=True, help="output directory")
    _add(demo, DemoOptions, "null", None, flag_only=True)
    _add(demo, DemoOptions, "genes", DemoOptions(), metavar="N")
    _add_method_options(demo, SelectOptions())
    _add_output_options(demo)

    scr = sub.add_parser("screen", help="screen many datasets listed in a manifest", epilog=EPILOG_SCREEN,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    scr.add_argument("manifest", help="TSV with columns name, expression, samples, outcome, case (+ overrides)")
    scr.add_argument("--out", required=True, help="output directory (one folder per dataset + screen.tsv)")
    scr.add_argument("--resume", action="store_true", help="skip datasets whose folder holds a result of the same options and input content")
    screen_defaults = ScreenOptions()
    _add(scr, ScreenOptions, "mode", screen_defaults, metavar="{" + ",".join(SCREEN_MODES) + "}")
    _add(scr, ScreenOptions, "host_devices", screen_defaults, metavar="N")
    _add(scr, ScreenOptions, "dask", screen_defaults, metavar="ADDRESS")
    _add(scr, ScreenOptions, "max_memory", screen_defaults, metavar="SIZE")
    _add_method_options(scr, screen_defaults.select)
    _add_output_options(scr)
    return parser


def options_from_args(args: argparse.Namespace) -> SelectOptions | ScreenOptions:
    """The validated options of a parsed command line (errors name the ``--flag``)."""
    cls = ScreenOptions if args.command == "screen" else SelectOptions
    given = {k: getattr(args, k) for k in cls.keys() if getattr(args, k, None) is not None}
    return cls.from_mapping(given, source=CLI)


# --- output writers --------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection")."""


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _tsv(frame: pd.DataFrame, *, raw_names: bool = False) -> str:
    """A TSV table; text cells that a spreadsheet would run as formulas get a leading ``'``
    unless ``raw_names`` (numeric columns are never touched)."""
    if not raw_names:
        text_cols = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
                     or isinstance(frame[c].dtype, pd.CategoricalDtype)]
        if text_cols:
            frame = frame.copy()
            for c in text_cols:
                frame[c] = frame[c].astype(object).map(_neutralise)
    return frame.to_csv(sep="\t", index=False, lineterminator="\n", float_format="%.10g")



def _gzip_bytes(text: str) -> bytes:
    buf = _io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as fh:  # mtime=0: reproducible
        fh.write(text.encode())
    return buf.getvalue()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def build_summary(report, *, inputs: dict, argv: list[str], classes_info: dict) -> dict:
    """The versioned ``summary.json`` (schema in the README)."""
    import jax

    cv = report.cv
    prob = {}
    if report.stability is not None:
        st = report.stability
        prob = dict(zip(st.feature_names, st.max_probability))
    selected = [{"feature": f, "coefficient": float(c), "selection_probability": prob.get(f)}
                for f, c in report.coefficients.items()]
    methods: dict[str, Any] = {}
    if report.stability is not None:
        st = report.stability
        methods["stability"] = {"n_resamples": st.n_resamples, "cutoff": st.cutoff, "q": st.q,
                                "pfer_bound": st.pfer_bound, "selected": list(st.selected)}
    if report.univariate is not None:
        uv = report.univariate.to_frame()
        methods["univariate"] = {"method": getattr(report.univariate, "method", "welch"),
                                 "n_q_below_0.05": int((uv["q_value"] < 0.05).sum()),
                                 "top": uv.nsmallest(20, "rank")["feature"].tolist()}
    if report.forest is not None:
        fr = report.forest.to_frame()
        methods["random_forest"] = {"oob_score": getattr(report.forest, "oob_score", None),
                                    "top": fr.nsmallest(20, "rank")["feature"].tolist()}
    if report.boruta is not None:
        br = report.boruta.to_frame()
        methods["boruta"] = {"confirmed": br.loc[br["decision"] == "confirmed", "feature"].tolist(),
                             "tentative": br.loc[br["decision"] == "tentative", "feature"].tolist()}
    if report.rank_then_lasso is not None:
        r = report.rank_then_lasso
        methods["rank_then_lasso"] = {"ranker": r.ranker, "top_k": r.top_k, "leaky_cv": r.leaky_cv,
                                      "honest_cv": r.honest_cv, "intercept_only_cv": r.null_cv,
                                      "leaky_selected": list(r.leaky_selected)}
    perm = report.diagnosis.permutation
    best, se, null = report.cv_error
    auc_min = report.auc_at(cv.index_min)
    auc_rule = report.auc_at(cv.index_1se if report.rule == "lambda_1se" else cv.index_min)
    signal_test = {
        "signal_detected": report.signal_detected, "alpha": report.alpha,
        "test": "label permutation of the whole cross-validated lasso; signal detected when p <= alpha",
        "permutation_p": report.permutation_p, "n_permutations": report.n_permutations,
        "p_resolution": report.p_resolution, "test_repeats": None if perm is None else perm.n_repeats,
        "measure": cv.measure, "cv_at_lambda_min": best, "cv_se_at_lambda_min": se, "cv_intercept_only": null,
        "cv_gain_beyond_1se": bool((null - best if cv.measure not in ("auc", "auc_pooled") else best - null) > se),
    }
    extra = {}
    planted = inputs.get("planted_de_genes")
    if planted is not None:
        extra["demo_recovery"] = planted_recovery(report, planted)
    return _jsonable({
        "schema": SUMMARY_SCHEMA,
        "jaxlasso_version": __version__,
        "command_line": argv,
        "seed": report.seed,
        "input": inputs,
        "classes": classes_info,
        "preprocessing": {"steps": list(report.preprocess.steps), "log_applied": report.preprocess.log_applied,
                          "cpm_applied": report.preprocess.cpm_applied,
                          "n_constant_dropped": report.preprocess.n_constant_dropped,
                          "n_features_used": int(report.X.shape[1])},
        "cv": {"measure": cv.measure, "nfolds": cv.nfolds, "n_repeats": cv.n_repeats, "grouped": cv.grouped,
               "lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se, "index_min": cv.index_min,
               "index_1se": cv.index_1se, "cv_at_lambda_min": cv.cv_mean[cv.index_min],
               "cv_sd_at_lambda_min": cv.cv_sd[cv.index_min], "cv_intercept_only": cv.cv_mean[0],
               "n_lambdas": len(cv.lambdas),
               "auc_pooled_at_lambda_min": None if auc_min is None else auc_min[0],
               "auc_pooled_se_at_lambda_min": None if auc_min is None else auc_min[1],
               "auc_pooled_at_rule": None if auc_rule is None else auc_rule[0],
               "auc_pooled_se_at_rule": None if auc_rule is None else auc_rule[1]},
        "rule": report.rule.replace("_", "."),
        "lambda": report.lambda_,
        "verdict": report.verdict,
        "critical_findings": [f.code for f in report.diagnosis.findings if f.severity == "critical"
                              and f.code != "NO_SIGNAL"],
        "signal_detected": report.signal_detected,
        "permutation_p": report.permutation_p,
        "signal_test": signal_test,
        "gene_list": report.gene_list_description,
        "selected": selected,
        "lambda_min_exploratory": [{"feature": f, "coefficient": float(c)}
                                   for f, c in report.lambda_min_coefficients.items()]
        if report.rule != "lambda_min" else [],
        **extra,
        "diagnosis": [f.as_dict() for f in report.diagnosis.findings],
        "methods": methods,
        "versions": {"jaxlasso": __version__, "jax": jax.__version__, "numpy": np.__version__,
                     "pandas": pd.__version__, "python": platform.python_version()},
        "timings": {k: v for k, v in report.timings.items() if isinstance(v, float)},
    })


def planted_recovery(report, planted) -> dict:
    """How many of a simulation's planted genes each list holds (the demo knows the truth)."""
    truth = set(planted)

    def count(genes) -> dict:
        genes = list(genes)
        return {"genes": len(genes), "planted": sum(g in truth for g in genes)}

    out = {"n_planted": len(truth), f"lasso_{report.rule}": count(report.selected),
           "lasso_lambda_min": count(report.lambda_min_coefficients.index)}
    if report.stability is not None:
        out["stability_selected"] = count(report.stability.selected)
    if report.univariate is not None:
        out["univariate_top20"] = count(report.univariate.to_frame().nsmallest(20, "rank")["feature"])
    if report.boruta is not None:
        br = report.boruta.to_frame()
        out["boruta_confirmed"] = count(br.loc[br["decision"] == "confirmed", "feature"])
    if report.forest is not None:
        out["random_forest_top20"] = count(report.forest.to_frame().nsmallest(20, "rank")["feature"])
    return out


_RECOVERY_LABELS = {"lasso_lambda_1se": "lasso at lambda.1se", "lasso_lambda_min": "lasso at lambda.min",
                    "stability_selected": "stability selection", "univariate_top20": "univariate top 20",
                    "boruta_confirmed": "Boruta confirmed", "random_forest_top20": "random forest top 20"}


def recovery_line(recovery: dict) -> str:
    """One line: "lasso at lambda.min: 5 planted of 7 genes; ..." for each list."""
    parts = [f"{_RECOVERY_LABELS.get(k, k)}: {v['planted']} planted of {v['genes']}"
             for k, v in recovery.items() if isinstance(v, dict)]
    return (f"planted genes recovered ({recovery['n_planted']} planted): " + "; ".join(parts)
            if recovery["n_planted"] else "nothing was planted (--null): " + "; ".join(parts))


def gene_list_line(report) -> str:
    """The CLI's last line: the lasso's genes with what was (and was not) tested."""
    k = len(report.selected)
    genes = ": " + ", ".join(report.selected[:20]) + (" ..." if k > 20 else "") if k else ""
    count = "no gene" if k == 0 else f"{k} gene{'s' if k != 1 else ''}"
    return f"{count} {report.gene_list_description}{genes}"


def display_summary(summary: dict) -> dict[str, str]:
    """The few run facts shown at the top of report.html (the full record is summary.json)."""
    inp, cls, cv = summary["input"], summary["classes"], summary["cv"]
    shown = {
        "input": f"{inp.get('expression')} ({inp.get('n_samples')} samples x {inp.get('n_features')} features)",
        "classes": f"case = {cls['case']} (n={cls['n_case']}), control = {cls['control']} "
                   f"(n={cls['n_control']}); {cls['case_reason']}",
        "cross-validation": f"{cv['nfolds']} folds x {cv['n_repeats']} repeat(s), measure {cv['measure']}"
                            f"{'' if cv['grouped'] else ' (ungrouped SE)'}; lambda.min = {cv['lambda_min']:.4g},"
                            f" lambda.1se = {cv['lambda_1se']:.4g}",
        "command": " ".join(summary["command_line"]),
        "seed": str(summary["seed"]),
    }
    if "demo_recovery" in summary:
        shown["simulation truth"] = recovery_line(summary["demo_recovery"])
    missing = inp.get("missing_in_sheet", []) + inp.get("missing_in_matrix", [])
    if missing:
        shown["samples left out"] = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
    return shown


def write_outputs(out_dir: Path, report, summary: dict, *, plots: bool, raw_names: bool = False) -> list[str]:
    """Write every output file of a selection run into ``out_dir`` (a staging folder of
    :mod:`jaxlasso.output`; the publish moves them into ``--out``). ``raw_names``: see :func:`_tsv`."""
    written = []

    def tsv(frame: pd.DataFrame) -> str:
        return _tsv(frame, raw_names=raw_names)

    def put(name: str, data: str | bytes) -> None:
        path = out_dir / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        written.append(name)

    table = report.table()
    if "lasso_selected" in table:
        table = table.rename(columns={"lasso_selected": "selected_by_lasso"})
    put("selected.tsv", tsv(table))
    put("cv.tsv", tsv(report.cv.to_frame()))
    put("path.tsv.gz", _gzip_bytes(tsv(report.cv.path.coef_frame())))
    put("diagnosis.tsv", tsv(report.diagnosis.to_frame()))
    if report.stability is not None:
        put("stability.tsv", tsv(report.stability.to_frame()))
    if report.univariate is not None:
        put("univariate.tsv", tsv(report.univariate.to_frame()))
    if report.forest is not None:
        put("random_forest.tsv", tsv(report.forest.to_frame()))
    if report.boruta is not None:
        put("boruta.tsv", tsv(report.boruta.to_frame()))
    if report.rank_then_lasso is not None:
        put("rank_then_lasso.tsv", tsv(report.rank_then_lasso.to_frame()))
    pngs: dict[str, bytes] = {}
    if plots:
        from .plots import all_figures, save_figure

        for name, fig in all_figures(report).items():
            paths = save_figure(fig, out_dir, name)
            written.extend(p.name for p in paths)
            png = next(p for p in paths if p.suffix == ".png")
            pngs[name] = png.read_bytes()
    from .report import render_html

    put("report.html", render_html(report, figures=pngs, summary=display_summary(summary)))
    put("summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return written


# --- commands --------------------------------------------------------------------------------
def _notifier(args):
    """Where one-line notices of the output protocol go (stale lock taken over, waiting,
    interrupted publish completed): stderr, unless --quiet."""
    from .output import _stderr_warning

    return None if getattr(args, "quiet", False) else _stderr_warning


def _run_record(args, argv: list[str], inputs: dict) -> dict:
    """What the run manifest records besides the file list: command, options, input fingerprints."""
    raw = {k: v for k, v in vars(args).items() if k not in ("command", "options", "demo")}
    parsed = {**args.options.to_mapping(), **(args.demo.to_mapping() if getattr(args, "demo", None) else {})}
    options = {**raw, **parsed}
    return _jsonable({"jaxlasso_version": __version__, "command": args.command, "command_line": argv,
                      "options": {k: (str(v) if isinstance(v, Path) else v.value if isinstance(v, Rule) else v)
                                  for k, v in sorted(options.items())},
                      "inputs": inputs})


def _run_selection(X: pd.DataFrame, y: pd.Series, args, *, inputs: dict, classes_info: dict,
                   argv: list[str], progress) -> int:
    from .output import file_fingerprint, open_output
    from .workflow import select_features

    out = Path(args.out)
    with open_output(out, wait=getattr(args, "wait", False), notify=_notifier(args)) as folder:
        stored = (folder.previous() or {}).get("inputs") or {}
        fingerprints = {role: file_fingerprint(path, stored.get(role))
                        for role, path in (("expression", getattr(args, "expression", None)),
                                           ("samples", getattr(args, "samples", None))) if path}
        with folder.stage(record=_run_record(args, argv, fingerprints)) as tmp:
            report = select_features(X, y, **args.options.keywords(), progress=progress)
            progress("writing outputs")
            summary = build_summary(report, inputs=inputs, argv=argv, classes_info=classes_info)
            write_outputs(Path(tmp), report, summary, plots=not args.no_plots,
                          raw_names=getattr(args, "raw_names", False))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        print(report.verdict)
        print(f"outputs: {out}/ (report.html, summary.json, selected.tsv, ...)")
        print(gene_list_line(report))
    return EXIT_OK


def cmd_select(args, argv, progress) -> int:
    from .io import align_samples, read_expression, read_sample_sheet

    progress("reading inputs")
    sheet = read_sample_sheet(args.samples, id_column=args.id_column) if args.samples else None
    expr = read_expression(args.expression, sample_ids=None if sheet is None else list(sheet.index),
                           samples_in_rows=args.samples_in_rows)
    aligned = align_samples(expr, sheet, outcome=args.outcome, case=args.case,
                            allow_missing=args.allow_missing)
    # A Categorical with categories (control, case) makes the case explicit whatever the level
    # names sort to, and keeps the names in every table and plot.
    y = pd.Series(pd.Categorical(aligned.y, categories=[aligned.control, aligned.case]),
                  index=aligned.y.index, name=args.outcome)
    inputs = {"expression": str(args.expression), "samples": args.samples, "outcome": args.outcome,
              "n_samples": int(aligned.X.shape[0]), "n_features": int(aligned.X.shape[1]),
              "orientation": expr.orientation, "notes": list(expr.notes),
              "missing_in_sheet": list(aligned.missing_in_sheet),
              "missing_in_matrix": list(aligned.missing_in_matrix),
              "dropped_missing_outcome": list(aligned.dropped_missing_outcome)}
    classes_info = {"case": aligned.case, "control": aligned.control, "case_reason": aligned.case_reason,
                    "n_case": int((y == aligned.case).sum()), "n_control": int((y == aligned.control).sum())}
    return _run_selection(aligned.X, y, args, inputs=inputs, classes_info=classes_info, argv=argv,
                          progress=progress)


def cmd_demo(args, argv, progress) -> int:
    from .simulate import simulate_rnaseq

    demo: DemoOptions = args.demo
    progress("simulating the study")
    sim = simulate_rnaseq(n_genes=demo.genes, seed=args.options.seed, null=demo.null)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index, name="group")
    inputs = {"expression": "simulated (jaxlasso.simulate.simulate_rnaseq)", "null": demo.null,
              "n_samples": int(sim.counts.shape[0]), "n_features": int(sim.counts.shape[1]),
              "n_true_de_genes": len(sim.de_genes), "planted_de_genes": list(sim.de_genes)}
    classes_info = {"case": "case", "control": "control", "case_reason": "simulated",
                    "n_case": int((y == "case").sum()), "n_control": int((y == "control").sum())}
    code = _run_selection(sim.counts, y, args, inputs=inputs, classes_info=classes_info, argv=argv,
                          progress=progress)
    if code == EXIT_OK and not args.quiet and not args.json:
        summary = json.loads((Path(args.out) / "summary.json").read_text())
        print(f"simulation truth: {recovery_line(summary['demo_recovery'])}")
    return code


# --- screen ----------------------------------------------------------------------------------
MANIFEST_REQUIRED = ("name", "expression", "outcome")
MANIFEST_IO = ("samples", "case", "id_column", "samples_in_rows", "allow_missing")
_SAFE_NAME = __import__("re").compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_IO_FLAGS = {col: Opt(col, optional_boolean, "true or false (also yes/no, 1/0; empty = auto)", column=col)
             for col in ("samples_in_rows", "allow_missing")}
"""Yes/no columns of a manifest row that describe its files (the command line's flags)."""


def read_manifest(path: str, *, batch: ScreenOptions | None = None) -> tuple[list[dict], Path]:
    """Rows of a screen manifest with validated names and options (paths stay relative).

    Each row's ``options`` is the :class:`SelectOptions` of its dataset: ``batch``'s (the
    command line's) with the row's option columns applied; a bad cell is named by file, line and
    column."""
    from .options import DATASET_KEYS, MANIFEST_COLUMNS, Source

    batch = ScreenOptions() if batch is None else batch
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"manifest {path!r} does not exist or is not a file; give the path of a TSV "
                         f"with columns {', '.join(MANIFEST_REQUIRED)} (got manifest={path!r})")
    try:
        frame = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except pd.errors.EmptyDataError:
        raise ValueError(f"manifest {p.name!r} is empty; it needs a header line with columns "
                         f"{', '.join(MANIFEST_REQUIRED)} (got an empty file)") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in MANIFEST_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest {p.name!r} lacks column(s) {missing}; it has {list(frame.columns)} "
                         f"(got columns={list(frame.columns)})")
    unknown = [c for c in frame.columns if c not in (*MANIFEST_REQUIRED, *MANIFEST_IO, *MANIFEST_COLUMNS)]
    if unknown:
        raise ValueError(f"manifest {p.name!r} has unknown column(s) {unknown}; option columns are "
                         f"{', '.join(MANIFEST_COLUMNS)} and {', '.join(MANIFEST_IO)} "
                         f"(got columns={list(frame.columns)})")
    if frame.empty:
        raise ValueError(f"manifest {p.name!r} lists no dataset (got a header only)")
    column_of = dict(zip(DATASET_KEYS, MANIFEST_COLUMNS))
    rows = []
    seen = set()
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        name = rec["name"].strip()
        if not _SAFE_NAME.match(name) or name in (".", ".."):
            raise ValueError(
                f"manifest {p.name!r} line {i}: dataset name {name!r} is not a safe folder name; use "
                f"letters, digits, '.', '_' and '-' only (no '/', no leading '.') "
                f"(got name={name!r})")
        if name in seen:
            raise ValueError(f"manifest {p.name!r} line {i}: duplicated dataset name (got name={name!r})")
        seen.add(name)
        source = Source.manifest(p.name, i)
        cells = {key: rec[col].strip() for key, col in column_of.items() if rec.get(col, "").strip() != ""}
        options = batch.dataset(cells, source=source)

        io_flags = {col: _IO_FLAGS[col].validate(rec.get(col, "").strip() or None, source) for col in _IO_FLAGS}
        chosen = options.to_mapping()
        rows.append({"line": i, "name": name, "expression": rec["expression"].strip(),
                     "samples": rec.get("samples", "").strip() or None, "outcome": rec["outcome"].strip(),
                     "case": rec.get("case", "").strip() or None, "id_column": rec.get("id_column", "").strip() or None,
                     "samples_in_rows": io_flags["samples_in_rows"],
                     "allow_missing": bool(io_flags["allow_missing"]),
                     "overrides": {k: chosen[k] for k in cells},
                     "options": options})
    return rows, p.parent


def _load_dataset(row: dict, base: Path):
    """(X, y, inputs, classes_info) of one manifest row; files are resolved against ``base``."""
    from .io import align_samples, read_expression, read_sample_sheet

    def resolve(rel: str) -> Path:
        q = Path(rel)
        return q if q.is_absolute() else base / q

    sheet = read_sample_sheet(resolve(row["samples"]), id_column=row["id_column"]) if row["samples"] else None
    expr = read_expression(resolve(row["expression"]), sample_ids=None if sheet is None else list(sheet.index),
                           samples_in_rows=row["samples_in_rows"])
    aligned = align_samples(expr, sheet, outcome=row["outcome"], case=row["case"],
                            allow_missing=row["allow_missing"])
    y = pd.Series(pd.Categorical(aligned.y, categories=[aligned.control, aligned.case]), index=aligned.y.index,
                  name=row["outcome"])
    inputs = {"expression": row["expression"], "samples": row["samples"], "outcome": row["outcome"],
              "n_samples": int(aligned.X.shape[0]), "n_features": int(aligned.X.shape[1]),
              "orientation": expr.orientation, "notes": list(expr.notes),
              "missing_in_sheet": list(aligned.missing_in_sheet),
              "missing_in_matrix": list(aligned.missing_in_matrix),
              "dropped_missing_outcome": list(aligned.dropped_missing_outcome)}
    classes = {"case": aligned.case, "control": aligned.control, "case_reason": aligned.case_reason,
               "n_case": int((y == aligned.case).sum()), "n_control": int((y == aligned.control).sum())}
    return aligned.X, y, inputs, classes


def cmd_screen(args, argv, progress) -> int:
    from .output import open_output

    opts: ScreenOptions = args.options
    rows, base = read_manifest(args.manifest, batch=opts)
    clash = [r["name"] for r in rows if r["name"] in SCREEN_FILES]
    if clash:
        raise ValueError(f"manifest {Path(args.manifest).name!r}: dataset name {clash[0]!r} is the name of a file "
                         f"the screen writes itself; rename the dataset (got name={clash[0]!r})")
    with open_output(Path(args.out), wait=args.wait, notify=_notifier(args)) as folder:
        return _screen_into(folder, rows, base, opts, args, argv, progress)


SCREEN_FILES = ("screen.tsv", "summary.json")
"""The files a screen owns at the top of its --out (beside one folder per dataset)."""


def _screen_into(folder, rows: list[dict], base: Path, opts: ScreenOptions, args, argv: list[str],
                 progress) -> int:
    """The screen proper, with ``folder`` (the locked --out) recovered and ready.

    Each dataset folder is published on its own as soon as the dataset finishes; ``screen.tsv`` is
    rewritten (one atomic file) as datasets finish; at the end the screen publishes ``screen.tsv``,
    ``summary.json`` and its run manifest, which lists the dataset folders it owns, so the folders
    of datasets no longer in the manifest (or failing now) are removed.
    """
    from .output import file_fingerprint, same_content, write_text_atomic
    from .screen import SCREEN_COLUMNS, ScreenDataset, _row_error, config_hash, screen

    out = folder.path
    raw_names = args.raw_names

    def resolve(rel: str) -> Path:
        q = Path(rel)
        return q if q.is_absolute() else base / q

    items, skip, previous, meta = [], set(), {}, {}
    errors: dict[str, str] = {}
    for row in rows:
        key = {**row["options"].to_mapping(), "expression": row["expression"],
               "samples": row["samples"], "outcome": row["outcome"], "case": row["case"],
               "id_column": row["id_column"], "samples_in_rows": row["samples_in_rows"],
               "allow_missing": row["allow_missing"]}
        chash = config_hash(key)
        name = row["name"]
        stored_run = folder.previous(name) if (out / name).is_dir() else None
        stored = (stored_run or {}).get("inputs") or {}
        # Fingerprints are taken before the files are read: a change during the read shows next time.
        fingerprints = {"expression": file_fingerprint(resolve(row["expression"]), stored.get("expression"))}
        if row["samples"]:
            fingerprints["samples"] = file_fingerprint(resolve(row["samples"]), stored.get("samples"))
        if (args.resume and stored_run is not None and stored_run.get("config_hash") == chash
                and set(stored) == set(fingerprints) and all(fp is not None for fp in fingerprints.values())
                and all(same_content(fp, stored.get(r)) for r, fp in fingerprints.items())):
            try:
                saved = json.loads((out / name / "summary.json").read_text())
                previous[name] = saved["screen"]["row"]
                skip.add(name)
                items.append(ScreenDataset(name, None, None))
                continue
            except (OSError, ValueError, KeyError, TypeError):
                pass  # an unreadable summary: compute the dataset again
        try:
            X, y, inputs, classes = _load_dataset(row, base)
        except (ValueError, TypeError, OSError, KeyError) as exc:
            errors[name] = str(exc).strip().splitlines()[0]
            continue
        record = {"jaxlasso_version": __version__, "command": "screen", "dataset": name, "command_line": argv,
                  "options": _jsonable({k: (v.value if isinstance(v, Rule) else v) for k, v in key.items()}),
                  "config_hash": chash, "inputs": fingerprints}
        meta[name] = (inputs, classes, chash, record)
        items.append(ScreenDataset(name, X, y, row["overrides"]))

    table_rows: dict[str, dict] = {}
    published: set[str] = set()

    def table_frame() -> pd.DataFrame:
        recs = [table_rows[r["name"]] for r in rows if r["name"] in table_rows]
        return pd.DataFrame(recs, columns=SCREEN_COLUMNS)

    def write_table():
        write_text_atomic(out / "screen.tsv", _tsv(table_frame(), raw_names=raw_names))

    for name, message in errors.items():
        table_rows[name] = _row_error(name, message)
    for name, saved_row in previous.items():
        table_rows[name] = saved_row

    def on_result(name, report, row):
        inputs, classes, chash, record = meta[name]
        summary = build_summary(report, inputs=inputs, argv=argv, classes_info=classes)
        clean_row = {k: row.get(k) for k in SCREEN_COLUMNS}
        summary["screen"] = {"config_hash": chash, "row": _jsonable(clean_row)}
        with folder.stage(name, record=record) as tmp:
            write_outputs(Path(tmp), report, summary, plots=not args.no_plots, raw_names=raw_names)
        published.add(name)
        table_rows[name] = clean_row
        write_table()

    def on_error(name, message):
        table_rows[name] = _row_error(name, message)
        write_table()

    total = len(rows)

    def tick(done, _total, name):
        progress(f"[{done + len(errors)}/{total}] {name}")

    t0 = time.perf_counter()
    result = screen([it for it in items if it.name not in skip] + [it for it in items if it.name in skip],
                    options=opts, skip=skip, on_result=on_result, on_error=on_error, progress=tick)
    frame = table_frame()
    failed = frame.loc[frame["status"] == "error", "name"].tolist()
    import jax

    summary = _jsonable({
        "schema": "jaxlasso.screen/1", "jaxlasso_version": __version__, "command_line": argv,
        "manifest": str(args.manifest), "n_datasets": total,
        "n_ok": int((frame["status"] == "ok").sum()), "n_error": len(failed), "failed": failed,
        "resumed": sorted(skip), "stats": result.stats,
        "versions": {"jaxlasso": __version__, "jax": jax.__version__, "devices": len(jax.devices())},
        "seconds": time.perf_counter() - t0,
    })
    record = {"jaxlasso_version": __version__, "command": "screen", "command_line": argv,
              "options": _jsonable({k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
                                    if k != "command"})}
    with folder.stage(record=record, folders=sorted(published | skip)) as tmp:
        (Path(tmp) / "screen.tsv").write_text(_tsv(frame, raw_names=raw_names), encoding="utf-8")
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        print(f"screened {total} datasets: {summary['n_ok']} ok, {summary['n_error']} failed"
              f"{f', {len(skip)} resumed' if skip else ''}; see {out}/screen.tsv")
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        print(f"error: {len(failed)} of {total} datasets failed: {shown} (their errors are in {out}/screen.tsv)",
              file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


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
    progress = _Progress(enabled=not quiet)
    commands = {"select": cmd_select, "demo": cmd_demo, "screen": cmd_screen}
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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
