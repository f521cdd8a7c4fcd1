"""A self-contained HTML report of a :class:`~jaxlasso.workflow.SelectionReport`.

:func:`render_html` returns one HTML page with no external resources (figures embedded as
``data:image/png;base64`` URIs, CSS inline, no JavaScript; a Content-Security-Policy forbids
scripts and remote loads). Every string that comes from the data -- gene and sample names,
class labels, messages that quote them -- is HTML-escaped where it is interpolated.
:func:`write_report` writes the page atomically; :func:`build_report` does figures + page + file
in one call.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import os
import platform
import struct
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["render_html", "write_report", "build_report", "FIGURE_CAPTIONS"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TABLE_ROWS = 50

FIGURE_CAPTIONS = {
    "path": "Lasso coefficient paths against log(lambda) (top axis: number of nonzero coefficients).",
    "cv": "Cross-validation curve: mean held-out measure ± 1 SE; dotted lines at lambda.min and lambda.1se; "
          "dashed line: the intercept-only model.",
    "coefficients": "Coefficients of the lasso's selected genes at the chosen rule.",
    "stability": "Stability paths: the largest selection probability over subsamples from the start "
                 "of the path, drawn over the lambda region of the error control (shaded); each curve "
                 "ends at the probability in the table; dashed line = cutoff. Exploratory.",
    "permutation": "Label-permutation test: the CV improvement on permuted labels (grey) vs the observed one (red).",
    "forest": "Random-forest out-of-bag permutation importance (exploratory ranking).",
    "boruta": "Boruta all-relevant selection (exploratory ranking).",
    "univariate": "Univariate tests (two-group tests; Cox score test for survival; Pearson correlation for a "
                  "numeric outcome), -log10(p) (exploratory ranking).",
    "risk_groups": "Kaplan-Meier curves of cross-validated risk groups: each sample's risk is pre-validated (from "
                   "the CV model that did not see it, at the chosen lambda), split at its median; log-rank p in the "
                   "title. Never risk groups fitted on the same samples, which separate by construction.",
    "predicted": "Cross-validated (pre-validated) predictions vs the observed outcome, with the CV R² and MSE; "
                 "dashed line: perfect prediction.",
}

_FIGURE_ORDER = ("path", "cv", "risk_groups", "predicted", "coefficients", "stability", "permutation", "forest", "boruta", "univariate")
_SEVERITY_CLASS = {"critical": "critical", "warning": "warning", "info": "info"}

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; background: #f6f7f9; color: #1d2329; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 40px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 16px; }
h2 { font-size: 1.25em; margin: 32px 0 10px; border-bottom: 1px solid #dde1e6; padding-bottom: 4px; }
.verdict { border-radius: 8px; padding: 18px 22px; margin: 8px 0 20px; border: 2px solid; }
.verdict .headline { font-size: 1.7em; font-weight: 700; margin: 0 0 6px; }
.verdict p { margin: 6px 0; font-size: 1.05em; }
.verdict .critical-findings { color: #8e1b1b; }
.verdict.ok { background: #e9f6ec; border-color: #2e7d32; }
.verdict.caution { background: #fff6e5; border-color: #e08a00; }
.verdict.none { background: #fff8e1; border-color: #f9a825; }
.finding { border-left: 6px solid; border-radius: 4px; padding: 10px 14px; margin: 10px 0; background: #fafbfc; }
.finding.critical { border-color: #c62828; background: #fdecea; }
.finding.warning { border-color: #e08a00; background: #fff6e5; }
.finding.info { border-color: #1565c0; background: #eaf2fb; }
.finding .code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-weight: 700; }
.finding .severity { text-transform: uppercase; font-size: 0.8em; letter-spacing: 0.05em; margin-left: 8px; }
.finding .evidence { font-size: 0.9em; color: #444; margin: 4px 0; }
.finding .action { margin: 4px 0 0; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.92em; }
th, td { border: 1px solid #dde1e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.lasso td { background: #f2f8f3; }
figure { margin: 18px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { font-size: 0.9em; color: #444; }
.note { color: #555; font-size: 0.92em; }
footer { margin-top: 36px; border-top: 1px solid #dde1e6; padding-top: 10px; font-size: 0.85em; color: #555; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


# --- escaping and formatting -------------------------------------------------------------------
def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes, list, tuple, dict, set, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any, digits: int = 4) -> str:
    """Plain-text form of a table cell (not yet escaped)."""
    if _is_missing(value):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        return f"{v:.{digits}g}"
    if isinstance(value, (tuple, list)):
        return ", ".join(_fmt(v, digits) for v in value)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _table(frame: pd.DataFrame, *, row_class=None, max_rows: int | None = None) -> str:
    """An escaped HTML table of ``frame`` (its index is not shown)."""
    if frame is None or frame.shape[1] == 0:
        return '<p class="note">(empty)</p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    out = ["<table>", "<thead><tr>"]
    out += [f"<th>{_e(c)}</th>" for c in shown.columns]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(shown.itertuples(index=False, name=None)):
        cls = row_class(shown.iloc[i]) if row_class is not None else None
        out.append(f'<tr class="{_e(cls)}">' if cls else "<tr>")
        for v in row:
            num = ' class="num"' if _is_number(v) else ""
            out.append(f"<td{num}>{_e(_fmt(v))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if max_rows is not None and len(frame) > max_rows:
        out.append(f'<p class="note">Showing the first {max_rows} of {len(frame)} rows.</p>')
    return "".join(out)


def _kv_table(items: Iterable[tuple[Any, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in items)
    return f"<table>{rows}</table>" if rows else '<p class="note">(none)</p>'


def _png_size(data: bytes) -> tuple[int, int]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"figures must map names to PNG bytes (got {type(data).__name__})")
    data = bytes(data)
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError(f"figure bytes are not a PNG image (got {len(data)} bytes starting {data[:8]!r})")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


# --- sections ----------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _headline(report) -> tuple[str, str]:
    """(css class, headline): the decision first, then what the lasso's list holds."""
    n = len(tuple(getattr(report, "selected", ()) or ()))
    signal = getattr(report, "signal_detected", None)
    rule = str(getattr(report, "rule", "")).replace("_", ".")
    at_min = getattr(report, "lambda_min_coefficients", None)
    k_min = 0 if at_min is None else len(at_min)
    genes = f"{_plural(n, 'gene')} at {rule}" if n else f"no gene at {rule}"
    if not n and k_min and rule != "lambda.min":
        genes += f" ({k_min} exploratory at lambda.min)"
    p = getattr(report, "permutation_p", None)
    ptxt = f" (permutation p = {_fmt(p, 2)})" if p is not None else ""
    if signal is True:
        return ("ok" if n else "caution"), f"Predictive signal detected{ptxt} — {genes}"
    if signal is False:
        n_samples = _n_samples(report)
        with_n = f" with n = {n_samples}" if n_samples else ""
        return "none", f"No predictive signal detectable{with_n}{ptxt} — {genes}"
    return "caution", f"Signal not tested — {genes}"


