"""The generated parts of the README (zoo table, manifest reference) match the code."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_readme_generated_sections_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
