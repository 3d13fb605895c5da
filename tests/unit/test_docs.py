"""The docs agree with the code and with themselves: the generated parts (zoo table,
manifest and config references, remote-config lists) are current, every relative link in
README.md and docs/*.md reaches a file and heading that exist, and every test the threat
model names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def test_generated_sections_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_generated_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    """The check above can fail: a copy of the repository's scripts and pages with one
    generated table edited by hand is reported, by page."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "docs").mkdir()
    script = tmp_path / "scripts" / "gen_docs.py"
    script.write_text((REPO / "scripts" / "gen_docs.py").read_text(encoding="utf-8"))
    for page in ("models.md", "config.md", "cloud.md"):
        text = (REPO / "docs" / page).read_text(encoding="utf-8")
        (tmp_path / "docs" / page).write_text(text, encoding="utf-8")
    models = tmp_path / "docs" / "models.md"
    models.write_text(models.read_text().replace("| `blazeface-short` |", "| `blazeface` |"))
    proc = subprocess.run(
        [sys.executable, str(script), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "docs/models.md out of date" in proc.stderr


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces
    to hyphens (so "The dashboard's views" is ``the-dashboards-views``)."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", text))
    for m in re.finditer(r"^#{1,6} +(.+?) *#*$", text, re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # `[x](y)` inside code is not a link
    return [m.group(1) for m in LINK.finditer(text)]


def broken(page: Path) -> list[str]:
    out = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            out.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            out.append(f"{target} (no heading #{anchor} in {dest.name})")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken(page), broken(page)


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    other = "# Other\n\n## The dashboard's views\n\n## Views\n## Views\n"
    (tmp_path / "other.md").write_text(other)
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-dashboards-views) [ok2](other.md#views-1) [self](#top)\n"
        "# Top\n[gone](missing.md) [bad](other.md#nowhere) [web](https://example.com/x)\n"
        "```\n[in a fence](nowhere.md)\n```\n`[code](nowhere.md)`\n"
    )
    assert broken(page) == [
        "missing.md (no such file)",
        "other.md#nowhere (no heading #nowhere in other.md)",
    ]


NAMED_TEST = re.compile(r"`(?:(tests/[\w/]+\.py)?::(\w+))?(?:\[([^\]`]+)\])?`")


def missing_named_tests(text: str, repo: Path) -> tuple[list[str], int]:
    """The tests ``text`` names that do not exist, and how many it names. A test is
    ``tests/…py::name``, ``::name`` (in the file named just before it), either with a
    parametrize id ``[id]``, or ``[id]`` alone (another id of the test named just before);
    an id exists when the file spells it as a string (each ``-``-joined part, for ids
    pytest joins from several parameters)."""
    named = 0
    file: str | None = None
    test: str | None = None
    missing: list[str] = []
    for m in NAMED_TEST.finditer(text):
        if not (m.group(2) or m.group(3)):
            continue
        if m.group(2):
            file, test = m.group(1) or file, m.group(2)
        assert file is not None and test is not None, f"{m.group(0)} names no test before it"
        path = repo / file
        source = path.read_text(encoding="utf-8") if path.is_file() else ""
        name = f"{file}::{test}"
        if not re.search(rf"^(async )?def {test}\(", source, re.MULTILINE):
            missing.append(name)
        elif (param := m.group(3)) is not None and not (
            _spelled(param, source) or all(_spelled(p, source) for p in param.split("-"))
        ):
            missing.append(f"{name}[{param}]")
        named += 1
    return missing, named


def _spelled(word: str, source: str) -> bool:
    return f'"{word}"' in source or f"'{word}'" in source


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/security.md: each row names its test (see ``missing_named_tests``); a renamed or
    removed test, or a parametrize id no longer there, fails here."""
    text = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    missing, named = missing_named_tests(text, REPO)
    assert not missing, missing
    assert named >= 40, named  # the parse found the rows


def test_the_named_test_check_catches_a_missing_test_or_id(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        '@pytest.mark.parametrize("v", ["a b", "c"], ids=["first one", "c"])\n'
        "def test_x(v): ...\n\n\ndef test_y(): ...\n"
    )
    doc = (
        "| `tests/test_x.py::test_x[first one]`, `[c]`, `[d]`, `[c-first one]`, `::test_y`, "
        "`::test_z`, `tests/test_gone.py::test_x`, `x = [1]` |"
    )
    missing, named = missing_named_tests(doc, tmp_path)
    assert missing == [
        "tests/test_x.py::test_x[d]",
        "tests/test_x.py::test_z",
        "tests/test_gone.py::test_x",
    ]
    assert named == 7
