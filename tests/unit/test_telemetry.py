"""``cloud_sync.telemetry``: DeviceStats → TelemetryV1 field by field; a build never raises."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cloud_sync.outbox import Outbox, OutboxStats
from cloud_sync.schema import TelemetryV1
from cloud_sync.telemetry import Telemetry
from edge.events import Event, ModelRef, uuid7
from edge.stats import DetectorStats, DeviceStats, SinkStats, StreamStats

BOOT = uuid7()


def device_stats(**stream: object) -> DeviceStats:
    cam = StreamStats(kind="video", live=True, fps_in=30.0, fps_processed=29.5, frames_in=900,
                      processed=880, dropped=3, gated=2, skipped=1, reconnects=1, restarts=0,
                      queue_depth={"capture": 1, "post": 0}, events={"start": 2})  # fmt: skip
    mic = StreamStats(kind="audio", live=True, fps_in=10.4, fps_processed=10.4, frames_in=100)
    cam = replace(cam, **stream)  # type: ignore[arg-type]
    faces = DetectorStats("blazeface-short", "1.0", "0123456789ab", {"cam0": 1.0, "cam1": 3.0}, 880)
    accel: dict[str, object] = {"backend": "onnx", "active": "CPUExecutionProvider"}
    vad = DetectorStats("silero-vad", "5", "abcdefabcdef", {"mic": 0.5}, 100, accelerator=accel)
    return DeviceStats(
        device_id="dev1",
        boot_id=BOOT,
        uptime_s=12.0,
        streams={"cam0": cam, "mic": mic},
        detectors={"faces": faces, "vad": vad},
        sinks={"jsonl": SinkStats(), "mqtt": SinkStats(failures=2, events_lost=5)},
    )


def outbox_stats(depth: int = 2) -> OutboxStats:
    return OutboxStats(depth=depth, bytes=100, oldest_age_s=0.5, dropped=1, rejected=1, next_seq=9)


def test_device_stats_map_onto_telemetry_field_by_field(tmp_path: Path) -> None:
    ev = Event("cam0", "vision", "face", 0.9, "start", 1.7e9, 1.7e9, ModelRef("m", "1", "ab" * 6))
    with Outbox(tmp_path / "o.db", "dev1", BOOT) as ob:
        bad = Event(
            "cam0", "vision", "face", 1.5, "start", 1.7e9, 1.7e9, ModelRef("m", "1", "ab" * 6)
        )
        ob.append([ev, bad])  # the score is out of range: a dead letter, not a row
        t = Telemetry("dev1", BOOT).build(device_stats(), ob.stats(), reconnects=4)
    cam, mic = t.streams["cam0"], t.streams["mic"]
    assert (cam.kind, cam.fps_in, cam.dropped, cam.gated) == ("video", 30.0, 3, 2)
    assert cam.frames_in == 900
    assert cam.queue_depth == {"capture": 1, "post": 0} and cam.skipped == 1
    assert mic.kind == "audio" and mic.frames_in == 100  # chunks, kept apart from frames
    faces = t.detectors["faces"]
    assert faces.inference_ms == 2.0 and faces.inference_ms_by_stream == {"cam0": 1.0, "cam1": 3.0}
    assert faces.model is not None and faces.model.name == "blazeface-short" and faces.calls == 880
    assert t.detectors["vad"].accelerator == {"backend": "onnx", "active": "CPUExecutionProvider"}
    assert t.sinks["mqtt"].failures == 2 and t.sinks["mqtt"].events_lost == 5
    assert t.outbox is not None and t.outbox.depth == 1 and t.reconnects == 4
    # what an operator needs to see of the outbox, on the wire too
    assert (t.outbox.unacked, t.outbox.dead_letters, t.outbox.next_seq) == (0, 1, 1)
    assert (t.outbox.append_failures, t.outbox.events_lost) == (0, 0)
    assert t.build_errors == 0 and t.errors == []
    # what goes on the wire is valid TelemetryV1
    TelemetryV1.model_validate_json(t.model_dump_json(exclude_none=True))


def test_a_bad_stream_figure_leaves_out_that_stream_only() -> None:
    tel = Telemetry("dev1", BOOT)
    payload = tel.payload(lambda: device_stats(fps_in=float("nan")), outbox_stats, 0)
    assert payload is not None
    t = TelemetryV1.model_validate_json(payload)
    assert "cam0" not in t.streams and "mic" in t.streams and "faces" in t.detectors
    assert t.build_errors == 1 and tel.build_errors == 1
    assert len(t.errors) == 1 and t.errors[0].startswith("streams.cam0 left out")


def test_stats_that_raise_are_reported_and_the_rest_goes_out() -> None:
    def broken() -> DeviceStats:
        raise RuntimeError("daemon is reloading")

    tel = Telemetry("dev1", BOOT)
    payload = tel.payload(broken, outbox_stats, 3)
    assert payload is not None
    t = TelemetryV1.model_validate_json(payload)
    assert t.streams == {} and t.outbox is not None and t.outbox.depth == 2 and t.reconnects == 3
    assert t.build_errors == 1
    assert t.errors == ["DeviceControl.stats() failed: RuntimeError: daemon is reloading"]
    # the next payload, with the daemon back, still says how many builds lost something
    t2 = TelemetryV1.model_validate_json(tel.payload(device_stats, outbox_stats, 3) or b"")
    assert "cam0" in t2.streams and t2.build_errors == 1 and t2.errors == []


def test_where_each_model_came_from_is_reported() -> None:
    stats = device_stats()
    ota = replace(stats.detectors["faces"], source="ota", counter=1733100000)
    stats = replace(stats, detectors={**stats.detectors, "faces": ota},
                    ota_error="edge.ota.json: the OTA record is not JSON")  # fmt: skip
    t = Telemetry("dev1", BOOT).build(stats, outbox_stats(), reconnects=0)
    assert (t.detectors["faces"].source, t.detectors["faces"].counter) == ("ota", 1733100000)
    assert (t.detectors["vad"].source, t.detectors["vad"].counter) == ("config", 0)
    assert t.ota_error == "edge.ota.json: the OTA record is not JSON"
    TelemetryV1.model_validate_json(t.model_dump_json(exclude_none=True))
