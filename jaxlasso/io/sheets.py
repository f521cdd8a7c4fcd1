"""Sample sheets and the alignment of a sheet with an expression matrix."""

from __future__ import annotations

import difflib
import gzip
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..exceptions import DataWarning
from .common import (Aligned, CONTROL_LIKE, ExpressionData, InputError, MISSING_MARKERS,
                     SAMPLE_ID_COLUMNS, _BINARY_NUL, _binary_kind, _check_file, _corrupt_gzip,
                     _fmt, _nul_in_text, _short, _sniff_bytes, _suffixes, logger)
from .text import _delim_name, _sniff_delimiter, _split


def read_sample_sheet(path: str | os.PathLike, *, id_column: str | None = None,
                      max_bytes: int | None = 256 * 1024**2) -> pd.DataFrame:
    """Read a sample sheet (TSV/CSV, optionally gzip) indexed by sample ID.

    Parameters
    ----------
    path : path-like
        ``.tsv``/``.txt``/``.tab``/``.csv`` (optionally ``.gz``); delimiter sniffed from the
        header.
    id_column : str, optional
        Column holding the sample IDs. Default: a column named (case-insensitively) one of
        ``sample, sample_id, sampleid, id, run, gsm, geo_accession, name``, else the first
        column whose values are all present and unique (a non-numeric one preferred).
    max_bytes : int or None
        Refuse larger files (default 256 MiB).

    Returns
    -------
    pandas.DataFrame
        Indexed by sample ID (str, whitespace stripped); every other column as strings, with
        empty cells and NA markers as missing. ``attrs`` holds ``source`` and ``id_column``.

    Raises
    ------
    InputError
        Missing or empty file, unknown ``id_column``, no usable ID column, duplicated or empty
        sample IDs, duplicated column names, ragged rows.
    """
    p = _check_file(path, max_bytes, "sample sheet")
    df, cols, line_of = _sheet_table(p, _sheet_text(p))
    chosen = _sheet_id_column(p, df, cols, id_column)
    _check_sheet_ids(p, df[chosen], chosen, line_of)
    df = df.set_index(chosen)
    df.index = pd.Index([str(s) for s in df.index], name=chosen)
    df.attrs["source"] = str(p)
    df.attrs["id_column"] = chosen
    logger.info("read sample sheet %s: %d samples, id column %r, columns %s", p.name, len(df),
                chosen, list(df.columns))
    return df


def _sheet_text(p: Path) -> str:
    """The whole sheet decoded (UTF-16 by its BOM, else UTF-8, else Latin-1); binary files and
    corrupt gzip are refused."""
    head, compressed = _sniff_bytes(p)
    kind = _binary_kind(head)
    if kind is not None and kind != _BINARY_NUL:
        raise InputError(f"sample sheet {p.name!r} is not a text table: it looks like {kind} "
                         f"(got first_bytes={head[:8]!r})", path=p)
    try:
        with (gzip.open(p, "rb") if compressed else open(p, "rb")) as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise _corrupt_gzip(p, e) from e
    if b"\x00" in raw and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _nul_in_text(raw, p, "sample sheet") or InputError(
            f"sample sheet {p.name!r} is not a text table: it looks like {_BINARY_NUL} "
            f"(got first_bytes={head[:8]!r})", path=p)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    return text


