"""The daemon's side of signed over-the-air model updates (docs/security.md).

``OtaBook`` keeps the OTA record (``edge.models.ota_record``, beside the config). On
every start and reload the daemon asks it which detectors run an accepted update instead
of the config's model (``bundles``): an entry applies while its ``config_model`` is the
config's model value for that detector, and only once its bundle verifies again (inside
``<data_dir>/models``, ``manifest.sig`` over ``manifest.json`` under the configured keys,
the manifest the one recorded, the file's sha256). An entry that does not verify is
not used (the config's model runs, health says why); one whose ``config_model`` the owner
changed is dropped once that config runs (``commit``). Counters are never dropped.

A record that cannot be read is not overwritten: the config's models run, health is red
(naming the file and the fix), and every model update is refused until the owner repairs
or deletes it (deleting forgets the counters: a replay of an update that has not expired
would then be accepted once).

The signature is checked by ``cloud_sync.signing``, loaded by name (``edge`` never imports
``cloud_sync``; it needs the ``sync`` extra, as the ``model`` command does).
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import threading
from datetime import datetime
from pathlib import Path

from edge.compat import UTC
from edge.config import DeviceConfig
from edge.errors import EdgeError, IntegrityError
from edge.models.manifest import parse_manifest
from edge.models.ota_record import (
    ASIDE_PREFIX,
    BUNDLE_MANIFEST,
    BUNDLE_SIGNATURE,
    STAGING_PREFIX,
    OtaEntry,
    OtaRecord,
    OtaRecordError,
    read_record,
    record_path,
    write_record,
)
from edge.models.resolve import ResolvedModel, resolve
from edge.stats import ModelSource
from edge.supervise import ComponentHealth

log = logging.getLogger("edge.daemon")  # one logger for the package, as before the split

HEALTH_NAME = "ota"


def models_dir(cfg: DeviceConfig) -> Path:
    """Where model updates go: ``<data_dir>/models`` (``cloud_sync.ota`` puts them there)."""
    return (cfg.data_dir / "models").resolve()


def verify_bundle(bundle: Path, detector: str, cfg: DeviceConfig) -> ResolvedModel:
    """The bundle as a model, once it is shown to be a signed update for ``detector``:
    a folder directly inside the models folder, ``manifest.sig`` verifying ``manifest.json``
    under ``sync.model_public_key``, an ``update`` for this detector, the file's sha256.
    ``EdgeError`` naming what failed otherwise."""
    root = models_dir(cfg)
    path = bundle.resolve()
    if path.parent != root or not path.is_dir():
        raise IntegrityError(f"{bundle}: not a bundle folder inside {root}")
    try:
        data = (path / BUNDLE_MANIFEST).read_bytes()
        signature = (path / BUNDLE_SIGNATURE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise IntegrityError(
            f"{path}: cannot read {BUNDLE_MANIFEST} and {BUNDLE_SIGNATURE} ({why})"
        ) from None
    keys = cfg.sync.model_public_keys if cfg.sync is not None else []
    try:
        signing = importlib.import_module("cloud_sync.signing")
    except ImportError as exc:
        raise IntegrityError(
            f"{path}: cannot check its signature ({exc}); install edgewise[sync]"
        ) from None
    signing.verify_any(signing.load_public_keys(keys), data, signature)
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path / BUNDLE_MANIFEST}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{path / BUNDLE_MANIFEST}: not a manifest object")
    manifest = parse_manifest(doc, str(path / BUNDLE_MANIFEST))
    if manifest.update is None or manifest.update.detector != detector:
        raise IntegrityError(
            f"{path / BUNDLE_MANIFEST}: not a signed update for detector {detector!r}"
        )
    model = resolve(str(path))  # reads that manifest again and checks the file's sha256
    if model.manifest != manifest:
        raise IntegrityError(f"{path}: the manifest changed while it was being checked")
    return model


def sweep(root: Path) -> list[str]:
    """Tidy what a crash during a ``model`` command left in the models folder ``root``
    (``cloud_sync.ota``): download staging folders are removed; a bundle moved aside whose
    own path is empty (the crash came between moving it aside and moving the new one in) is
    put back, any other moved-aside folder is removed. Run at start, once the data dir is
    locked, so that no other daemon's command can be in hand. What it did, one line each."""
    done: list[str] = []
    if not root.is_dir():
        return done
    for path in sorted(root.iterdir()):
        if path.is_symlink() or not path.is_dir():
            continue
        if path.name.startswith(STAGING_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"{path}: removed (a download a crash interrupted)")
        elif path.name.startswith(ASIDE_PREFIX):
            home = _bundle_home(path)
            if home is not None and not home.exists() and not home.is_symlink():
                path.rename(home)
                done.append(f"{path}: put back at {home} (a swap a crash interrupted)")
            else:
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"{path}: removed (a bundle replaced before a crash)")
    return done


def _bundle_home(aside: Path) -> Path | None:
    """Where a moved-aside bundle came from: ``<name>-<sha256[:12]>`` of its manifest."""
    try:
        doc = json.loads((aside / BUNDLE_MANIFEST).read_bytes())
        manifest = parse_manifest(doc, str(aside / BUNDLE_MANIFEST))
    except (OSError, ValueError, EdgeError):
        return None
    return aside.parent / f"{manifest.name}-{manifest.short_sha}"


