"""``jaxlasso screen``: a manifest of datasets, each loaded by the shared input loader, screened by
:func:`jaxlasso.screen.screen`, and published dataset by dataset into ``--out``."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..options import MANIFEST_COLUMNS, Opt, Rule, ScreenOptions, optional_boolean
from .common import EXIT_FAIL, EXIT_OK, notifier
from .inputs import load_family_inputs, resolve_path
from .summary import _jsonable, build_summary
from .writers import _tsv, write_outputs

MANIFEST_REQUIRED = ("name", "expression", "outcome")
MANIFEST_IO = ("samples", "case", "time", "event", "id_column", "samples_in_rows", "allow_missing")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_IO_FLAGS = {col: Opt(col, optional_boolean, "true or false (also yes/no, 1/0; empty = auto)", column=col)
             for col in ("samples_in_rows", "allow_missing")}
"""Yes/no columns of a manifest row that describe its files (the command line's flags)."""


def read_manifest(path: str, *, batch: ScreenOptions | None = None) -> tuple[list[dict], Path]:
    """Rows of a screen manifest with validated names and options (paths stay relative).

    Each row's ``options`` is the :class:`SelectOptions` of its dataset: ``batch``'s (the
    command line's) with the row's option columns applied; a bad cell is named by file, line and
    column."""
    from ..options import DATASET_KEYS, Source

    batch = ScreenOptions() if batch is None else batch
    p = Path(path)
    frame = _manifest_table(p, path)
    column_of = dict(zip(DATASET_KEYS, MANIFEST_COLUMNS))
    rows = []
    seen = set()
    for i, rec in enumerate(frame.to_dict("records"), start=2):
        name = rec["name"].strip()
        if not _SAFE_NAME.match(name) or name in (".", ".."):
            raise ValueError(
                f"manifest {p.name!r} line {i}: dataset name {name!r} is not a safe folder name; use "
                f"letters, digits, '.', '_' and '-' only (no '/', no leading '.') "
                f"(got name={name!r})")
        if name in seen:
            raise ValueError(f"manifest {p.name!r} line {i}: duplicated dataset name (got name={name!r})")
        seen.add(name)
        source = Source.manifest(p.name, i)
        cells = {key: rec[col].strip() for key, col in column_of.items() if rec.get(col, "").strip() != ""}
        options = batch.dataset(cells, source=source)

        io_flags = {col: _IO_FLAGS[col].validate(rec.get(col, "").strip() or None, source) for col in _IO_FLAGS}
        chosen = options.to_mapping()
        rows.append({"line": i, "name": name, "expression": rec["expression"].strip(),
                     "samples": rec.get("samples", "").strip() or None, "outcome": rec["outcome"].strip() or None,
                     "time": rec.get("time", "").strip() or None, "event": rec.get("event", "").strip() or None,
                     "case": rec.get("case", "").strip() or None, "id_column": rec.get("id_column", "").strip() or None,
                     "samples_in_rows": io_flags["samples_in_rows"],
                     "allow_missing": bool(io_flags["allow_missing"]),
                     "overrides": {k: chosen[k] for k in cells},
                     "options": options})
    return rows, p.parent


def _manifest_table(p: Path, path: str) -> pd.DataFrame:
    """The manifest's cells as text, its header checked (required and known columns, a row at least)."""
    if not p.is_file():
        raise ValueError(f"manifest {path!r} does not exist or is not a file; give the path of a TSV "
                         f"with columns {', '.join(MANIFEST_REQUIRED)} (got manifest={path!r})")
    raw = p.read_bytes()
    if b"\x00" in raw:
        # pandas' parser ends a cell at a NUL byte: a name would be silently cut short.
        line = raw[:raw.index(b"\x00")].count(b"\n") + 1
        raise ValueError(f"manifest {p.name!r} line {line} holds a NUL byte, which is never part of a "
                         f"name, path or option; fix that line (got a NUL byte at line {line})")
    try:
        frame = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except pd.errors.EmptyDataError:
        raise ValueError(f"manifest {p.name!r} is empty; it needs a header line with columns "
                         f"{', '.join(MANIFEST_REQUIRED)} (got an empty file)") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in MANIFEST_REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest {p.name!r} lacks column(s) {missing}; it has {list(frame.columns)} "
                         f"(got columns={list(frame.columns)})")
    unknown = [c for c in frame.columns if c not in (*MANIFEST_REQUIRED, *MANIFEST_IO, *MANIFEST_COLUMNS)]
    if unknown:
        raise ValueError(f"manifest {p.name!r} has unknown column(s) {unknown}; option columns are "
                         f"{', '.join(MANIFEST_COLUMNS)} and {', '.join(MANIFEST_IO)} "
                         f"(got columns={list(frame.columns)})")
    if frame.empty:
        raise ValueError(f"manifest {p.name!r} lists no dataset (got a header only)")
    return frame


SCREEN_FILES = ("screen.tsv", "summary.json")
"""The files a screen owns at the top of its --out (beside one folder per dataset)."""


