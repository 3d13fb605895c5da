"""Bounds on every value that crosses a wire, defined once.

The device config (``edge.config``), the wire schema (``cloud_sync.schema``), the
hub's store and its HTTP API all take their limits from here, so a value the
device accepts is one the hub can store and serve back:

- identifiers (device id, stream, label, command names) are matched whole
  (``re.fullmatch``; ``$`` would also match before a trailing newline) and hold
  no control characters (PostgreSQL refuses a NUL in text);
- integers fit a signed 64-bit column (SQLite ``INTEGER``, PostgreSQL ``bigint``);
- floats are finite (``Infinity`` is not JSON, and breaks every reader);
- timestamps lie between 2000 and 2100 UTC (year 0 or 10000 cannot be rendered);
- JSON nests at most ``MAX_JSON_DEPTH`` levels (a 200 kB document 100,000 levels
  deep must be refused before a recursive decoder sees it).

This module imports only the standard library and pydantic: the hub uses it
without onnxruntime or OpenCV, and loading a config does not import ``cloud_sync``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from edge.compat import UTC

INT64_MAX = 2**63 - 1
"""The largest integer a store column (SQLite INTEGER, PostgreSQL bigint) holds."""

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in any payload or request body."""

_ZERO = timedelta(0)
TS_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2100, 1, 1, tzinfo=UTC)

DEVICE_ID_MAX = 64
DEVICE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
"""A device id is one MQTT topic level: no '/', '+', '#', at most 64 characters."""

NAME_MAX = 128
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
"""Stream names: like device ids, 128 characters at most."""

LABEL_PATTERN = r"[^\x00-\x1f\x7f]{1,128}"
"""Labels and model names: any printable text, 1-128 characters, no control characters."""

MAX_REGIONS = 64
"""The most zones, and the most lines, one stream has (and one event or telemetry names)."""

COMMAND_PATTERN = r"[a-z][a-z0-9_-]{0,31}"
"""A command name is one MQTT topic level under ``cmd/``."""

DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
NAME_RE = re.compile(NAME_PATTERN)
COMMAND_RE = re.compile(COMMAND_PATTERN)


def _anchored(pattern: str) -> str:
    # pydantic matches with Rust's regex crate, where ``$`` is the very end of the text
    return f"^{pattern}$"


def is_device_id(value: str) -> bool:
    return DEVICE_ID_RE.fullmatch(value) is not None


def is_command_name(value: str) -> bool:
    return COMMAND_RE.fullmatch(value) is not None


def _in_window(value: datetime) -> datetime:
    if value.utcoffset() == _ZERO:  # "…Z", what every device sends: no conversion needed
        if not TS_MIN.year <= value.year < TS_MAX.year:
            raise ValueError(
                f"timestamp {value.isoformat()} is outside 2000-01-01 .. 2100-01-01 UTC"
            )
        return value
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("timestamp is out of range; use 2000-01-01 to 2100-01-01 UTC") from None
    if not TS_MIN <= utc < TS_MAX:
        raise ValueError(f"timestamp {utc.isoformat()} is outside 2000-01-01 .. 2100-01-01 UTC")
    return value


DeviceId = Annotated[
    str, Field(pattern=_anchored(DEVICE_ID_PATTERN), max_length=DEVICE_ID_MAX, strict=True)
]
StreamName = Annotated[
    str, Field(pattern=_anchored(NAME_PATTERN), max_length=NAME_MAX, strict=True)
]
Label = Annotated[str, Field(pattern=_anchored(LABEL_PATTERN), max_length=NAME_MAX, strict=True)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX, strict=True)]
"""A non-negative integer a store column can hold (seq, track ids, counters, depths)."""
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15, strict=True)]
NonNegative = Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=1e15, strict=True)]
Unit = Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=1.0, strict=True)]
WireTime = Annotated[AwareDatetime, Field(strict=False), AfterValidator(_in_window)]
"""RFC 3339 with an offset, read from a string; 2000-2100 UTC."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; send a finite number")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text} overflows a 64-bit float; send a finite number")
    return v


def _int64(text: str) -> int:
    v = int(text)
    if not -INT64_MAX - 1 <= v <= INT64_MAX:
        raise ValueError(f"integer {text} does not fit in 64 bits")
    return v


def loads(text: str | bytes, *, numbers: bool = True) -> Any:
    """``json.loads`` that refuses NaN/Infinity, floats that overflow to infinity (``1e400``)
    and integers outside 64 bits while decoding, and turns a nesting too deep for the
    decoder (``RecursionError``: 100,000 levels in 200 kB) into a ``ValueError``.

    Depth below that is bounded by what the payload is validated into: the typed wire
    models have a fixed shape, and free-form objects (``JsonObject``: command args and
    results) are walked by ``check_json_value`` to ``MAX_JSON_DEPTH``. A pre-scan of the
    text for depth cost 2-3x the decode itself on a 40 kB batch, which a hub under a flood
    cannot afford. Raises ``ValueError`` (``json.JSONDecodeError`` is one).

    ``numbers=False`` leaves integer and float ranges to the model the document is
    validated into (every number of a typed wire model is a bounded ``Count`` / finite
    float, and ``JsonObject`` walks the free-form ones): the hub's ingest path does that,
    since the per-number hooks cost it ~25 % of its throughput. A bad number then fails
    only its own event, which is quarantined while the rest of its batch is stored.
    """
    try:
        if not numbers:
            return json.loads(text, parse_constant=_reject_constant)
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int64
        )
    except RecursionError:
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from None


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Walk a decoded JSON value (iteratively): finite floats, int64 integers, bounded depth.

    Returns the value; raises ``ValueError`` naming the first offending path.
    """
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth >= max_depth:
                raise ValueError(f"{path}: nests deeper than {max_depth} levels")
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, child in items:
                if isinstance(v, dict) and not isinstance(k, str):
                    raise ValueError(f"{path}: object keys must be strings")
                stack.append(
                    (child, f"{path}.{k}" if isinstance(v, dict) else f"{path}[{k}]", depth + 1)
                )
        elif isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        elif isinstance(v, int):
            if not -INT64_MAX - 1 <= v <= INT64_MAX:
                raise ValueError(f"{path}: integer {v} does not fit in 64 bits")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError(f"{path}: {v} is not a finite number")
        else:
            raise ValueError(f"{path}: {type(v).__name__} is not a JSON value")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_value)]
