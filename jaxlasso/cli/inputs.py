"""The one input loader of ``select`` and ``screen``: expression matrix + sample sheet -> the
aligned samples x features matrix, the labels, and the input facts ``summary.json`` records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class LoadedInputs:
    """One dataset read and aligned: what a selection run needs and what its summary records."""

    X: pd.DataFrame
    """samples x features, rows in the order of ``y``."""
    y: pd.Series
    """Categorical labels with categories (control, case), named as the outcome column."""
    inputs: dict
    """``summary.json``'s ``input`` section: files as the user gave them, shape, orientation, notes
    and the samples left out."""
    classes: dict
    """``summary.json``'s ``classes`` section (see :func:`classes_info`)."""


def classes_info(y: pd.Series, *, case, control, reason: str) -> dict:
    """``summary.json``'s ``classes`` section: which level is the case, why, and the class sizes."""
    return {"case": case, "control": control, "case_reason": reason,
            "n_case": int((y == case).sum()), "n_control": int((y == control).sum())}


def resolve_path(rel: str, base: Path) -> Path:
    """A manifest's path: absolute as given, else relative to the manifest's folder ``base``."""
    q = Path(rel)
    return q if q.is_absolute() else base / q


def load_inputs(expression: str, samples: str | None, *, outcome: str, case: str | None = None,
                id_column: str | None = None, samples_in_rows: bool | None = None,
                allow_missing: bool = False, base: Path | None = None) -> LoadedInputs:
    """Read ``expression`` and the sample sheet ``samples`` (optional for h5ad/npz), align the
    samples and label them by ``outcome``. Relative paths are resolved against ``base`` (a
    manifest's folder) when given; ``summary.json`` records them as given."""
    from ..io import align_samples, read_expression, read_sample_sheet

    def resolve(rel: str) -> Path | str:
        return rel if base is None else resolve_path(rel, base)

    sheet = read_sample_sheet(resolve(samples), id_column=id_column) if samples else None
    expr = read_expression(resolve(expression), sample_ids=None if sheet is None else list(sheet.index),
                           samples_in_rows=samples_in_rows)
    aligned = align_samples(expr, sheet, outcome=outcome, case=case, allow_missing=allow_missing)
    # A Categorical with categories (control, case) makes the case explicit whatever the level
    # names sort to, and keeps the names in every table and plot.
    y = pd.Series(pd.Categorical(aligned.y, categories=[aligned.control, aligned.case]), index=aligned.y.index,
                  name=outcome)
    inputs = {"expression": str(expression), "samples": samples, "outcome": outcome,
              "n_samples": int(aligned.X.shape[0]), "n_features": int(aligned.X.shape[1]),
              "orientation": expr.orientation, "notes": list(expr.notes),
              "missing_in_sheet": list(aligned.missing_in_sheet),
              "missing_in_matrix": list(aligned.missing_in_matrix),
              "dropped_missing_outcome": list(aligned.dropped_missing_outcome)}
    return LoadedInputs(aligned.X, y, inputs,
                        classes_info(y, case=aligned.case, control=aligned.control, reason=aligned.case_reason))
