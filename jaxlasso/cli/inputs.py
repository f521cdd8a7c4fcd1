"""The one input loader of ``select`` and ``screen``: expression matrix + sample sheet -> the
aligned samples x features matrix, the labels, and the input facts ``summary.json`` records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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


@dataclass(frozen=True)
class FamilyInputs(LoadedInputs):
    """A numeric (Gaussian) or survival (Cox) outcome read and aligned: ``y`` holds the numbers,
    or for survival a DataFrame with columns ``time`` and ``event``."""

    family: str = "gaussian"


def _column(sheet: pd.DataFrame, sheet_name: str, column: str, flag: str) -> None:
    if column not in sheet.columns:
        import difflib

        close = difflib.get_close_matches(column, [str(c) for c in sheet.columns], n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"{flag}: {sheet_name} has no column {column!r}; its columns are "
                         f"{', '.join(repr(str(c)) for c in list(sheet.columns)[:20])}.{hint} (got {flag} {column})")


_EVENT_TEXT = {"1": 1.0, "0": 0.0, "true": 1.0, "false": 0.0}


def _numbers(values: pd.Series, flag: str, column: str) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce")
    bad = v.isna()
    if bad.any():
        s = values.index[bad.to_numpy()][0]
        raise ValueError(f"{flag}: column {column!r} must hold a number for every sample; sample {s!r} has "
                         f"{values[s]!r} (got {flag} {column})")
    return v.to_numpy(float)


def load_family_inputs(expression: str, samples: str | None, *, family: str, outcome: str | None = None,
                       time: str | None = None, event: str | None = None, case: str | None = None,
                       id_column: str | None = None, samples_in_rows: bool | None = None,
                       allow_missing: bool = False, base: Path | None = None,
                       flags: dict | None = None) -> LoadedInputs:
    """:func:`load_inputs` for any family: ``family`` ``auto`` is resolved from the sheet (``--time``
    and ``--event`` -> cox; an ``--outcome`` with two values -> binomial, read by
    :func:`load_inputs`; numbers with more -> gaussian). Errors name the option and the column;
    ``flags`` says how they name the options (default: the command line's ``--outcome``, ``--time``,
    ``--event``, ``--case``; a manifest names its columns)."""
    from ..io import read_expression, read_sample_sheet
    from ..io.sheets import _match_samples, _resolve_sheet
    from ..outcomes import resolve_family
    from ..survival_stats import check_survival

    F = {"outcome": "--outcome", "time": "--time", "event": "--event", "case": "--case", **(flags or {})}
    survival = time is not None or event is not None
    if survival and (time is None or event is None):
        given, other = (F["time"], F["event"]) if time is not None else (F["event"], F["time"])
        raise ValueError(f"{given} needs {other}: a survival outcome is a (time, event) pair of sample-sheet "
                         f"columns (got {given} without {other})")
    if survival and outcome is not None:
        raise ValueError(f"{F['outcome']} names a binary or numeric outcome; with {F['time']} and {F['event']} "
                         f"(survival) drop it (got {F['outcome']} {outcome})")
    if not survival and outcome is None:
        raise ValueError(f"select needs {F['outcome']} COL (a binary or numeric outcome) or {F['time']} COL "
                         f"{F['event']} COL (survival)")

    def resolve(rel: str) -> Path | str:
        return rel if base is None else resolve_path(rel, base)

    sheet = read_sample_sheet(resolve(samples), id_column=id_column) if samples else None
    if not survival and family in ("auto", "binomial"):
        if family == "binomial" or sheet is None or outcome not in sheet.columns:
            return load_inputs(expression, samples, outcome=outcome, case=case, id_column=id_column,
                               samples_in_rows=samples_in_rows, allow_missing=allow_missing, base=base)
        values = sheet[outcome].dropna()
        fam = resolve_family("auto", values, outcome_name=f"{F['outcome']} {outcome}", case_given=case is not None,
                             case_name=F["case"])
        if fam == "binomial":
            return load_inputs(expression, samples, outcome=outcome, case=case, id_column=id_column,
                               samples_in_rows=samples_in_rows, allow_missing=allow_missing, base=base)
    fam = resolve_family(family, None, survival=survival, outcome_name=f"{F['outcome']} {outcome}",
                         case_given=case is not None, case_name=F["case"]) if survival or family != "auto" \
        else "gaussian"
    if case is not None:
        raise ValueError(f"{F['case']} names the case level of a binary outcome; a {fam} outcome has none: drop "
                         f"it (got {F['case']} {case})")
    expr = read_expression(resolve(expression), sample_ids=None if sheet is None else list(sheet.index),
                           samples_in_rows=samples_in_rows)
    sheet, sheet_name = _resolve_sheet(expr, sheet, Path(expr.source).name)
    columns = [(F["time"], time), (F["event"], event)] if survival else [(F["outcome"], outcome)]
    for flag, col in columns:
        _column(sheet, sheet_name, col, flag)
    sheet_ids = [str(s).strip() for s in sheet.index]
    matrix_ids = [str(s) for s in expr.matrix.index]
    common, missing_in_sheet, missing_in_matrix = _match_samples(expr, matrix_ids, sheet_ids, sheet_name,
                                                                 Path(expr.source).name, allow_missing)
    rows = sheet.copy()
    rows.index = sheet_ids
    rows = rows.loc[common]
    missing = rows[[c for _, c in columns]].isna().any(axis=1)
    dropped: tuple[str, ...] = ()
    if missing.any():
        names = list(rows.index[missing.to_numpy()])
        cols = " / ".join(repr(c) for _, c in columns)
        if not allow_missing:
            raise ValueError(f"{sheet_name}: {cols} is missing for {len(names)} sample(s): "
                             f"{', '.join(repr(s) for s in names[:5])}; fill it in, or pass --allow-missing to drop "
                             f"them (got missing={len(names)})")
        dropped = tuple(names)
        rows = rows[~missing.to_numpy()]
    kept = list(rows.index)
    X = expr.matrix if kept == matrix_ids else expr.matrix.loc[kept]
    if survival:
        t = _numbers(rows[time], F["time"], time)
        raw_event = rows[event].astype(str).str.strip().str.lower()
        bad = ~raw_event.isin(list(_EVENT_TEXT))
        if bad.any():
            s = raw_event.index[bad.to_numpy()][0]
            raise ValueError(f"{F['event']}: column {event!r} must be 0/1 or TRUE/FALSE (1 = event, 0 = censored); "
                             f"sample {s!r} has {rows[event][s]!r} (got {F['event']} {event})")
        e = raw_event.map(_EVENT_TEXT).to_numpy(float)
        try:
            check_survival(t, e, time_name=f"{F['time']} column {time!r}", event_name=f"{F['event']} column {event!r}")
        except ValueError as err:
            raise ValueError(str(err)) from None
        y: Any = pd.DataFrame({"time": t, "event": e}, index=X.index)
        outcome_info = {"time": time, "event": event, "n_events": int(e.sum()), "n_censored": int(len(e) - e.sum())}
    else:
        v = _numbers(rows[outcome], F["outcome"], outcome)
        if np.ptp(v) == 0:
            raise ValueError(f"{F['outcome']}: column {outcome!r} is constant: nothing to predict (got {v[0]!r} "
                             f"for every sample)")
        y = pd.Series(v, index=X.index, name=outcome)
        outcome_info = {"outcome": outcome, "mean": float(v.mean()), "sd": float(v.std(ddof=1))}
    inputs = {"expression": str(expression), "samples": samples, "outcome": outcome, "family": fam,
              **({"time": time, "event": event} if survival else {}),
              "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
              "orientation": expr.orientation, "notes": list(expr.notes),
              "missing_in_sheet": list(missing_in_sheet) if allow_missing else [],
              "missing_in_matrix": list(missing_in_matrix) if allow_missing else [],
              "dropped_missing_outcome": list(dropped)}
    return FamilyInputs(X, y, inputs, outcome_info, fam)
