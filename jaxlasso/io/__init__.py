"""Reading expression matrices and sample sheets, and aligning them (writing is :mod:`jaxlasso.output`).

Everything a user hands to jaxlasso from disk passes through this module, and every problem with
it is reported as an :class:`InputError` (a ``ValueError``) that says what is wrong, where (file,
line, column, gene or sample) and how to fix it, ending with the offending value as
``(got name=value)``.

Formats (chosen by extension, case-insensitive; gzip is recognised by its magic bytes too):

* ``.tsv``, ``.txt``, ``.tab``, ``.csv`` (each optionally ``.gz``): text tables. The default
  orientation is *genes in rows, samples in columns, first column = gene IDs* (GEO series
  matrices, featureCounts / HTSeq / DESeq2 exports). The delimiter is sniffed from the header.
  featureCounts ``#`` comment lines and annotation columns (Chr, Start, End, Strand, Length) are
  dropped; of a GEO series-matrix file only the table between ``!series_matrix_table_begin`` and
  ``!series_matrix_table_end`` is read, and its ``!Sample_`` lines become ``obs``.
* ``.parquet``: a table with IDs in the (stored) index or the first string column.
* ``.h5ad``: AnnData (observations = samples, variables = features; sparse ``X`` is densified).
* ``.npz``: arrays ``X`` (samples x genes), ``genes``, ``samples`` and optional ``y``, read
  without pickle.

Missing values are never imputed or silently turned into NaN: a cell that is not a finite number
is an error, so the user decides how to impute.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .binary import _read_h5ad, _read_npz, _read_parquet, load_npz_safely
from .common import (SUPPORTED, TEXT_SUFFIXES, Aligned, DEFAULT_MAX_BYTES, ExpressionData,
                     InputError, _check_file, _suffixes)
from .common import _gzip_fault  # noqa: F401  (tests locate gzip faults through jaxlasso.io)
from .sheets import align_samples, read_sample_sheet
from .text import _RowBlocks  # noqa: F401  (tests and benchmarks reach it through jaxlasso.io)
from .text import _read_text

__all__ = [
    "Aligned",
    "ExpressionData",
    "InputError",
    "align_samples",
    "load_npz_safely",
    "read_expression",
    "read_sample_sheet",
]


def read_expression(path: str | os.PathLike, *, sample_ids: Iterable[Any] | pd.DataFrame | None = None,
                    samples_in_rows: bool | None = None,
                    max_bytes: int | None = DEFAULT_MAX_BYTES) -> ExpressionData:
    """Read an expression matrix (counts or log-expression) into samples x features.

    Parameters
    ----------
    path : path-like
        ``.tsv``/``.txt``/``.tab``/``.csv`` (optionally ``.gz``), ``.parquet``, ``.h5ad`` or
        ``.npz``. Text tables default to genes in rows, samples in columns, gene IDs in the
        first column.
    sample_ids : iterable of str, or DataFrame, optional
        The sample sheet's IDs (a DataFrame: its index). When given, samples are taken to be in
        rows if the first column matches more of them than the header does.
    samples_in_rows : bool, optional
        Force the orientation of a text or Parquet table (``True``: one row per sample).
    max_bytes : int or None
        Refuse files (and decompressed text) larger than this; default 8 GiB, ``None``: no limit.

    Returns
    -------
    ExpressionData
        ``matrix`` is float64 samples x features with string IDs; ``notes`` lists what was done.

    Raises
    ------
    InputError
        Missing, empty, truncated, corrupt or malformed file; duplicated IDs; cells that are not
        finite numbers. The message names the file, line, column, gene and sample.
    """
    if isinstance(sample_ids, pd.DataFrame):
        sample_ids = sample_ids.index
    if samples_in_rows is not None and not isinstance(samples_in_rows, (bool, np.bool_)):
        raise TypeError(f"samples_in_rows must be True, False or None "
                        f"(got samples_in_rows={samples_in_rows!r})")
    p = _check_file(path, max_bytes, "expression file")
    ext = _suffixes(p)
    if ext in (".parquet",):
        return _read_parquet(p, sample_ids=sample_ids, samples_in_rows=samples_in_rows)
    if ext == ".h5ad":
        return _read_h5ad(p, samples_in_rows=samples_in_rows, max_bytes=max_bytes)
    if ext == ".npz":
        return _read_npz(p, samples_in_rows=samples_in_rows, max_bytes=max_bytes)
    if ext in TEXT_SUFFIXES or ext in tuple(s + ".gz" for s in TEXT_SUFFIXES):
        if p.stat().st_size == 0:
            raise InputError(f"{p.name!r} is empty (0 bytes); give the file that holds the "
                             f"expression table (got size=0)", path=p)
        return _read_text(p, sample_ids=sample_ids, samples_in_rows=samples_in_rows,
                          max_bytes=max_bytes)
    hint = ""
    if ext in (".xlsx", ".xls"):
        hint = " Excel workbooks are not read: save the sheet as tab-delimited text or CSV."
    elif ext in (".rds", ".rdata", ".rda"):
        hint = " R objects are not read: in R, write.csv(counts, 'counts.csv') or save the matrix as TSV."
    raise InputError(
        f"{p.name!r} has an unsupported extension {ext or '(none)'!r}; supported: "
        f"{', '.join(SUPPORTED)}.{hint} Rename the file if it is one of these formats "
        f"(got extension={ext!r})", path=p)