def _sheet_table(p: Path, text: str) -> tuple[pd.DataFrame, list[str], list[int]]:
    """(the rows as strings, missing markers as ``None``; the column names; each row's line)."""
    lines = text.splitlines()
    numbered = [(i + 1, ln) for i, ln in enumerate(lines)
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise InputError(f"sample sheet {p.name!r} is empty; it needs a header line and one row "
                         f"per sample (got lines={len(lines)})", path=p)
    header_no, header = numbered[0]
    first = numbered[1][1] if len(numbered) > 1 else None
    notes: list[str] = []
    delim = _sniff_delimiter(header, first, _suffixes(p), notes, p.name, header_no)
    if len(numbered) == 1:
        raise InputError(f"sample sheet {p.name!r} has a header (line {header_no}) but no "
                         f"sample rows (got header={_short(header.strip())!r})", path=p,
                         line=header_no)
    cols = [c.strip() for c in _split(header, delim)]
    dup = pd.Index(cols)[pd.Index(cols).duplicated()].unique().tolist()
    if dup:
        raise InputError(f"sample sheet {p.name!r} has duplicated column names {_fmt(dup)} in "
                         f"its header (line {header_no}); rename them "
                         f"(got duplicates={_fmt(dup)})", path=p, line=header_no)
    rows = []
    for line_no, line in numbered[1:]:
        fields = _split(line, delim)
        if len(fields) != len(cols):
            if len(fields) > len(cols) and not any(f.strip() for f in fields[len(cols):]):
                fields = fields[: len(cols)]
            elif len(fields) < len(cols):
                fields = fields + [""] * (len(cols) - len(fields))
            else:
                raise InputError(
                    f"sample sheet {p.name!r} line {line_no} has {len(fields)} fields but the "
                    f"header (line {header_no}) has {len(cols)}; look for an extra "
                    f"{_delim_name(delim)} or an unclosed quote (got fields={len(fields)})",
                    path=p, line=line_no)
        rows.append([f.strip() for f in fields])
    rows = [[None if v == "" or v.lower() in MISSING_MARKERS else v for v in r] for r in rows]
    df = pd.DataFrame(rows, columns=cols, dtype=object)
    return df, cols, [ln for ln, _ in numbered[1:]]


def _sheet_id_column(p: Path, df: pd.DataFrame, cols: list[str], id_column: str | None) -> str:
    """``id_column`` when given; else the first column with a usual ID name, else the first
    unique, complete column, preferring one that is not all numbers."""
    if id_column is not None:
        if id_column not in df.columns:
            close = difflib.get_close_matches(id_column, cols, n=3, cutoff=0.5)
            hint = f" Did you mean {_fmt(close)}?" if close else ""
            raise InputError(
                f"sample sheet {p.name!r} has no column {id_column!r}; its columns are "
                f"{_fmt(cols, 20)}.{hint} (got id_column={id_column!r})", path=p)
        chosen = id_column
    else:
        lower = {c.lower().replace(" ", "_"): c for c in reversed(cols)}
        chosen = next((lower[k] for k in SAMPLE_ID_COLUMNS if k in lower), None)
        if chosen is None:
            unique = [c for c in cols if df[c].notna().all() and df[c].is_unique]
            textual = [c for c in unique
                       if pd.to_numeric(df[c], errors="coerce").isna().any()]
            chosen = (textual or unique or [None])[0]
        if chosen is None:
            raise InputError(
                f"sample sheet {p.name!r}: could not find the sample ID column (none is named "
                f"{'/'.join(SAMPLE_ID_COLUMNS)} and no column has unique, non-empty values); "
                f"pass id_column= (CLI: --id-column) (got columns={_fmt(cols, 20)})", path=p)
    return chosen


def _check_sheet_ids(p: Path, ids: pd.Series, chosen: str, line_of: list[int]) -> None:
    """Empty or duplicated sample IDs -> InputError naming their lines."""
    if ids.isna().any():
        where = [line_of[i] for i in np.nonzero(ids.isna().to_numpy())[0]]
        raise InputError(
            f"sample sheet {p.name!r} has {len(where)} empty sample ID(s) in column {chosen!r}, "
            f"first at line {where[0]}; fill them in or delete those rows "
            f"(got lines={_fmt(where)})", path=p, line=where[0])
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].unique().tolist()
        locs = []
        for d in dup[:3]:
            at = np.nonzero((ids == d).to_numpy())[0][:3]
            locs.append(f"{d!r} at lines {' and '.join(str(line_of[i]) for i in at)}")
        raise InputError(
            f"sample sheet {p.name!r} has {len(dup)} duplicated sample ID(s) in column "
            f"{chosen!r}: {'; '.join(locs)}; each sample must have one row: remove the "
            f"duplicates or choose another id_column (got duplicates={_fmt(dup)})", path=p)


# --------------------------------------------------------------------------------------------
# alignment


def _level_sort_key(levels: Sequence[str]):
    try:
        numeric = {lv: float(lv) for lv in levels}
    except ValueError:
        return sorted(levels), "sorted order"
    return sorted(levels, key=lambda lv: numeric[lv]), "numeric order"


