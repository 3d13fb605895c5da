"""``edge examples [DIR]``: copy the shipped examples (device configs, sample media, the
mosquitto configs) into DIR, default ``./examples``.

The README's and docs' example commands name ``examples/media/…`` and
``examples/configs/…``. A clone has that folder; a wheel installed with ``pip`` has it
only as package data (``edge/examples``), so a user without the checkout runs
``edge examples`` once and then types the same commands from the same folder. The example
configs use paths relative to themselves, so the copy works wherever it is put.

Nothing is overwritten: a DIR that already holds files is refused (exit 3) unless
``--force``, which replaces only the files this command ships and leaves the rest (an
``events.jsonl`` a run wrote, a config the user edited under another name) alone.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from edge import exit_codes
from edge.errors import EdgeError

SHIPPED = Path(__file__).resolve().parents[1] / "examples"


class ExamplesError(EdgeError):
    """The target folder cannot take the examples."""

    exit_code = exit_codes.REFUSED


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "examples",
        help="copy the example configs and sample media into a folder (default ./examples)",
        description=(
            "Copies configs/, media/ and mosquitto/ from the installed package into DIR, so "
            "that the docs' commands (edge detect … examples/media/photo.jpg) run as written "
            "from its parent folder."
        ),
    )
    p.add_argument("dir", nargs="?", type=Path, default=Path("examples"), metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace the shipped files in DIR")
    p.set_defaults(handler=run)


def shipped_files() -> list[Path]:
    """The shipped example files, relative to the examples folder, sorted."""
    if not SHIPPED.is_dir():
        raise EdgeError(f"{SHIPPED}: the shipped examples are missing; reinstall edgewise")
    files = sorted(p.relative_to(SHIPPED) for p in SHIPPED.rglob("*") if p.is_file())
    return [f for f in files if "__pycache__" not in f.parts]


def copy_examples(dest: Path, force: bool = False) -> list[Path]:
    """Copy every shipped example into ``dest``; the paths written, relative to it."""
    files = shipped_files()
    if dest.resolve() == SHIPPED.resolve():
        return []  # a checkout's examples/ is the shipped folder itself: nothing to do
    if dest.exists() and not dest.is_dir():
        raise ExamplesError(f"{dest}: exists and is not a folder; choose another DIR")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ExamplesError(
            f"{dest}: already holds files; choose another DIR, or --force to replace the "
            "shipped ones in it"
        )
    for rel in files:
        target = dest / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHIPPED / rel, target)
        except OSError as exc:
            raise ExamplesError(
                f"{target}: cannot write ({exc.strerror}); choose another DIR"
            ) from exc
    return files


def run(args: argparse.Namespace) -> int:
    dest: Path = args.dir
    files = copy_examples(dest, force=args.force)
    if not files:
        print(f"{dest}: this is the shipped examples folder already (a checkout)")
        return exit_codes.OK
    folders = sorted({rel.parts[0] for rel in files})
    print(f"{dest}: wrote {len(files)} files ({', '.join(f + '/' for f in folders)})")
    print(f"try: edge detect blazeface-short {dest / 'media' / 'photo.jpg'} --json")
    return exit_codes.OK