"""A JSON object (command args, results): bounded depth, finite numbers, int64 integers."""


# -- MQTT: identity and topics -------------------------------------------------------------
# Checked where they are configured (the device's [sync] section, the hub's options): a
# broker drops a client whose CONNECT or topic breaks these rules, so a config that passes
# ``edge validate-config`` must never be one the broker refuses.

DEFAULT_PREFIX = "edgewise/v1"

SnapshotKind = Literal["start", "start_crop", "best", "best_crop"]
"""An event snapshot: the frame at a track's start (``start``, attached to its ``start``
event) and the best-scoring frame by its end (``best``, attached to its ``end`` event),
each with a crop around the box (``*_crop``)."""
SNAPSHOT_KINDS: tuple[str, ...] = ("start", "start_crop", "best", "best_crop")
SNAPSHOT_MAGIC = b"EWS1"
"""A snapshot message: ``EWS1``, a big-endian uint16 header length, the header (JSON,
``cloud_sync.schema.SnapshotHeaderV1``), then the JPEG bytes."""
MAX_SNAPSHOT_BYTES = 512 * 1024
"""The largest JPEG a snapshot message may carry (device config bounds it lower)."""
MAX_SNAPSHOT_HEADER = 2048
"""The topic prefix a device publishes under and the hub subscribes to by default."""

MAX_BATCH_EVENTS = 1000
"""Most events in one batch message; the hub refuses a bigger batch."""

CLIENT_ID_MAX = 128
CLIENT_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"
"""An MQTT client id every common broker accepts (mosquitto, EMQX, HiveMQ allow 65535
bytes of any UTF-8; AWS IoT and Azure 128): letters, digits, ``_.:-``, 1-128 characters."""

USERNAME_MAX = 128
TOPIC_PREFIX_MAX = 128
_TOPIC_FORBIDDEN = re.compile(r"[+#\x00-\x1f\x7f]")


def check_topic_prefix(value: str) -> str:
    """A topic prefix: one or more ``/``-separated levels that a client may publish to.

    No wildcards (``+``, ``#``) or control characters, no empty level (leading, trailing or
    doubled ``/``), not starting with ``$`` (reserved for the broker, e.g. ``$SYS``).
    Raises ``ValueError`` saying which rule the value breaks; returns it unchanged.
    """
    if not value:
        raise ValueError("the topic prefix is empty; use e.g. 'edgewise/v1'")
    bad = _TOPIC_FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"{bad.group()!r} is not allowed in a topic prefix (no wildcards '+'/'#' "
            "or control characters)"
        )
    if value.startswith("$"):
        raise ValueError("a topic prefix must not start with '$' (reserved for the broker)")
    if "" in value.split("/"):
        raise ValueError("a topic prefix has no empty levels: no leading, trailing or double '/'")
    return value


def _no_control(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("control characters are not allowed")
    return value


ClientId = Annotated[
    str, Field(pattern=_anchored(CLIENT_ID_PATTERN), max_length=CLIENT_ID_MAX, strict=True)
]
TopicPrefix = Annotated[
    str,
    Field(min_length=1, max_length=TOPIC_PREFIX_MAX, strict=True),
    AfterValidator(check_topic_prefix),
]
MqttUsername = Annotated[
    str,
    Field(min_length=1, max_length=USERNAME_MAX, strict=True),
    AfterValidator(_no_control),
]
"""MQTT strings may not hold U+0000 (a broker closes the connection); the hub's example ACL
substitutes the username into topic patterns (``%u``), where control characters never match."""