def cmd_screen(args, argv, progress) -> int:
    from ..output import open_output

    opts: ScreenOptions = args.options
    rows, base = read_manifest(args.manifest, batch=opts)
    clash = [r["name"] for r in rows if r["name"] in SCREEN_FILES]
    if clash:
        raise ValueError(f"manifest {Path(args.manifest).name!r}: dataset name {clash[0]!r} is the name of a file "
                         f"the screen writes itself; rename the dataset (got name={clash[0]!r})")
    with open_output(Path(args.out), wait=args.wait, notify=notifier(args)) as folder:
        return _screen_into(folder, rows, base, opts, args, argv, progress)


@dataclass(frozen=True)
class _DatasetRun:
    """What publishing a loaded dataset's folder needs besides its report."""

    inputs: dict
    """``summary.json``'s ``input`` section."""
    classes: dict
    """``summary.json``'s ``classes`` section."""
    config_hash: str
    """Hash of the dataset's options and input description (what ``--resume`` compares)."""
    record: dict
    """The dataset folder's run-manifest record (command, options, input fingerprints)."""


@dataclass
class _Plan:
    """The manifest's rows sorted into what the screen computes, resumes, or reports as failed."""

    items: list = field(default_factory=list)
    """:class:`jaxlasso.screen.ScreenDataset` per dataset to compute or resume (resumed ones carry no data)."""
    resumed: dict = field(default_factory=dict)
    """name -> the screen.tsv row saved by the run being resumed."""
    runs: dict = field(default_factory=dict)
    """name -> :class:`_DatasetRun` of each dataset to compute."""
    errors: dict = field(default_factory=dict)
    """name -> the first line of the error that stopped reading the dataset."""


def _row_key(row: dict) -> dict:
    """A manifest row's effective options and input description: what its ``config_hash`` covers."""
    return {**row["options"].to_mapping(), "expression": row["expression"], "samples": row["samples"],
            "outcome": row["outcome"], "case": row["case"], "id_column": row["id_column"],
            **({"time": row["time"], "event": row["event"]} if row.get("time") or row.get("event") else {}),
            "samples_in_rows": row["samples_in_rows"], "allow_missing": row["allow_missing"]}


def _saved_row(folder, name: str, chash: str, fingerprints: dict, stored_run: dict | None) -> dict | None:
    """The screen.tsv row of the dataset's previous result when ``--resume`` may keep it: same
    options, same input files (by content), and a readable summary; else None."""
    from ..output import same_content

    stored = (stored_run or {}).get("inputs") or {}
    if (stored_run is None or stored_run.get("config_hash") != chash or set(stored) != set(fingerprints)
            or any(fp is None for fp in fingerprints.values())
            or not all(same_content(fp, stored.get(r)) for r, fp in fingerprints.items())):
        return None
    try:
        return json.loads((folder.path / name / "summary.json").read_text())["screen"]["row"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unreadable summary: compute the dataset again


def _plan_rows(folder, rows: list[dict], base: Path, *, resume: bool, argv: list[str]) -> _Plan:
    """Fingerprint each row's files, keep what ``--resume`` may keep, and load the rest."""
    from ..output import file_fingerprint
    from ..screen import ScreenDataset, config_hash

    out = folder.path
    plan = _Plan()
    for row in rows:
        key = _row_key(row)
        chash = config_hash(key)
        name = row["name"]
        stored_run = folder.previous(name) if (out / name).is_dir() else None
        stored = (stored_run or {}).get("inputs") or {}
        # Fingerprints are taken before the files are read: a change during the read shows next time.
        fingerprints = {"expression": file_fingerprint(resolve_path(row["expression"], base), stored.get("expression"))}
        if row["samples"]:
            fingerprints["samples"] = file_fingerprint(resolve_path(row["samples"], base), stored.get("samples"))
        saved = _saved_row(folder, name, chash, fingerprints, stored_run) if resume else None
        if saved is not None:
            plan.resumed[name] = saved
            plan.items.append(ScreenDataset(name, None, None))
            continue
        try:
            data = load_family_inputs(row["expression"], row["samples"], family=row["options"].family,
                                      outcome=row["outcome"], time=row["time"], event=row["event"], case=row["case"],
                                      id_column=row["id_column"], samples_in_rows=row["samples_in_rows"],
                                      allow_missing=row["allow_missing"], base=base,
                                      flags={k: f"manifest column {k}" for k in ("outcome", "time", "event", "case")})
        except (ValueError, TypeError, OSError, KeyError) as exc:
            plan.errors[name] = str(exc).strip().splitlines()[0]
            continue
        record = {"jaxlasso_version": __version__, "command": "screen", "dataset": name, "command_line": argv,
                  "options": _jsonable({k: (v.value if isinstance(v, Rule) else v) for k, v in key.items()}),
                  "config_hash": chash, "inputs": fingerprints}
        plan.runs[name] = _DatasetRun(data.inputs, data.classes, chash, record)
        plan.items.append(ScreenDataset(name, data.X, data.y, row["overrides"]))
    return plan


class _Table:
    """screen.tsv as datasets finish: one row per dataset in manifest order, rewritten atomically
    after each change so that a long screen shows its progress in the file."""

    def __init__(self, rows: list[dict], path: Path, raw_names: bool):
        from ..screen import SCREEN_COLUMNS

        self.columns = SCREEN_COLUMNS
        self.order = [r["name"] for r in rows]
        self.path = path
        self.raw_names = raw_names
        self.rows: dict[str, dict] = {}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.rows[n] for n in self.order if n in self.rows], columns=self.columns)

    def text(self) -> str:
        return _tsv(self.frame(), raw_names=self.raw_names)

    def set(self, name: str, row: dict, *, write: bool = True) -> None:
        from ..output import write_text_atomic

        self.rows[name] = row
        if write:
            write_text_atomic(self.path, self.text())


