"""The capture → infer → post pipeline: ``StreamRunner`` per stream, ``DetectorSlot`` per model."""

from edge.pipeline.metrics import StreamMetrics, prometheus
from edge.pipeline.slots import DetectorSlot, load_slot
from edge.pipeline.stream import StreamRunner

__all__ = ["DetectorSlot", "StreamMetrics", "StreamRunner", "load_slot", "prometheus"]
