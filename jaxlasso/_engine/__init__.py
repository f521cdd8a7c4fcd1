"""The host-side engine between numpy and the kernels, one concern per module.

- :mod:`.config`: the runtime configuration -- every ``JAXLASSO_*`` variable, read once into a
  frozen :class:`EngineConfig`; :func:`configure` replaces fields for a ``with`` block.
- :mod:`.scopes`: the precision and BLAS-thread scopes of a solve, the compilation cache.
- :mod:`.buffers`: aligned host buffers, their pool, and the design arrays built in them.
- :mod:`.shapes`: shape buckets, working-set capacities, memory estimates and the budget.
- :mod:`.outputs`: the lanes' outputs on the host and the status report.
- :mod:`.segments`: working-set growth -- a path resumed with a larger capacity after an overflow.
- :mod:`.lanes`: B paths sharing one design, as vmapped chunks or a loop of single-lane calls.
- :mod:`.datasets`: several datasets' lanes stacked in one vmapped call, sharded over devices.
- :mod:`.programs`: the solver programs, stored as exported StableHLO for the next process.
"""

from .buffers import HOST_BUFFERS, HostBufferPool, design_arrays, host_array
from .config import EngineConfig, configure, current, parse_bytes
from .datasets import DatasetLanes, solve_datasets
from .lanes import VMAP_MAX_ROWS, Lanes, default_lane_mode, lane_threads, solve_lanes, solve_looped, solve_vmapped
from .outputs import LaneOutputs, path_lengths, report_status
from .scopes import blas_scope, enable_compilation_cache, precision_scope
from .shapes import (MemoryBudgetError, bucket_lambdas, bucket_lanes, bucket_size, check_memory, estimate_bytes,
                     grow_capacity, initial_capacity, memory_budget)

__all__ = [
    "HOST_BUFFERS", "VMAP_MAX_ROWS", "DatasetLanes", "EngineConfig", "HostBufferPool", "LaneOutputs",
    "Lanes", "MemoryBudgetError",
    "blas_scope", "bucket_lambdas", "bucket_lanes", "bucket_size", "check_memory", "configure", "current",
    "default_lane_mode", "design_arrays", "enable_compilation_cache", "estimate_bytes", "grow_capacity",
    "host_array", "initial_capacity", "lane_threads", "memory_budget", "parse_bytes", "path_lengths",
    "precision_scope", "report_status", "solve_datasets", "solve_lanes", "solve_looped", "solve_vmapped",
]
