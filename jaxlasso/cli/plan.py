"""``jaxlasso plan``: what would it take -- the power of ``select`` estimated from the user's own
data (or the demo's simulated study) by :func:`jaxlasso.plan_power`, published into ``--out``:
``power.tsv``, ``power.png`` / ``power.svg`` and ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import __version__
from .._config import DEMO, PLAN
from .common import EXIT_OK, notifier
from .summary import _jsonable
from .writers import _tsv

PLAN_SCHEMA = "jaxlasso.plan/1"


def power_figure(plan):
    """Detection probability vs n per class, one line per (k, effect_sd); the 80% level and the
    test's level drawn as references; sizes beyond the pool (resampled rows) drawn hollow."""
    from ..plots import _new_figure

    fig = _new_figure(7.0, 4.8)
    ax = fig.add_subplot(111)
    table = plan.to_frame()
    for (k, d), rows in table.groupby(["k", "effect_sd"], sort=True):
        rows = rows.sort_values("n_per_class")
        line, = ax.plot(rows["n_per_class"], rows["detection_probability"], marker="o",
                        label=f"k = {k}, d = {d:g} SD" + (" (false-signal rate)" if d == 0 else ""),
                        linestyle="--" if d == 0 else "-")
        hollow = rows[rows["resampled"]]
        if len(hollow):
            ax.plot(hollow["n_per_class"], hollow["detection_probability"], marker="o", linestyle="none",
                    markerfacecolor="white", color=line.get_color())
    beyond = table.loc[table["resampled"], "n_per_class"]
    if len(beyond):
        # The sizes the data cannot hold: shaded and named in the legend, so the figure alone says
        # that those points are optimistic.
        ax.axvspan(beyond.min() / 1.08, table["n_per_class"].max() * 1.08, color="grey", alpha=0.12, linewidth=0,
                   label=f"beyond your {plan.pool_size} samples: resampled, optimistic")
    ax.axhline(PLAN.power, color="grey", linewidth=0.8, linestyle=":")
    ax.axhline(plan.alpha, color="grey", linewidth=0.8, linestyle=":")
    ax.axvline(plan.current_n_per_class, color="black", linewidth=0.8, alpha=0.5)
    ax.set_xscale("log")
    sizes = sorted(set(table["n_per_class"]))
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("samples per class (vertical line: your smaller class; hollow: drawn with replacement)")
    ax.set_ylabel("P(signal detected)")
    ax.set_title(f"What would it take: {plan.to_frame()['replicates'].iloc[0]} simulated studies per point, "
                 f"B = {plan.n_permutations}, alpha = {plan.alpha:g}", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig


def plan_summary(plan, *, inputs: dict, classes: dict, argv: list[str], options: dict) -> dict:
    """``summary.json`` of a plan: the inputs, the grid's answers and the caveats."""
    table = plan.to_frame()
    needed = []
    for k, d in table[["k", "effect_sd"]].drop_duplicates().itertuples(index=False):
        if d > 0:
            n = plan.n_for_power(int(k), float(d))
            beyond = n is not None and bool(table[(table["k"] == k) & (table["effect_sd"] == d)
                                                  & (table["n_per_class"] == n)]["resampled"].iloc[0])
            needed.append({"k": int(k), "effect_sd": float(d), "power": PLAN.power, "n_per_class": n,
                           "resampled": beyond})
    return _jsonable({
        "schema": PLAN_SCHEMA, "jaxlasso_version": __version__, "command_line": argv, "input": inputs,
        "classes": classes, "options": options,
        "pool": {"n_per_class": list(plan.pool_n_per_class), "n_samples": plan.pool_size,
                 "n_features": plan.n_features},
        "false_signal_rate": plan.false_signal_rate(),
        "n_per_class_for_power": needed,
        "power": table.to_dict(orient="records"),
        "caveats": [
            "Labels are shuffled before the effect is planted: the real signal of the data is not used.",
            "Rows with resampled = true need more samples than the data hold: they were drawn with "
            "replacement, so copies of a sample can sit in training and held-out folds and the detection "
            "probability there is optimistic (an upper estimate).",
            f"Each simulated study is tested with B = {plan.n_permutations} permutations (p >= "
            f"{1 / (plan.n_permutations + 1):.3g}); select uses its own B.",
        ],
        "seconds": round(plan.seconds, 1),
    })


def _run_plan(X, y, *, inputs: dict, classes: dict, args, argv: list[str], progress) -> int:
    from ..output import file_fingerprint, open_output
    from ..plan import plan_power
    from ..plots import save_figure

    opts = args.options
    out = Path(args.out)
    options = {k: (v.value if hasattr(v, "value") else list(v) if isinstance(v, tuple) else v)
               for k, v in opts.to_mapping().items()}
    with open_output(out, wait=getattr(args, "wait", False), notify=notifier(args)) as folder:
        stored = (folder.previous() or {}).get("inputs") or {}
        fingerprints = {role: file_fingerprint(path, stored.get(role))
                        for role, path in (("expression", getattr(args, "expression", None)),
                                           ("samples", getattr(args, "samples", None))) if path}
        record = _jsonable({"jaxlasso_version": __version__, "command": "plan", "command_line": argv,
                            "options": options, "inputs": fingerprints})
        with folder.stage(record=record) as tmp:
            plan = plan_power(X, y, **opts.to_mapping(), progress=progress)
            progress("writing outputs")
            tmp = Path(tmp)
            (tmp / "power.tsv").write_text(_tsv(plan.to_frame()), encoding="utf-8")
            if not args.no_plots:
                save_figure(power_figure(plan), tmp, "power")
            summary = plan_summary(plan, inputs=inputs, classes=classes, argv=argv, options=options)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                              encoding="utf-8")
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            print(plan.to_frame().to_string(index=False))
        for row in summary["n_per_class_for_power"]:
            n = row["n_per_class"]
            print(f"k = {row['k']}, d = {row['effect_sd']:g} SD: "
                  + (f"{PLAN.power:.0%} detection at n = {n} per class"
                     + (" (beyond your samples: drawn with replacement, optimistic)" if row["resampled"] else "")
                     if n is not None else f"{PLAN.power:.0%} detection not reached in the grid"))
        rate = summary["false_signal_rate"]
        if rate is not None:
            print(f"false-signal rate of the whole pipeline (effect 0): {rate:.2f}")
        print(f"outputs: {out}/ (power.tsv, power.png, power.svg, summary.json)")
    return EXIT_OK


def cmd_plan(args, argv, progress) -> int:
    if args.demo_data:
        from ..simulate import simulate_rnaseq

        progress("simulating the study")
        sim = simulate_rnaseq(n_genes=args.genes_value, seed=args.options.seed, null=False,
                              lfc_mean=DEMO.lfc_mean)
        y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index, name="group")
        inputs = {"expression": "simulated (jaxlasso.simulate.simulate_rnaseq)", "n_samples": int(sim.counts.shape[0]),
                  "n_features": int(sim.counts.shape[1])}
        classes = {"case": "case", "control": "control", "case_reason": "simulated",
                   "n_case": int((y == "case").sum()), "n_control": int((y == "control").sum())}
        return _run_plan(sim.counts, y, inputs=inputs, classes=classes, args=args, argv=argv, progress=progress)
    from .inputs import load_inputs

    progress("reading inputs")
    data = load_inputs(args.expression, args.samples, outcome=args.outcome, case=args.case,
                       id_column=args.id_column, samples_in_rows=args.samples_in_rows,
                       allow_missing=args.allow_missing)
    return _run_plan(data.X, data.y, inputs=data.inputs, classes=data.classes, args=args, argv=argv,
                     progress=progress)
