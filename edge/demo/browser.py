"""Open the dashboard in a browser, only where a person is sitting at a desktop.

``webbrowser.open`` on a headless box falls back to a text browser (lynx, w3m) that takes
over the terminal, or to nothing; under CI it would start a browser on a runner. So it is
called only when there is a desktop (macOS and Windows always have one; elsewhere
``DISPLAY`` or ``WAYLAND_DISPLAY``), ``CI`` is not set, and ``--no-browser`` was not given.
"""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Mapping


def should_open(env: Mapping[str, str], *, no_browser: bool, platform: str = sys.platform) -> bool:
    if no_browser or env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def open_dashboard(
    url: str, env: Mapping[str, str], *, no_browser: bool, platform: str = sys.platform
) -> bool:
    """Open ``url`` when ``should_open``; whether a browser took it."""
    if not should_open(env, no_browser=no_browser, platform=platform):
        return False
    try:
        return bool(webbrowser.open(url, new=2))
    except webbrowser.Error:
        return False
