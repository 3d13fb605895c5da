"""A manifest's ``labels_file``: class labels, one per line, read when the manifest is read.

The rules (docs/models.md, "Bring your own model: the manifest"):

- UTF-8 (a byte-order mark is allowed), at most ``MAX_BYTES``; ``\\n`` or ``\\r\\n`` lines;
- one label per line, surrounding spaces stripped; line k (counting only label lines)
  is class index k;
- a line whose first non-space character is ``#`` is a comment and is skipped;
- blank lines are allowed only at the end of the file: a blank line between labels
  would silently shift every class index after it, so it is an error (write a
  placeholder such as ``unused-12`` for a class the model does not use);
- labels are unique, and there is at least one;
- the path is relative to the manifest's folder and may not leave it.

Every error is one ``ManifestError`` line naming the manifest and the labels file.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from edge.errors import ManifestError

MAX_BYTES = 1 << 20
"""A labels file larger than this is refused (COCO's 80 labels are ~700 bytes)."""


def read_labels_file(name: str, folder: Path, origin: str) -> list[str]:
    """The labels in ``folder / name`` (``name`` from the manifest at ``origin``)."""
    where = f"{origin}: labels_file: {name}"
    if not name.strip() or PurePath(name).is_absolute():
        raise ManifestError(f"{where}: give a path relative to the manifest's folder")
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ManifestError(
            f"{where}: the path leaves the manifest's folder {root}; keep the labels file "
            "beside the manifest (or in a folder below it)"
        )
    if not path.is_file():
        raise ManifestError(f"{where}: not found (looked for {path})")
    if path.stat().st_size > MAX_BYTES:
        raise ManifestError(f"{where}: larger than {MAX_BYTES} bytes; is it a labels file?")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_labels(text, where)


def parse_labels(text: str, where: str) -> list[str]:
    """The labels of a labels file's ``text``, by the rules above; errors start with ``where``."""
    labels: list[str] = []
    first_line: dict[str, int] = {}
    blank: int | None = None  # the first blank line not yet followed by a label
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            blank = number if blank is None else blank
            continue
        if line.startswith("#"):
            continue
        if blank is not None:
            raise ManifestError(
                f"{where}: line {blank} is blank but labels follow it; class indexes follow "
                f"the lines, so write a placeholder (e.g. unused-{len(labels)}) or remove it"
            )
        if line in first_line:
            raise ManifestError(
                f"{where}: line {number}: label {line!r} repeats line {first_line[line]}; "
                "labels must be unique"
            )
        first_line[line] = number
        labels.append(line)
    if not labels:
        raise ManifestError(f"{where}: no labels in it (one label per line, # for comments)")
    return labels