def _n_samples(report) -> int | None:
    X = getattr(report, "X", None)
    return None if X is None or not hasattr(X, "shape") else int(X.shape[0])


def _verdict_section(report, summary: Mapping | None) -> str:
    cls, headline = _headline(report)
    diagnosis = getattr(report, "diagnosis", None)
    findings = tuple(getattr(diagnosis, "findings", ()) or ())
    parts = [f'<section class="verdict {cls}" id="verdict">',
             f'<div class="headline">{_e(headline)}</div>',
             f"<p>{_e(getattr(report, 'verdict', ''))}</p>"]
    description = getattr(report, "gene_list_description", None)
    if description:
        parts.append(f'<p class="gene-list">Gene list: {_e(description)}.</p>')
    classes = getattr(report, "classes", None)
    if classes is not None and len(classes) == 2:
        rule = str(getattr(report, "rule", "")).replace("_", ".")
        lam = getattr(report, "lambda_", None)
        parts.append(f"<p>Positive coefficients raise the probability of <strong>{_e(classes[1])}</strong> "
                     f"(vs <strong>{_e(classes[0])}</strong>); rule {_e(rule)}"
                     + (f", lambda = {_e(_fmt(lam))}" if lam is not None else "") + ".</p>")
    family = getattr(report, "family", "binomial")
    if family in ("cox", "gaussian"):
        rule = str(getattr(report, "rule", "")).replace("_", ".")
        what = ("the hazard (Cox model; risk groups below are pre-validated)" if family == "cox"
                else "the predicted outcome (Gaussian model)")
        parts.append(f"<p>Positive coefficients raise {_e(what)}; rule {_e(rule)}.</p>")
    # Critical findings stay next to the verdict (by name: the diagnosis below holds their text).
    critical = [f for f in findings if getattr(f, "severity", "") == "critical"
                and getattr(f, "code", "") != "NO_SIGNAL"]
    if critical:
        links = ", ".join(f"<code>{_e(f.code)}</code>" for f in critical)
        parts.append(f'<p class="critical-findings"><strong>Critical:</strong> {links} '
                     "(see the diagnosis below).</p>")
    parts.append("</section>")
    if summary:
        parts.append('<section id="summary"><h2>Run summary</h2>')
        parts.append(_kv_table(summary.items()))
        parts.append("</section>")
    return "".join(parts)


