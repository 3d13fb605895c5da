"""A detector's label and box-area filters from the device config, applied before tracking.

``[detectors.NAME]`` may set ``labels`` (keep only these), ``exclude_labels`` (drop
these), ``min_area`` and ``max_area`` (the box's area, clipped to the image, as a
fraction of the image's). ``build_filter`` checks the label names against the model's
labels when the detector is loaded; ``DetectionFilter.apply`` is the one place the
rules run (``edge.pipeline.vision``), for every decoder alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.config import DetectorConfig
from edge.detectors.base import Detection
from edge.detectors.labels import unknown_labels
from edge.errors import ConfigError
from edge.models.manifest import Manifest


@dataclass(frozen=True, slots=True)
class DetectionFilter:
    """Which detections go on to tracking. The default keeps every one."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    min_area: float = 0.0
    max_area: float = 1.0

    @property
    def by_area(self) -> bool:
        return self.min_area > 0.0 or self.max_area < 1.0

    def keep(self, d: Detection, width: int, height: int) -> bool:
        if self.allow is not None and d.label not in self.allow:
            return False
        if d.label in self.deny:
            return False
        if self.by_area:
            x1, y1, x2, y2 = d.box
            w = min(x2, width) - max(x1, 0.0)
            h = min(y2, height) - max(y1, 0.0)
            area = max(w, 0.0) * max(h, 0.0) / (width * height)
            return self.min_area <= area <= self.max_area
        return True

    def apply(self, dets: list[Detection], width: int, height: int) -> list[Detection]:
        """The detections of a ``width`` × ``height`` image that pass."""
        if self.allow is None and not self.deny and not self.by_area:
            return dets
        return [d for d in dets if self.keep(d, width, height)]


def build_filter(name: str, cfg: DetectorConfig, manifest: Manifest) -> DetectionFilter:
    """The filter of ``[detectors.NAME]``; ``ConfigError`` naming the key when a label is not
    one of the model's."""
    for key, names in (("labels", cfg.labels or []), ("exclude_labels", cfg.exclude_labels)):
        check_names(f"detectors.{name}.{key}", names, manifest)
    return DetectionFilter(
        allow=frozenset(cfg.labels) if cfg.labels is not None else None,
        deny=frozenset(cfg.exclude_labels),
        min_area=cfg.min_area,
        max_area=cfg.max_area,
    )


def check_names(key: str, names: Sequence[str], manifest: Manifest) -> None:
    """``ConfigError`` at ``key`` for each of ``names`` that the model has no label for."""
    unknown = unknown_labels(names, manifest.labels)
    if not unknown:
        return
    if not manifest.labels:
        raise ConfigError(
            f"{key}: model {manifest.name} lists no labels in its manifest, so {unknown} cannot "
            "be checked; add labels (or labels_file) to the manifest"
        )
    raise ConfigError(
        f"{key}: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not "
        f"a label of model {manifest.name}; valid labels: {', '.join(manifest.labels)}"
    )
