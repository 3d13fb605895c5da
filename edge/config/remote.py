"""What a remote ``config`` command may change: an allow-list of key paths.

A ``config`` command carries a complete device config. It is compared with the config
file on the device as TOML text, before any ``${NAME}`` expansion and before validation
(a validation message can quote a value, and an expanded value is the device's secret):
every key path whose value differs, is added or is removed must be on ``REMOTE_KEYS``,
and no changed value may contain ``${``. Anything else refuses the whole command, and
nothing is applied or written.

What is allowed is tuning: how detections turn into events (scores, per-label scores,
label allow/deny lists, box areas, zones, lines, tracking),
how often frames are processed, how often telemetry is sent, how big and how many
event snapshots are (a metered link's budget). What is refused, and why
(``REFUSED``): whatever says who the device is, where it connects, which files it reads
or writes, which model runs and which key verifies models. A command channel that can
change those can take the device over (issue 11: a remote ``sync.model_public_key``
let an attacker's signed model in), read its files, or send its data elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.compat import tomllib
from edge.errors import ConfigError

KeyPath = tuple[str | int, ...]
"""A key path in a TOML document: table keys (str) and array-of-tables indexes (int)."""

ANY_KEY = "NAME"
"""In a ``REMOTE_KEYS`` pattern: any one table key (a detector name, a stream's detector)."""
ANY_INDEX = "[]"
"""In a ``REMOTE_KEYS`` pattern: any one index of an array of tables (``[[streams]]``)."""

REMOTE_KEYS: dict[str, str] = {
    "detectors.NAME.threshold": "a detector's score threshold",
    "detectors.NAME.label_thresholds": "a detector's per-label score thresholds (a table)",
    "detectors.NAME.label_thresholds.NAME": "one label's score threshold",
    "detectors.NAME.labels": "the labels a detector keeps (allow list)",
    "detectors.NAME.exclude_labels": "the labels a detector drops (deny list)",
    "detectors.NAME.min_area": "the smallest box kept, as a fraction of the image",
    "detectors.NAME.max_area": "the largest box kept, as a fraction of the image",
    "streams[].thresholds": "a stream's per-detector score thresholds (an empty table)",
    "streams[].thresholds.NAME": "a stream's per-detector score threshold",
    "streams[].fps_limit": "frames per second a stream processes",
    "streams[].zones": "the named zones, all at once (also: none, or the deprecated unnamed form)",
    "streams[].zones[].NAME": "a named zone's name, points, anchor, inertia",
    "streams[].zone_filter": "whether only objects in some zone make events",
    "streams[].lines": "the named counting lines, all at once (also: none)",
    "streams[].lines[].NAME": "a counting line's name, start, end, anchor, hysteresis",
    "streams[].motion_gate": "the motion gate, added or removed as a whole",
    "streams[].motion_gate.enabled": "the motion gate, on or off",
    "streams[].motion_gate.threshold": "what counts as motion",
    "streams[].motion_gate.max_skip_s": "how long the gate may skip inference",
    "tracking.kind": "event tracking",
    "tracking.iou_threshold": "event tracking",
    "tracking.high_score": "event tracking",
    "tracking.low_score": "event tracking",
    "tracking.low_iou_threshold": "event tracking",
    "tracking.min_hits": "event tracking",
    "tracking.max_missing": "event tracking",
    "tracking.update_interval_s": "event updates",
    "tracking.update_score_delta": "event updates",
    "tracking.update_iou_below": "event updates",
    "tracking.update_still_move": "event updates",
    "tracking.min_update_gap_s": "event updates",
    "tracking.audio_min_s": "audio events",
    "sync.telemetry_interval_s": "how often telemetry is sent (the one [sync] key)",
    "snapshots.enabled": "event snapshots, on or off (what a metered link sends)",
    "snapshots.kinds": "which event snapshots are taken",
    "snapshots.max_dim": "the snapshot frame's longest side",
    "snapshots.crop_max_dim": "the snapshot crop's longest side",
    "snapshots.crop_padding": "the margin around a snapshot crop's box",
    "snapshots.quality": "snapshot JPEG quality",
    "snapshots.max_bytes": "the largest snapshot JPEG",
}
"""Every key path a remote ``config`` may change (``[]``: any stream, ``NAME``: any key),
with what it tunes. Nothing else may differ from the device's config file."""

REFUSED: dict[str, str] = {
    "device_id": "the device's identity (its topics, its broker login)",
    "data_dir, models_home": "where the device keeps state and models: files it writes",
    "profile, detectors.NAME.backend/threads/providers/accelerator_strict": (
        "runtime and accelerator settings: local hardware, set where it is known"
    ),
    "detectors.NAME.model, adding or removing a detector": (
        "which model runs: only a model signed with sync.model_public_key, through the "
        "`model` command"
    ),
    "streams[] other than the keys above (source, type, name, detectors, resolution, "
    "audio, reconnect, file playback), adding or removing a stream": (
        "what is captured: a URL, a file or a device to read, which detectors watch it"
    ),
    "sinks": "where events are written: a file path, another destination",
    "health": "the health listener: an address that would expose the device",
    "sync (except sync.telemetry_interval_s)": (
        "the broker, credentials, TLS files, topics and the model-signing key: the channel "
        "that protects the device cannot be changed through itself"
    ),
    "a changed value containing ${": "env expansion would send the device's environment out",
}
"""What a remote ``config`` may never change, and why (shown in docs/cloud.md)."""

_PATTERNS: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.replace("[]", ".[]").split(".")) for p in REMOTE_KEYS
)


