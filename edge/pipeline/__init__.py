"""The capture → infer → post pipeline.

``StreamRunner`` (stream.py) per stream: threads, typed queues, draining, health.
What happens to one item is the stream's ``Pipeline``: ``VisionPipeline`` (vision.py:
frame checks, motion gate, detectors, zones, tracking) or ``AudioPipeline`` (audio.py:
VAD / keyword spotting, segments). Both hand their events to one ``EventBatch``
(items.py). ``DetectorSlot`` (slots.py) holds one loaded model, swappable while running.
"""

from edge.pipeline.metrics import StreamMetrics
from edge.pipeline.slots import DetectorSlot, load_slot
from edge.pipeline.stream import StreamRunner

__all__ = ["DetectorSlot", "StreamMetrics", "StreamRunner", "load_slot"]
