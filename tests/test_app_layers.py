"""The library apart from the application, and the screen's bookkeeping when a dataset's
outputs cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from jaxlasso.screen import ScreenDataset, screen
from jaxlasso.simulate import simulate_rnaseq

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("jaxlasso.cli", "jaxlasso.report", "jaxlasso.plots", "jaxlasso.output", "jaxlasso.estimator")


def test_importing_the_library_imports_no_application_module():
    code = "import jaxlasso, sys; print(' '.join(sorted(m for m in sys.modules if m.startswith('jaxlasso'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert "jaxlasso.screen" in out  # the check sees the library's modules
    assert [m for m in out if m.startswith(APPLICATION)] == []


def test_the_shadowed_module_is_renamed():
    """``import jaxlasso.preprocess`` would return the function, not a module: the column-shift
    helpers live in ``jaxlasso._scaling``."""
    import jaxlasso._scaling as scaling

    assert callable(scaling.column_shift) and callable(scaling.to_original_scale)


def test_a_dataset_whose_outputs_fail_is_counted_once_as_failed():
    sim = simulate_rnaseq(n_genes=200, seed=3, lfc_mean=1.5)
    y = pd.Series(pd.Categorical(sim.y, categories=["control", "case"]), index=sim.y.index)
    items = [ScreenDataset(name, sim.counts, y) for name in ("keep", "broken")]
    ticks, errors, results = [], [], []

    def on_result(name, report, row):
        if name == "broken":
            raise OSError("disk full")
        results.append(name)

    res = screen(items, options={"nfolds": 4}, mode="loop", on_result=on_result,
                 on_error=lambda name, message: errors.append((name, message)),
                 progress=lambda done, total, name: ticks.append((done, total, name)))
    assert results == ["keep"] and errors == [("broken", "disk full")]
    assert ticks == [(1, 2, "keep"), (2, 2, "broken")]
    assert dict(zip(res.table["name"], res.table["status"])) == {"keep": "ok", "broken": "error"}
    assert set(res.reports) == {"keep"}
