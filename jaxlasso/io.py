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

import contextlib
import csv
import difflib
import gzip
import io as _stdio
import logging
import math
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from ._validation import MAX_ABS_VALUE
from .exceptions import DataWarning

logger = logging.getLogger("jaxlasso")

__all__ = [
    "Aligned",
    "ExpressionData",
    "InputError",
    "align_samples",
    "load_npz_safely",
    "read_expression",
    "read_sample_sheet",
]

DEFAULT_MAX_BYTES = 8 * 1024**3
"""Files (or decompressed text) larger than this are refused unless ``max_bytes`` is raised."""

TEXT_SUFFIXES = (".tsv", ".txt", ".tab", ".csv")
SUPPORTED = (".tsv", ".txt", ".tab", ".csv", ".tsv.gz", ".txt.gz", ".tab.gz", ".csv.gz",
             ".parquet", ".h5ad", ".npz")

# Annotation columns that sit between the ID column and the values (featureCounts; GCT; common
# DESeq2 / biomaRt exports). Only a leading run right after the ID column is dropped.
ANNOTATION_COLUMNS = frozenset({
    "chr", "start", "end", "strand", "length",
    "description", "gene_name", "genename", "gene_symbol", "symbol", "gene_biotype", "biotype",
    "gene_type",
})
# HTSeq-count and STAR ReadsPerGene summary rows: not genes.
COUNTER_SUMMARY_ROWS = frozenset({
    "__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique",
    "N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous",
})
SAMPLE_ID_COLUMNS = ("sample", "sample_id", "sampleid", "id", "run", "gsm", "geo_accession",
                     "name")
MISSING_MARKERS = frozenset({
    "na", "nan", "n/a", "#n/a", "null", "none", "nil", "missing", "-", "--", "\u2014", "\u2013",
    ".", "?", "#value!", "#div/0!", "#num!", "#ref!",
})
CONTROL_LIKE = frozenset({"control", "ctrl", "normal", "healthy", "wt", "wildtype", "wild_type",
                          "wild-type", "untreated", "vehicle", "mock", "reference", "baseline"})
_GENE_ID = re.compile(r"^(ENS[A-Z]*[GT]\d{6,}(\.\d+)?"  # Ensembl genes / transcripts
                      r"|AFFX-.*|\d+(_[a-z])?_at|[A-Za-z0-9.-]+_(s_|x_|a_|i_|f_|g_|r_)?at)$")  # Affymetrix
_DECIMAL_COMMA = re.compile(r"^[+-]?\d{1,3}(\.\d{3})*,\d+$|^[+-]?\d+,\d+$")
_INF = re.compile(r"^[+-]?(inf|infinity)$", re.IGNORECASE)
_ALIGNMENT_SUFFIX = re.compile(r"\.(bam|sam|cram)$", re.IGNORECASE)
_MAX_EXAMPLES = 5


class InputError(ValueError):
    """A problem with an input file or with how inputs fit together.

    A ``ValueError`` (callers may catch either). The message says what is wrong, where, and how
    to fix it; ``path``, ``line`` and ``column`` carry the location when one is known.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None,
                 line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class ExpressionData:
    """An expression matrix read from disk, samples in rows."""

    matrix: pd.DataFrame
    """(n_samples, n_features) float64; index = sample IDs (str), columns = feature IDs (str)."""
    source: str
    """The path it was read from."""
    orientation: str
    """How the file was laid out: ``"genes_in_rows"`` or ``"samples_in_rows"``."""
    obs: pd.DataFrame | None = None
    """Sample annotations carried by the file (h5ad ``obs``, npz ``y``, GEO ``!Sample_`` lines),
    indexed by sample ID; ``None`` when the file has none."""
    notes: tuple[str, ...] = ()
    """What was done while reading (e.g. "transposed", "read UTF-8 BOM")."""

    @property
    def samples(self) -> list[str]:
        return [str(s) for s in self.matrix.index]

    @property
    def features(self) -> list[str]:
        return [str(f) for f in self.matrix.columns]


@dataclass(frozen=True)
class Aligned:
    """An expression matrix and a binary outcome on the same samples, in the same order."""

    X: pd.DataFrame
    """(n, p) samples x features, rows in the expression matrix's order."""
    y: pd.Series
    """Outcome labels as strings, indexed like ``X``."""
    case: str
    """The level modelled as 1 (the "case")."""
    control: str
    """The other level (coded 0)."""
    case_reason: str
    """Why ``case`` is the case level."""
    missing_in_sheet: tuple[str, ...] = ()
    """Samples of the matrix that the sheet lacks (dropped; only with ``allow_missing``)."""
    missing_in_matrix: tuple[str, ...] = ()
    """Samples of the sheet that the matrix lacks (ignored; only with ``allow_missing``)."""
    dropped_missing_outcome: tuple[str, ...] = ()
    """Samples dropped because their outcome is missing (only with ``allow_missing``)."""

    @property
    def y01(self) -> np.ndarray:
        """The outcome as float 0/1 (1 = ``case``)."""
        return (self.y.to_numpy() == self.case).astype(np.float64)


