"""``python -m jaxlasso``: the command-line tool (see ``jaxlasso.cli``)."""

from .cli import run

raise SystemExit(run())
