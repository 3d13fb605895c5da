"""The ``edge`` program: the console script and ``python -m edge``.

The cyclic garbage collector is paused before the CLI's modules are imported
(``edge.gc_pause`` says why and who resumes it); ``edge.cli.main`` is the CLI itself, and
importing it (as tests do) changes nothing.
"""

from __future__ import annotations

from edge import gc_pause


def main() -> int:
    gc_pause.pause()
    from edge.cli.main import main as cli

    return cli()
