"""The command line's parser, built from the options layer: every run option's flag, help and
shown default come from its declaration in :mod:`jaxlasso.options`; argparse keeps the raw text
and :func:`options_from_args` parses and checks it once."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from .. import __version__
from .._config import MEASURES, SCREEN_MODES
from ..options import CLI, MANIFEST_COLUMNS, DemoOptions, PlanOptions, Rule, ScreenOptions, SelectOptions

EPILOG_SELECT = """examples:
  jaxlasso select counts.tsv.gz --samples samples.tsv --outcome condition --case tumour --out results
  jaxlasso select expr.h5ad --outcome status --out results --rule lambda.min --stability 200 --rf
  jaxlasso select GSE12345_series_matrix.txt.gz --samples pheno.csv --outcome group --out r --json
  jaxlasso select expr.tsv --samples clinical.tsv --outcome age --out r-age          # gaussian
  jaxlasso select expr.tsv --samples clinical.tsv --time os_months --event dead --out r-os   # cox

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
    "allow_missing; a survival row gives time and event columns (its outcome cell may be empty).", width=92))



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
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
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
    from .._config import DTYPES, LOG_MODES, PLAN_MODES, STRATEGIES

    g = p.add_argument_group("model and cross-validation")
    _add(g, SelectOptions, "family", defaults, metavar="{auto,binomial,gaussian,cox}")
    _add(g, SelectOptions, "l1_ratio", defaults, metavar="ALPHA")
    _add(g, SelectOptions, "nfolds", defaults, metavar="K")
    _add(g, SelectOptions, "n_repeats", defaults, metavar="N")
    _add(g, SelectOptions, "measure", defaults, metavar="MEASURE")
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
    _add(g, SelectOptions, "plan", defaults, metavar="{" + ",".join(PLAN_MODES) + "}")
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


