"""What every command shares: exit statuses, progress lines, notices of the output protocol."""

from __future__ import annotations

import sys
import time

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class Progress:
    """One plain line per stage on stderr (``[  12.3s] step ...``), also when stderr is a log
    file or a pipe: a batch job's log then shows where a long run is. No carriage returns, so
    the lines read the same in a terminal and in a file. ``--quiet`` and ``--json`` silence it."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, step: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {step} ...", file=sys.stderr, flush=True)



def notifier(args):
    """Where one-line notices of the output protocol go (stale lock taken over, waiting,
    interrupted publish completed): stderr, unless --quiet."""
    from ..output import _stderr_warning

    return None if getattr(args, "quiet", False) else _stderr_warning

