"""Binary expression formats: Parquet, AnnData .h5ad and NumPy .npz (read without pickle)."""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .common import (ANNOTATION_COLUMNS, DEFAULT_MAX_BYTES, ExpressionData, InputError,
                     _check_file, _check_ids, _check_matrix_values, _decide_orientation, _finish,
                     _fmt, _human, _name_strings, _refuse_complex, _short)


def _read_parquet(p: Path, *, sample_ids: Any, samples_in_rows: bool | None) -> ExpressionData:
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:  # pragma: no cover
        raise ImportError("reading .parquet needs pyarrow: pip install 'jaxlasso[io]'") from e
    try:
        df = pd.read_parquet(p)
    except (OSError, ValueError) as e:
        raise InputError(f"{p.name!r} is not a readable Parquet file ({type(e).__name__}: "
                         f"{_short(str(e), 200)}); write it again with DataFrame.to_parquet "
                         f"(got path={str(p)!r})", path=p) from e
    notes: list[str] = []
    if not isinstance(df.index, pd.RangeIndex):
        notes.append("IDs from the stored index")
    elif df.shape[1] and not pd.api.types.is_numeric_dtype(df.dtypes.iloc[0]):
        notes.append(f"IDs from the first column {str(df.columns[0])!r}")
        df = df.set_index(df.columns[0])
    else:
        raise InputError(
            f"{p.name!r} has no ID column: its index is a plain 0..n-1 range and its first column "
            f"is numeric; store the gene (or sample) IDs as the index (df.to_parquet keeps it) or "
            f"as the first column (got first_column={str(df.columns[0]) if df.shape[1] else None!r})",
            path=p)
    annot = [c for c in df.columns if str(c).lower() in ANNOTATION_COLUMNS
             and not pd.api.types.is_numeric_dtype(df[c])]
    if annot:
        df = df.drop(columns=annot)
        notes.append(f"dropped annotation columns {_fmt([str(c) for c in annot])}")
    non_numeric = [str(c) for c in df.columns if not (pd.api.types.is_numeric_dtype(df[c])
                                                      or pd.api.types.is_bool_dtype(df[c]))]
    for c in df.columns:
        _refuse_complex(df[c].dtype, p.name, f"column {str(c)!r}")
    if non_numeric:
        raise InputError(
            f"{p.name!r} has non-numeric columns {_fmt(non_numeric)}; every column besides the "
            f"IDs must hold numbers: drop annotation columns or convert them "
            f"(got columns={_fmt(non_numeric)})", path=p)
    if df.shape[1] == 0:
        raise InputError(f"{p.name!r} has IDs but no value columns (got shape={df.shape})", path=p)
    if df.shape[0] == 0:
        raise InputError(f"{p.name!r} has columns but no rows (got shape={df.shape})", path=p)
    row_ids = _name_strings(df.index, p.name, "the ID column")
    col_ids = _name_strings(df.columns, p.name, "the column names")
    orientation = _decide_orientation(row_ids, col_ids, sample_ids, samples_in_rows, notes)
    row_kind, col_kind = (("gene ID", "sample ID") if orientation == "genes_in_rows"
                          else ("sample ID", "gene ID"))
    _check_ids(col_ids, col_kind, "among the column names", p.name,
               [f"column {j + 1}" for j in range(len(col_ids))])
    _check_ids(row_ids, row_kind, "among the row IDs", p.name,
               [f"row {i + 1}" for i in range(len(row_ids))])
    arr = df.to_numpy(dtype=np.float64, na_value=np.nan)
    if orientation == "genes_in_rows":
        arr = arr.T
        row_ids, col_ids = col_ids, row_ids
        notes.append("transposed to samples x genes")
    _check_matrix_values(arr, row_ids, col_ids, p.name)
    return _finish(pd.DataFrame(arr, index=row_ids, columns=col_ids), p, orientation, None, notes)


