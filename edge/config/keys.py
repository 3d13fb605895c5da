"""The keys a config table accepts, to suggest one for a mistyped key.

pydantic's ``extra_forbidden`` error names the unknown key but not the ones allowed
there; this walks the config models along the error's location (through lists,
optionals and the sink union) to the table's model and lists its fields and aliases.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (``X | None``, ``list[X]``, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset, typing.Union, types.UnionType):
        return [m for a in args for m in _models_in(a)]
    if origin is dict and len(args) == 2:
        return _models_in(args[1])
    return []


def _is_mapping(annotation: Any) -> bool:
    """``dict[...]``, also inside ``X | None``."""
    if typing.get_origin(annotation) is dict:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return False


def _names(model: type[BaseModel]) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        out.add(name)
        if isinstance(field.alias, str):
            out.add(field.alias)
    return out


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if len(args) == 1 else field.default


def allowed_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the table at ``loc`` (pydantic's location of a key there,
    the key itself last); empty when the walk loses its way."""
    models: list[type[BaseModel]] = [root]
    keyed = False  # the part before was a ``dict[str, Model]`` field: this part is its key
    for part in loc[:-1]:
        if isinstance(part, int) or keyed:
            keyed = False
            continue  # a list index or a table's name: the value models are the candidates
        owners = [m for m in models if part in m.model_fields]
        if owners:
            annotations = [m.model_fields[part].annotation for m in owners]
            models = [x for a in annotations for x in _models_in(a)]
            keyed = any(_is_mapping(a) for a in annotations)
        else:  # the tag pydantic inserts for a discriminated union (``sinks.0.jsonl``)
            models = [m for m in models if _tag_of(m) == part]
        if not models:
            return []
    return sorted({n for m in models for n in _names(m)})
