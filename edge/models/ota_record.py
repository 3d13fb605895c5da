"""The OTA record: which signed over-the-air model each detector runs, kept beside the config.

``<config dir>/<config stem>.ota.json`` (``edge.toml`` → ``edge.ota.json``)::

    {"v": 1, "counters": {"faces": 1733100000},
     "detectors": {"faces": {"bundle": "/var/lib/edgewise/models/blazeface-full-99bf9494d84f",
                             "name": "blazeface-full", "version": "0.6.0", "sha256": "…",
                             "counter": 1733100000, "applied_at": "2024-12-02T00:40:00Z",
                             "config_model": "blazeface-short"}}}

``counters`` is the last update counter accepted per detector, kept for ever (an entry
that is dropped, because the owner changed the detector's model locally, keeps its
counter: an old update replayed later is still refused). Written atomically: a
temporary file, fsync, rename over the record, fsync of the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.atomic import write_atomic
from edge.errors import ConfigError
from edge.wire import WireTime

BUNDLE_MANIFEST = "manifest.json"  # in a bundle: the signed manifest bytes, byte for byte
BUNDLE_SIGNATURE = "manifest.sig"  # in a bundle: the base64 signature over those bytes
STAGING_PREFIX = ".incoming-"
"""A model command downloads into ``<models>/.incoming-*`` (``cloud_sync.ota``)."""
ASIDE_PREFIX = ".replaced-"
"""...and moves a bundle already at its path to ``<models>/.replaced-*`` until the swap
succeeds. A crash leaves either behind; ``edge.daemon.ota.sweep`` tidies them at start."""

Counter = Annotated[int, Field(ge=1, le=2**63 - 1, strict=True)]


class OtaRecordError(ConfigError):
    """The record exists but cannot be read or written; the message names the file."""


class OtaEntry(BaseModel):
    """One detector's accepted update: the bundle it runs instead of the config's model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle: str = Field(description="absolute path of the bundle folder (inside <data>/models)")
    name: str
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    counter: Counter
    applied_at: WireTime
    config_model: str = Field(description="the config's model value this update replaced")


class OtaRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    counters: dict[str, Counter] = Field(default_factory=dict)
    detectors: dict[str, OtaEntry] = Field(default_factory=dict)

    def counter(self, detector: str) -> int:
        """The last counter accepted for ``detector``; 0 if none ever was."""
        return self.counters.get(detector, 0)


def record_path(config_path: Path) -> Path:
    """``edge.toml`` → ``edge.ota.json``, in the config's folder."""
    return config_path.with_name(f"{config_path.stem}.ota.json")


def read_record(path: Path) -> OtaRecord:
    """The record at ``path``; an empty one if there is none. ``OtaRecordError`` (one line,
    naming the file and the fix) if it exists but is unreadable or damaged."""
    fix = (
        "model updates are refused until it is repaired; deleting it runs the config's "
        "models and forgets the replay counters (docs/security.md)"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return OtaRecord()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise OtaRecordError(f"{path}: cannot read the OTA record ({why}); {fix}") from None
    try:
        return OtaRecord.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise OtaRecordError(f"{path}: the OTA record is not JSON ({exc}); {fix}") from None
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        raise OtaRecordError(
            f"{path}: the OTA record is damaged ({loc}: {e['msg']}); {fix}"
        ) from None


def write_record(path: Path, record: OtaRecord) -> None:
    """Replace the record atomically and durably (tmp + fsync + rename + folder fsync)."""
    data = record.model_dump_json(indent=2) + "\n"
    try:
        write_atomic(path, data.encode("utf-8"))
    except OSError as exc:
        raise OtaRecordError(
            f"{path}: cannot write the OTA record ({exc.strerror}); make the config's folder "
            "writable by the daemon"
        ) from None