def _evidence(ev: Any) -> str:
    if not ev:
        return ""
    if isinstance(ev, Mapping):
        text = " · ".join(f"{k} = {_fmt(v)}" for k, v in ev.items())
    else:
        text = _fmt(ev)
    return f'<div class="evidence">Evidence: {_e(text)}</div>'


def _findings_section(report) -> str:
    diagnosis = getattr(report, "diagnosis", None)
    findings = tuple(getattr(diagnosis, "findings", ()) or ())
    parts = ['<section id="diagnosis"><h2>Diagnosis</h2>']
    if not findings:
        parts.append('<p class="note">No findings.</p>')
    for f in findings:
        severity = str(getattr(f, "severity", "info"))
        cls = _SEVERITY_CLASS.get(severity, "info")
        parts.append(f'<div class="finding {cls}" id="finding-{_e(getattr(f, "code", ""))}">'
                     f'<span class="code">{_e(getattr(f, "code", ""))}</span>'
                     f'<span class="severity">{_e(severity)}</span>'
                     f"<div>{_e(getattr(f, 'message', ''))}</div>"
                     f"{_evidence(getattr(f, 'evidence', None))}")
        action = getattr(f, "action", "")
        if action:
            parts.append(f'<div class="action"><strong>Action:</strong> {_e(action)}</div>')
        parts.append("</div>")
    perm = getattr(diagnosis, "permutation", None)
    if perm is not None:
        B = len(np.asarray(perm.null_statistics))
        alpha = getattr(diagnosis, "alpha", None)
        parts.append(f'<p class="note">Label-permutation test of the whole cross-validated lasso: observed '
                     f"statistic {_e(_fmt(perm.statistic))}, p = {_e(_fmt(perm.p_value, 3))} over {_e(B)} "
                     f"permutations (the smallest p it can give is 1/(B+1) = {_e(_fmt(1.0 / (B + 1), 2))}"
                     + (f"; signal is detected when p ≤ {_e(_fmt(alpha))}" if alpha is not None else "")
                     + ").</p>")
    parts.append("</section>")
    return "".join(parts)


def _preprocess_section(report) -> str:
    prep = getattr(report, "preprocess", None)
    steps = tuple(getattr(prep, "steps", ()) or ())
    parts = ['<section id="preprocessing"><h2>Preprocessing</h2>']
    if steps:
        parts.append("<ol>" + "".join(f"<li>{_e(s)}</li>" for s in steps) + "</ol>")
    else:
        parts.append('<p class="note">No preprocessing steps recorded.</p>')
    parts.append("</section>")
    return "".join(parts)