# --------------------------------------------------------------------------------------------
# small helpers


def _fmt(values: Iterable[Any], limit: int = _MAX_EXAMPLES) -> str:
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _short(text: str, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _suffixes(path: Path) -> str:
    """The lower-cased compound extension: '.tsv.gz', '.csv', '.h5ad', ..."""
    name = path.name.lower()
    for ext in sorted(SUPPORTED + (".gz",), key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return path.suffix.lower()


def _check_file(path: str | os.PathLike, max_bytes: int | None, what: str = "file") -> Path:
    p = Path(path)
    if not p.exists():
        hint = ""
        if p.parent.is_dir():
            close = difflib.get_close_matches(p.name, [c.name for c in p.parent.iterdir()], n=3)
            if close:
                hint = f" Similar names in {p.parent}: {_fmt(close)}."
        raise InputError(f"{what} {str(p)!r} does not exist; check the path and the working "
                         f"directory ({os.getcwd()}).{hint} (got path={str(p)!r})", path=p)
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r} is a directory, not a file; give the path of the "
                         f"file inside it (got path={str(p)!r})", path=p)
    size = p.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise InputError(
            f"{what} {p.name!r} is {_human(size)}, more than the {_human(max_bytes)} limit; "
            f"reading it could exhaust memory. Filter it first (e.g. keep expressed genes) or "
            f"raise the limit with max_bytes= (got size={size} bytes)", path=p)
    return p


def _sniff_bytes(p: Path) -> tuple[bytes, bool]:
    """(first bytes of the content, decompressed when gzip; whether the file is gzip)."""
    with open(p, "rb") as f:
        head = f.read(8192)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as g:
                return g.read(8192), True
        except (EOFError, OSError, zlib.error) as e:
            raise _corrupt_gzip(p, e) from e
    return head, False


def _gzip_fault(p: Path, chunk: int = 4096) -> tuple[int, int, str] | None:
    """Where a gzip file breaks: (compressed byte offset, decompressed line, what failed), or
    ``None`` when every member decompresses and passes its CRC and length check.

    Corruption inside a deflate stream often decompresses to garbage for a while before zlib
    notices (or only the CRC at the end does), so the parser may first see a "ragged line";
    this pass tells the two apart and locates the break to within ``chunk`` compressed bytes.
    """
    lines = 1
    offset = 0  # compressed bytes fed before the current chunk
    d = zlib.decompressobj(wbits=31)
    started = False  # the current member has received input
    with open(p, "rb") as f:
        while data := f.read(chunk):
            while data:
                started = True
                try:
                    out = d.decompress(data)
                except zlib.error as e:
                    return offset, lines, str(e)
                lines += out.count(b"\n")
                data = b""
                if d.eof:  # end of one member; gzip allows several, and trailing zero padding
                    rest = d.unused_data
                    d, started = zlib.decompressobj(wbits=31), False
                    if rest.strip(b"\x00"):
                        data = rest
            offset += chunk
    if started:
        return p.stat().st_size, lines, "the file ends inside the compressed stream (truncated)"
    return None


def _corrupt_gzip(p: Path, e: BaseException) -> InputError:
    where = ""
    with contextlib.suppress(OSError):
        fault = _gzip_fault(p)
        if fault is not None:
            offset, line, what = fault
            size = p.stat().st_size
            span = (f"at its end (byte {size:,})" if offset >= size else
                    f"within compressed bytes {offset:,}-{min(offset + 4096, size):,} of {size:,}")
            where = f"; it breaks {span}, at decompressed line {line} ({what})"
    return InputError(
        f"{p.name!r} is a corrupt or truncated gzip file ({type(e).__name__}: {e}){where}; "
        f"download or copy it again and check it with `gzip -t {p.name}` "
        f"(got path={str(p)!r})", path=p)


