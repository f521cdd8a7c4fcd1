"""The jitted numerical core of jaxlasso: pure ``jax.numpy`` functions on NamedTuple pytrees.

No numpy/pandas, no I/O, no validation and no Python branching on array values: the functional
API in :mod:`jaxlasso` validates and prepares inputs and maps status codes to messages.
"""

from ._types import Moments, PathOut, PathState, Problem, Settings, Status
from .batched import DATASET_AXIS, LANE_AXIS, datasets_solver, lanes_solver, single_solver
from .path import fresh_state, moments, solve_path

__all__ = [
    "DATASET_AXIS",
    "LANE_AXIS",
    "Moments",
    "PathOut",
    "PathState",
    "Problem",
    "Settings",
    "Status",
    "datasets_solver",
    "fresh_state",
    "lanes_solver",
    "single_solver",
    "moments",
    "solve_path",
]
