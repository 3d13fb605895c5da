"""What differs between the supported Pythons, in one place.

JetPack 6 (Ubuntu 22.04) ships Python 3.10, which has neither ``tomllib`` nor
``datetime.UTC``; ``tomli`` is the same parser under its pre-3.11 name (a marker
dependency installs it there). mypy checks the package as 3.10, so a 3.11-only API used
anywhere else is a type error, not a crash on a Jetson.
"""

from __future__ import annotations

import sys
from datetime import timezone

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - only on 3.10
    import tomli as tomllib

UTC = timezone.utc

__all__ = ["UTC", "tomllib"]