class OtaBook:
    """The OTA record of one config, and what the daemon does with it."""

    def __init__(self, config_path: Path) -> None:
        self.path = record_path(config_path)
        self.record = OtaRecord()
        self.error: str | None = None  # the record cannot be read: updates are refused
        self._lock = threading.Lock()
        # why an entry (detector, counter) was not used; reported while it still applies
        self._rejected: dict[tuple[str, int], str] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the record again (on every start and reload: a repaired one is picked up)."""
        with self._lock:
            try:
                record = read_record(self.path)
            except OtaRecordError as exc:
                if self.error != str(exc):
                    log.error("%s", exc)
                self.error = str(exc)
                return
            self.record, self.error = record, None

    def counter(self, detector: str) -> int:
        return self.record.counter(detector)

    def bundles(self, cfg: DeviceConfig) -> dict[str, Path]:
        """Re-read the record; the verified bundle each detector of ``cfg`` runs instead of
        its configured model (none while the record is unreadable)."""
        self.refresh()
        if self.error is not None:
            return {}
        out: dict[str, Path] = {}
        for detector, entry in self.record.detectors.items():
            if not self.applies(entry, detector, cfg):
                continue  # the owner changed the model locally: dropped by commit()
            try:
                model = verify_bundle(Path(entry.bundle), detector, cfg)
                if model.manifest.sha256 != entry.sha256 or (
                    model.manifest.update is not None
                    and model.manifest.update.counter != entry.counter
                ):
                    raise IntegrityError(
                        f"{entry.bundle}: holds another update than the record names "
                        f"(sha256 {model.manifest.short_sha}, recorded {entry.sha256[:12]})"
                    )
            except EdgeError as exc:
                self.reject(detector, str(exc))
                continue
            out[detector] = Path(entry.bundle)
        return out

    def reject(self, detector: str, why: str) -> None:
        """The detector's entry could not be run: logged once, shown by ``health``."""
        entry = self.record.detectors.get(detector)
        key = (detector, entry.counter if entry is not None else 0)
        if self._rejected.get(key) != why:
            log.error(
                "detector %s: the OTA update (counter %d) is not used, the config's model "
                "runs: %s",
                detector, key[1], why,
            )  # fmt: skip
        self._rejected[key] = why

    @staticmethod
    def applies(entry: OtaEntry, detector: str, cfg: DeviceConfig) -> bool:
        dcfg = cfg.detectors.get(detector)
        return dcfg is not None and dcfg.model == entry.config_model

    def commit(self, cfg: DeviceConfig) -> None:
        """``cfg`` runs now: drop the entries its models no longer match (counters stay)."""
        with self._lock:
            if self.error is not None:
                return  # never overwrite a record that could not be read
            rec = self.record
            keep = {d: e for d, e in rec.detectors.items() if self.applies(e, d, cfg)}
            if keep == rec.detectors:
                return
            for d in sorted(set(rec.detectors) - set(keep)):
                log.info("detector %s: its model was changed in the config; OTA entry dropped", d)
            new = rec.model_copy(update={"detectors": keep})
            try:
                write_record(self.path, new)
            except OtaRecordError as exc:
                log.error("%s", exc)
                return
            self.record = new

    def accept(self, detector: str, model: ResolvedModel, config_model: str) -> OtaEntry | None:
        """Record an update that passed every check (durably, before it is swapped in);
        the entry it replaces. Refused while the record is unreadable."""
        update = model.manifest.update
        if update is None:  # verify_bundle checked it; keeps the type checker honest
            raise IntegrityError(f"{model.origin}: not a signed update")
        with self._lock:
            if self.error is not None:
                raise IntegrityError(
                    f"model: refused while the OTA record is unusable: {self.error}"
                )
            rec = self.record
            if update.counter <= rec.counter(detector):  # checked before; now under the lock
                raise IntegrityError(
                    f"model: update.counter {update.counter} is not above "
                    f"{rec.counter(detector)}, the last one accepted for detector {detector!r}"
                )
            entry = OtaEntry(
                bundle=str(model.path.parent),
                name=model.manifest.name,
                version=model.manifest.version,
                sha256=model.manifest.sha256,
                counter=update.counter,
                applied_at=datetime.now(UTC),
                config_model=config_model,
            )
            new = OtaRecord(
                counters={**rec.counters, detector: update.counter},
                detectors={**rec.detectors, detector: entry},
            )
            write_record(self.path, new)  # OtaRecordError: nothing changed
            self.record = new
        return rec.detectors.get(detector)

    def forget_bundle(self, old: OtaEntry, cfg: DeviceConfig) -> None:
        """Remove a replaced update's bundle folder once no entry names it."""
        path = Path(old.bundle)
        if any(e.bundle == old.bundle for e in self.record.detectors.values()):
            return
        if path.resolve().parent == models_dir(cfg) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)

    def source(self, detector: str, model: ResolvedModel) -> ModelSource:
        entry = self.record.detectors.get(detector)
        if (
            entry is not None
            and model.path.parent == Path(entry.bundle)
            and model.manifest.sha256 == entry.sha256
        ):
            return "ota"
        return "config"

    def health(self, cfg: DeviceConfig, sources: dict[str, ModelSource]) -> ComponentHealth:
        """Red (a dependency: the process works, a restart would not help) while the record
        is unreadable or a recorded update that still applies does not run."""
        if self.error is not None:
            return ComponentHealth(HEALTH_NAME, False, self.error, dependency=True)
        problems = [
            f"detector {d}: OTA update {e.counter} not used: "
            + self._rejected.get((d, e.counter), "not loaded")
            for d, e in sorted(self.record.detectors.items())
            if self.applies(e, d, cfg) and d in sources and sources[d] != "ota"
        ]
        if problems:
            return ComponentHealth(HEALTH_NAME, False, "; ".join(problems), dependency=True)
        return ComponentHealth(HEALTH_NAME, True)
