"""Labels shared by every image decoder: the count check and the per-label threshold cut.

A decoder calls ``check_label_count`` once it knows how many classes its model has.
``LabelThresholds`` is the one place per-label thresholds are applied: it wraps any
image detector (``edge.detectors.load_detector`` and the device config put it there),
runs it with its score cut at the lowest threshold of any label, and keeps each detection
whose score reaches its own label's threshold (``score_threshold`` for the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from edge.detectors.base import Detection, Image, ImageDetector, StageTimes
from edge.errors import InputError, ManifestError
from edge.models.manifest import Manifest
from edge.runtime.base import AcceleratorInfo


def check_label_count(manifest: Manifest, n_classes: int, origin: str) -> None:
    """``ManifestError`` naming both counts when the manifest has labels and their number is
    not the model's class count (no labels: classes are named by their index)."""
    n = len(manifest.labels)
    if n and n != n_classes:
        raise ManifestError(
            f"{origin}: {manifest.labels_origin}: {n} label{'s' if n != 1 else ''} but the "
            f"model has {n_classes} class{'es' if n_classes != 1 else ''}; give one label per "
            "class, in class-index order"
        )


def unknown_labels(names: Iterable[str], labels: Sequence[str]) -> list[str]:
    """The ``names`` that are not among the model's ``labels``, in order."""
    known = set(labels)
    return [n for n in names if n not in known]


def check_thresholds(values: Mapping[str, float], where: str) -> None:
    """``InputError`` unless every threshold lies in (0, 1)."""
    for name, v in values.items():
        if not 0.0 < v < 1.0:
            raise InputError(f"{where}.{name}: a threshold lies between 0 and 1, got {v}")


class LabelThresholds:
    """An image detector whose detections are cut per label. ``score_threshold`` is the
    default; ``label_thresholds`` maps a label to its own. Setting either re-sets the
    wrapped detector's cut to the lowest of them."""

    def __init__(self, inner: ImageDetector, label_thresholds: Mapping[str, float]) -> None:
        self.inner = inner
        self.manifest: Manifest = inner.manifest
        self.times: StageTimes = inner.times
        self._default = float(inner.score_threshold)
        self._per_label: dict[str, float] = {}
        self.label_thresholds = dict(label_thresholds)

    @property
    def score_threshold(self) -> float:
        return self._default

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        self._default = float(value)
        self._sync()

    @property
    def label_thresholds(self) -> dict[str, float]:
        return dict(self._per_label)

    @label_thresholds.setter
    def label_thresholds(self, values: Mapping[str, float]) -> None:
        check_thresholds(values, "label_thresholds")
        self._per_label = {k: float(v) for k, v in values.items()}
        self._sync()

    def _sync(self) -> None:
        """The decoder's cut: the lowest threshold any of the model's labels has (so a model
        whose every label has its own ignores the default, and a one-label model decodes
        exactly as at its label's threshold); without labels, the lowest of all."""
        labels = self.manifest.labels
        if labels:
            cut = min(self.threshold_for(label) for label in labels)
        else:
            cut = min([self._default, *self._per_label.values()])
        self.inner.score_threshold = cut

    def threshold_for(self, label: str) -> float:
        return self._per_label.get(label, self._default)

    def detect(self, image: Image) -> list[Detection]:
        dets = self.inner.detect(image)
        return [d for d in dets if d.score >= self.threshold_for(d.label)]

    @property
    def accelerator(self) -> AcceleratorInfo:
        return self.inner.accelerator

    def close(self) -> None:
        self.inner.close()