def _read_h5ad(p: Path, *, samples_in_rows: bool | None, max_bytes: int | None) -> ExpressionData:
    if samples_in_rows is False:
        raise ValueError(
            f"{p.name!r} is an AnnData file, whose layout is fixed: observations (samples) in "
            f"rows, variables (genes) in columns; leave samples_in_rows unset, or transpose it "
            f"with adata.T.write_h5ad(...) if obs and var are swapped (got samples_in_rows=False)")
    try:
        import anndata
    except ImportError as e:  # pragma: no cover
        raise ImportError("reading .h5ad needs anndata: pip install 'jaxlasso[io]'") from e
    try:
        adata = anndata.read_h5ad(p)
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{p.name!r} is not a readable AnnData .h5ad file ({type(e).__name__}: "
                         f"{_short(str(e), 200)}); write it again with adata.write_h5ad "
                         f"(got path={str(p)!r})", path=p) from e
    notes: list[str] = []
    if adata.X is None:
        raise InputError(
            f"{p.name!r} has no X matrix (layers: {_fmt(list(adata.layers.keys()))}); set "
            f"adata.X = adata.layers[...] and write it again (got X=None)", path=p)
    n, m = adata.shape
    if max_bytes is not None and n * m * 8 > max_bytes:
        raise InputError(
            f"{p.name!r} holds {n} x {m} values, {_human(n * m * 8)} as a dense float64 "
            f"matrix, more than the {_human(max_bytes)} limit; subset genes first or raise "
            f"max_bytes= (got shape=({n}, {m}))", path=p)
    X = adata.X
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        X = X.toarray()
        notes.append("densified sparse X")
    X = np.asarray(X)
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise InputError(f"{p.name!r}: X is not numeric (got dtype={X.dtype})", path=p)
    _refuse_complex(X.dtype, p.name, "X")
    samples = _name_strings(adata.obs_names, p.name, "obs_names")
    features = _name_strings(adata.var_names, p.name, "var_names")
    _check_ids(samples, "sample ID", "in obs_names", p.name, [f"obs row {i + 1}" for i in range(n)])
    _check_ids(features, "gene ID", "in var_names", p.name, [f"var row {j + 1}" for j in range(m)])
    arr = X.astype(np.float64)
    _check_matrix_values(arr, samples, features, p.name)
    obs = adata.obs.copy() if adata.obs.shape[1] else None
    return _finish(pd.DataFrame(arr, index=samples, columns=features), p, "samples_in_rows",
                   obs, notes)