def _add_input_options(p: argparse.ArgumentParser, *, outcome_required: bool,
                       outcome_note: str = " (required without --demo)") -> None:
    """The options that say where the data are and how to read them (select and plan)."""
    p.add_argument("--samples", help="sample sheet (tsv/csv); optional for h5ad/npz, whose obs is used")
    p.add_argument("--outcome", required=outcome_required,
                   help="column of the sample sheet holding the outcome"
                        + ("" if outcome_required else outcome_note))
    p.add_argument("--case", help="outcome level treated as the case (default: the second level in sorted order)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--id-column", help="sample-ID column of the sheet (default: auto-detected)")
    p.add_argument("--samples-in-rows", action="store_true", default=None,
                   help="the matrix has samples in rows (default: auto-detected)")
    p.add_argument("--allow-missing", action="store_true",
                   help="drop samples missing from the matrix or the sheet instead of failing")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxlasso",
        description="Find the genes that predict a binary outcome when p >> n: glmnet-exact lasso "
                    "logistic regression in JAX, cross-validation, stability selection and an "
                    "honest diagnosis when nothing is selected.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"jaxlasso {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sel = sub.add_parser("select", help="select genes for a binary, numeric or survival outcome",
                         epilog=EPILOG_SELECT,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sel.add_argument("expression", help="expression matrix (tsv/csv[.gz], parquet, h5ad, npz)")
    _add_input_options(sel, outcome_required=False,
                       outcome_note=": two values (binomial) or numbers (gaussian); for survival give --time "
                                    "and --event instead")
    sel.add_argument("--time", help="survival: sample-sheet column of follow-up times (with --event; "
                                    "instead of --outcome)")
    sel.add_argument("--event", help="survival: sample-sheet column of event indicators, 1/0 or TRUE/FALSE "
                                     "(1 = event, 0 = censored)")
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
    _add_plan_parser(sub)
    return parser


EPILOG_PLAN = """examples:
  jaxlasso plan counts.tsv --samples samples.tsv --outcome condition --out plan-out
  jaxlasso plan expr.tsv --samples s.tsv --outcome group --n-per-class 8,20,50 --k 5,20 --effect-sd 0,1,2
  jaxlasso plan --demo --out plan-demo     # the demo's simulated study

A plasmode simulation: samples are drawn from your matrix with the labels shuffled (your real signal
is removed, genes keep their distributions and correlations), k genes get an effect of d SDs in the
case group, and select's pipeline (CV lasso + permutation test) runs on each simulated study.
Rows with effect 0 are the pipeline's false-signal rate. Sizes beyond your samples are drawn with
replacement (resampled = true): optimistic there."""


def _add_plan_parser(sub) -> None:
    pl = sub.add_parser("plan", help="what would it take: power of select from your own data", epilog=EPILOG_PLAN,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pl.add_argument("expression", nargs="?", help="expression matrix (as select's); not with --demo")
    pl.add_argument("--demo", dest="demo_data", action="store_true",
                    help="plan on the demo's simulated study instead of a matrix")
    pl.add_argument("--genes", dest="genes_value", default=None, metavar="N",
                    help=f"with --demo: number of simulated genes (default: {DemoOptions().genes})")
    _add_input_options(pl, outcome_required=False)
    d = PlanOptions()
    g = pl.add_argument_group("simulation grid")
    _add(g, PlanOptions, "n_per_class", d, metavar="N[,N...]")
    _add(g, PlanOptions, "k", d, metavar="K[,K...]")
    _add(g, PlanOptions, "effect_sd", d, metavar="D[,D...]")
    _add(g, PlanOptions, "replicates", d, metavar="N")
    _add(g, PlanOptions, "n_permutations", d, metavar="N")
    _add(g, PlanOptions, "alpha", d, metavar="P")
    g = pl.add_argument_group("pipeline (as select's)")
    _add(g, PlanOptions, "rule", d, metavar="{lambda.1se,lambda.min}")
    _add(g, PlanOptions, "log", d, metavar="{auto,yes,no}")
    _add(g, PlanOptions, "cpm", d, flag_only=True)
    _add(g, PlanOptions, "top_variance", d, metavar="FRACTION_OR_COUNT")
    _add(g, PlanOptions, "l1_ratio", d, metavar="ALPHA")
    _add(g, PlanOptions, "nfolds", d, metavar="K")
    _add(g, PlanOptions, "n_repeats", d, metavar="N")
    _add(g, PlanOptions, "measure", d, metavar="{" + ",".join(MEASURES) + "}")
    _add(g, PlanOptions, "seed", d, metavar="N")
    g = pl.add_argument_group("run")
    g.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    g.add_argument("--json", action="store_true", help="print summary.json to stdout (implies --quiet)")
    g.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    g.add_argument("--no-plots", action="store_true", help="skip power.png / power.svg")
    g.add_argument("--wait", action="store_true",
                   help="if another jaxlasso run is writing to --out, wait for it instead of failing")


def _plan_inputs(args: argparse.Namespace) -> None:
    """``plan`` takes a matrix and --outcome, or --demo (with --genes), never both."""
    if args.demo_data:
        if args.expression is not None:
            raise _UsageError(f"--demo plans on the simulated study: drop the matrix argument (got {args.expression!r})")
        from ..options import integer, _Invalid

        raw = DemoOptions().genes if args.genes_value is None else args.genes_value
        try:
            args.genes_value = integer(1)(raw, isinstance(raw, str))
        except _Invalid:
            raise _UsageError(f"--genes must be a whole number >= 1 (got --genes {raw})") from None
        return
    if args.genes_value is not None:
        raise _UsageError("--genes goes with --demo only")
    if args.expression is None:
        raise _UsageError("plan needs an expression matrix (or --demo)")
    if args.outcome is None:
        raise _UsageError("plan needs --outcome (the sample-sheet column holding the outcome)")


def options_from_args(args: argparse.Namespace) -> SelectOptions | ScreenOptions | PlanOptions:
    """The validated options of a parsed command line (errors name the ``--flag``)."""
    if args.command == "plan":
        _plan_inputs(args)
    cls = {"screen": ScreenOptions, "plan": PlanOptions}.get(args.command, SelectOptions)
    given = {k: getattr(args, k) for k in cls.keys() if getattr(args, k, None) is not None}
    return cls.from_mapping(given, source=CLI)

