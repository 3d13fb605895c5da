"""What differs between the supported Pythons, in one place.

JetPack 6 (Ubuntu 22.04) ships Python 3.10, which has neither ``tomllib`` nor
``datetime.UTC``; ``tomli`` is the same parser under its pre-3.11 name (a marker
dependency installs it there). mypy checks the package as 3.10, so a 3.11-only API used
anywhere else is a type error, not a crash on a Jetson.

``tomllib`` is imported on first use (PEP 562): ``edge.wire`` needs only ``UTC``, and
``edge detect``'s cold start reads no TOML.
"""

from __future__ import annotations

import importlib
import sys
from datetime import timezone
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

UTC = timezone.utc

__all__ = ["UTC", "tomllib"]


def __getattr__(name: str) -> ModuleType:
    if name != "tomllib":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    globals()["tomllib"] = module  # once: later lookups find it without this function
    return module
