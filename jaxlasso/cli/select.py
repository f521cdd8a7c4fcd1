"""``jaxlasso select`` (a matrix and a sample sheet) and ``jaxlasso demo`` (the simulated study):
one selection run published into ``--out``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import __version__
from .._config import DEMO
from ..options import DemoOptions, Rule
from .common import EXIT_OK, notifier
from .inputs import LoadedInputs, classes_info, load_family_inputs
from .summary import _jsonable, build_summary, gene_list_line, plan_line, recovery_line
from .writers import write_outputs


def _run_record(args, argv: list[str], inputs: dict) -> dict:
    """What the run manifest records besides the file list: command, options, input fingerprints."""
    raw = {k: v for k, v in vars(args).items() if k not in ("command", "options", "demo")}
    parsed = {**args.options.to_mapping(), **(args.demo.to_mapping() if getattr(args, "demo", None) else {})}
    options = {**raw, **parsed}
    return _jsonable({"jaxlasso_version": __version__, "command": args.command, "command_line": argv,
                      "options": {k: (str(v) if isinstance(v, Path) else v.value if isinstance(v, Rule) else v)
                                  for k, v in sorted(options.items())},
                      "inputs": inputs})


def _run_selection(data: LoadedInputs, args, *, argv: list[str], progress) -> int:
    from .._engine import HOST_BUFFERS
    from ..options import CLI
    from ..outcomes import check_family_options
    from ..output import file_fingerprint, open_output
    from ..workflow import select_features

    # The measure depends on the family, known once the outcome is read: checked before any output.
    check_family_options(args.options, getattr(data, "family", "binomial"), CLI)
    out = Path(args.out)
    with open_output(out, wait=getattr(args, "wait", False), notify=notifier(args)) as folder:
        stored = (folder.previous() or {}).get("inputs") or {}
        fingerprints = {role: file_fingerprint(path, stored.get(role))
                        for role, path in (("expression", getattr(args, "expression", None)),
                                           ("samples", getattr(args, "samples", None))) if path}
        with folder.stage(record=_run_record(args, argv, fingerprints)) as tmp:
            keywords = args.options.keywords()
            if getattr(data, "family", None):
                keywords["family"] = data.family
            # copy_X=False: the matrix was read for this run only, so its raw counts become the
            # logCPM in place rather than staying in memory beside them.
            report = select_features(data.X, data.y, **keywords, progress=progress, copy_X=False)
            # No solve follows: the pooled design buffers (1.6 x the matrix) are given back
            # before the output step builds its tables and figures.
            HOST_BUFFERS.clear()
            progress("writing outputs")
            summary = build_summary(report, inputs=data.inputs, argv=argv, classes_info=data.classes)
            write_outputs(Path(tmp), report, summary, plots=not args.no_plots,
                          raw_names=getattr(args, "raw_names", False))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        print(report.verdict)
        print(f"outputs: {out}/ (report.html, summary.json, selected.tsv, ...)")
        print(gene_list_line(report))
        quote = plan_line(report)
        if quote:
            print(quote)
    return EXIT_OK


def cmd_select(args, argv, progress) -> int:
    progress("reading inputs")
    data = load_family_inputs(args.expression, args.samples, family=args.options.family, outcome=args.outcome,
                              time=args.time, event=args.event, case=args.case, id_column=args.id_column,
                              samples_in_rows=args.samples_in_rows, allow_missing=args.allow_missing)
    return _run_selection(data, args, argv=argv, progress=progress)


def cmd_demo(args, argv, progress) -> int:
    from ..simulate import simulate_rnaseq

    demo: DemoOptions = args.demo
    progress("simulating the study")
    sim = simulate_rnaseq(n_genes=demo.genes, seed=args.options.seed, null=demo.null, lfc_mean=DEMO.lfc_mean)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index, name="group")
    inputs = {"expression": "simulated (jaxlasso.simulate.simulate_rnaseq)", "null": demo.null,
              "n_samples": int(sim.counts.shape[0]), "n_features": int(sim.counts.shape[1]),
              "n_true_de_genes": len(sim.de_genes), "planted_de_genes": list(sim.de_genes)}
    data = LoadedInputs(sim.counts, y, inputs, classes_info(y, case="case", control="control", reason="simulated"))
    code = _run_selection(data, args, argv=argv, progress=progress)
    if code == EXIT_OK and not args.quiet and not args.json:
        summary = json.loads((Path(args.out) / "summary.json").read_text())
        print(f"simulation truth: {recovery_line(summary['demo_recovery'])}")
    return code