def _genes_section(report) -> str:
    coefs = getattr(report, "coefficients", None)
    coefs = pd.Series(dtype=float) if coefs is None else pd.Series(coefs)
    classes = getattr(report, "classes", None)
    rule = str(getattr(report, "rule", "")).replace("_", ".")
    parts = [f'<section id="genes"><h2>Lasso: selected genes at {_e(rule)}</h2>']
    if len(coefs) == 0:
        parts.append("<p>No gene selected.</p>")
    else:
        frame = pd.DataFrame({"feature": [str(i) for i in coefs.index],
                              "coefficient": coefs.to_numpy(dtype=float)})
        if classes is not None and len(classes) == 2:
            frame["raises P of"] = [classes[1] if v > 0 else classes[0] for v in frame["coefficient"]]
        parts.append(_table(frame))
        parts.append('<p class="note">Coefficients on the scale of the preprocessed data, largest |coefficient| first.</p>')
    at_min = getattr(report, "lambda_min_coefficients", None)
    if rule != "lambda.min" and at_min is not None and len(at_min) and set(at_min.index) != set(coefs.index):
        frame = pd.DataFrame({"feature": [str(i) for i in at_min.index],
                              "lambda_min coefficient": at_min.to_numpy(dtype=float)})
        frame["also at " + rule] = [str(i) in set(map(str, coefs.index)) for i in at_min.index]
        parts.append(f'<h3 id="lambda-min-genes">Exploratory: the {_plural(len(at_min), "gene")} at lambda.min</h3>')
        parts.append(_table(frame))
        parts.append('<p class="note">Exploratory: lambda.min keeps more genes than the conservative rule; '
                     "they are hypotheses for independent samples, not validated markers "
                     "(column <code>lambda_min</code> of selected.tsv).</p>")
    parts.append("</section>")
    return "".join(parts)


def _measure_name(report, measure: str, names: Mapping) -> str:
    family = getattr(report, "family", "binomial")
    if family == "binomial":
        return names.get(measure, measure)
    from .outcomes import measure_label

    return measure_label(measure, family)


def _family_cv_rows(report) -> list[tuple[str, Any]]:
    """Gaussian / Cox: the pre-validated summaries the figures show (CV R² and MSE of the held-out
    predictions; the log-rank p of the pre-validated risk groups)."""
    outcome, preval = getattr(report, "outcome", None), getattr(report, "prevalidated", None)
    if outcome is None or preval is None:
        return []
    from .survival_stats import prediction_r2, risk_groups

    if outcome.family == "gaussian":
        r2, mse = prediction_r2(outcome.y, preval)
        return [("pre-validated R² at the rule", r2), ("pre-validated MSE at the rule", mse)]

    try:
        g = risk_groups(outcome.time, outcome.event, preval)
    except ValueError as err:
        return [("pre-validated risk groups", str(err))]
    return [("log-rank p, pre-validated risk groups (median split)", g.logrank.p_value)]


def _cv_section(report) -> str:
    cv = getattr(report, "cv", None)
    parts = ['<section id="cv"><h2>Cross-validation</h2>']
    if cv is None:
        parts.append('<p class="note">No cross-validation result.</p></section>')
        return "".join(parts)
    from .metrics import NAMES

    imin, i1se = int(cv.index_min), int(cv.index_1se)
    nz = np.asarray(cv.n_nonzero)
    rows = [
        ("measure", f"{cv.measure} ({_measure_name(report, cv.measure, NAMES)})"),
        ("lambda.min", cv.lambda_min), ("CV at lambda.min", f"{_fmt(cv.cv_mean[imin])} ± {_fmt(cv.cv_sd[imin])}"),
        ("nonzero at lambda.min", int(nz[imin])),
        ("lambda.1se", cv.lambda_1se), ("CV at lambda.1se", f"{_fmt(cv.cv_mean[i1se])} ± {_fmt(cv.cv_sd[i1se])}"),
        ("nonzero at lambda.1se", int(nz[i1se])),
        ("intercept-only CV", cv.cv_mean[0]),
        ("lambdas", len(cv.lambdas)),
    ]
    rows.extend(_family_cv_rows(report))
    auc_at = getattr(report, "auc_at", None)
    if callable(auc_at) and auc_at(imin) is not None:
        a_min, a_1se = auc_at(imin), auc_at(i1se)
        rows[3:3] = [("pooled CV AUC at lambda.min", f"{_fmt(a_min[0], 3)} ± {_fmt(a_min[1], 2)}")]
        rows[7:7] = [("pooled CV AUC at lambda.1se", f"{_fmt(a_1se[0], 3)} ± {_fmt(a_1se[1], 2)}")]
        rows.append(("AUC without discrimination (chance)", 0.5))
    for name in ("nfolds", "n_repeats"):
        try:
            rows.append((name, getattr(cv, name)))
        except Exception:  # noqa: BLE001 - bookkeeping only
            pass
    parts.append(_kv_table(rows))
    parts.append("</section>")
    return "".join(parts)


