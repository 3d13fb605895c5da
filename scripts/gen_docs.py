"""Regenerate the generated parts of the docs from the code, so they cannot drift.

    python scripts/gen_docs.py          # rewrite the pages in place
    python scripts/gen_docs.py --check  # exit 1 if a page is out of date (used by a test)

Sections between ``<!-- gen:NAME -->`` and ``<!-- /gen:NAME -->`` are replaced; ``TARGETS``
says which page holds each one (a page that lost its markers fails the check too).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.detectors import DECODERS  # noqa: E402
from edge.models import zoo  # noqa: E402
from edge.models.manifest import (  # noqa: E402
    AudioInput,
    ImageInput,
    Manifest,
    NpmSource,
    PinnedFile,
    PypiSource,
    UpdateInfo,
)
from edge.units import format_size  # noqa: E402


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _default(f: FieldInfo) -> str:
    if f.default is PydanticUndefined and f.default_factory is None:
        return "**required**"
    value = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(table)"
    if isinstance(value, list):
        value = [v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
    return f"`{json.dumps(value, default=str)}`"


def _constraints(f: FieldInfo) -> list[Any]:
    """The field's own constraints and those of an ``Annotated`` type inside it (``X | None``)."""
    found = list(f.metadata)
    stack = [f.annotation]
    while stack:
        tp = stack.pop()
        if typing.get_origin(tp) is typing.Annotated:
            for meta in typing.get_args(tp)[1:]:
                found.extend(meta.metadata if isinstance(meta, FieldInfo) else [meta])
            stack.append(typing.get_args(tp)[0])
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            stack.extend(typing.get_args(tp))
    return found


def _has_float(tp: Any) -> bool:
    return tp is float or any(_has_float(a) for a in typing.get_args(tp))


def _limits(model: type[BaseModel], f: FieldInfo) -> str:
    """The bounds pydantic enforces, as text: the README shows the limits the code has."""
    out = []
    for c in _constraints(f):
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(getattr(c, attr, None), int | float) and type(c).__name__ != "Strict":
                out.append(f"{sign} {getattr(c, attr)}")
        if type(c).__name__ == "MinLen" and c.min_length > 0:
            out.append("non-empty" if c.min_length == 1 else f"length ≥ {c.min_length}")
        if type(c).__name__ == "MaxLen":
            out.append(f"length ≤ {c.max_length}")
        pattern = getattr(c, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"`{pattern}`")
    if _has_float(f.annotation) and model.model_config.get("allow_inf_nan") is False:
        out.append("finite")
    return ", ".join(out).replace("|", "\\|")


def _optional_table(tp: Any) -> type[BaseModel] | None:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _rows(model: type[BaseModel], prefix: str = "", limits: bool = False) -> list[str]:
    rows = []
    for name, f in model.model_fields.items():
        tp = f.annotation
        nested = tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
        if nested is not None:
            rows.extend(_rows(nested, f"{prefix}{name}.", limits))
            continue
        optional = _optional_table(tp) if limits else None
        if optional is not None:  # `tls: TLSConfig | None`: a table of its own, optional
            rows.extend(_rows(optional, f"{prefix}{name}.", limits))
            continue
        desc = (f.description or f.title or "").replace("|", "\\|").replace("\n", " ")
        cells = [f"`{prefix}{name}`", _type_name(tp), _default(f)]
        if limits:
            cells.append(_limits(model, f))
        rows.append("| " + " | ".join([*cells, desc]) + " |")
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        nested_list = isinstance(item, type) and issubclass(item, BaseModel)
        if prefix and nested_list and item is not PinnedFile:  # PinnedFile has its own table
            rows.extend(_rows(item, f"{prefix}{name}[].", limits))  # `[[streams.zones]]`
    return rows


def table(model: type[BaseModel], prefix: str = "", limits: bool = False) -> str:
    if limits:
        head = "| field | type | default | limits | meaning |\n|---|---|---|---|---|"
    else:
        head = "| field | type | default | meaning |\n|---|---|---|---|"
    return head + "\n" + "\n".join(_rows(model, prefix, limits))


def manifest_reference() -> str:
    parts = [
        "#### Top-level fields\n",
        table(Manifest).replace("| `input` |", "| `input` |"),
        '\n#### `source` for PyPI wheels (zoo models; `kind = "pypi"`, the default)\n',
        table(PypiSource, "source."),
        '\n#### `source` for npm packages plus a conversion recipe (`kind = "npm"`)\n',
        (NpmSource.__doc__ or "").strip().replace("\n    ", " ") + "\n",
        table(NpmSource, "source."),
        "\nEach entry of `source.files`:\n",
        table(PinnedFile, "source.files[]."),
        "\n#### `update` (signed over-the-air updates: `edge-hub sign-model`, docs/security.md)\n",
        table(UpdateInfo, "update."),
        '\n#### `input` for images (`kind = "image"`)\n',
        table(ImageInput, "input."),
        '\n#### `input` for audio (`kind = "audio"`)\n',
        table(AudioInput, "input."),
    ]
    for name, entry in DECODERS.items():
        examples = [m for m in zoo.zoo().values() if m.decoder.type == name]
        parts.append(f"\n#### Decoder `{name}` ({entry.input_kind} models)\n")
        doc = (entry.params.__doc__ or "").strip().splitlines()
        if doc:
            parts.append(doc[0] + "\n")
        parts.append(table(entry.params, "decoder."))
        if examples:
            ex = examples[0]
            body = json.dumps(ex.model_dump(mode="json", exclude_none=True), indent=2)
            parts.append(
                f"\n<details><summary>Complete example: <code>{ex.name}</code> "
                f"(edge/models/zoo/{ex.name}.json)</summary>\n\n```json\n{body}\n```\n</details>"
            )
    return "\n".join(parts)


