"""Cold start of ``logistic_path``: compile vs run per executable, first and second process.

    python benchmarks/cold_start.py gauss1000x2k            # one workload (run.py's names)
    python benchmarks/cold_start.py ngep --json out.json    # a group of them

For each workload two fresh Python processes share one new, empty persistent compilation cache
(``JAXLASSO_CACHE_DIR``): the first is a user's very first call on that shape, the second a later
run on the same machine (executables read from the cache). Each process times its import of
jaxlasso, the first ``logistic_path`` call and a second call in the same process (the solve
alone); JAX's compile log gives, per executable, the tracing, lowering and XLA compilation
seconds, and the persistent-cache hits. Data are built before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# JAX's log lines under jax.log_compiles (jax/_src/pjit.py, interpreters/pxla.py, compiler.py).
_NAME = r"(?:jit\()?([A-Za-z0-9_.<>-]+?)\)?"
_PHASES = [
    ("trace", re.compile(rf"Finished tracing {_NAME} for jit in ([0-9.e-]+) sec")),
    ("lower", re.compile(rf"Finished jaxpr to MLIR module conversion {_NAME} in ([0-9.e-]+) sec")),
    ("compile", re.compile(rf"Finished XLA compilation of {_NAME} in ([0-9.e-]+) sec")),
]
_CACHE_HIT = re.compile(r"Persistent compilation cache hit for '(?:jit_)?([^']+)'")


def parse_compile_log(text: str) -> dict[str, dict[str, float]]:
    """Seconds per executable and phase (trace, lower, XLA compile; summed over repeats, with
    their counts ``n_<phase>``) and persistent-cache hits, from JAX's compile log."""
    out: dict[str, dict[str, float]] = {}
    for phase, pattern in _PHASES:
        for name, secs in pattern.findall(text):
            entry = out.setdefault(name, {})
            entry[phase] = entry.get(phase, 0.0) + float(secs)
            entry[f"n_{phase}"] = entry.get(f"n_{phase}", 0) + 1
    for name in _CACHE_HIT.findall(text):
        entry = out.setdefault(name, {})
        entry["cache_hits"] = entry.get("cache_hits", 0) + 1
    return out


def child(workload: str) -> dict:
    """One process: import, data, first call, second call; the compile log of the first call."""
    import io
    import logging
    import warnings

    t0 = time.perf_counter()
    import jax

    import jaxlasso
    t_import = time.perf_counter() - t0
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from datasets import WORKLOADS

    wl = WORKLOADS[workload]()
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # the persistent-cache hit lines are debug messages
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with jax.log_compiles(True):
            t = time.perf_counter()
            fit = jaxlasso.logistic_path(wl.X, wl.y)
            first = time.perf_counter() - t
        logger.removeHandler(handler)
        t = time.perf_counter()
        jaxlasso.logistic_path(wl.X, wl.y)
        second = time.perf_counter() - t
    return {"workload": wl.name, "import_s": t_import, "first_s": first, "second_s": second,
            "path_length": len(fit.lambdas), "capacities": list(fit.info["working_set_capacities"]),
            "executables": parse_compile_log(buf.getvalue())}


def measure(workload: str) -> dict:
    """A first and a second fresh process on one new, empty compilation cache."""
    with tempfile.TemporaryDirectory(prefix="jaxlasso-cold-") as tmp:
        env = dict(os.environ, JAXLASSO_CACHE_DIR=str(Path(tmp) / "xla"))
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            res = subprocess.run([sys.executable, __file__, "--child", workload], env=env, capture_output=True,
                                 text=True, check=True)
            wall = time.perf_counter() - t
            run = json.loads(res.stdout.strip().splitlines()[-1])
            run["process_wall_s"] = wall
            runs.append(run)
    return {"workload": runs[0]["workload"], "cold": runs[0], "warm_process": runs[1]}


def dominant(run: dict, top: int = 3) -> str:
    """The executables with the most compile seconds (trace + lower + XLA) of one process, as text."""
    exe = sorted(run["executables"].items(),
                 key=lambda kv: -sum(kv[1].get(ph, 0.0) for ph in ("trace", "lower", "compile")))
    return ", ".join(f"{name} {sum(e.get(ph, 0.0) for ph in ('trace', 'lower', 'compile')):.1f} s"
                     for name, e in exe[:top]) or "none logged"


def summary(m: dict) -> str:
    cold, warm = m["cold"], m["warm_process"]
    lines = [f"{m['workload']}: cold first call {cold['first_s']:.2f} s (second {cold['second_s']:.2f} s), "
             f"warm process first call {warm['first_s']:.2f} s (second {warm['second_s']:.2f} s); import "
             f"{cold['import_s']:.1f} / {warm['import_s']:.1f} s; process {cold['process_wall_s']:.1f} / "
             f"{warm['process_wall_s']:.1f} s; path length {cold['path_length']}, capacities {cold['capacities']}"]
    exe = sorted(cold["executables"].items(), key=lambda kv: -(kv[1].get("compile", 0) + kv[1].get("trace", 0)
                                                               + kv[1].get("lower", 0)))
    total = {ph: sum(e.get(ph, 0.0) for _, e in exe) for ph in ("trace", "lower", "compile")}
    lines.append(f"  cold compile log: trace {total['trace']:.2f} s, lower {total['lower']:.2f} s, XLA "
                 f"{total['compile']:.2f} s over {sum(int(e.get('n_compile', 0)) for _, e in exe)} executables")
    for name, e in exe[:8]:
        lines.append(f"    {name:<40} trace {e.get('trace', 0):6.2f}  lower {e.get('lower', 0):6.2f}  "
                     f"XLA {e.get('compile', 0):6.2f} s  (x{int(e.get('n_compile', 0))})")
    hits = sum(int(e.get("cache_hits", 0)) for e in warm["executables"].values())
    wtot = sum(e.get("compile", 0.0) for e in warm["executables"].values())
    lines.append(f"  warm process: {hits} persistent-cache hits, XLA compile {wtot:.2f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="+", help="workload or group names of benchmarks/datasets.py")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.workloads[0])))
        return 0
    sys.path.insert(0, str(HERE))
    from datasets import expand_workloads

    results = []
    for name in expand_workloads(args.workloads):
        m = measure(name)
        results.append(m)
        print(summary(m), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
