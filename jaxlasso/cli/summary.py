"""``summary.json`` (schema ``jaxlasso.summary/1``) and the short texts built from it: the facts
at the top of report.html, the demo's recovery line and the CLI's last line."""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__

SUMMARY_SCHEMA = "jaxlasso.summary/1"


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

    prob = {}
    if report.stability is not None:
        st = report.stability
        prob = dict(zip(st.feature_names, st.max_probability))
    selected = [{"feature": f, "coefficient": float(c), "selection_probability": prob.get(f)}
                for f, c in report.coefficients.items()]
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
        "family": getattr(report, "family", "binomial"),
        "classes": classes_info if getattr(report, "family", "binomial") == "binomial" else None,
        **({"outcome": classes_info} if getattr(report, "family", "binomial") != "binomial" else {}),
        "preprocessing": {"steps": list(report.preprocess.steps), "log_applied": report.preprocess.log_applied,
                          "cpm_applied": report.preprocess.cpm_applied,
                          "n_constant_dropped": report.preprocess.n_constant_dropped,
                          "n_features_used": int(report.X.shape[1])},
        "cv": _cv_section(report),
        "rule": report.rule.replace("_", "."),
        "lambda": report.lambda_,
        "verdict": report.verdict,
        "critical_findings": [f.code for f in report.diagnosis.findings if f.severity == "critical"
                              and f.code != "NO_SIGNAL"],
        "signal_detected": report.signal_detected,
        "permutation_p": report.permutation_p,
        "signal_test": _signal_test(report),
        "gene_list": report.gene_list_description,
        "quick_plan": None if getattr(report, "quick_plan", None) is None else report.quick_plan.as_dict(),
        "selected": selected,
        "lambda_min_exploratory": [{"feature": f, "coefficient": float(c)}
                                   for f, c in report.lambda_min_coefficients.items()]
        if report.rule != "lambda_min" else [],
        **extra,
        "diagnosis": [f.as_dict() for f in report.diagnosis.findings],
        "methods": _methods(report),
        "versions": {"jaxlasso": __version__, "jax": jax.__version__, "numpy": np.__version__,
                     "pandas": pd.__version__, "python": platform.python_version()},
        "timings": {k: v for k, v in report.timings.items() if isinstance(v, float)},
    })


def _cv_section(report) -> dict:
    """``cv``: the CV curve's key points and the pooled AUC at lambda.min and at the rule's lambda."""
    cv = report.cv
    auc_min = report.auc_at(cv.index_min)
    auc_rule = report.auc_at(cv.index_1se if report.rule == "lambda_1se" else cv.index_min)
    return {"measure": cv.measure, "nfolds": cv.nfolds, "n_repeats": cv.n_repeats, "grouped": cv.grouped,
            "lambda_min": cv.lambda_min, "lambda_1se": cv.lambda_1se, "index_min": cv.index_min,
            "index_1se": cv.index_1se, "cv_at_lambda_min": cv.cv_mean[cv.index_min],
            "cv_sd_at_lambda_min": cv.cv_sd[cv.index_min], "cv_intercept_only": cv.cv_mean[0],
            "n_lambdas": len(cv.lambdas),
            "auc_pooled_at_lambda_min": None if auc_min is None else auc_min[0],
            "auc_pooled_se_at_lambda_min": None if auc_min is None else auc_min[1],
            "auc_pooled_at_rule": None if auc_rule is None else auc_rule[0],
            "auc_pooled_se_at_rule": None if auc_rule is None else auc_rule[1]}