def _screen_into(folder, rows: list[dict], base: Path, opts: ScreenOptions, args, argv: list[str],
                 progress) -> int:
    """The screen proper, with ``folder`` (the locked --out) recovered and ready.

    Each dataset folder is published on its own as soon as the dataset finishes; ``screen.tsv`` is
    rewritten (one atomic file) as datasets finish; at the end the screen publishes ``screen.tsv``,
    ``summary.json`` and its run manifest, which lists the dataset folders it owns, so the folders
    of datasets no longer in the manifest (or failing now) are removed.
    """
    from ..screen import SCREEN_COLUMNS, _row_error, screen

    out = folder.path
    plan = _plan_rows(folder, rows, base, resume=args.resume, argv=argv)
    skip = set(plan.resumed)
    table = _Table(rows, out / "screen.tsv", args.raw_names)
    for name, message in plan.errors.items():
        table.set(name, _row_error(name, message), write=False)
    for name, saved_row in plan.resumed.items():
        table.set(name, saved_row, write=False)
    published: set[str] = set()

    def on_result(name, report, row):
        run = plan.runs[name]
        summary = build_summary(report, inputs=run.inputs, argv=argv, classes_info=run.classes)
        clean_row = {k: row.get(k) for k in SCREEN_COLUMNS}
        summary["screen"] = {"config_hash": run.config_hash, "row": _jsonable(clean_row)}
        with folder.stage(name, record=run.record) as tmp:
            write_outputs(Path(tmp), report, summary, plots=not args.no_plots, raw_names=args.raw_names)
        published.add(name)
        table.set(name, clean_row)

    def on_error(name, message):
        table.set(name, _row_error(name, message))

    total = len(rows)

    def tick(done, _total, name):
        progress(f"[{done + len(plan.errors)}/{total}] {name}")

    t0 = time.perf_counter()
    items = plan.items
    result = screen([it for it in items if it.name not in skip] + [it for it in items if it.name in skip],
                    options=opts, skip=skip, on_result=on_result, on_error=on_error, progress=tick)
    frame = table.frame()
    summary = _screen_summary(frame, args, argv, total=total, resumed=skip, stats=result.stats,
                              seconds=time.perf_counter() - t0)
    record = {"jaxlasso_version": __version__, "command": "screen", "command_line": argv,
              "options": _jsonable({k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
                                    if k != "command"})}
    with folder.stage(record=record, folders=sorted(published | skip)) as tmp:
        (Path(tmp) / "screen.tsv").write_text(table.text(), encoding="utf-8")
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")
    return _tell(summary, args, out)


def _screen_summary(frame: pd.DataFrame, args, argv: list[str], *, total: int, resumed: set[str], stats: dict,
                    seconds: float) -> dict:
    """The screen's own ``summary.json`` (schema ``jaxlasso.screen/1``)."""
    import jax

    failed = frame.loc[frame["status"] == "error", "name"].tolist()
    return _jsonable({
        "schema": "jaxlasso.screen/1", "jaxlasso_version": __version__, "command_line": argv,
        "manifest": str(args.manifest), "n_datasets": total,
        "n_ok": int((frame["status"] == "ok").sum()), "n_error": len(failed), "failed": failed,
        "resumed": sorted(resumed), "stats": stats,
        "versions": {"jaxlasso": __version__, "jax": jax.__version__, "devices": len(jax.devices())},
        "seconds": seconds,
    })


def _tell(summary: dict, args, out: Path) -> int:
    """Print the screen's outcome (the summary with --json, one line otherwise, an ``error:``
    line naming the failed datasets) and return the exit status: 1 when any dataset failed."""
    total, failed, resumed = summary["n_datasets"], summary["failed"], summary["resumed"]
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif not args.quiet:
        print(f"screened {total} datasets: {summary['n_ok']} ok, {summary['n_error']} failed"
              f"{f', {len(resumed)} resumed' if resumed else ''}; see {out}/screen.tsv")
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        print(f"error: {len(failed)} of {total} datasets failed: {shown} (their errors are in {out}/screen.tsv)",
              file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
