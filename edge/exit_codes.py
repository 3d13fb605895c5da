"""The exit codes of ``edge``, ``edge-convert`` and ``edge-hub``, in one place.

docs/cli.md has the table; tests/unit/test_cli_conventions.py checks that it lists
these values and that the CLIs use no other.
"""

from __future__ import annotations

OK = 0
FAILED = 1  # the work ran and failed: a fatal hub error, a device that refused a command,
# a file run whose pipeline thread crashed on the way
USAGE = 2  # the user can fix it: a bad flag, name, config, model or input (argparse too)
REFUSED = 3  # a check said no: the accuracy gate, a data dir another process holds, no reply
COMPONENT_FAILED = 4  # a daemon component failed for good: the service manager restarts it
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

ALL = {
    OK: "success",
    FAILED: "the work ran and failed (edge-hub: a fatal error; a device refused the command; "
    "edge run: the files ended but a pipeline thread crashed on the way)",
    USAGE: "a mistake the user can fix: unknown flag, name or key, invalid config, bad input",
    REFUSED: "a check said no: accuracy gate missed, data folder held by another process, "
    "no reply from the device",
    COMPONENT_FAILED: "edge run: a component failed for good (the service manager restarts it)",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