def _figures_section(figures: Mapping[str, bytes] | None) -> str:
    if not figures:
        return ""
    keys = [k for k in _FIGURE_ORDER if k in figures] + [k for k in figures if k not in _FIGURE_ORDER]
    parts = ['<section id="figures"><h2>Figures</h2>']
    for key in keys:
        data = figures[key]
        width, height = _png_size(data)
        b64 = base64.b64encode(bytes(data)).decode("ascii")
        caption = FIGURE_CAPTIONS.get(key, str(key))
        parts.append(f'<figure id="figure-{_e(key)}"><img src="data:image/png;base64,{b64}" '
                     f'width="{width}" height="{height}" alt="{_e(key)} figure">'
                     f"<figcaption>{_e(caption)}</figcaption></figure>")
    parts.append("</section>")
    return "".join(parts)


def _methods_glance(report) -> list[str]:
    items = []
    st = getattr(report, "stability", None)
    if st is not None:
        line = (f"Stability selection: {_plural(len(st.selected), 'gene')} with selection probability "
                f"≥ {_fmt(st.cutoff, 3)} (expected false selections ≤ {_fmt(st.pfer_bound, 3)} with the "
                f"realised q = {_fmt(st.q, 3)} genes per subsample, target q = {_fmt(st.q_target, 3)}; "
                f"{st.n_resamples} subsamples).")
        if not getattr(st, "target_reachable", True):
            line += (" The subsamples selected far fewer genes than the target: at this sample size "
                     "stability selection cannot work, and an empty or short list is no evidence.")
        items.append(line)
    uv = getattr(report, "univariate", None)
    if uv is not None:
        try:
            q = np.asarray(uv.q_value, dtype=float)
            items.append(f"Univariate tests: {_plural(int(np.sum(q < 0.05)), 'gene')} with FDR q < 0.05.")
        except Exception:  # noqa: BLE001 - an unexpected result object only loses this line
            pass
    fr = getattr(report, "forest", None)
    if fr is not None and getattr(fr, "oob_score", None) is not None:
        items.append(f"Random forest: out-of-bag balanced accuracy {_fmt(fr.oob_score, 3)} "
                     f"(AUC {_fmt(getattr(fr, 'oob_auc', None), 3)}; 0.5 = chance).")
    br = getattr(report, "boruta", None)
    if br is not None:
        try:
            items.append(f"Boruta: {_plural(len(br.confirmed), 'gene')} confirmed, "
                         f"{len(br.tentative)} tentative.")
        except Exception:  # noqa: BLE001
            pass
    return items


def _comparison_section(report) -> str:
    parts = ['<section id="methods"><h2>Method comparison</h2>',
             '<p class="note">The lasso\'s genes are selected at the chosen rule with prediction tested by '
             "cross-validation (gene identities not validated); lambda.min's genes and every ranking are "
             "exploratory.</p>"]
    glance = _methods_glance(report)
    if glance:
        parts.append("<ul>" + "".join(f"<li>{_e(t)}</li>" for t in glance) + "</ul>")
    try:
        table = report.table()
    except Exception as exc:  # noqa: BLE001 - a broken ranking must not lose the whole report
        parts.append(f'<p class="note">The comparison table could not be built: {_e(exc)}</p></section>')
        return "".join(parts)
    if table is None or len(table) == 0:
        parts.append('<p class="note">No method ranked any gene.</p>')
    else:
        def row_class(row):
            return "lasso" if bool(row.get("lasso_selected", False)) else None

        parts.append(_table(table, row_class=row_class, max_rows=MAX_TABLE_ROWS))
    parts.append("</section>")
    return "".join(parts)


