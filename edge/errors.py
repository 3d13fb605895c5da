"""Domain exceptions. Every message names the file or field and says how to fix it.

The CLI turns any ``EdgeError`` into one line on stderr and a non-zero exit;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from edge import exit_codes


class EdgeError(Exception):
    """Base class for every error a user can cause and fix."""

    exit_code = exit_codes.USAGE


class UsageError(EdgeError):
    """The command line itself is wrong in a way argparse cannot see (``--wheel`` with
    two names): exit 2, as argparse's own usage errors."""


class ModelError(EdgeError):
    """A model file or manifest is missing, corrupt or inconsistent."""


class ManifestError(ModelError):
    """A manifest field is missing, has the wrong type, or names an unknown decoder."""


class ZooError(ModelError):
    """A zoo name is unknown or a pull failed."""


class IntegrityError(ModelError):
    """A file's sha256 does not match the one its manifest pins."""


class InputError(EdgeError):
    """An input (image, audio, video) cannot be read or does not fit the model."""


class BackendUnavailableError(EdgeError):
    """A runtime backend's library is not installed."""


class ConfigError(EdgeError):
    """A device config or profile is invalid."""


class ProfileError(ConfigError):
    """A device profile is unknown or invalid."""


def run_cli(prog: str, command: Callable[[], int], *, debug: bool) -> int:
    """Run a CLI's command: an ``EdgeError`` becomes one line on stderr and its exit code
    (the traceback only with ``--debug``); Ctrl-C exits 130; a closed pipe exits 0."""
    try:
        return command()
    except EdgeError as exc:
        if debug:
            raise
        from edge.redact import redact

        print(f"{prog}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        return 0
