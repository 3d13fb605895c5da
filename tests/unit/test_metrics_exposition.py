"""The expositions in process: an in-process ``Hub``'s ``/metrics`` (big counters exact,
hostile label values escaped, one registry per hub), the stream families with hostile
labels, the stage-time histogram's buckets, and docs/metrics.md against both.
The real processes' expositions: tests/integration/test_metrics_exposition.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.registry import CollectorRegistry
from starlette.testclient import TestClient

from cloud_sync.hub.api import Hub
from cloud_sync.hub.db import Store, open_store
from cloud_sync.hub.metrics import EXTRA, HubCollector, HubMetrics, render
from edge.pipeline.metrics import STAGE_BUCKETS_S, StreamMetrics, Timing
from edge.pipeline.prom import stream_families
from tests.support.prom import DOCS, check, documented, families, value

BIG = 12345678  # above 10^6: what "%g" rounded to 1.23457e+07
HOSTILE = 'a"b\\c\nd{e="f"},x'  # only escaping keeps this in one label value


def _store(path: Path) -> Store:
    s = open_store(f"sqlite:///{path}")
    s.migrate()
    return s


def test_an_in_process_hub_exposes_big_counters_exactly_and_escapes_labels(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "hub.db")
    m = HubMetrics(events_stored=BIG, sse_sent=2**53)  # the end of exact float integers
    m.rejected[HOSTILE] = 3
    m.wrote(0.003)
    m.ingest_time.observe(45.0)  # a message that waited out a database outage
    with TestClient(Hub(store, metrics=m).app) as c:
        r = c.get("/metrics")
        again = c.get("/metrics").text  # a second scrape: nothing registered twice
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = check(r.text, "edge_hub_")
    assert value(r.text, "edge_hub_events_stored_total") == 12345678.0
    assert "edge_hub_events_stored_total 1.2345678e+07\n" in r.text  # all 8 digits
    assert value(r.text, "edge_hub_sse_events_sent_total") == float(2**53)
    assert value(r.text, "edge_hub_messages_rejected_total", reason=HOSTILE) == 3
    assert value(r.text, "edge_hub_db_write_seconds_bucket", le="0.005") == 1
    assert value(r.text, "edge_hub_db_write_seconds_bucket", le="0.0025") == 0
    assert value(r.text, "edge_hub_db_write_seconds_sum") == pytest.approx(0.003)
    assert value(r.text, "edge_hub_db_batches_total") == 1
    ingest = [value(r.text, "edge_hub_ingest_seconds_bucket", le=le) for le in ("30.0", "60.0")]
    assert ingest == [0, 1] and value(r.text, "edge_hub_ingest_seconds_sum") == 45.0
    assert set(families(again)) == set(fams)
    # a second hub in the same process: its own registry, its own figures
    with TestClient(Hub(_store(tmp_path / "other.db")).app) as c:
        assert value(c.get("/metrics").text, "edge_hub_events_stored_total") == 0
    with TestClient(Hub(store, metrics=m).app) as c:  # and the first is unchanged
        assert value(c.get("/metrics").text, "edge_hub_events_stored_total") == BIG


def test_an_unknown_extra_figure_is_a_programming_error() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(HubMetrics(), lambda: {"queue_dept": 1.0}))
    with pytest.raises(KeyError, match="queue_dept"):
        render(registry)


def _render_streams(*streams: StreamMetrics) -> str:
    class Streams:
        def collect(self):  # type: ignore[no-untyped-def]
            return stream_families(list(streams), {s.stream: True for s in streams})

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Streams())  # type: ignore[arg-type]
    return render(registry)


def test_stream_families_escape_labels_a_model_or_config_sends() -> None:
    m = StreamMetrics("cam")
    m.zones = {"porch": {HOSTILE: 2}}  # detection labels come from model manifests
    m.lines = {"gate": {"in": 3, "out": 1}}
    m.frames_in = BIG
    text = _render_streams(m)
    check(text, "edgewise_")
    assert value(text, "edgewise_zone_objects", stream="cam", zone="porch", label=HOSTILE) == 2
    crossings = {"stream": "cam", "line": "gate"}
    assert value(text, "edgewise_line_crossings_total", direction="in", **crossings) == 3
    assert value(text, "edgewise_line_crossings_total", direction="out", **crossings) == 1
    assert value(text, "edgewise_frames_in_total", stream="cam") == float(BIG)


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [
        (0.0, 0),  # nothing measurable: the first bucket
        (0.5, 0),  # on a bound: that bound's bucket (le is "less or equal")
        (0.5001, 1),
        (4.0, 3),  # 0.004 s: le=0.005
        (2500.0, len(STAGE_BUCKETS_S) - 1),
        (2500.1, len(STAGE_BUCKETS_S)),  # past every bound: only +Inf
        (float("inf"), len(STAGE_BUCKETS_S)),
    ],
)
def test_a_stage_time_lands_in_its_bucket(ms: float, bucket: int) -> None:
    t = Timing()
    t.add(ms)
    assert t.buckets.index(1) == bucket and sum(t.buckets) == t.count == 1


def test_the_stage_histogram_is_cumulative_and_in_seconds() -> None:
    m = StreamMetrics("cam")
    for ms in (0.2, 3.0, 3.0, 40.0, 9000.0):
        m.stage("face.invoke", ms)
    text = _render_streams(m)
    check(text, "edgewise_")
    stage = {"stream": "cam", "stage": "face.invoke"}
    counts = {le: value(text, "edgewise_stage_seconds_bucket", le=le, **stage)
              for le in ("0.0005", "0.005", "0.05", "2.5", "+Inf")}  # fmt: skip
    assert counts == {"0.0005": 1, "0.005": 3, "0.05": 4, "2.5": 4, "+Inf": 5}
    assert value(text, "edgewise_stage_seconds_count", **stage) == 5
    assert value(text, "edgewise_stage_seconds_sum", **stage) == pytest.approx(9.0462)


def test_the_docs_list_every_hub_family_and_name_each_rename() -> None:
    """docs/metrics.md lists exactly what the hub exposes (the daemon's list is checked
    against a real ``edge run``), and every renamed metric's new name is a listed one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(HubMetrics(), lambda: dict.fromkeys(EXTRA, 1.0)))
    fams = check(render(registry), "edge_hub_")
    hub = {n + "_total" if f.type == "counter" else n for n, f in fams.items()}
    assert hub == {n for n in documented() if n.startswith("edge_hub_")}
    renames = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", DOCS.read_text(), re.M)
    assert len(renames) >= 8
    for old, new in renames:
        assert new in documented() and old not in documented(), (old, new)


def test_the_daemon_imports_prometheus_client_only_when_scraped() -> None:
    """Start-up does not pay for it (~50 ms); a scrape loads it (edge.daemon.exposition)."""
    code = (
        "import sys\nimport edge.cli.main, edge.daemon, edge.health\n"
        "print('prometheus_client' in sys.modules)\n"
        "import edge.daemon.exposition\nprint('prometheus_client' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, cwd=repo)
    assert out.stdout.split() == ["False", "True"], out.stderr