def _binary_kind(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return ("a zip archive (an Excel .xlsx workbook is one); in Excel use "
                "File > Save As > 'Text (Tab delimited)' or CSV")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Excel .xls workbook; save it as tab-delimited text or CSV"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file; if it is an AnnData file, name it .h5ad"
    if head.startswith(b"PAR1"):
        return "a Parquet file; name it .parquet"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array; save X, genes and samples together with numpy.savez"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if b"\x00" in head:
        return _BINARY_NUL
    return None


_BINARY_NUL = "binary data (it contains NUL bytes)"


def _nul_in_text(data: bytes, p: Path, what: str) -> InputError | None:
    """A text file with a few stray NUL bytes: an error naming the line and field, so that a
    NUL in a gene, sample or outcome name is not reported as "binary data". ``None`` when
    ``data`` (the first bytes) does not look like text with a stray NUL."""
    pos = data.find(b"\x00")
    if pos < 0 or data.count(b"\x00") > 16:
        return None
    rest = data.replace(b"\x00", b"")
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(rest) - 4:  # not a character cut off at the end of the sample
            return None
        text = rest[: e.start].decode("utf-8")
    if sum(ch < " " and ch not in "\t\r\n" for ch in text) > 16:
        return None  # other control characters: binary after all
    line_no = data[:pos].count(b"\n") + 1
    line_start = data.rfind(b"\n", 0, pos) + 1
    line_end = data.find(b"\n", pos)
    line = data[line_start: line_end if line_end >= 0 else len(data)].decode("utf-8", "replace")
    return InputError(
        f"{what} {p.name!r} line {line_no} holds a NUL byte (character {pos - line_start + 1} of "
        f"the line); a NUL is never part of a name or a number: fix that line, or export the "
        f"file again as UTF-8 text (got line={_short(line.rstrip(), 120)!r})", path=p,
        line=line_no)


def _name_strings(values: Iterable[Any], file: str, what: str) -> list[str]:
    """Names as ``str``: bytes (HDF5 / R exports store names as ``dtype S``) decoded as UTF-8.

    ``str(b'KCTD2')`` would be ``"b'KCTD2'"`` in every output, so bytes are decoded, and bytes
    that are not UTF-8 are an error naming ``what`` (the array, index or column) and the entry.
    """
    out = []
    for i, v in enumerate(values):
        if isinstance(v, (bytes, np.bytes_)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"{file!r}: {what} entry {i} is not valid UTF-8 text ({e.reason} at byte "
                    f"{e.start}); write the names as UTF-8 (in Python: decode them with their "
                    f"real encoding, e.g. names.astype(str) after .decode('latin-1')) "
                    f"(got {what}[{i}]={bytes(v)!r})") from None
        out.append(str(v).strip())
    return out


def _refuse_complex(dtype: np.dtype, file: str, what: str) -> None:
    """Complex values would lose their imaginary part in float64: refuse them."""
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(
            f"{file!r}: {what} holds complex numbers; expression values must be real: keep the "
            f"real part (X.real) or the modulus (abs(X)) yourself if that is what you mean "
            f"(got dtype={dtype})")


# --------------------------------------------------------------------------------------------
# text tables


class _Lines:
    """Iterates the lines of a text stream, counting physical line numbers and characters."""

    def __init__(self, stream: Iterable[str], limit: int | None, name: str) -> None:
        self._it = iter(stream)
        self.lineno = 0
        self.chars = 0
        self._limit = limit
        self._name = name
        self._pushed: list[tuple[str, int]] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._pushed:
            line, self.lineno = self._pushed.pop()
            return line
        line = next(self._it)
        self.lineno += 1
        self.chars += len(line)
        if self._limit is not None and self.chars > self._limit:
            raise InputError(
                f"{self._name!r} holds more than {_human(self._limit)} of text once "
                f"decompressed (stopped at line {self.lineno}); filter it first or raise "
                f"max_bytes= (got max_bytes={self._limit})")
        return line

    def push(self, line: str, lineno: int) -> None:
        """Put back ``line`` (physical line ``lineno``): the next ``next()`` returns it again."""
        self._pushed.append((line, lineno))
        self.lineno = lineno - 1


def _split(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim, skipinitialspace=(delim == " ")), [])


def _sniff_delimiter(header: str, first_data: str | None, ext: str,
                     notes: list[str], name: str, header_line: int) -> str:
    preferred = "," if ext.startswith(".csv") else "\t"
    order = [preferred] + [d for d in ("\t", ",", ";") if d != preferred]
    counts = {d: len(_split(header, d)) for d in order}
    best = max(order, key=lambda d: counts[d])  # first of the maximal ones: extension wins ties
    if counts[best] == 1 and first_data is not None:
        data_counts = {d: len(_split(first_data, d)) for d in order}
        best = max(order, key=lambda d: data_counts[d])
        if data_counts[best] == 1:
            best = order[0]
        counts = {d: max(counts[d], data_counts[d]) for d in order}
    if counts[best] == 1:
        if len(_split(header, " ")) > 1:
            notes.append("space-separated (as R's write.table writes by default)")
            return " "
        punct = Counter(ch for ch in header if not ch.isalnum() and ch not in " _.\"'\r\n")
        guess = f" The most frequent punctuation in the header is {punct.most_common(1)[0][0]!r}." \
            if punct else ""
        raise InputError(
            f"only one column was found in {name!r} (header at line {header_line}); is the "
            f"delimiter something other than tab, comma or semicolon?{guess} Save the table "
            f"tab- or comma-separated with gene IDs in the first column "
            f"(got header={_short(header.rstrip())!r})", line=header_line)
    label = {"\t": "tab", ",": "comma", ";": "semicolon"}[best]
    if ext.startswith(".csv") and best != ",":
        notes.append(f"named .csv but {label}-separated; read as {label}-separated")
    elif ext.startswith((".tsv", ".tab")) and best != "\t":
        notes.append(f"named {ext} but {label}-separated; read as {label}-separated")
    return best


