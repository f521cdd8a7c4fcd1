"""Peak memory of ``jaxlasso select`` on two shapes, and where it goes.

Two deterministic inputs are written once into ``--workdir``:

* ``counts16x200k``: 16 samples x 200,000 genes of simulated RNA-seq counts
  (:func:`jaxlasso.simulate.simulate_rnaseq`, seed 0), genes in rows, ``.tsv.gz``;
* ``gauss1000x20k``: 1000 samples x 20,000 genes of Gaussian log-expression (seed 0, 20
  informative genes), genes in rows, ``.tsv.gz``.

``whole`` mode runs ``python -m jaxlasso select`` under ``/usr/bin/time -v`` and reports the peak
resident set size ("Maximum resident set size") of the whole process, next to the size of the
float64 samples x genes matrix (n * p * 8 bytes) and to two fixed costs measured the same way:

* ``jax baseline``: ``import jaxlasso`` plus one jitted call (the JAX / XLA runtime);
* ``tiny select``: the same ``select`` command on 16 x 200 genes (JAX + the compiled kernels +
  matplotlib + the report: everything that does not grow with the data).

The target (issue #22: peak memory below 8 x the float64 matrix) is judged two ways, each in its
own column: ``8x jax?`` on the peak minus the JAX baseline (what the run adds to a process that
has imported jaxlasso and initialised JAX), and ``8x fixed?`` on the peak minus the tiny select
(what the run adds to the program's own fixed cost: the code pages of the solver programs it
runs, pandas' and the report's objects -- ~90-100 MB that a 16 x 200 input needs as much as a
16 x 200,000 one, so no copy of the data).

``stages`` mode runs the same command in-process (with the program's malloc settings), samples
the RSS every 20 ms from a thread, and prints the peak RSS reached inside each step (reading, alignment, preprocessing, CV, diagnosis,
extra rankings, output writing), so that a peak can be attributed to the step that made it.

Usage::

    PYTHONPATH=$PWD python benchmarks/memory.py whole  [--cases counts16x200k gauss1000x20k]
    PYTHONPATH=$PWD python benchmarks/memory.py stages --cases counts16x200k
    PYTHONPATH=$PWD python benchmarks/memory.py stages --cases tiny16x200   # the fixed cost, by step

Extra ``select`` options go after ``--`` (e.g. ``-- --permutations 10``).

The persistent compilation cache changes the peak: a process that compiles its kernels (a cold
cache, or ``JAXLASSO_CACHE_DIR=off``) holds the compiler's memory too (the tiny select: ~390-440 MB
warm, ~640-665 MB cold). Compare runs made in the same state: both after a warm-up run of the
same shapes, or both with ``JAXLASSO_CACHE_DIR=off``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CASES = {
    # name: (n_samples, n_genes, kind)
    "counts16x200k": (16, 200_000, "counts"),
    "gauss1000x20k": (1000, 20_000, "gauss"),
    "tiny16x200": (16, 200, "counts"),
}


def make_case(name: str, workdir: Path) -> tuple[Path, Path]:
    """Write (expression .tsv.gz, sample sheet .tsv) for ``name`` unless they exist."""
    import gzip

    import pandas as pd

    n, p, kind = CASES[name]
    expr, sheet = workdir / f"{name}.tsv.gz", workdir / f"{name}.samples.tsv"
    if expr.exists() and sheet.exists():
        return expr, sheet
    if kind == "counts":
        from jaxlasso.simulate import simulate_rnaseq

        sim = simulate_rnaseq(n_cases=n // 2, n_controls=n - n // 2, n_genes=p, seed=0,
                              n_de=min(300, p // 4))
        values, genes, samples = sim.counts.to_numpy().T, list(sim.counts.columns), list(sim.counts.index)
        labels = sim.samples["group"].to_numpy()
        fmt = "%d"
    else:
        rng = np.random.default_rng(0)
        y = np.repeat([0, 1], [n // 2, n - n // 2])
        rng.shuffle(y)
        X = rng.normal(size=(n, p))
        X[:, :20] += 0.5 * (2 * y[:, None] - 1)
        values = X.T
        genes = [f"G{j + 1:05d}" for j in range(p)]
        samples = [f"S{i + 1:04d}" for i in range(n)]
        labels = np.where(y == 1, "case", "control")
        fmt = "%.5f"
    tmp = expr.with_suffix(".part")
    with gzip.open(tmp, "wt", compresslevel=1) as f:
        f.write("gene\t" + "\t".join(samples) + "\n")
        for g, row in zip(genes, values):
            f.write(g + "\t" + "\t".join(fmt % v for v in row) + "\n")
    os.replace(tmp, expr)
    pd.DataFrame({"sample": samples, "group": labels}).to_csv(sheet, sep="\t", index=False)
    return expr, sheet


def _time_v(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` under /usr/bin/time -v: peak RSS (bytes), wall seconds, exit status."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr)
    seconds = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        print(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}", file=sys.stderr)
    return {"peak": int(rss.group(1)) * 1024 if rss else -1, "wall": seconds, "rc": proc.returncode}


def _mb(b: float) -> str:
    return f"{b / 1e6:,.0f} MB"


def whole(cases: list[str], workdir: Path, extra: list[str]) -> None:
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    py = sys.executable
    base = _time_v([py, "-c", "import jaxlasso, jax, jax.numpy as jnp; "
                    "jax.jit(lambda a: a @ a)(jnp.ones((4, 4))).block_until_ready()"], env)
    print(f"jax baseline (import jaxlasso + one jit): peak RSS {_mb(base['peak'])}")
    tiny_expr, tiny_sheet = make_case("tiny16x200", workdir)
    with tempfile.TemporaryDirectory(dir=workdir) as out:
        tiny = _time_v([py, "-m", "jaxlasso", "select", str(tiny_expr), "--samples", str(tiny_sheet),
                        "--outcome", "group", "--out", str(Path(out) / "r"), "--quiet", *extra], env)
    print(f"tiny select (16 x 200): peak RSS {_mb(tiny['peak'])}, {tiny['wall']:.0f} s")
    print(f"{'case':<16} {'float64 X':>10} {'peak RSS':>10} {'x X':>6} {'peak-jax':>10} {'x X':>6} "
          f"{'peak-tiny':>10} {'x X':>6} {'wall':>6} {'8x jax?':>8} {'8x fixed?':>10}")
    for name in cases:
        n, p, _ = CASES[name]
        expr, sheet = make_case(name, workdir)
        with tempfile.TemporaryDirectory(dir=workdir) as out:
            r = _time_v([py, "-m", "jaxlasso", "select", str(expr), "--samples", str(sheet),
                         "--outcome", "group", "--out", str(Path(out) / "r"), "--quiet", *extra], env)
        size = n * p * 8
        print(f"{name:<16} {_mb(size):>10} {_mb(r['peak']):>10} {r['peak'] / size:6.1f} "
              f"{_mb(r['peak'] - base['peak']):>10} {(r['peak'] - base['peak']) / size:6.1f} "
              f"{_mb(r['peak'] - tiny['peak']):>10} {(r['peak'] - tiny['peak']) / size:6.1f} "
              f"{r['wall']:5.0f}s {'yes' if r['peak'] - base['peak'] < 8 * size else 'no':>8} "
              f"{'yes' if r['peak'] - tiny['peak'] < 8 * size else 'no':>10}"
              + ("" if r["rc"] == 0 else f"  (exit {r['rc']})"))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stages(cases: list[str], workdir: Path, extra: list[str]) -> None:
    """Peak RSS per step of one in-process ``select`` run (RSS sampled every 20 ms), with the
    ``jaxlasso`` program's malloc settings (capped arenas, fixed mmap threshold): without them
    the same run peaks ~200 MB higher at 16 x 200,000 and the steps do not add up to ``whole``."""
    import jaxlasso.cli as cli
    import jaxlasso.cli.select as cli_select
    import jaxlasso.io as jio
    import jaxlasso.workflow as wf

    cli.limit_malloc_arenas()
    cli.fix_mmap_threshold()

    marks: list[tuple[float, str]] = []

    def wrap(mod, name, label):
        fn = getattr(mod, name)

        def inner(*a, **k):
            marks.append((time.perf_counter(), label))
            try:
                return fn(*a, **k)
            finally:
                marks.append((time.perf_counter(), "(between steps)"))

        setattr(mod, name, inner)

    wrap(jio, "read_sample_sheet", "read sample sheet")
    wrap(jio, "read_expression", "read expression")
    wrap(jio, "align_samples", "align")
    wrap(cli_select, "write_outputs", "write outputs")  # the name the select command calls
    orig_timer = wf._timer

    def timer(progress, timings):
        timed = orig_timer(progress, timings)

        def t(name, fn, label=None):
            marks.append((time.perf_counter(), name))
            try:
                return timed(name, fn, label)
            finally:
                marks.append((time.perf_counter(), "(between steps)"))

        return t

    wf._timer = timer
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.perf_counter(), _rss()))
            time.sleep(0.02)

    import jax
    import jax.numpy as jnp
    jax.jit(lambda a: a @ a)(jnp.ones((4, 4))).block_until_ready()
    start_rss = _rss()
    for name in cases:
        n, p, _ = CASES[name]
        expr, sheet = make_case(name, workdir)
        marks.clear()
        samples.clear()
        stop.clear()
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        marks.append((time.perf_counter(), "(start)"))
        with tempfile.TemporaryDirectory(dir=workdir) as out:
            rc = cli.main(["select", str(expr), "--samples", str(sheet), "--outcome", "group",
                           "--out", str(Path(out) / "r"), "--quiet", *extra])
        stop.set()
        th.join()
        marks.append((time.perf_counter(), "(end)"))
        size = n * p * 8
        print(f"\n{name}: float64 X = {_mb(size)}; RSS after import jax = {_mb(start_rss)}; exit {rc}")
        peak_by: dict[str, int] = {}
        order: list[str] = []
        for (t0, label), (t1, _) in zip(marks, marks[1:]):
            inside = [r for t, r in samples if t0 <= t <= t1]
            if not inside:
                continue
            if label not in peak_by:
                order.append(label)
            peak_by[label] = max(peak_by.get(label, 0), max(inside))
        for label in order:
            print(f"  {label:<36} peak RSS {_mb(peak_by[label]):>10}  "
                  f"(+{_mb(peak_by[label] - start_rss)} over the start, "
                  f"{(peak_by[label] - start_rss) / size:.1f} x X)")


def main(argv: list[str] | None = None) -> None:
    # Rows appear as each case finishes, also when the output goes to a file (runs take minutes).
    sys.stdout.reconfigure(line_buffering=True)
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("whole", "stages"))
    ap.add_argument("--cases", nargs="+", default=["counts16x200k", "gauss1000x20k"],
                    # tiny16x200 too: `stages` on it splits the fixed cost every select pays.
                    choices=list(CASES))
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "jaxlasso-memory"))
    args = ap.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (whole if args.mode == "whole" else stages)(args.cases, workdir, extra)


if __name__ == "__main__":
    main()
