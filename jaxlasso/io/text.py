"""Delimited text tables (TSV/CSV, optionally gzip): sniffing, preamble, header, rows and
orientation, read by :class:`_TextReader`."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io as _stdio
import math
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from .._validation import MAX_ABS_VALUE
from .common import (ANNOTATION_COLUMNS, COUNTER_SUMMARY_ROWS, ExpressionData, InputError,
                     _ALIGNMENT_SUFFIX, _BINARY_NUL, _BadCells, _binary_kind, _check_ids,
                     _classify, _corrupt_gzip, _decide_orientation, _finish, _fmt, _gzip_fault,
                     _human, _nul_in_text, _short, _sniff_bytes, _suffixes)


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



def _open_text(p: Path, compressed: bool, encoding: str):
    raw = gzip.open(p, "rb") if compressed else open(p, "rb")
    return _stdio.TextIOWrapper(raw, encoding=encoding, newline=None)


def _read_text(p: Path, *, sample_ids: Any, samples_in_rows: bool | None,
               max_bytes: int | None) -> ExpressionData:
    """Open and sniff a text table, then parse it with :class:`_TextReader` (again as Latin-1
    when it is not UTF-8); read and decompression failures become an :class:`InputError`."""
    head, compressed = _sniff_bytes(p)
    ext = _suffixes(p)
    notes: list[str] = []
    encoding = _text_encoding(p, head, compressed, ext, notes)

    def parse(enc: str) -> ExpressionData:
        return _TextReader(p, compressed, enc, ext, notes, sample_ids=sample_ids,
                           samples_in_rows=samples_in_rows, max_bytes=max_bytes).read()

    try:
        try:
            return parse(encoding)
        except UnicodeDecodeError as e:
            notes.append(f"not valid UTF-8 ({e.reason} at byte {e.start}); read as Latin-1")
            return parse("latin-1")
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


def _text_encoding(p: Path, head: bytes, compressed: bool, ext: str, notes: list[str]) -> str:
    """The encoding to decode ``head`` (the first content bytes) with; binary files are refused
    and what was noticed (compression, BOM, CRLF) is appended to ``notes``."""
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
    return encoding


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


class _TextReader:
    """One pass over a delimited text table, in steps that each read on where the last stopped:
    :meth:`_preamble` (``#`` comments, GEO ``!`` metadata) up to the header line,
    :meth:`_sniff` (delimiter, a header that starts with ``#``), :meth:`_header_fields`
    (trailing empty and annotation columns), :meth:`_rows` (the values, streamed into blocks),
    then, with the file closed, :meth:`_check_rows`, :meth:`_orient` and :meth:`_geo_obs`.

    ``notes`` is copied, so that a second attempt in another encoding starts from the same notes.
    """

    def __init__(self, p: Path, compressed: bool, encoding: str, ext: str, notes: list[str], *,
                 sample_ids: Any, samples_in_rows: bool | None, max_bytes: int | None) -> None:
        self.p, self.name, self.ext = p, p.name, ext
        self._compressed, self._encoding, self._max_bytes = compressed, encoding, max_bytes
        self.sample_ids, self.samples_in_rows = sample_ids, samples_in_rows
        self.notes = list(notes)
        # preamble
        self.comments: list[tuple[str, int]] = []
        self.geo = False
        self.geo_samples: list[list[str]] = []
        self.geo_end_seen = False
        self.header: str | None = None
        self.header_line = 0
        self.first_data: str | None = None
        self.delim = "\t"
        # header
        self.head_fields: list[str] = []
        self.n_trailing = 0
        self.k = 1  # the first value column; 1..k-1 are annotation columns
        self.dropped_annot: list[str] = []
        # rows
        self.row_ids: list[str] = []
        self.row_lines: list[int] = []
        self.rows = _RowBlocks()
        self.bad = _BadCells()
        self.expected: int | None = None  # fields per row, set by the first row
        self.short_header = False
        self.summary_rows: list[str] = []
        self.col_ids: list[str] = []
        self.columns: list[int] = []
        self.skipped_blank = 0

    def read(self) -> ExpressionData:
        with _open_text(self.p, self._compressed, self._encoding) as stream:
            self.lines = _Lines(stream, self._max_bytes, self.name)
            self._preamble()
            self._sniff()
            self._header_fields()
            self._rows()
        self._check_rows()
        orientation, matrix = self._orient()
        return _finish(matrix, self.p, orientation, self._geo_obs(matrix), self.notes)

    # ---- preamble: '#' comments (featureCounts), '!' metadata (GEO series matrix)

    def _preamble(self) -> None:
        lines = self.lines
        for line in lines:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("^"):
                raise InputError(
                    f"{self.name!r} looks like a GEO SOFT file (line {lines.lineno} starts with "
                    f"'^'); download the series matrix (GSExxx_series_matrix.txt.gz) instead "
                    f"(got line={_short(stripped)!r})", line=lines.lineno)
            if stripped.startswith("!"):
                self.geo = True
                if self._geo_line(stripped):
                    break
                continue
            if self.geo:
                continue  # stray text in the GEO preamble
            if stripped.startswith("#"):
                self.comments.append((line, lines.lineno))
                continue
            self.header, self.header_line = line, lines.lineno
            break
        if self.header is None:
            if self.geo:
                raise InputError(
                    f"{self.name!r} has GEO '!' metadata lines but no "
                    f"'!series_matrix_table_begin' table; the file is incomplete or holds no "
                    f"expression values (some GEO series keep them in supplementary files) "
                    f"(got lines={lines.lineno})")
            only = ', only # comment lines' if self.comments else ''
            raise InputError(
                f"{self.name!r} is empty (no header or data{only}); give the file that holds "
                f"the expression table (got lines={lines.lineno})")
        if self.geo:
            self.notes.append("GEO series matrix: read the table between "
                              "!series_matrix_table_begin and !series_matrix_table_end")

    def _geo_line(self, stripped: str) -> bool:
        """One GEO ``!`` line; ``True`` at the table's start, with the header line read."""
        if stripped.lower().startswith("!series_matrix_table_begin"):
            for nxt in self.lines:
                if nxt.strip():
                    self.header, self.header_line = nxt, self.lines.lineno
                    break
            return True
        if stripped.startswith("!Sample_"):
            self.geo_samples.append(_split(stripped, "\t"))
        elif stripped.startswith("!Series_title"):
            title = _split(stripped, "\t")
            if len(title) > 1:
                self.notes.append(f"GEO series: {_short(title[1], 100)}")
        return False

    # ---- delimiter and a header that starts with '#'

    def _sniff(self) -> None:
        """Peek at the first data line (put back) to sniff the delimiter and a '#header'."""
        lines = self.lines
        first_data_line = 0
        for nxt in lines:
            if nxt.strip():
                self.first_data, first_data_line = nxt, lines.lineno
                break
        if self.first_data is not None:
            lines.push(self.first_data, first_data_line)
        if self.first_data is not None and self.geo and self.first_data.strip().lower().startswith(
                "!series_matrix_table_end"):
            self.first_data = None
        self.delim = _sniff_delimiter(self.header, self.first_data, self.ext, self.notes,
                                      self.name, self.header_line)
        if not self.comments:
            return
        last, last_no = self.comments[-1]
        candidate = _split(last.strip().lstrip("#"), self.delim)
        as_fields = _split(self.header, self.delim)
        if (len(candidate) > 1 and len(candidate) == len(as_fields)
                and self.first_data is not None and _all_numbers(as_fields[1:])):
            # "#gene\tS1\tS2": the header itself starts with '#'
            lines.push(self.header, self.header_line)
            self.header, self.header_line = last.strip().lstrip("#"), last_no
            self.comments = self.comments[:-1]
            self.notes.append("header line starts with '#'")
        if self.comments:
            fc = any("featurecounts" in c.lower() for c, _ in self.comments)
            self.notes.append(f"skipped {len(self.comments)} '#' comment line(s)"
                              + (" (featureCounts)" if fc else ""))

    def _header_fields(self) -> None:
        """Split the header; drop trailing empty fields (a trailing delimiter on every line) and
        find the annotation columns that follow the ID column."""
        head_fields = [h.strip() for h in _split(self.header, self.delim)]
        n_trailing = 0
        while len(head_fields) - n_trailing > 2 and head_fields[-1 - n_trailing] == "":
            n_trailing += 1
        if n_trailing:
            head_fields = head_fields[: len(head_fields) - n_trailing]
            self.notes.append(f"ignored {n_trailing} trailing empty column(s)")
        k = 1
        while k < len(head_fields) and head_fields[k].lower() in ANNOTATION_COLUMNS:
            k += 1
        self.head_fields, self.n_trailing, self.k = head_fields, n_trailing, k
        self.dropped_annot = head_fields[1:k]

    # ---- data rows

    def _rows(self) -> None:
        delim = self.delim
        reader = csv.reader(self._data_lines(), delimiter=delim, skipinitialspace=(delim == " "))
        for fields in reader:
            line_no = self.lines.lineno
            if not any(f.strip() for f in fields):
                self.skipped_blank += 1
                continue
            if self.expected is None:
                self._first_row(fields)
            if len(fields) != self.expected:
                fields = self._ragged(fields, line_no)
            row_id = fields[0].strip()
            if row_id in COUNTER_SUMMARY_ROWS:
                self.summary_rows.append(row_id)
                continue
            self.row_ids.append(row_id)
            self.row_lines.append(line_no)
            k = self.k
            values = fields[k:] if k == 1 else [fields[c] for c in self.columns]
            self.rows.append(_convert_row(values, line_no, row_id, self.col_ids, self.columns,
                                          self.bad))
        if self.geo and not self.geo_end_seen:
            raise InputError(
                f"{self.name!r} has no '!series_matrix_table_end' line after the table (read to "
                f"line {self.lines.lineno}): the file looks truncated; download it again "
                f"(got lines={self.lines.lineno})", line=self.lines.lineno)

    def _data_lines(self) -> Iterator[str]:
        """The non-empty lines after the header; a GEO table ends at its end marker."""
        for line in self.lines:
            if self.geo and line.lstrip().startswith("!"):
                if line.strip().lower().startswith("!series_matrix_table_end"):
                    self.geo_end_seen = True
                    return
                continue
            if not line.strip():
                continue
            yield line

    def _first_row(self, fields: list[str]) -> None:
        """The first row fixes the row width and the value columns."""
        n_head = len(self.head_fields)
        if len(fields) == n_head + 1 and self.n_trailing == 0:
            # R's write.table(x, sep=...) writes one header field fewer than the rows.
            self.short_header = True
            self.head_fields = [""] + self.head_fields
            n_head += 1
            self.k, self.dropped_annot = 1, []
            self.notes.append("header has one field fewer than the rows (R write.table "
                              "without col.names=NA): the first column holds the IDs")
        self.expected = n_head
        self.columns = list(range(self.k, n_head))
        self.col_ids = self.head_fields[self.k:]
        if not self.col_ids:
            raise InputError(
                f"{self.name!r} has no sample columns: the header (line {self.header_line}) "
                f"holds only the ID{' and annotation' if self.dropped_annot else ''} column(s); "
                f"give a table with one column per sample "
                f"(got header={_fmt(self.head_fields)})", line=self.header_line)

    def _ragged(self, fields: list[str], line_no: int) -> list[str]:
        """A row whose width differs from the first row's: trailing empty fields are cut (a
        trailing delimiter); anything else is an error naming the line."""
        expected = self.expected
        extra = fields[expected:]
        if len(fields) > expected and self.n_trailing and not any(f.strip() for f in extra):
            return fields[:expected]
        name, header_line, what = self.name, self.header_line, _delim_name(self.delim)
        if self.short_header and len(fields) == expected - 1:
            first = self.row_lines[0] if self.row_lines else line_no
            raise InputError(
                f"{name!r}: line {first} has one field more than the header (line "
                f"{header_line}) but line {line_no} has as many as the header; look for an "
                f"extra {what} or an unclosed quote on the first data line "
                f"(got fields={len(fields)})", line=line_no)
        raise InputError(
            f"{name!r} line {line_no} has {len(fields)} fields but the header (line "
            f"{header_line}) has {expected - self.short_header}"
            f"{' (+1 row-name column)' if self.short_header else ''}; every row needs "
            f"one ID plus one value per column. Look for a missing or extra "
            f"{what}, or an unclosed quote, on that line "
            f"(got fields={len(fields)})", line=line_no)

    # ---- after the file is closed

    def _check_rows(self) -> None:
        """No rows is an error; what was dropped goes to the notes; featureCounts sample
        columns (alignment paths) are shortened to the file stem when that stays unique."""
        if not len(self.rows):
            raise InputError(
                f"{self.name!r} has a header (line {self.header_line}) but no data rows; the "
                f"file is truncated or holds only column names "
                f"(got header={_short(self.header.strip())!r})", line=self.header_line)
        if self.dropped_annot:
            self.notes.append(f"dropped annotation columns {_fmt(self.dropped_annot)}")
        if self.summary_rows:
            self.notes.append(f"dropped counter summary rows {_fmt(self.summary_rows)}")
        if self.skipped_blank:
            self.notes.append(f"skipped {self.skipped_blank} empty row(s)")
        col_ids = self.col_ids
        if self.dropped_annot and any(_ALIGNMENT_SUFFIX.search(c) for c in col_ids):
            short = [_ALIGNMENT_SUFFIX.sub("", c.replace("\\", "/").rsplit("/", 1)[-1])
                     for c in col_ids]
            if len(set(short)) == len(short) and all(short):
                self.notes.append(f"sample names shortened from alignment paths (e.g. "
                                  f"{col_ids[0]!r} -> {short[0]!r})")
                self.col_ids = short

    def _orient(self) -> tuple[str, pd.DataFrame]:
        """Decide the orientation, check the IDs and the cells, and build samples x features."""
        row_ids, col_ids, notes = self.row_ids, self.col_ids, self.notes
        orientation = _decide_orientation(row_ids, col_ids, self.sample_ids,
                                          self.samples_in_rows, notes)
        row_where = [f"line {ln}" for ln in self.row_lines]
        col_where = [f"column {c + 1} of the header (line {self.header_line})"
                     for c in self.columns]
        row_kind, col_kind = (("gene ID", "sample ID") if orientation == "genes_in_rows"
                              else ("sample ID", "gene ID"))
        _check_ids(col_ids, col_kind, "in the header", self.name, col_where)
        _check_ids(row_ids, row_kind, "in the first column", self.name, row_where)
        self.bad.raise_if_any(self.name, orientation, len(self.rows) * len(col_ids))
        arr = self.rows.stack()
        if orientation == "genes_in_rows":
            notes.append("transposed to samples x genes")
            return orientation, pd.DataFrame(arr.T, index=pd.Index(col_ids),
                                             columns=pd.Index(row_ids))
        return orientation, pd.DataFrame(arr, index=pd.Index(row_ids), columns=pd.Index(col_ids))

    def _geo_obs(self, matrix: pd.DataFrame) -> pd.DataFrame | None:
        """The GEO ``!Sample_`` lines as ``obs`` when they name the matrix's samples."""
        if not (self.geo and self.geo_samples):
            return None
        obs = _parse_geo_sample_lines(self.geo_samples)
        if obs is None:
            return None
        common = obs.index.intersection(matrix.index)
        if len(common) == 0 or obs.index.has_duplicates:
            return None
        obs = obs.reindex(matrix.index)
        self.notes.append(f"sample annotations (obs) from the GEO !Sample_ lines: "
                          f"{_fmt(list(obs.columns), 8)}")
        return obs



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