def _classify(raw: str) -> str:
    text = raw.strip()
    if text == "":
        return "empty"
    if text.lower() in MISSING_MARKERS:
        return "missing"
    if _INF.match(text):
        return "infinite"
    if _DECIMAL_COMMA.match(text):
        return "decimal comma"
    try:
        value = float(text)
    except ValueError:
        return "text"
    return "infinite" if math.isinf(value) else "missing"


_HINTS = {
    "empty": "empty cells are missing values: fill them in or drop those genes/samples",
    "missing": ("missing-value markers (NA, NaN, ...) must be resolved by you: impute them "
                "(e.g. with 0 for counts, or a per-gene mean) or drop those genes/samples; "
                "jaxlasso does not guess"),
    "infinite": "infinite values usually come from log(0): use log(x + 1) or drop those genes",
    "decimal comma": ("decimal commas ('1,5'): re-export with a decimal point, or replace ',' "
                      "with '.' in the number cells"),
    "text": ("text in a number cell: fix or remove it (a misplaced annotation column or a "
             "shifted row?)"),
    "too large": (f"values beyond {MAX_ABS_VALUE:.0e} in magnitude are not expression levels "
                  f"(their squares overflow float64): a unit or export error? fix or drop them"),
}
_LABELS = {"empty": "empty", "missing": "missing-value marker", "infinite": "infinite",
           "decimal comma": "decimal comma", "text": "not a number",
           "too large": "too large"}


@dataclass
class _BadCells:
    count: int = 0
    kinds: Counter | None = None
    examples: list | None = None  # (line, column, row_id, col_id, raw, kind)

    def add(self, line: int | None, column: int | None, row_id: str, col_id: str, raw: str,
            kind: str) -> None:
        if self.kinds is None:
            self.kinds, self.examples = Counter(), []
        self.count += 1
        self.kinds[kind] += 1
        if len(self.examples) < _MAX_EXAMPLES:
            self.examples.append((line, column, row_id, col_id, raw, kind))

    def raise_if_any(self, name: str, orientation: str, total: int) -> None:
        if not self.count:
            return
        kinds = ", ".join(f"{n} {_LABELS[k]}" for k, n in self.kinds.most_common())
        parts = []
        for line, column, row_id, col_id, raw, kind in self.examples:
            gene, sample = (row_id, col_id) if orientation == "genes_in_rows" else (col_id, row_id)
            where = f"line {line}, column {column}, " if line is not None else ""
            parts.append(f"{where}gene {gene!r}, sample {sample!r}: {raw!r} ({_LABELS[kind]})")
        hints = "; ".join(_HINTS[k] for k in self.kinds)
        first = self.examples[0]
        raise InputError(
            f"{name!r} has {self.count} of {total} value cells that are not finite numbers"
            f"{' of a usable size' if 'too large' in self.kinds else ''} "
            f"({kinds}). First: {'; '.join(parts)}. To fix: {hints} "
            f"(got value={first[4]!r})", line=first[0], column=first[1])


def _convert_row(fields: list[str], line: int, row_id: str, col_ids: Sequence[str],
                 columns: Sequence[int], bad: _BadCells) -> np.ndarray:
    try:
        values = np.array(fields, dtype=np.float64)
        if np.isfinite(values).all() and np.abs(values).max(initial=0.0) <= MAX_ABS_VALUE:
            return values
    except ValueError:
        values = np.empty(len(fields))
    for j, raw in enumerate(fields):
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        values[j] = v
        if not math.isfinite(v):
            bad.add(line, columns[j] + 1, row_id, col_ids[j], raw, _classify(raw))
        elif abs(v) > MAX_ABS_VALUE:
            bad.add(line, columns[j] + 1, row_id, col_ids[j], raw, "too large")
    return values


def _decide_orientation(row_ids: Sequence[str], col_ids: Sequence[str],
                        sample_ids: Any, samples_in_rows: bool | None,
                        notes: list[str]) -> str:
    if samples_in_rows is not None:
        notes.append(f"orientation set by samples_in_rows={samples_in_rows}")
        return "samples_in_rows" if samples_in_rows else "genes_in_rows"
    if sample_ids is not None:
        ids = {str(s).strip() for s in sample_ids}
        in_rows = sum(r in ids for r in row_ids)
        in_cols = sum(c in ids for c in col_ids)
        if in_rows > in_cols:
            notes.append(f"samples in rows: {in_rows} of the first column's {len(row_ids)} IDs "
                         f"are sample IDs of the sample sheet (header: {in_cols})")
            return "samples_in_rows"
        if in_cols == 0:
            notes.append("no IDs matched the sample sheet in either orientation; assumed genes "
                         "in rows")
        return "genes_in_rows"
    if len(col_ids) >= 2:
        col_gene = sum(bool(_GENE_ID.match(c)) for c in col_ids) / len(col_ids)
        row_gene = sum(bool(_GENE_ID.match(r)) for r in row_ids) / max(len(row_ids), 1)
        if col_gene >= 0.9 and row_gene < 0.1:
            notes.append(f"samples in rows: the header holds gene IDs (e.g. {col_ids[0]!r}) and "
                         f"the first column does not")
            return "samples_in_rows"
    return "genes_in_rows"