def align_samples(expr: ExpressionData, sheet: pd.DataFrame | None, *, outcome: str,
                  case: str | None = None, allow_missing: bool = False) -> Aligned:
    """Match expression samples to a sample sheet and extract a two-level outcome.

    Parameters
    ----------
    expr : ExpressionData
        From :func:`read_expression`.
    sheet : pandas.DataFrame or None
        Indexed by sample ID (as :func:`read_sample_sheet` returns it). ``None``: use
        ``expr.obs`` (h5ad ``obs``, npz ``y``, GEO ``!Sample_`` annotations).
    outcome : str
        Column holding the binary outcome.
    case : str, optional
        The level modelled as 1. Default: the second level in sorted order (numeric order
        when every level is a number), which is what R's ``factor()`` and glmnet choose.
    allow_missing : bool
        Drop samples that are in only one of matrix and sheet, or whose outcome is missing,
        and record them, instead of raising.

    Returns
    -------
    Aligned

    Raises
    ------
    ValueError
        No sheet, unknown outcome column, no overlapping IDs, unmatched samples or missing
        outcomes (unless ``allow_missing``), not exactly two levels, ``case`` not a level.

    Warns
    -----
    DataWarning
        When the automatically chosen case level looks like a control group ("control",
        "normal", ...): pass ``case=`` to say which level is the case.
    """
    if not isinstance(expr, ExpressionData):
        raise TypeError(f"expr must be the ExpressionData returned by read_expression "
                        f"(got type={type(expr).__name__})")
    src = Path(expr.source).name
    sheet, sheet_name = _resolve_sheet(expr, sheet, src)
    sheet_ids = _check_sheet(sheet, sheet_name, outcome)
    labels_all = pd.Series(sheet[outcome].to_numpy(), index=sheet_ids)
    matrix_ids = [str(s) for s in expr.matrix.index]
    common, missing_in_sheet, missing_in_matrix = _match_samples(
        expr, matrix_ids, sheet_ids, sheet_name, src, allow_missing)
    labels, dropped = _outcome_labels(labels_all.loc[common], common, sheet_name, outcome,
                                      allow_missing)
    counts = labels.value_counts()
    levels, order_name = _level_sort_key(list(counts.index))
    level_text = ", ".join(f"{lv!r} ({counts[lv]})" for lv in levels)
    case_s, reason = _choose_case(levels, order_name, level_text, len(labels), outcome, case)
    control_s = levels[0] if case_s == levels[1] else levels[1]
    kept = list(labels.index)
    # The common case keeps every sample in order: share the matrix instead of copying it.
    X = expr.matrix if kept == matrix_ids else expr.matrix.loc[kept]
    y = pd.Series(labels.to_numpy(dtype=object).astype(str), index=X.index, name=outcome)
    logger.info("aligned %d samples (%s); case %r (%s)", len(kept), level_text, case_s, reason)
    return Aligned(X=X, y=y, case=case_s, control=control_s, case_reason=reason,
                   missing_in_sheet=missing_in_sheet if allow_missing else (),
                   missing_in_matrix=missing_in_matrix if allow_missing else (),
                   dropped_missing_outcome=dropped)


def _resolve_sheet(expr: ExpressionData, sheet: pd.DataFrame | None,
                   src: str) -> tuple[pd.DataFrame, str]:
    """(the sheet, or ``expr.obs`` when none is given; how messages name it)."""
    if sheet is None:
        if expr.obs is None:
            raise ValueError(
                f"no sample sheet was given and {src!r} carries no sample annotations (obs); "
                f"pass a sample sheet with the outcome column (CLI: --samples sheet.tsv) "
                f"(got sheet=None)")
        sheet, sheet_name = expr.obs, f"the sample annotations (obs) of {src!r}"
    else:
        if not isinstance(sheet, pd.DataFrame):
            raise TypeError(f"sheet must be a pandas DataFrame indexed by sample ID (as "
                            f"read_sample_sheet returns it) (got type={type(sheet).__name__})")
        sheet_name = f"sample sheet {Path(sheet.attrs['source']).name!r}" \
            if "source" in sheet.attrs else "the sample sheet"
    return sheet, sheet_name


