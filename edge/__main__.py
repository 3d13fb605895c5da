"""``python -m edge``: the ``edge`` program (``edge.cli.entry``)."""

from edge.cli.entry import main

raise SystemExit(main())