def _check_ids(ids: Sequence[str], kind: str, place: str, name: str,
               where: Sequence[str]) -> None:
    """Empty, duplicated or NUL-holding IDs -> InputError. ``where[i]`` locates ``ids[i]``."""
    nul = [i for i, s in enumerate(ids) if "\x00" in s]
    if nul:
        raise InputError(
            f"{name!r} has {len(nul)} {kind}(s) {place} holding a NUL byte, first at "
            f"{where[nul[0]]}; a NUL is never part of a name (the file was exported as binary or "
            f"in another encoding such as UTF-16): fix that name or export the table again as "
            f"UTF-8 text (got id={ids[nul[0]]!r})")
    empty = [i for i, s in enumerate(ids) if s == ""]
    if empty:
        raise InputError(
            f"{name!r} has {len(empty)} empty {kind}(s) {place}, first at {where[empty[0]]}; "
            f"every {kind} must be non-empty: fill it in or delete that row/column "
            f"(got id='')")
    index = pd.Index(ids)
    if index.has_duplicates:
        dup = index[index.duplicated()].unique().tolist()
        locations = []
        for d in dup[:3]:
            locs = [where[i] for i, s in enumerate(ids) if s == d][:3]
            locations.append(f"{d!r} at {' and '.join(locs)}")
        raise InputError(
            f"{name!r} has {len(dup)} duplicated {kind}(s) {place}: {'; '.join(locations)}; "
            f"each {kind} must appear once: merge or sum the duplicates, or rename them (e.g. "
            f"append a suffix) (got duplicates={_fmt(dup)})")


def _open_text(p: Path, compressed: bool, encoding: str):
    raw = gzip.open(p, "rb") if compressed else open(p, "rb")
    return _stdio.TextIOWrapper(raw, encoding=encoding, newline=None)


def _read_text(p: Path, *, sample_ids: Any, samples_in_rows: bool | None,
               max_bytes: int | None) -> ExpressionData:
    head, compressed = _sniff_bytes(p)
    ext = _suffixes(p)
    notes: list[str] = []
    if compressed and not ext.endswith(".gz"):
        notes.append("gzip-compressed although not named .gz; decompressed")
    if not compressed and ext.endswith(".gz"):
        notes.append("named .gz but not gzip-compressed; read as plain text")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
        notes.append("read UTF-16 (Excel 'Unicode text')")
    else:
        kind = _binary_kind(head)
        if kind == _BINARY_NUL:
            err = _nul_in_text(head, p, "expression file")
            if err is not None:
                raise err
        if kind is not None:
            raise InputError(f"{p.name!r} is not a text table: it looks like {kind} "
                             f"(got first_bytes={head[:8]!r})", path=p)
        if head.startswith(b"\xef\xbb\xbf"):
            encoding = "utf-8-sig"
            notes.append("read UTF-8 BOM")
        else:
            encoding = "utf-8"
    if b"\r\n" in head:
        notes.append("Windows CRLF line endings")
    try:
        try:
            return _parse_text(p, compressed, encoding, ext, notes, sample_ids=sample_ids,
                               samples_in_rows=samples_in_rows, max_bytes=max_bytes)
        except UnicodeDecodeError as e:
            notes.append(f"not valid UTF-8 ({e.reason} at byte {e.start}); read as Latin-1")
            return _parse_text(p, compressed, "latin-1", ext, notes, sample_ids=sample_ids,
                               samples_in_rows=samples_in_rows, max_bytes=max_bytes)
    except InputError as e:
        if compressed:
            # A break inside the deflate stream can first surface as garbage text (a ragged
            # line, a bad cell): report the corrupt file, not the symptom.
            with contextlib.suppress(OSError):
                if _gzip_fault(p) is not None:
                    raise _corrupt_gzip(p, e) from e
        if e.path is None:
            e.path = str(p)
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _corrupt_gzip(p, e) from e
    except OSError as e:
        if compressed:
            raise _corrupt_gzip(p, e) from e
        raise InputError(f"could not read {p.name!r}: {e} (got path={str(p)!r})", path=p) from e


def _parse_geo_sample_lines(lines: list[list[str]]) -> pd.DataFrame | None:
    """GEO ``!Sample_*`` lines -> one row per sample; "key: value" characteristics -> columns."""
    ids = next(([v.strip() for v in f[1:]] for f in lines if f[0] == "!Sample_geo_accession"),
               None)
    if not ids:
        return None
    n = len(ids)
    cols: dict[str, list[str | None]] = {}
    for fields in lines:
        key, values = fields[0][len("!Sample_"):], [v.strip() for v in fields[1:]]
        if key == "geo_accession" or len(values) != n:
            continue
        if key.startswith("characteristics"):
            for i, v in enumerate(values):
                k, sep, val = v.partition(":")
                col = k.strip() if sep and k.strip() else key
                cols.setdefault(col, [None] * n)
                cols[col][i] = (val if sep else v).strip() or cols[col][i]
            continue
        base, k = key, 2
        while key in cols:
            key = f"{base}_{k}"
            k += 1
        cols[key] = [v or None for v in values]
    return pd.DataFrame(cols, index=pd.Index(ids), dtype=object)


