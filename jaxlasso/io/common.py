"""What every reader shares: the error type, the result records, the ID and value checks,
file sniffing and the message formatting helpers."""

from __future__ import annotations

import contextlib
import difflib
import gzip
import logging
import math
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .._validation import MAX_ABS_VALUE, decoded_names

logger = logging.getLogger("jaxlasso")

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
    def bad(i, raw, e):
        return InputError(
            f"{file!r}: {what} entry {i} is not valid UTF-8 text ({e.reason} at byte "
            f"{e.start}); write the names as UTF-8 (in Python: decode them with their "
            f"real encoding, e.g. names.astype(str) after .decode('latin-1')) "
            f"(got {what}[{i}]={raw!r})")

    return [v.strip() for v in decoded_names(values, bad)]


def _refuse_complex(dtype: np.dtype, file: str, what: str) -> None:
    """Complex values would lose their imaginary part in float64: refuse them."""
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(
            f"{file!r}: {what} holds complex numbers; expression values must be real: keep the "
            f"real part (X.real) or the modulus (abs(X)) yourself if that is what you mean "
            f"(got dtype={dtype})")


# --------------------------------------------------------------------------------------------
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