def _rank_then_lasso_section(report) -> str:
    rtl = getattr(report, "rank_then_lasso", None)
    if rtl is None:
        return ""
    parts = ['<section id="rank-then-lasso"><h2>Rank then lasso: honest vs leaky</h2>']
    ranker = getattr(rtl, "ranker", "?")
    top_k = getattr(rtl, "top_k", "?")
    parts.append(f"<p>Ranking genes with <strong>{_e(ranker)}</strong> on all samples, keeping the top "
                 f"{_e(top_k)} and running the lasso reports a <em>leaky</em> CV "
                 f"{_e(getattr(rtl, 'measure', ''))}; redoing the ranking inside every fold gives the "
                 "<em>honest</em> one.</p>")
    try:
        parts.append(_table(rtl.to_frame()))
    except Exception:  # noqa: BLE001
        pass
    optimism = getattr(rtl, "optimism", None)
    if optimism is not None:
        parts.append(f'<p class="note">Optimism of the leaky estimate (honest − leaky): {_e(_fmt(optimism))}.</p>')
    parts.append("</section>")
    return "".join(parts)


def _versions(report) -> list[tuple[str, str]]:
    from importlib import metadata

    timings = dict(getattr(report, "timings", {}) or {})
    out = [("jaxlasso", timings.get("jaxlasso") or _own_version()),
           ("python", timings.get("python") or platform.python_version())]
    for pkg in ("jax", "numpy", "pandas", "matplotlib", "scikit-learn"):
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            continue
    return out


def _own_version() -> str:
    from ._version import __version__

    return __version__


def _footer(report) -> str:
    timings = dict(getattr(report, "timings", {}) or {})
    secs = [(k, f"{float(v):.2f} s") for k, v in timings.items()
            if _is_number(v) and k not in ("python", "jaxlasso")]
    versions = " · ".join(f"{k} {v}" for k, v in _versions(report))
    parts = ["<footer>",
             f"<p>Seed {_e(getattr(report, 'seed', ''))} · {_e(versions)}</p>"]
    if secs:
        parts.append("<p>Timings: " + _e(" · ".join(f"{k} {v}" for k, v in secs)) + "</p>")
    parts.append("<p>Generated by jaxlasso. All figures and tables are embedded in this file.</p></footer>")
    return "".join(parts)


# --- public API --------------------------------------------------------------------------------
def render_html(report, *, figures: Mapping[str, bytes] | None = None, summary: Mapping | None = None,
                title: str = "jaxlasso report") -> str:
    """One self-contained HTML page for a :class:`~jaxlasso.workflow.SelectionReport`.

    Parameters
    ----------
    report : SelectionReport
        The answer of :func:`jaxlasso.select_features` (any object with its attributes works).
    figures : dict of str -> bytes
        PNG bytes per figure key (e.g. from :func:`jaxlasso.plots.figure_png` of
        :func:`jaxlasso.plots.all_figures`); embedded as ``data:`` URIs.
    summary : dict, optional
        Extra key/value lines shown under the verdict (input file, sample counts, options).
    title : str

    Sections, in order: verdict, diagnosis findings, preprocessing, the lasso's genes, the CV
    summary, figures, the method comparison table (first 50 rows), the honest vs leaky
    rank-then-lasso numbers, and a footer with seed, versions and timings. Every value that
    comes from the input is HTML-escaped.
    """
    body = [
        f"<h1>{_e(title)}</h1>",
        _verdict_section(report, summary),
        _findings_section(report),
        _preprocess_section(report),
        _genes_section(report),
        _cv_section(report),
        _figures_section(figures),
        _comparison_section(report),
        _rank_then_lasso_section(report),
        _footer(report),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_e(_CSP)}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(part for part in body if part)
            + "\n</main>\n</body>\n</html>\n")


def write_report(path, html_text: str) -> Path:
    """Write ``html_text`` to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    A reader never sees a half-written page; an existing file keeps its permissions.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html_text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def build_report(report, path, *, figure_dir=None, summary: Mapping | None = None,
                 title: str = "jaxlasso report") -> Path:
    """Make every figure, render the page and write it to ``path`` (atomically).

    With ``figure_dir`` the figures are also saved there as PNG + SVG
    (:func:`jaxlasso.plots.save_figure`). Needs matplotlib.
    """
    from . import plots

    pngs: dict[str, bytes] = {}
    for key, fig in plots.all_figures(report).items():
        if figure_dir is not None:
            png_path, _ = plots.save_figure(fig, figure_dir, key)
            pngs[key] = Path(png_path).read_bytes()
        else:
            pngs[key] = plots.figure_png(fig, close=True)
    return write_report(path, render_html(report, figures=pngs, summary=summary, title=title))
