"""The output files of a selection run, written into a staging folder of :mod:`jaxlasso.output`;
TSV text cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import gzip
import io as _io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .summary import display_summary

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection")."""


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _neutralised(frame: pd.DataFrame, raw_names: bool) -> pd.DataFrame:
    """``frame`` with text cells that a spreadsheet would run as formulas given a leading ``'``
    (the text columns replaced in a shallow copy), or ``frame`` itself when ``raw_names``."""
    if not raw_names:
        text_cols = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
                     or isinstance(frame[c].dtype, pd.CategoricalDtype)]
        if text_cols:
            frame = frame.copy(deep=False)
            for c in text_cols:
                frame[c] = frame[c].astype(object).map(_neutralise)
    return frame


_TSV = dict(sep="\t", index=False, lineterminator="\n", float_format="%.10g")


def _tsv(frame: pd.DataFrame, *, raw_names: bool = False) -> str:
    """A TSV table; text cells that a spreadsheet would run as formulas get a leading ``'``
    unless ``raw_names`` (numeric columns are never touched)."""
    return _neutralised(frame, raw_names).to_csv(**_TSV)


def _write_tsv(path: Path, frame: pd.DataFrame, *, raw_names: bool = False) -> None:
    """:func:`_tsv` of ``frame`` written to ``path`` as pandas formats it, a chunk of rows at a
    time: a table of every gene (200,000 rows) is never held as one string and its encoded
    bytes. The bytes are those of ``_tsv``'s text in UTF-8."""
    _neutralised(frame, raw_names).to_csv(path, encoding="utf-8", **_TSV)


def _gzip_bytes(text: str) -> bytes:
    # One write of the whole text: deflate's output depends on how its input is cut into
    # writes, and the same table must give the same bytes (so must mtime=0 and the empty name).
    # The path's long table holds only the nonzero coefficients: small next to the matrix.
    buf = _io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as fh:
        fh.write(text.encode())
    return buf.getvalue()


def write_outputs(out_dir: Path, report, summary: dict, *, plots: bool, raw_names: bool = False) -> list[str]:
    """Write every output file of a selection run into ``out_dir`` (a staging folder of
    :mod:`jaxlasso.output`; the publish moves them into ``--out``). ``raw_names``: see :func:`_tsv`."""
    written = []

    def put(name: str, data: str | bytes) -> None:
        path = out_dir / name
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        written.append(name)

    def table(name: str, frame: pd.DataFrame) -> None:
        _write_tsv(out_dir / name, frame, raw_names=raw_names)
        written.append(name)

    selected = report.table()
    if "lasso_selected" in selected:
        selected = selected.rename(columns={"lasso_selected": "selected_by_lasso"})
    table("selected.tsv", selected)
    table("cv.tsv", report.cv.to_frame())
    prevalidated = _prevalidated_frame(report)
    if prevalidated is not None:
        table("prevalidated.tsv", prevalidated)
    put("path.tsv.gz", _gzip_bytes(_tsv(report.cv.path.coef_frame(), raw_names=raw_names)))
    table("diagnosis.tsv", report.diagnosis.to_frame())
    # One table of every gene at a time: each is dropped before the next is built.
    for name, result in (("stability.tsv", report.stability), ("univariate.tsv", report.univariate),
                         ("random_forest.tsv", report.forest), ("boruta.tsv", report.boruta),
                         ("rank_then_lasso.tsv", report.rank_then_lasso)):
        if result is not None:
            table(name, result.to_frame())
    pngs: dict[str, bytes] = {}
    if plots:
        from ..plots import all_figures, save_figure

        for name, fig in all_figures(report).items():
            paths = save_figure(fig, out_dir, name)
            written.extend(p.name for p in paths)
            png = next(p for p in paths if p.suffix == ".png")
            pngs[name] = png.read_bytes()
    from ..report import render_html

    put("report.html", render_html(report, figures=pngs, summary=display_summary(summary)))
    put("summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return written



def _prevalidated_frame(report) -> pd.DataFrame | None:
    """Gaussian / Cox: each sample's held-out prediction (risk, for survival) at the rule's lambda,
    with the outcome and, for survival, the risk group of the report's Kaplan-Meier plot."""
    outcome, preval = getattr(report, "outcome", None), getattr(report, "prevalidated", None)
    if outcome is None or preval is None:
        return None
    samples = [str(s) for s in report.X.index]
    if outcome.family == "cox":
        from ..survival_stats import risk_groups

        try:
            high = risk_groups(outcome.time, outcome.event, preval).high
        except ValueError:  # a constant risk (no gene at the rule): no groups
            high = None
        return pd.DataFrame({"sample": samples, "time": outcome.time, "event": outcome.event.astype(int),
                             "prevalidated_risk": preval, "risk_group": "" if high is None else np.where(high, "high", "low")})
    return pd.DataFrame({"sample": samples, "observed": np.asarray(outcome.y, float),
                         "prevalidated_prediction": preval})