class RemoteConfigRefusedError(ConfigError):
    """A remote config differs from the device's file in keys it may not change."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


def key_name(path: KeyPath) -> str:
    """``("streams", 0, "source")`` → ``streams[0].source``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def flatten(doc: Mapping[str, Any], prefix: KeyPath = ()) -> dict[KeyPath, Any]:
    """Every leaf of a TOML document by key path. Arrays of tables are walked by index;
    other arrays, and empty tables (``[sync]`` alone turns sync on), are leaves."""
    out: dict[KeyPath, Any] = {}
    if not doc and prefix:
        out[prefix] = {}
    for key, value in doc.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            out.update(flatten(value, path))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                out.update(flatten(item, (*path, i)))
        else:
            out[path] = value
    return out


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[KeyPath]:
    """The key paths whose value differs (by type too: ``1`` is not ``1.0``), is added or is
    removed, in the order of the new document, then the removed ones."""
    a, b = flatten(old), flatten(new)
    changed = [p for p, v in b.items() if p not in a or not _same(a[p], v)]
    return changed + [p for p in a if p not in b]


def _same(x: Any, y: Any) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, list):
        return len(x) == len(y) and all(_same(i, j) for i, j in zip(x, y, strict=True))
    if isinstance(x, Mapping):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return bool(x == y)


def allowed(path: KeyPath) -> bool:
    """Whether ``REMOTE_KEYS`` lists ``path``."""
    for pattern in _PATTERNS:
        if len(pattern) == len(path) and all(
            (p == ANY_INDEX and isinstance(k, int))
            or (p == ANY_KEY and isinstance(k, str))
            or p == k
            for p, k in zip(pattern, path, strict=True)
        ):
            return True
    return False


def _reads_env(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, list):
        return any(_reads_env(v) for v in value)
    if isinstance(value, Mapping):
        return any(_reads_env(k) or _reads_env(v) for k, v in value.items())
    return False


def check_remote_config(current: str, remote: str, *, origin: str) -> None:
    """Raise ``RemoteConfigRefusedError`` unless ``remote`` differs from ``current`` (the config
    file's text, ``origin``) only in ``REMOTE_KEYS``, with no changed value holding ``${``;
    ``ConfigError`` if either is not TOML. Validation comes after, on the accepted text."""
    try:
        new = tomllib.loads(remote)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} (from the cloud): not TOML: {exc}") from None
    try:
        old = tomllib.loads(current)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{origin}: the config file on the device is not TOML ({exc}); fix it locally, "
            "a remote config is compared with it"
        ) from None
    changed = changed_keys(old, new)
    refused = [key_name(p) for p in changed if not allowed(p)]
    if refused:
        model = any(len(p) == 3 and p[0] == "detectors" and p[2] == "model" for p in changed)
        how = f"change them in {origin} on the device (then SIGHUP or restart)" + (
            "; a detector's model: send the signed `model` command" if model else ""
        )
        raise RemoteConfigRefusedError(
            f"config refused: a remote config may not change {_list(refused)}; {how}. "
            f"Remote configs may change only: {', '.join(REMOTE_KEYS)}",
            refused,
        )
    leaves = flatten(new)
    env = [
        key_name(p)
        for p in changed
        if p in leaves and (_reads_env(list(p)) or _reads_env(leaves[p]))
    ]
    if env:
        raise RemoteConfigRefusedError(
            f"config refused: {_list(env)}: a remote value may not contain '${{' (it would "
            "read the device's environment); send the value itself, or set it locally",
            env,
        )


def _list(keys: list[str], most: int = 8) -> str:
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(keys[:most]) + more