def _parse_text(p: Path, compressed: bool, encoding: str, ext: str, notes: list[str], *,
                sample_ids: Any, samples_in_rows: bool | None,
                max_bytes: int | None) -> ExpressionData:
    name = p.name
    notes = list(notes)
    with _open_text(p, compressed, encoding) as stream:
        lines = _Lines(stream, max_bytes, name)
        # ---- preamble: '#' comments (featureCounts), '!' metadata (GEO series matrix)
        comments: list[tuple[str, int]] = []
        geo = False
        geo_samples: list[list[str]] = []
        header = None
        header_line = 0
        for line in lines:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("^"):
                raise InputError(
                    f"{name!r} looks like a GEO SOFT file (line {lines.lineno} starts with "
                    f"'^'); download the series matrix (GSExxx_series_matrix.txt.gz) instead "
                    f"(got line={_short(stripped)!r})", line=lines.lineno)
            if stripped.startswith("!"):
                geo = True
                if stripped.lower().startswith("!series_matrix_table_begin"):
                    for nxt in lines:
                        if nxt.strip():
                            header, header_line = nxt, lines.lineno
                            break
                    break
                if stripped.startswith("!Sample_"):
                    geo_samples.append(_split(stripped, "\t"))
                elif stripped.startswith("!Series_title"):
                    title = _split(stripped, "\t")
                    if len(title) > 1:
                        notes.append(f"GEO series: {_short(title[1], 100)}")
                continue
            if geo:
                continue  # stray text in the GEO preamble
            if stripped.startswith("#"):
                comments.append((line, lines.lineno))
                continue
            header, header_line = line, lines.lineno
            break
        if header is None:
            if geo:
                raise InputError(
                    f"{name!r} has GEO '!' metadata lines but no '!series_matrix_table_begin' "
                    f"table; the file is incomplete or holds no expression values (some GEO "
                    f"series keep them in supplementary files) (got lines={lines.lineno})")
            raise InputError(
                f"{name!r} is empty (no header or data{', only # comment lines' if comments else ''}"
                f"); give the file that holds the expression table (got lines={lines.lineno})")
        if geo:
            notes.append("GEO series matrix: read the table between !series_matrix_table_begin "
                         "and !series_matrix_table_end")
        # ---- first data line (for delimiter sniffing and '#header' detection)
        first_data, first_data_line = None, 0
        for nxt in lines:
            if nxt.strip():
                first_data, first_data_line = nxt, lines.lineno
                break
        if first_data is not None:
            lines.push(first_data, first_data_line)
        if first_data is not None and geo and first_data.strip().lower().startswith(
                "!series_matrix_table_end"):
            first_data = None
        delim = _sniff_delimiter(header, first_data, ext, notes, name, header_line)
        if comments:
            last, last_no = comments[-1]
            candidate = _split(last.strip().lstrip("#"), delim)
            as_fields = _split(header, delim)
            if (len(candidate) > 1 and len(candidate) == len(as_fields)
                    and first_data is not None and _all_numbers(as_fields[1:])):
                # "#gene\tS1\tS2": the header itself starts with '#'
                lines.push(header, header_line)
                header, header_line = last.strip().lstrip("#"), last_no
                comments = comments[:-1]
                notes.append("header line starts with '#'")
            if comments:
                fc = any("featurecounts" in c.lower() for c, _ in comments)
                notes.append(f"skipped {len(comments)} '#' comment line(s)"
                             + (" (featureCounts)" if fc else ""))
        head_fields = [h.strip() for h in _split(header, delim)]
        # trailing empty header fields (a trailing delimiter on every line)
        n_trailing = 0
        while len(head_fields) - n_trailing > 2 and head_fields[-1 - n_trailing] == "":
            n_trailing += 1
        if n_trailing:
            head_fields = head_fields[: len(head_fields) - n_trailing]
            notes.append(f"ignored {n_trailing} trailing empty column(s)")
        n_head = len(head_fields)
        # leading annotation columns after the ID column
        k = 1
        while k < n_head and head_fields[k].lower() in ANNOTATION_COLUMNS:
            k += 1
        dropped_annot = head_fields[1:k]
        # ---- data rows
        reader = csv.reader(_data_lines(lines, geo), delimiter=delim,
                            skipinitialspace=(delim == " "))
        row_ids: list[str] = []
        row_lines: list[int] = []
        rows = _RowBlocks()
        bad = _BadCells()
        expected = None  # fields per row, set by the first row
        short_header = False
        summary_rows: list[str] = []
        col_ids: list[str] = []
        columns: list[int] = []
        skipped_blank = 0
        for fields in reader:
            line_no = lines.lineno
            if not any(f.strip() for f in fields):
                skipped_blank += 1
                continue
            if expected is None:
                if len(fields) == n_head + 1 and n_trailing == 0:
                    # R's write.table(x, sep=...) writes one header field fewer than the rows.
                    short_header = True
                    head_fields = [""] + head_fields
                    n_head += 1
                    k, dropped_annot = 1, []
                    notes.append("header has one field fewer than the rows (R write.table "
                                 "without col.names=NA): the first column holds the IDs")
                expected = n_head
                columns = list(range(k, n_head))
                col_ids = head_fields[k:]
                if not col_ids:
                    raise InputError(
                        f"{name!r} has no sample columns: the header (line {header_line}) holds "
                        f"only the ID{' and annotation' if dropped_annot else ''} column(s); "
                        f"give a table with one column per sample "
                        f"(got header={_fmt(head_fields)})", line=header_line)
            if len(fields) != expected:
                extra = fields[expected:]
                if len(fields) > expected and n_trailing and not any(f.strip() for f in extra):
                    fields = fields[:expected]
                elif short_header and len(fields) == expected - 1:
                    raise InputError(
                        f"{name!r}: line {row_lines[0] if row_lines else line_no} has one field "
                        f"more than the header (line {header_line}) but line {line_no} has as "
                        f"many as the header; look for an extra {_delim_name(delim)} or an "
                        f"unclosed quote on the first data line (got fields={len(fields)})",
                        line=line_no)
                else:
                    raise InputError(
                        f"{name!r} line {line_no} has {len(fields)} fields but the header (line "
                        f"{header_line}) has {expected - short_header}"
                        f"{' (+1 row-name column)' if short_header else ''}; every row needs "
                        f"one ID plus one value per column. Look for a missing or extra "
                        f"{_delim_name(delim)}, or an unclosed quote, on that line "
                        f"(got fields={len(fields)})", line=line_no)
            row_id = fields[0].strip()
            if row_id in COUNTER_SUMMARY_ROWS:
                summary_rows.append(row_id)
                continue
            row_ids.append(row_id)
            row_lines.append(line_no)
            values = fields[k:] if k == 1 else [fields[c] for c in columns]
            rows.append(_convert_row(values, line_no, row_id, col_ids, columns, bad))
        if geo and not getattr(lines, "geo_end_seen", False):
            raise InputError(
                f"{name!r} has no '!series_matrix_table_end' line after the table (read to line "
                f"{lines.lineno}): the file looks truncated; download it again "
                f"(got lines={lines.lineno})", line=lines.lineno)
    if not len(rows):
        raise InputError(
            f"{name!r} has a header (line {header_line}) but no data rows; the file is "
            f"truncated or holds only column names (got header={_short(header.strip())!r})",
            line=header_line)
    if dropped_annot:
        notes.append(f"dropped annotation columns {_fmt(dropped_annot)}")
    if summary_rows:
        notes.append(f"dropped counter summary rows {_fmt(summary_rows)}")
    if skipped_blank:
        notes.append(f"skipped {skipped_blank} empty row(s)")
    # featureCounts sample columns are BAM paths: keep the file stem when that stays unique
    if dropped_annot and any(_ALIGNMENT_SUFFIX.search(c) for c in col_ids):
        short = [_ALIGNMENT_SUFFIX.sub("", c.replace("\\", "/").rsplit("/", 1)[-1])
                 for c in col_ids]
        if len(set(short)) == len(short) and all(short):
            notes.append(f"sample names shortened from alignment paths (e.g. {col_ids[0]!r} -> "
                         f"{short[0]!r})")
            col_ids = short

    orientation = _decide_orientation(row_ids, col_ids, sample_ids, samples_in_rows, notes)
    row_where = [f"line {ln}" for ln in row_lines]
    col_where = [f"column {c + 1} of the header (line {header_line})" for c in columns]
    row_kind, col_kind = (("gene ID", "sample ID") if orientation == "genes_in_rows"
                          else ("sample ID", "gene ID"))
    _check_ids(col_ids, col_kind, "in the header", name, col_where)
    _check_ids(row_ids, row_kind, "in the first column", name, row_where)
    bad.raise_if_any(name, orientation, len(rows) * len(col_ids))

    arr = rows.stack()
    if orientation == "genes_in_rows":
        matrix = pd.DataFrame(arr.T, index=pd.Index(col_ids), columns=pd.Index(row_ids))
        notes.append("transposed to samples x genes")
    else:
        matrix = pd.DataFrame(arr, index=pd.Index(row_ids), columns=pd.Index(col_ids))
    obs = None
    if geo and geo_samples:
        obs = _parse_geo_sample_lines(geo_samples)
        if obs is not None:
            common = obs.index.intersection(matrix.index)
            if len(common) == 0 or obs.index.has_duplicates:
                obs = None
            else:
                obs = obs.reindex(matrix.index)
                notes.append(f"sample annotations (obs) from the GEO !Sample_ lines: "
                             f"{_fmt(list(obs.columns), 8)}")
    return _finish(matrix, p, orientation, obs, notes)


