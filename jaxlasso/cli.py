"""The ``jaxlasso`` command: from an expression table and a sample sheet to a readable answer.

    jaxlasso demo --out demo-out
    jaxlasso select counts.tsv --samples samples.tsv --outcome group --case tumour --out results
    jaxlasso screen manifest.tsv --out screen-out

Errors exit with status 2 and one line ``error: ...`` on stderr (``--debug`` shows the
traceback). Selecting no gene is a result, not a failure: the exit status is 0 and the verdict
says why. Output directories are written to a temporary sibling and moved into place at the end,
so a failed run leaves the output directory as it was.
"""

from __future__ import annotations

import argparse
import gzip
import io as _io
import json
import logging
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._config import CV, MEASURES

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
optional columns override options per dataset: log, cpm, top_variance, l1_ratio, nfolds,
n_repeats, measure, rule, permutations, stability, seed, id_column, samples_in_rows, allow_missing.

examples:
  jaxlasso screen manifest.tsv --out screen-out
  jaxlasso screen manifest.tsv --out screen-out --resume          # finish an interrupted screen
  jaxlasso screen manifest.tsv --out screen-out --host-devices 2  # shard over 2 CPU devices
  jaxlasso screen manifest.tsv --out screen-out --dask tcp://scheduler:8786"""