def zoo_table() -> str:
    rows = [
        "| name | task | format | size | license | from (PyPI wheel or npm package, member) |",
        "|---|---|---|---|---|---|",
    ]
    for m in sorted(zoo.zoo().values(), key=lambda m: m.name):
        s = m.source
        assert s is not None
        size = format_size(s.size) if s.size else "-"
        if isinstance(s, NpmSource):
            files = ", ".join(f"`{f.member}`" for f in s.files)
            where = f"npm `{s.package}@{s.version}`, {files}, converted with `{s.convert.tool}`"
        else:
            where = f"`{s.package}=={s.version}`, `{s.member}`"
        rows.append(f"| `{m.name}` | {m.task} | {m.format} | {size} | {m.license} | {where} |")
    return "\n".join(rows)


def config_reference() -> str:
    from edge.config import (
        DetectorConfig,
        DeviceConfig,
        HealthConfig,
        HomeAssistantConfig,
        SnapshotsConfig,
        StreamConfig,
        SyncConfig,
        TrackingConfig,
    )
    from edge.config.sinks import SINK_MODELS, SINK_TYPES

    sections: list[tuple[str, type[BaseModel], str]] = [
        ("Top level", DeviceConfig, ""),
        ("`[[streams]]`", StreamConfig, "streams[]."),
        ("`[detectors.NAME]`", DetectorConfig, "detectors.NAME."),
        ("`[tracking]`", TrackingConfig, "tracking."),
    ]
    for kind, sink_model in zip(SINK_TYPES, SINK_MODELS, strict=True):
        doc = (sink_model.__doc__ or "").strip().splitlines()[0]
        sections.append((f'`[[sinks]]` with `type = "{kind}"`: {doc}', sink_model, "sinks[]."))
    sections += [
        ("`[health]`", HealthConfig, "health."),
        ("`[snapshots]`", SnapshotsConfig, "snapshots."),
        ("`[sync]`", SyncConfig, "sync."),
    ]
    sections += [("`[health]`", HealthConfig, "health."), ("`[sync]`", SyncConfig, "sync.")]
    sections.append(("`[homeassistant]` (or `homeassistant = true`)", HomeAssistantConfig,
                     "homeassistant."))  # fmt: skip
    parts = [
        "<details><summary>Every device-config key (generated from edge/config/)</summary>\n",
        "Floats are finite everywhere (TOML's `inf` and `nan` are refused); "
        "`edge validate-config` checks every limit below. Any string value may be "
        "`${NAME}` (or hold it), taken from the environment when the config is loaded; "
        "`$${` is a literal `${` (see [Secrets](run.md#secrets)).",
    ]
    for title, model, prefix in sections:
        rows = table(model, prefix, limits=True).splitlines()
        if model is DeviceConfig:  # the nested tables have their own sections
            nested = (
                "| `tracking.",
                "| `health.",
                "| `snapshots.",
                "| `sync.",
                "| `homeassistant.",
            )
            rows = [r for r in rows if not r.startswith(nested)]
        parts.append(f"\n**{title}**\n\n" + "\n".join(rows))
    parts.append("\n</details>")
    return "\n".join(parts)


def remote_config() -> str:
    from edge.config.remote import REFUSED, REMOTE_KEYS

    rows = ["| a remote `config` may change | what it tunes |", "|---|---|"]
    rows += [f"| `{k}` | {v} |" for k, v in REMOTE_KEYS.items()]
    rows += ["", "| never from a remote `config` | why |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in REFUSED.items()]
    return "\n".join(r.replace("${", "`${`") if "${" in r else r for r in rows)


GENERATORS = {
    "manifest-reference": manifest_reference,
    "zoo": zoo_table,
    "config-reference": config_reference,
    "remote-config": remote_config,
}


# the page each generated section lives in, relative to the repository
TARGETS = {
    "manifest-reference": "docs/models.md",
    "zoo": "docs/models.md",
    "config-reference": "docs/config.md",
    "remote-config": "docs/cloud.md",
}


def render(text: str, names: list[str]) -> str:
    for name in names:
        gen = GENERATORS[name]
        pattern = re.compile(rf"(<!-- gen:{name} -->\n).*?(<!-- /gen:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{TARGETS[name]}: no <!-- gen:{name} --> section to fill")
        text = pattern.sub(lambda m, g=gen: m.group(1) + g() + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    stale = []
    for page in sorted(set(TARGETS.values())):
        path = ROOT / page
        old = path.read_text(encoding="utf-8")
        new = render(old, [n for n, t in TARGETS.items() if t == page])
        if new == old:
            continue
        if args.check:
            stale.append(page)
        else:
            path.write_text(new, encoding="utf-8")
    if stale:
        print(f"{', '.join(stale)} out of date: run python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
