"""``python -m jaxlasso``: the command-line tool (see ``jaxlasso.cli``)."""

from .cli import main

raise SystemExit(main())
