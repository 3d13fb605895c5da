"""``${NAME}`` in config values: taken from the environment when a config is loaded.

Every TOML *string value*, at any depth (tables, arrays of tables, inline tables, arrays),
has each ``${NAME}`` replaced by the environment variable ``NAME``; ``$${`` is a literal
``${``. Keys are never expanded, nor are the values that came from the environment
(a variable holding ``${X}`` stays ``${X}``). Expansion runs on the parsed TOML, so a
variable's value is only ever a string: it cannot add keys, tables or quotes. It runs
before validation, so an expanded value is checked like one written in the file.

A missing variable, an unclosed ``${`` or a name that is not one is a problem at its
field: ``streams.0.source: environment variable CAM_PASSWORD is not set; …``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIX = "or write $${ for a literal ${"

Loc = tuple[str, ...]


def expand_string(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``value`` with its references replaced, and what was wrong with it (one message per
    bad reference; the value is then unusable)."""
    if "$" not in value:
        return value, []
    out: list[str] = []
    errors: list[str] = []
    i = 0
    while (j := value.find("$", i)) >= 0:
        out.append(value[i:j])
        if value.startswith("$${", j):
            out.append("${")
            i = j + 3
            continue
        if not value.startswith("${", j):
            out.append("$")
            i = j + 1
            continue
        end = value.find("}", j + 2)
        if end < 0:
            errors.append(f"`${{` without a closing `}}`; write ${{NAME}}, {_FIX}")
            i = len(value)
            break
        name = value[j + 2 : end]
        if not _NAME.fullmatch(name):
            errors.append(
                f"`${{{name}}}` is not a variable name (letters, digits and `_`, not "
                f"starting with a digit); {_FIX.removeprefix('or ')}"
            )
        elif name not in environ:
            errors.append(
                f"environment variable {name} is not set; set it in the daemon's environment "
                f"(e.g. systemd Environment= or EnvironmentFile=), {_FIX}"
            )
        else:
            out.append(environ[name])
        i = end + 1
    out.append(value[i:])
    return "".join(out), errors


def expand_env(data: Any, environ: Mapping[str, str]) -> tuple[Any, list[tuple[Loc, str]]]:
    """A copy of parsed TOML with every string value expanded, and each problem at its
    location (``("streams", "0", "source")``)."""
    problems: list[tuple[Loc, str]] = []

    def walk(node: Any, loc: Loc) -> Any:
        if isinstance(node, str):
            value, errors = expand_string(node, environ)
            problems.extend((loc, e) for e in errors)
            return value
        if isinstance(node, dict):
            return {k: walk(v, (*loc, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*loc, str(i))) for i, v in enumerate(node)]
        return node

    return walk(data, ()), problems


__all__ = ["expand_env", "expand_string"]