class _RowBlocks:
    """Rows of equal length gathered in blocks of ``block`` rows, stacked once at the end.

    A Python list of one small array per row costs ~100 bytes of header per row on top of the
    values (200,000 genes x 16 samples: 45 MB for 26 MB of values); blocks cost nothing extra.
    """

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._full: list[np.ndarray] = []
        self._cur: np.ndarray | None = None
        self._n = 0  # rows in the current block

    def append(self, row: np.ndarray) -> None:
        if self._cur is None or self._n == self._cur.shape[0]:
            if self._cur is not None:
                self._full.append(self._cur)
            self._cur = np.empty((self._block, row.shape[0]))
            self._n = 0
        self._cur[self._n] = row
        self._n += 1

    def __len__(self) -> int:
        return self._block * len(self._full) + self._n

    def stack(self) -> np.ndarray:
        """(rows, columns) float64; the blocks are released."""
        parts = self._full + ([self._cur[: self._n]] if self._cur is not None else [])
        self._full, self._cur, self._n = [], None, 0
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


def _all_numbers(fields: Sequence[str]) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def _delim_name(delim: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", " ": "space"}.get(delim, repr(delim))


def _data_lines(lines: _Lines, geo: bool) -> Iterator[str]:
    for line in lines:
        if geo and line.lstrip().startswith("!"):
            if line.strip().lower().startswith("!series_matrix_table_end"):
                lines.geo_end_seen = True  # type: ignore[attr-defined]
                return
            continue
        if not line.strip():
            continue
        yield line


def _finish(matrix: pd.DataFrame, p: Path, orientation: str, obs: pd.DataFrame | None,
            notes: list[str]) -> ExpressionData:
    matrix = matrix.astype(np.float64, copy=False)
    matrix.index = pd.Index([str(s) for s in matrix.index], name="sample")
    matrix.columns = pd.Index([str(g) for g in matrix.columns], name="feature")
    if obs is not None:
        obs = obs.copy()
        obs.index = pd.Index([str(s) for s in obs.index], name="sample")
    logger.info("read %s: %d samples x %d features (%s)%s", p.name, matrix.shape[0],
                matrix.shape[1], orientation, f"; {'; '.join(notes)}" if notes else "")
    return ExpressionData(matrix=matrix, source=str(p), orientation=orientation, obs=obs,
                          notes=tuple(notes))


# --------------------------------------------------------------------------------------------
# binary formats


def _check_matrix_values(arr: np.ndarray, samples: Sequence[str], features: Sequence[str],
                         name: str) -> None:
    # max / min see every NaN and Inf without a temporary the size of arr.
    hi, lo = (float(arr.max()), float(arr.min())) if arr.size else (0.0, 0.0)
    if math.isfinite(hi) and math.isfinite(lo) and max(hi, -lo) <= MAX_ABS_VALUE:
        return
    ok = np.isfinite(arr)
    np.less_equal(np.abs(arr, where=ok, out=np.zeros(arr.shape)), MAX_ABS_VALUE, out=ok, where=ok)
    bad = _BadCells()
    rows, cols = np.nonzero(~ok)
    for i, j in zip(rows[:_MAX_EXAMPLES], cols[:_MAX_EXAMPLES]):
        v = arr[i, j]
        kind = "infinite" if np.isinf(v) else "missing" if np.isnan(v) else "too large"
        bad.add(None, None, str(samples[i]), str(features[j]), str(v), kind)
    bad.count = int((~ok).sum())
    n_inf, n_nan = int(np.isinf(arr).sum()), int(np.isnan(arr).sum())
    bad.kinds = +Counter({"infinite": n_inf, "missing": n_nan,
                          "too large": bad.count - n_inf - n_nan})
    bad.raise_if_any(name, "samples_in_rows", arr.size)


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
    line_of = [ln for ln, _ in numbered[1:]]

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
    ids = df[chosen]
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
    df = df.set_index(chosen)
    df.index = pd.Index([str(s) for s in df.index], name=chosen)
    df.attrs["source"] = str(p)
    df.attrs["id_column"] = chosen
    logger.info("read sample sheet %s: %d samples, id column %r, columns %s", p.name, len(df),
                chosen, list(df.columns))
    return df


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
    labels_all = pd.Series(sheet[outcome].to_numpy(), index=sheet_ids)
    matrix_ids = [str(s) for s in expr.matrix.index]
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
    labels = labels_all.loc[common]
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
    labels = labels.map(_label_str)
    counts = labels.value_counts()
    levels, order_name = _level_sort_key(list(counts.index))
    level_text = ", ".join(f"{lv!r} ({counts[lv]})" for lv in levels)
    if len(levels) != 2:
        what = "only one level" if len(levels) == 1 else f"{len(levels)} levels"
        fix = ("both groups must be present among the matched samples" if len(levels) == 1 else
               "keep two groups: filter the sample sheet to the two levels to compare, or "
               "merge levels into a new two-level column")
        raise ValueError(f"the outcome {outcome!r} must have exactly two levels but has {what} "
                         f"among the {len(labels)} matched samples: {level_text}; {fix} "
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
                f"the case (got case={case_s!r})", DataWarning, stacklevel=2)
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
