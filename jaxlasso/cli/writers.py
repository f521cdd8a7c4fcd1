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
    prevalidated = _prevalidated_frame(report)
    if prevalidated is not None:
        put("prevalidated.tsv", tsv(prevalidated))
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
