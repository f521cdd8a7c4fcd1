"""Where a path's time goes: exclusive time per XLA operation, from a JAX profiler trace.

    python benchmarks/xla_profile.py gauss1000            # one path on a benchmark workload
    python benchmarks/xla_profile.py all_bcrabl --top 30

Runs the path once to compile, then once under ``jax.profiler.trace`` (with a Perfetto trace),
and prints the operations of the compiled solver by their *exclusive* time (an operation's
duration minus the operations nested in it), with their call counts. Names are XLA's (``dot.8``,
``cholesky.27``, ``*_fusion``); ``count`` tells which loop level an operation sits in (once per
KKT round, per Newton step, per solve). Lanes run in one thread so the numbers add up.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def exclusive_times(events: list[dict]) -> tuple[collections.Counter, collections.Counter]:
    """Exclusive microseconds and call counts per event name (complete events, per thread)."""
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by_thread[(e.get("pid"), e.get("tid"))].append(e)
    own, count = collections.Counter(), collections.Counter()
    for es in by_thread.values():
        es.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[dict] = []
        for e in es:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                own[stack[-1]["name"]] -= e["dur"]
            own[e["name"]] += e["dur"]
            count[e["name"]] += 1
            stack.append(e)
    return own, count


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", help="a workload name of benchmarks/datasets.py (seedlike, gauss1000x2k, ...)")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    os.environ["JAXLASSO_LANE_THREADS"] = "1"
    import jax

    import jaxlasso
    from datasets import WORKLOADS
    from run import glmnet_grid

    wl = WORKLOADS[args.workload]()
    lam = glmnet_grid(wl.X, wl.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jaxlasso.logistic_path(wl.X, wl.y, lambdas=lam)  # compile
        with tempfile.TemporaryDirectory() as tmp:
            with jax.profiler.trace(tmp, create_perfetto_trace=True):
                fit = jaxlasso.logistic_path(wl.X, wl.y, lambdas=lam)
            (trace,) = glob.glob(os.path.join(tmp, "**", "*perfetto_trace.json.gz"), recursive=True)
            with gzip.open(trace) as fh:
                data = json.load(fh)
    events = data["traceEvents"] if isinstance(data, dict) else data
    own, count = exclusive_times(events)
    # Host-side Python frames start with '$'; the waits are the host blocking on the device.
    ops = [(name, us) for name, us in own.most_common() if not name.startswith("$") and "wait for" not in name
           and name not in ("ThunkExecutor::Execute", "H2D Dispatch")]
    total = sum(us for _, us in ops)
    print(f"{wl.name}: {len(fit.lambdas)} lambdas, working-set capacities "
          f"{fit.info['working_set_capacities']}; solver operations {total / 1e3:.0f} ms in all")
    print(f"{'ms':>9} {'share':>6} {'count':>6}  operation")
    for name, us in ops[:args.top]:
        print(f"{us / 1e3:9.1f} {us / total:6.1%} {count[name]:6d}  {name[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
