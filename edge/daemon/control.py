"""The daemon's side of ``edge.control.DeviceControl``: what the cloud may ask of it."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.atomic import StagedFile
from edge.compat import UTC
from edge.config import parse_config, resolve_paths
from edge.config.remote import check_remote_config
from edge.control import DeviceControl
from edge.daemon.ota import verify_bundle
from edge.daemon.reload import Reloading
from edge.errors import ConfigError, EdgeError, InputError
from edge.models.update_check import check_update
from edge.pipeline import DetectorSlot
from edge.pipeline.slots import open_detector
from edge.snapshots.encode import fit_jpeg
from edge.stats import DetectorStats, DeviceStats
from edge.stats import SinkStats as SinkFigures

log = logging.getLogger("edge.daemon")  # one logger for the package, as before the split


class Control(Reloading):
    """``apply_config`` (through the transactional reload), ``swap_model``, ``snapshot``
    and ``stats``."""

    def _device_control(self) -> DeviceControl:
        return self

    def apply_config(self, text: str) -> None:
        # first the allow-list, on the raw text (before env expansion and validation, whose
        # messages could quote an expanded value): a refused config is neither applied
        # nor written
        try:
            current = self.config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{self.config_path}: cannot read the config file to compare a remote config "
                f"with ({getattr(exc, 'strerror', None) or exc}); nothing was changed"
            ) from None
        check_remote_config(current, text, origin=str(self.config_path))
        origin = f"{self.config_path} (from the cloud)"
        cfg = resolve_paths(parse_config(text, origin), self.config_path.parent)
        # the file is written first (a config dir that cannot take it fails before
        # anything changes) and put in place only once the new config runs
        try:
            staged = StagedFile(self.config_path, text.encode("utf-8"), prefix=".config-")
        except OSError as exc:
            raise ConfigError(
                f"{self.config_path.parent}: cannot write the new config ({exc.strerror}); "
                "nothing was changed"
            ) from None
        try:
            self.apply(cfg)
            staged.commit()
        except OSError as exc:
            raise ConfigError(
                f"{self.config_path}: the new config runs but was not saved ({exc.strerror}); "
                "the next start uses the old file"
            ) from None
        finally:
            staged.discard()

    def swap_model(self, detector: str, bundle: Path) -> dict[str, Any]:
        """Swap in a signed update's bundle (``cloud_sync.ota`` put it in the models folder
        after its checks): checked again here, against the daemon's own state and under its
        lock, then recorded durably (the OTA record) before it runs."""
        if detector not in self.cfg.detectors:
            raise ConfigError(
                f"swap_model: no detector {detector!r}; have {sorted(self.cfg.detectors)}"
            )
        dcfg = self.cfg.detectors[detector]
        model = verify_bundle(bundle, detector, self.cfg)
        with self._state_lock:
            running = self._running
            if running is None:
                raise EdgeError("swap_model: the daemon is not running")
            targets = [s for r in running.runners for s in r.slots if s.name == detector]
            check_update(
                model.manifest,
                detector=detector,
                device_id=self.cfg.device_id,
                now=datetime.now(UTC),
                last_counter=self._ota.counter(detector),
                running_version=targets[0].model.manifest.version if targets else None,
            )
            for slot in targets:
                if (model.manifest.input.kind == "audio") != slot.is_audio:
                    raise InputError(
                        f"swap_model: {model.origin} takes {model.manifest.input.kind} input; "
                        f"detector {detector!r} runs on other input"
                    )
            loaded = []
            try:
                for _ in targets:
                    loaded.append(open_detector(dcfg, model, self._profile(self.cfg), detector))
                replaced = self._ota.accept(detector, model, dcfg.model)  # durable first
            except BaseException:
                for det in loaded:
                    det.close()
                raise
            for slot, det in zip(targets, loaded, strict=True):
                slot.swap(model, det)
            if replaced is not None and replaced.bundle != str(model.path.parent):
                self._ota.forget_bundle(replaced, self.cfg)
        m = model.manifest
        log.info(
            "detector %s now runs %s %s (%s), OTA update %d",
            detector, m.name, m.version, m.short_sha, self._ota.counter(detector),
        )  # fmt: skip
        return {"detector": detector, "model": m.name, "version": m.version, "sha256": m.sha256,
                "streams": len(targets), "counter": self._ota.counter(detector)}  # fmt: skip

    def snapshot(self, stream: str | None, max_bytes: int) -> bytes:
        running = self._running
        runners = running.runners if running is not None else []
        video = [r for r in runners if not r.cfg.is_audio]
        pick = [r for r in video if stream is None or r.cfg.name == stream]
        if not pick:
            raise InputError(
                f"snapshot: no video stream {stream!r}; have {[r.cfg.name for r in video]}"
            )
        image = pick[0].last_image
        if image is None:
            raise InputError(f"snapshot: stream {pick[0].cfg.name!r} has no frame yet")
        jpeg = fit_jpeg(image, max(image.shape[:2]), 90, max_bytes)  # full size first
        if jpeg is None:
            raise InputError(f"snapshot: cannot fit a JPEG in {max_bytes} bytes")
        return jpeg.data

    def stats(self) -> DeviceStats:
        """A snapshot of every stream, detector and sink (``edge.stats``), for telemetry."""
        running = self._running
        runners = running.runners if running is not None else []
        per_stream: dict[str, dict[str, float]] = {}
        calls: dict[str, int] = {}
        first: dict[str, DetectorSlot] = {}
        for r in runners:
            for s in r.slots:
                first.setdefault(s.name, s)
                timing = r.metrics.inference(s.name)
                ms = per_stream.setdefault(s.name, {})
                calls[s.name] = calls.get(s.name, 0) + (timing.count if timing else 0)
                if timing is not None:
                    ms[r.cfg.name] = round(timing.ema_ms, 3)
        detectors = {
            name: DetectorStats(
                model=slot.model.manifest.name,
                version=slot.model.manifest.version,
                sha256=slot.model.manifest.short_sha,
                inference_ms=per_stream[name],
                calls=calls[name],
                accelerator=slot.accelerator.to_json(),
                source=self._ota.source(name, slot.model),
                counter=self._ota.counter(name),
            )
            for name, slot in first.items()
        }
        return DeviceStats(
            device_id=self.cfg.device_id,
            boot_id=self.boot_id,
            uptime_s=round(time.monotonic() - self.t_start, 1),
            events=self.events_total,
            reloads=self.reloads,
            streams={r.cfg.name: r.stats() for r in runners},
            detectors=detectors,
            sinks={  # over the process's life, across reloads (counters only grow)
                name: SinkFigures(
                    failures=st.failures, events_lost=st.lost, snapshots_lost=st.snapshots_lost
                )
                for name, st in self._sink_stats.items()
            },
            ota_error=self._ota.error,
            snapshots=self._snapshot_stats(),
        )