class _Progress:
    """Step messages on stderr: only when stderr is a terminal and --quiet is not given."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, step: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {step} ...", file=sys.stderr, flush=True)


def _fraction_or_count(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a count >= 1 (got {text!r})") from None
    if 0 < value <= 1 and "." in text:
        return value
    if value >= 1 and value.is_integer():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a whole count >= 1 (got {text!r})")


def _rule(text: str) -> str:
    key = text.replace(".", "_")
    if key not in ("lambda_1se", "lambda_min"):
        raise argparse.ArgumentTypeError(f"rule must be lambda.1se or lambda.min (got {text!r})")
    return key


def _add_method_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and cross-validation")
    g.add_argument("--l1-ratio", type=float, default=1.0, help="elastic-net mixing, glmnet's alpha (default 1: lasso)")
    g.add_argument("--nfolds", type=int, default=None,
                   help="CV folds (default: 10, or the size of the smaller class when smaller)")
    g.add_argument("--repeats", type=int, default=None,
                   help="repeated CV: average the curves of N fold assignments (default: 10 below 100 samples, else 1)")
    g.add_argument("--measure", choices=MEASURES, default=CV.measure, help="CV measure (glmnet's type.measure)")
    g.add_argument("--rule", type=_rule, default="lambda_1se", help="lambda.1se (default) or lambda.min")
    g.add_argument("--strategy", choices=("auto", "lasso", "full"), default="auto",
                   help="auto: add stability/univariate rankings when the lasso selects nothing or looks shaky")
    g = p.add_argument_group("preprocessing")
    g.add_argument("--log", choices=("auto", "yes", "no"), default="auto",
                   help="log2(x+1): auto applies it when the data look like raw counts")
    g.add_argument("--cpm", action="store_true", help="scale samples to counts per million before the log")
    g.add_argument("--top-variance", type=_fraction_or_count, default=None, metavar="FRACTION_OR_COUNT",
                   help="keep the most variable genes (e.g. 0.25 or 2000); unsupervised, so no leakage")
    g = p.add_argument_group("rankings and tests")
    g.add_argument("--stability", type=int, default=None, metavar="N",
                   help="stability-selection subsamples (default 100 when it runs; 0 = off)")
    g.add_argument("--rf", action="store_true", help="random-forest permutation importance")
    g.add_argument("--boruta", action="store_true", help="Boruta all-relevant selection")
    g.add_argument("--permutations", type=int, default=99, metavar="N",
                   help="label permutations of the test that decides 'signal detected' (p >= 1/(N+1); 0 = not tested)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="seed of every random step (folds, permutations, forests)")
    g.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    g.add_argument("--quiet", action="store_true", help="no progress messages")
    g.add_argument("--json", action="store_true", help="print summary.json to stdout")
    g.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG plots and keep the HTML report text-only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    _add_method_options(sel)

    demo = sub.add_parser("demo", help="run the whole workflow on the built-in simulated study",
                          epilog=EPILOG_DEMO, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", required=True, help="output directory")
    demo.add_argument("--null", action="store_true", help="simulate a study with no signal at all")
    demo.add_argument("--genes", type=int, default=16293, help="number of simulated genes (default 16,293)")
    _add_method_options(demo)

    scr = sub.add_parser("screen", help="screen many datasets listed in a manifest", epilog=EPILOG_SCREEN,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    scr.add_argument("manifest", help="TSV with columns name, expression, samples, outcome, case (+ overrides)")
    scr.add_argument("--out", required=True, help="output directory (one folder per dataset + screen.tsv)")
    scr.add_argument("--resume", action="store_true", help="skip datasets whose folder is complete")
    scr.add_argument("--mode", choices=("vmap", "loop"), default=None,
                     help="vmap: stack same-shape datasets into one call (default with several devices or --dask); "
                          "loop: one dataset at a time (default on one device, measured faster on CPU and GPU)")
    scr.add_argument("--host-devices", type=int, default=None, metavar="N",
                     help="split the CPU into N XLA devices and shard datasets over them")
    scr.add_argument("--dask", default=None, metavar="ADDRESS",
                     help="run buckets on a Dask cluster (scheduler address, or 'local')")
    scr.add_argument("--max-memory", default=None, metavar="SIZE",
                     help="memory budget per bucket, e.g. 8G or 500M; larger buckets are split")
    _add_method_options(scr)
    scr.set_defaults(permutations=0, strategy="lasso", repeats=CV.n_repeats)
    return parser


# --- output writers --------------------------------------------------------------------------
def _tsv(frame: pd.DataFrame) -> str:
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


def write_outputs(out_dir: Path, report, summary: dict, *, plots: bool) -> list[str]:
    """Write every output file of a selection run into ``out_dir`` (an atomic temp dir)."""
    written = []

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
    put("selected.tsv", _tsv(table))
    put("cv.tsv", _tsv(report.cv.to_frame()))
    put("path.tsv.gz", _gzip_bytes(_tsv(report.cv.path.coef_frame())))
    put("diagnosis.tsv", _tsv(report.diagnosis.to_frame()))
    if report.stability is not None:
        put("stability.tsv", _tsv(report.stability.to_frame()))
    if report.univariate is not None:
        put("univariate.tsv", _tsv(report.univariate.to_frame()))
    if report.forest is not None:
        put("random_forest.tsv", _tsv(report.forest.to_frame()))
    if report.boruta is not None:
        put("boruta.tsv", _tsv(report.boruta.to_frame()))
    if report.rank_then_lasso is not None:
        put("rank_then_lasso.tsv", _tsv(report.rank_then_lasso.to_frame()))
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
def _run_selection(X: pd.DataFrame, y: pd.Series, args, *, inputs: dict, classes_info: dict,
                   argv: list[str], progress) -> int:
    from .io import atomic_output_dir
    from .workflow import select_features

    out = Path(args.out)
    with atomic_output_dir(out) as tmp:
        report = select_features(
            X, y, strategy=args.strategy, rule=args.rule, log=args.log, cpm=args.cpm,
            top_variance=args.top_variance, l1_ratio=args.l1_ratio, nfolds=args.nfolds,
            n_repeats=args.repeats, measure=args.measure, n_permutations=args.permutations,
            stability=args.stability, forest=True if args.rf else None, boruta=args.boruta,
            seed=args.seed, dtype=np.float32 if args.dtype == "float32" else np.float64,
            progress=progress)
        progress("writing outputs")
        summary = build_summary(report, inputs=inputs, argv=argv, classes_info=classes_info)
        write_outputs(Path(tmp), report, summary, plots=not args.no_plots)
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

    progress("simulating the study")
    sim = simulate_rnaseq(n_genes=args.genes, seed=args.seed, null=args.null)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index, name="group")
    inputs = {"expression": "simulated (jaxlasso.simulate.simulate_rnaseq)", "null": bool(args.null),
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
MANIFEST_OPTIONS = {
    "log": str, "cpm": "bool", "top_variance": "fraction_or_count", "l1_ratio": float, "nfolds": int,
    "n_repeats": int, "measure": str, "rule": "rule", "permutations": int, "stability": int, "seed": int,
}
MANIFEST_IO = ("samples", "case", "id_column", "samples_in_rows", "allow_missing")
_SAFE_NAME = __import__("re").compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _parse_size(text: str | None) -> float | None:
    if text is None:
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    t = text.strip().lower().rstrip("b")
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise ValueError(f"--max-memory must be a size such as 8G, 500M or 1e9 (got {text!r})") from None


def _cell_bool(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y")


def read_manifest(path: str) -> tuple[list[dict], Path]:
    """Rows of a screen manifest with validated names and options (paths stay relative)."""
    from .io import InputError, read_sample_sheet  # noqa: F401  (InputError is raised by callers)

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
    unknown = [c for c in frame.columns if c not in (*MANIFEST_REQUIRED, *MANIFEST_IO, *MANIFEST_OPTIONS)]
    if unknown:
        raise ValueError(f"manifest {p.name!r} has unknown column(s) {unknown}; option columns are "
                         f"{sorted(MANIFEST_OPTIONS)} (got columns={list(frame.columns)})")
    if frame.empty:
        raise ValueError(f"manifest {p.name!r} lists no dataset (got a header only)")
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
        opts = {}
        for col, kind in MANIFEST_OPTIONS.items():
            raw = str(rec.get(col, "")).strip()
            if raw == "":
                continue
            try:
                if kind == "bool":
                    value = _cell_bool(raw)
                elif kind == "fraction_or_count":
                    value = _fraction_or_count(raw)
                elif kind == "rule":
                    value = _rule(raw)
                else:
                    value = kind(raw)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise ValueError(f"manifest {p.name!r} line {i}, column {col!r}: {exc} (got {col}={raw!r})") from None
            opts["n_permutations" if col == "permutations" else col] = value
        rows.append({"line": i, "name": name, "expression": rec["expression"].strip(),
                     "samples": rec.get("samples", "").strip() or None, "outcome": rec["outcome"].strip(),
                     "case": rec.get("case", "").strip() or None, "id_column": rec.get("id_column", "").strip() or None,
                     "samples_in_rows": (_cell_bool(rec["samples_in_rows"]) if str(rec.get("samples_in_rows", "")).strip()
                                         else None),
                     "allow_missing": _cell_bool(rec.get("allow_missing", "")), "options": opts})
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
    from .io import atomic_output_dir, write_text_atomic
    from .screen import SCREEN_COLUMNS, ScreenDataset, config_hash, screen

    if args.host_devices:
        flag = f"--xla_force_host_platform_device_count={int(args.host_devices)}"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    max_memory = _parse_size(args.max_memory)
    rows, base = read_manifest(args.manifest)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory; choose another path (got out={str(out)!r})")
    out.mkdir(parents=True, exist_ok=True)
    defaults = {"log": args.log, "cpm": args.cpm, "top_variance": args.top_variance, "l1_ratio": args.l1_ratio,
                "nfolds": args.nfolds, "n_repeats": args.repeats, "measure": args.measure, "rule": args.rule,
                "n_permutations": args.permutations, "stability": args.stability or 0, "seed": args.seed}
    items, skip, previous, meta = [], set(), {}, {}
    errors: dict[str, str] = {}
    for row in rows:
        opts = {**defaults, **row["options"]}
        chash = config_hash({**opts, "strategy": args.strategy, "dtype": args.dtype,
                             "expression": row["expression"], "samples": row["samples"],
                             "outcome": row["outcome"], "case": row["case"]})
        done_summary = out / row["name"] / "summary.json"
        if args.resume and done_summary.is_file():
            try:
                saved = json.loads(done_summary.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("screen", {}).get("config_hash") == chash:
                skip.add(row["name"])
                previous[row["name"]] = saved["screen"]["row"]
                items.append(ScreenDataset(row["name"], None, None))
                continue
        try:
            X, y, inputs, classes = _load_dataset(row, base)
        except (ValueError, TypeError, OSError, KeyError) as exc:
            errors[row["name"]] = str(exc).strip().splitlines()[0]
            continue
        meta[row["name"]] = (inputs, classes, chash)
        items.append(ScreenDataset(row["name"], X, y, row["options"]))

    table_rows: dict[str, dict] = {}

    def write_table():
        order = [r["name"] for r in rows]
        recs = [table_rows[n] for n in order if n in table_rows]
        frame = pd.DataFrame(recs, columns=SCREEN_COLUMNS)
        write_text_atomic(out / "screen.tsv", _tsv(frame))

    for name, message in errors.items():
        from .screen import _row_error

        table_rows[name] = _row_error(name, message)
    for name, saved_row in previous.items():
        table_rows[name] = saved_row

    def on_result(name, report, row):
        inputs, classes, chash = meta[name]
        summary = build_summary(report, inputs=inputs, argv=argv, classes_info=classes)
        clean_row = {k: row.get(k) for k in SCREEN_COLUMNS}
        summary["screen"] = {"config_hash": chash, "row": _jsonable(clean_row)}
        with atomic_output_dir(out / name) as tmp:
            write_outputs(Path(tmp), report, summary, plots=not args.no_plots)
        table_rows[name] = clean_row
        write_table()

    def on_error(name, message):
        table_rows[name] = {**dict.fromkeys(SCREEN_COLUMNS), "name": name, "status": "error", "error": message}
        write_table()

    total = len(rows)

    def tick(done, _total, name):
        progress(f"[{done + len(errors)}/{total}] {name}")

    t0 = time.perf_counter()
    result = screen([it for it in items if it.name not in skip] + [it for it in items if it.name in skip],
                    options=defaults, strategy=args.strategy,
                    dtype=np.float32 if args.dtype == "float32" else np.float64, mode=args.mode,
                    dask=args.dask, max_memory=max_memory, skip=skip, on_result=on_result, on_error=on_error,
                    progress=tick)
    write_table()
    frame = pd.read_csv(out / "screen.tsv", sep="\t")
    import jax

    summary = _jsonable({
        "schema": "jaxlasso.screen/1", "jaxlasso_version": __version__, "command_line": argv,
        "manifest": str(args.manifest), "n_datasets": total,
        "n_ok": int((frame["status"] == "ok").sum()), "n_error": int((frame["status"] == "error").sum()),
        "resumed": sorted(skip), "stats": result.stats,
        "versions": {"jaxlasso": __version__, "jax": jax.__version__, "devices": len(jax.devices())},
        "seconds": time.perf_counter() - t0,
    })
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        print(f"screened {total} datasets: {summary['n_ok']} ok, {summary['n_error']} failed"
              f"{f', {len(skip)} resumed' if skip else ''}; see {out}/screen.tsv")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    quiet = getattr(args, "quiet", False) or getattr(args, "json", False)
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    commands = {"select": cmd_select, "demo": cmd_demo, "screen": cmd_screen}
    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            else:
                warnings.simplefilter("default")
                warnings.formatwarning = lambda m, c, *a, **k: f"warning: {m}\n"
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