def load_npz_safely(path: str | os.PathLike, *, max_bytes: int | None = DEFAULT_MAX_BYTES
                    ) -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` archive without ever unpickling.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    max_bytes : int or None
        Refuse files larger than this (default 8 GiB); ``None`` for no limit.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays, loaded eagerly.

    Raises
    ------
    InputError
        The file is missing, too large, not an ``.npz`` archive, or holds object arrays (which
        would need pickle).
    """
    p = _check_file(path, max_bytes, "npz file")
    try:
        loaded = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise InputError(f"{p.name!r} is not a readable .npz archive ({type(e).__name__}: "
                         f"{_short(str(e), 200)}); write it with numpy.savez or "
                         f"numpy.savez_compressed (got path={str(p)!r})", path=p) from e
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise InputError(f"{p.name!r} is a single .npy array, not an .npz archive; save X, genes "
                         f"and samples together with numpy.savez (got type=ndarray)", path=p)
    out: dict[str, np.ndarray] = {}
    with loaded:
        for key in loaded.files:
            try:
                out[key] = loaded[key]
            except ValueError as e:
                if "pickle" in str(e).lower() or "object" in str(e).lower():
                    raise InputError(
                        f"{p.name!r}: array {key!r} is an object array, and object arrays are "
                        f"not allowed (loading them would unpickle, which can run arbitrary "
                        f"code); save strings as a fixed-width array, e.g. "
                        f"np.asarray(names, dtype=str) (got key={key!r})", path=p) from e
                raise InputError(f"{p.name!r}: array {key!r} could not be read ({e}) "
                                 f"(got key={key!r})", path=p) from e
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
                raise InputError(f"{p.name!r}: array {key!r} is corrupt or truncated "
                                 f"({type(e).__name__}: {e}); write the file again "
                                 f"(got key={key!r})", path=p) from e
    return out


def _read_npz(p: Path, *, samples_in_rows: bool | None, max_bytes: int | None) -> ExpressionData:
    if samples_in_rows is False:
        raise ValueError(
            f"{p.name!r} is an .npz archive whose X is samples x genes by convention; leave "
            f"samples_in_rows unset, or save X.T (got samples_in_rows=False)")
    d = load_npz_safely(p, max_bytes=max_bytes)
    notes: list[str] = []
    if "X" not in d:
        raise InputError(f"{p.name!r} has no array 'X' (samples x genes); its arrays are "
                         f"{_fmt(sorted(d))}; save with numpy.savez(path, X=..., genes=..., "
                         f"samples=..., y=...) (got keys={_fmt(sorted(d))})", path=p)
    X = d["X"]
    if X.ndim != 2:
        raise InputError(f"{p.name!r}: X must be 2-D samples x genes (got shape={X.shape})", path=p)
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise InputError(f"{p.name!r}: X must be numeric (got dtype={X.dtype})", path=p)
    _refuse_complex(X.dtype, p.name, "array 'X'")
    n, m = X.shape
    names = {}
    for key, size, prefix in (("samples", n, "sample"), ("genes", m, "gene")):
        if key in d:
            arr = np.asarray(d[key]).ravel()
            if arr.shape[0] != size:
                raise InputError(
                    f"{p.name!r}: {key!r} has {arr.shape[0]} entries but X has {size} "
                    f"{'rows' if key == 'samples' else 'columns'}; they must match "
                    f"(got {key}={arr.shape[0]}, X.shape={X.shape})", path=p)
            names[key] = _name_strings(arr, p.name, f"array {key!r}")
        else:
            names[key] = [f"{prefix}_{i + 1}" for i in range(size)]
            notes.append(f"no {key!r} array: named them {prefix}_1..{prefix}_{size}")
    _check_ids(names["samples"], "sample ID", "in 'samples'", p.name,
               [f"samples[{i}]" for i in range(n)])
    _check_ids(names["genes"], "gene ID", "in 'genes'", p.name, [f"genes[{j}]" for j in range(m)])
    if "description" in d and d["description"].ndim == 0:
        desc = d["description"].item()
        if isinstance(desc, bytes):
            desc = desc.decode("utf-8", errors="replace")
        notes.append(f"description: {_short(str(desc), 200)}")
    obs = None
    if "y" in d:
        y = np.asarray(d["y"]).ravel()
        if y.shape[0] != n:
            raise InputError(f"{p.name!r}: 'y' has {y.shape[0]} entries but X has {n} rows "
                             f"(got y={y.shape[0]}, X.shape={X.shape})", path=p)
        if y.dtype.kind == "S":
            y = np.asarray(_name_strings(y, p.name, "array 'y'"), dtype=object)
        _refuse_complex(y.dtype, p.name, "array 'y'")
        nul = [i for i, v in enumerate(y) if isinstance(v, str) and "\x00" in v]
        if nul:
            raise InputError(f"{p.name!r}: outcome label y[{nul[0]}] holds a NUL byte; fix the "
                             f"labels (got y[{nul[0]}]={y[nul[0]]!r})", path=p)
        obs = pd.DataFrame({"y": y}, index=names["samples"])
    arr = X.astype(np.float64)
    _check_matrix_values(arr, names["samples"], names["genes"], p.name)
    return _finish(pd.DataFrame(arr, index=names["samples"], columns=names["genes"]), p,
                   "samples_in_rows", obs, notes)


# --------------------------------------------------------------------------------------------
# public readers

