"""How compile time of the vmapped lanes grows with the number of lanes, and which fusion is slow.

An H100 run of 2026-11-26 (NOTES.md, "GPU runs") could not compile 100 vmapped bootstrap lanes on
ALL BCR/ABL in 370 s -- XLA printed ``[Compiling module input_reduce_fusion.25 for GPU] Very slow
compile?`` -- while 11 vmapped CV lanes on the same data compiled in 7 s, and on the CPU 10 and 100
lanes compile in the same 6 s. This script is the next lease's first call: each case runs in a
child process under its own time limit (a hung compile costs that limit, not the lease), and

    python benchmarks/gpu_compile_probe.py --out $OUT/probe --lanes 16 32 64 128 --timeout 100

writes ``probe.csv`` (lanes, task, first call seconds or "timeout", XLA compile seconds per
executable from ``jax_log_compiles``, the slow-compile alarms XLA printed) and, for the case named
by ``--dump-lanes``, the optimised HLO of the solver (gzipped) plus the computations of the fusions
the alarms name (``slow-fusions.txt``) -- small enough to come back from the device machine.
``--xla-flags`` adds flags to every child (to try a code generation switch against the baseline).
The lanes go into one vmapped call (``JAXLASSO_VMAP_LANES=0``; the library's default chunks them
by 16 since NOTES change 30, which this probe bypasses to find the cause).

Runs on the CPU as well (no alarms there; ``--fusion NAME`` extracts a fusion by name anyway).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ALARM = re.compile(r"Compiling module (\S+) for \w+\] Very slow compile")
COMPILED = re.compile(r"Finished XLA compilation of (\S+) in ([0-9.e+-]+) sec")


def child(task: str, lanes: int, workload: str) -> None:
    """One case: the first call of the vmapped lanes, with per-executable compile logs on stderr."""
    import logging

    os.environ["JAXLASSO_LANE_MODE"] = "vmap"
    os.environ.setdefault("JAXLASSO_VMAP_LANES", "0")  # all lanes in one call: the compile being probed
    sys.path[:0] = [str(ROOT), str(HERE)]
    import jax

    jax.config.update("jax_log_compiles", True)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("jax").setLevel(logging.DEBUG)
    from adapters import Jaxlasso
    from datasets import WORKLOADS, bootstrap_weights, foldid_for
    from run import glmnet_grid

    wl = WORKLOADS[workload]()
    lam = glmnet_grid(wl.X, wl.y)
    t = time.perf_counter()
    if task == "bootstrap":
        Jaxlasso().bootstrap(wl.X, wl.y, lam, bootstrap_weights(len(wl.y), lanes), 0)
    else:
        Jaxlasso().cv(wl.X, wl.y, lam, foldid_for(wl.y), 0)
    print(json.dumps({"first": time.perf_counter() - t, "backend": jax.default_backend()}), flush=True)


def fusion_text(hlo: str, name: str) -> str:
    """The instruction named ``name`` in an HLO module's text, and the computation it calls."""
    m = re.search(rf"^\s*(?:ROOT )?%?{re.escape(name)} = .*$", hlo, re.M)
    if m is None:
        return f"# {name}: not in the module\n"
    out = [m.group(0).strip()]
    called = re.search(r"calls=%?([\w.\-]+)", m.group(0))
    if called:
        body = re.search(rf"^%?{re.escape(called.group(1))} .*?^}}", hlo, re.M | re.S)
        if body:
            out.append(body.group(0))
    return "\n".join(out) + "\n"


def run_case(args, lanes: int, dump: Path | None) -> dict:
    env = dict(os.environ, JAXLASSO_CACHE_DIR="off")  # every case compiles from scratch
    flags = [args.xla_flags] if args.xla_flags else []
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        flags += [f"--xla_dump_to={dump}", "--xla_dump_hlo_as_text", "--xla_dump_hlo_module_re=.*one.*"]
    if flags:
        env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", "")] + flags).strip()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", args.task, str(lanes), args.workload]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        out, err, first = proc.stdout, proc.stderr, None
        for line in out.splitlines():
            if line.startswith("{"):
                first = json.loads(line)["first"]
        status = "ok" if proc.returncode == 0 and first is not None else f"rc {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        first, status = None, "timeout"
    compiles = [(n, float(s)) for n, s in COMPILED.findall(err)]
    row = {"task": args.task, "workload": args.workload, "lanes": lanes, "status": status,
           "wall": round(time.perf_counter() - t, 1), "first": None if first is None else round(first, 2),
           "compile_total": round(sum(s for _, s in compiles), 1),
           "compiles": " ".join(f"{n}:{s:.1f}" for n, s in compiles),
           "alarms": " ".join(sorted(set(ALARM.findall(err)))), "xla_flags": args.xla_flags or ""}
    (args.out / f"stderr-{args.task}-{lanes}.txt").write_text(err[-20000:])
    return row


def harvest(dump: Path, names: list[str], out: Path) -> None:
    """Keep the solver's optimised HLO (gzipped) and the text of the named fusions; drop the rest."""
    mods = sorted(dump.rglob("*after_optimizations.txt"), key=lambda p: p.stat().st_size, reverse=True)
    texts = []
    for i, mod in enumerate(mods[:2]):
        hlo = mod.read_text()
        with gzip.open(out / f"hlo-{i}-{mod.name}.gz", "wt") as fh:
            fh.write(hlo)
        texts += [f"## {mod.name}\n"] + [fusion_text(hlo, n) for n in names]
    (out / "slow-fusions.txt").write_text("".join(texts) if texts else "no optimised module was dumped\n")
    shutil.rmtree(dump)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], int(argv[2]), argv[3])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--task", choices=["bootstrap", "cv"], default="bootstrap")
    ap.add_argument("--workload", default="all_bcrabl")
    ap.add_argument("--lanes", type=int, nargs="+", default=[16, 32, 64, 128],
                    help="lane counts (bucketed to powers of two by the engine)")
    ap.add_argument("--timeout", type=float, default=100.0, help="seconds per case")
    ap.add_argument("--dump-lanes", type=int, default=None, help="dump the optimised HLO of this case")
    ap.add_argument("--fusion", nargs="*", default=[], help="also extract these fusions from the dump")
    ap.add_argument("--xla-flags", default="", help="extra XLA_FLAGS for every case")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for lanes in (args.lanes if args.task == "bootstrap" else args.lanes[:1]):
        dump = args.out / "dump" if lanes == args.dump_lanes else None
        row = run_case(args, lanes, dump)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if dump is not None:
            harvest(dump, args.fusion + row["alarms"].split(), args.out)
        with open(args.out / "probe.csv", "w", newline="") as fh:  # rewritten per case: a cut run keeps rows
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