def _signal_test(report) -> dict:
    """``signal_test``: the permutation test behind the verdict, with its resolution and the CV gain."""
    cv = report.cv
    perm = report.diagnosis.permutation
    best, se, null = report.cv_error
    return {
        "signal_detected": report.signal_detected, "alpha": report.alpha,
        "test": {"cox": "permutation of the (time, event) pairs",
                 "gaussian": "permutation of the outcome values"}.get(getattr(report, "family", "binomial"),
                                                                       "label permutation")
                + " of the whole cross-validated lasso; signal detected when p <= alpha",
        "permutation_p": report.permutation_p, "n_permutations": report.n_permutations,
        "p_resolution": report.p_resolution, "test_repeats": None if perm is None else perm.n_repeats,
        "test_folds": None if perm is None else perm.nfolds,
        "measure": cv.measure, "cv_at_lambda_min": best, "cv_se_at_lambda_min": se, "cv_intercept_only": null,
        "cv_gain_beyond_1se": bool((null - best if cv.measure not in ("auc", "auc_pooled", "C") else best - null) > se),
    }


def _methods(report) -> dict[str, Any]:
    """``methods``: what each optional ranking or test found (only those that ran)."""
    methods: dict[str, Any] = {}
    if report.stability is not None:
        st = report.stability
        methods["stability"] = {"n_resamples": st.n_resamples, "cutoff": st.cutoff, "q": st.q,
                                "pfer_bound": st.pfer_bound, "selected": list(st.selected)}
    if report.univariate is not None:
        uv = report.univariate
        methods["univariate"] = {"method": getattr(uv, "method", "welch"),
                                 "n_q_below_0.05": int(np.sum(np.asarray(uv.q_value) < 0.05)),
                                 "top": uv.to_frame(top=20)["feature"].tolist()}
    if report.forest is not None:
        methods["random_forest"] = {"oob_score": getattr(report.forest, "oob_score", None),
                                    "top": report.forest.to_frame(top=20)["feature"].tolist()}
    if report.boruta is not None:
        br = report.boruta.to_frame()
        methods["boruta"] = {"confirmed": br.loc[br["decision"] == "confirmed", "feature"].tolist(),
                             "tentative": br.loc[br["decision"] == "tentative", "feature"].tolist()}
    if report.rank_then_lasso is not None:
        r = report.rank_then_lasso
        methods["rank_then_lasso"] = {"ranker": r.ranker, "top_k": r.top_k, "leaky_cv": r.leaky_cv,
                                      "honest_cv": r.honest_cv, "intercept_only_cv": r.null_cv,
                                      "leaky_selected": list(r.leaky_selected)}
    return methods


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
        out["univariate_top20"] = count(report.univariate.to_frame(top=20)["feature"])
    if report.boruta is not None:
        br = report.boruta.to_frame()
        out["boruta_confirmed"] = count(br.loc[br["decision"] == "confirmed", "feature"])
    if report.forest is not None:
        out["random_forest_top20"] = count(report.forest.to_frame(top=20)["feature"])
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


def plan_line(report) -> str | None:
    """The CLI's last line when the verdict quotes a quick plan (None otherwise)."""
    quick = getattr(report, "quick_plan", None)
    return None if quick is None or report.signal_detected is not False else quick.sentence()


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
                   f"(n={cls['n_control']}); {cls['case_reason']}" if cls else None,
        "cross-validation": f"{cv['nfolds']} folds x {cv['n_repeats']} repeat(s), measure {cv['measure']}"
                            f"{'' if cv['grouped'] else ' (ungrouped SE)'}; lambda.min = {cv['lambda_min']:.4g},"
                            f" lambda.1se = {cv['lambda_1se']:.4g}",
        "command": " ".join(summary["command_line"]),
        "seed": str(summary["seed"]),
    }
    if not cls:
        del shown["classes"]
        out = summary.get("outcome") or {}
        shown["outcome"] = (f"survival: --time {out.get('time')}, --event {out.get('event')}; {out.get('n_events')} "
                            f"events, {out.get('n_censored')} censored (Cox)" if summary.get("family") == "cox" else
                            f"{out.get('outcome')}: mean {out.get('mean', float('nan')):.4g}, SD "
                            f"{out.get('sd', float('nan')):.4g} (Gaussian)")
    if "demo_recovery" in summary:
        shown["simulation truth"] = recovery_line(summary["demo_recovery"])
    missing = inp.get("missing_in_sheet", []) + inp.get("missing_in_matrix", [])
    if missing:
        shown["samples left out"] = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
    return shown