def _check_sheet(sheet: pd.DataFrame, sheet_name: str, outcome: str) -> list[str]:
    """The sheet's sample IDs, after checking the outcome column exists and that no ID is
    duplicated and no ID or label holds a NUL byte."""
    columns = [str(c) for c in sheet.columns]
    id_column = sheet.attrs.get("id_column", sheet.index.name)
    if outcome not in sheet.columns and id_column is not None and str(outcome) == str(id_column):
        raise ValueError(
            f"column {outcome!r} is the sample-ID column of {sheet_name}; the outcome must be "
            f"another column: {_fmt(columns, 20)} (or, if {outcome!r} really is the outcome, name "
            f"the ID column with id_column=, CLI: --id-column) (got outcome={outcome!r})")
    if outcome not in sheet.columns:
        close = difflib.get_close_matches(outcome, columns, n=3, cutoff=0.5)
        lower = [c for c in columns if c.lower() == str(outcome).lower()]
        hint = f" Did you mean {_fmt(lower or close)}?" if (lower or close) else ""
        raise ValueError(f"{sheet_name} has no outcome column {outcome!r}; its columns are "
                         f"{_fmt(columns, 20)}.{hint} (got outcome={outcome!r})")
    sheet_ids = [str(s).strip() for s in sheet.index]
    if len(set(sheet_ids)) != len(sheet_ids):
        dup = pd.Index(sheet_ids)[pd.Index(sheet_ids).duplicated()].unique().tolist()
        raise ValueError(f"{sheet_name} has duplicated sample IDs {_fmt(dup)}; give each sample "
                         f"one row (got duplicates={_fmt(dup)})")
    for what, values in (("sample ID", sheet_ids),
                         (f"outcome {outcome!r} value", [str(v) for v in sheet[outcome]])):
        nul = [i for i, v in enumerate(values) if "\x00" in v]
        if nul:
            raise ValueError(f"{sheet_name}: {what} {values[nul[0]]!r} (row {nul[0] + 1}) holds a "
                             f"NUL byte, which is never part of a name; fix it "
                             f"(got {what.split()[0]}={values[nul[0]]!r})")
    return sheet_ids


def _match_samples(expr: ExpressionData, matrix_ids: list[str], sheet_ids: list[str],
                   sheet_name: str, src: str, allow_missing: bool
                   ) -> tuple[list[str], tuple[str, ...], tuple[str, ...]]:
    """(the samples in both, in matrix order; those only in the matrix; those only in the
    sheet); samples in only one are an error unless ``allow_missing``."""
    in_sheet = set(sheet_ids)
    in_matrix = set(matrix_ids)
    common = [s for s in matrix_ids if s in in_sheet]
    if not common:
        raise ValueError(_no_overlap_message(expr, sheet_ids, sheet_name, src))
    missing_in_sheet = tuple(s for s in matrix_ids if s not in in_sheet)
    missing_in_matrix = tuple(s for s in sheet_ids if s not in in_matrix)
    if (missing_in_sheet or missing_in_matrix) and not allow_missing:
        parts = []
        if missing_in_sheet:
            parts.append(f"{len(missing_in_sheet)} sample(s) of {src!r} are not in {sheet_name}: "
                         f"{_fmt(missing_in_sheet)}")
        if missing_in_matrix:
            parts.append(f"{len(missing_in_matrix)} sample(s) of {sheet_name} are not in "
                         f"{src!r}: {_fmt(missing_in_matrix)}")
        zeros = _leading_zero_pairs(missing_in_sheet, missing_in_matrix)
        if zeros:
            parts.append(_leading_zero_hint(zeros, src, sheet_name))
        raise ValueError(
            f"{'; '.join(parts)} ({len(common)} match). Fix the IDs, or pass allow_missing=True "
            f"(CLI: --allow-missing) to use only the {len(common)} samples in both "
            f"(got unmatched={len(missing_in_sheet) + len(missing_in_matrix)})")
    return common, missing_in_sheet, missing_in_matrix


def _outcome_labels(labels: pd.Series, common: list[str], sheet_name: str, outcome: str,
                    allow_missing: bool) -> tuple[pd.Series, tuple[str, ...]]:
    """(the labels as strings, without missing ones; the samples dropped for a missing label,
    an error unless ``allow_missing``)."""
    is_missing = (labels.isna() | labels.map(lambda v: isinstance(v, str) and not v.strip())
                  ).to_numpy(dtype=bool)
    dropped: tuple[str, ...] = ()
    if is_missing.any():
        names = [s for s, m in zip(common, is_missing) if m]
        if not allow_missing:
            raise ValueError(
                f"{sheet_name}: the outcome {outcome!r} is missing for {len(names)} sample(s): "
                f"{_fmt(names)}; fill it in, or pass allow_missing=True (CLI: --allow-missing) "
                f"to drop them (got missing={len(names)})")
        dropped = tuple(names)
        labels = labels[~is_missing]
    return labels.map(_label_str), dropped


def _choose_case(levels: list[str], order_name: str, level_text: str, n: int, outcome: str,
                 case: Any) -> tuple[str, str]:
    """(the case level, why): ``case`` when given, else the second level; exactly two levels."""
    if len(levels) != 2:
        what = "only one level" if len(levels) == 1 else f"{len(levels)} levels"
        fix = ("both groups must be present among the matched samples" if len(levels) == 1 else
               "keep two groups: filter the sample sheet to the two levels to compare, or "
               "merge levels into a new two-level column")
        raise ValueError(f"the outcome {outcome!r} must have exactly two levels but has {what} "
                         f"among the {n} matched samples: {level_text}; {fix} "
                         f"(got levels={_fmt(levels, 10)})")
    if case is not None:
        case_s = _label_str(case)
        if case_s not in levels:
            raise ValueError(f"case={case!r} is not a level of the outcome {outcome!r}; its "
                             f"levels are {level_text} (got case={case!r})")
        reason = "given by the user"
    else:
        case_s = levels[1]
        reason = (f"second level in {order_name}, as R's factor() and glmnet choose it")
        if case_s.lower() in CONTROL_LIKE:
            warnings.warn(
                f"the case level was chosen automatically as {case_s!r} ({reason}), but it "
                f"looks like a control group; coefficients will be for {case_s!r} vs "
                f"{levels[0]!r}. Pass case={levels[0]!r} (CLI: --case {levels[0]}) if that is "
                f"the case (got case={case_s!r})", DataWarning, stacklevel=3)
    return case_s, reason


def _label_str(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _strip_zeros(s: str) -> str | None:
    """``'007'`` -> ``'7'``: the ID a spreadsheet shows after reading a digits-only cell as a
    number; ``None`` for IDs that are not digits only."""
    t = s.strip()
    return (t.lstrip("0") or "0") if t.isdigit() else None


def _leading_zero_pairs(matrix_ids: Sequence[str], sheet_ids: Sequence[str]
                        ) -> list[tuple[str, str]]:
    """(matrix ID, sheet ID) pairs that differ only by leading zeros."""
    by_number: dict[str, str] = {}
    for s in sheet_ids:
        k = _strip_zeros(s)
        if k is not None:
            by_number.setdefault(k, s)
    pairs = []
    for m in matrix_ids:
        k = _strip_zeros(m)
        if k is not None and k in by_number and by_number[k] != m:
            pairs.append((m, by_number[k]))
    return pairs


def _leading_zero_hint(pairs: list[tuple[str, str]], src: str, sheet_name: str) -> str:
    shown = ", ".join(f"{m!r} vs {s!r}" for m, s in pairs[:3])
    return (f"{len(pairs)} sample ID(s) differ only by leading zeros ({src!r} vs {sheet_name}: "
            f"{shown}): a spreadsheet program such as Excel drops them when it reads an ID as a "
            f"number; restore them in the sheet (format the ID column as Text before typing or "
            f"importing, or re-export it from the original) so the IDs are identical")


def _no_overlap_message(expr: ExpressionData, sheet_ids: list[str], sheet_name: str,
                        src: str) -> str:
    matrix_ids = [str(s) for s in expr.matrix.index]
    features = {str(f) for f in expr.matrix.columns}
    hints = []
    if sum(s in features for s in sheet_ids) > 0:
        flip = "False" if expr.orientation == "samples_in_rows" else "True"
        hints.append(f"the sheet's IDs match the matrix's feature names, so the matrix looks "
                     f"transposed: read it with samples_in_rows={flip} (CLI: "
                     f"--samples-in-rows / --genes-in-rows)")
    zeros = _leading_zero_pairs(matrix_ids, sheet_ids)
    if zeros:
        hints.append(_leading_zero_hint(zeros, src, sheet_name))

    def norm(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())
    normalized = {norm(s) for s in sheet_ids}
    if any(norm(s) in normalized for s in matrix_ids):
        hints.append("some IDs match once case, spaces and punctuation are ignored "
                     "(e.g. 'S-1' vs 's_1'): make them identical")
    elif any(any(n and n in norm(m) for n in list(normalized)[:200]) for m in matrix_ids[:200]):
        hints.append("some matrix IDs contain sheet IDs plus a prefix or suffix (file paths, "
                     "'.bam', lane tags?): strip it")
    if not hints:
        hints.append("check that the sheet's ID column is right (id_column=, CLI: --id-column) "
                     "and that the matrix is not transposed (CLI: --samples-in-rows)")
    return (f"the sample IDs of {src!r} match nothing in {sheet_name}: matrix samples are "
            f"{_fmt(matrix_ids, 3)} ({expr.orientation.replace('_', ' ')}), sheet IDs are "
            f"{_fmt(sheet_ids, 3)}. Hint: {'; '.join(hints)} (got overlap=0)")
