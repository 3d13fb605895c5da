"""The hub's snapshot checks without I/O: the structural JPEG parser on real OpenCV
JPEGs and on broken ones, each refusal reason of a snapshot message, and which stored
snapshot answers which request (the track fallback)."""

from __future__ import annotations

import json
import uuid

import pytest

from cloud_sync.hub.db.snapshots import EventRef, SnapshotRow
from cloud_sync.hub.snapshots import serve
from cloud_sync.hub.snapshots.jpeg import JpegError, jpeg_size
from cloud_sync.hub.snapshots.validate import MAX_MESSAGE, SnapAccepted, SnapRejected, check
from tests.support.snapshots import header, jpeg, message, raw_message


@pytest.mark.parametrize(
    ("name", "w", "h", "progressive"),
    [("astronaut", 320, 240, False), ("astronaut", 320, 240, True), ("camera", 101, 77, False),
     ("chelsea", 1920, 1080, True), ("coffee", 1, 1, False), ("moon", 8, 4000, False)],
)  # fmt: skip
def test_the_parser_reads_the_size_of_real_jpegs(
    name: str, w: int, h: int, progressive: bool
) -> None:
    assert jpeg_size(jpeg(name, w, h, progressive=progressive)) == (w, h)


GOOD = jpeg()


def _sof_at() -> int:
    for m in (b"\xff\xc0", b"\xff\xc2"):
        i = GOOD.find(m)
        if i > 0:
            return i
    raise AssertionError("no SOF")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "SOI"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "SOI"),
        (GOOD[: len(GOOD) // 2], "EOI"),  # truncated in the scan
        (GOOD[:300] + b"\xff\xd9", "truncated|past the end"),  # cut in the headers
        (b"\xff\xd8\xff\xd9", "frame header"),
        (GOOD[: GOOD.find(b"\xff\xda") + 4] + b"\xff\xd9", "0xda"),  # cut in the SOS
        (b"\xff\xd8\xff\xe0\xff\xff" + b"\x00" * 10 + b"\xff\xd9", "past the end"),
        (b"\xff\xd8\xff\xda\x00\x04ab\xff\xd9", "scan data before"),
        (b"\xff\xd8\x00\x00\xff\xd9", "expected a marker"),
        (GOOD[: _sof_at() + 5] + b"\x00\x00\x00\x00" + GOOD[_sof_at() + 9 :], "says 0x0"),
    ],
)
def test_broken_jpegs_are_refused_with_the_reason(data: bytes, says: str) -> None:
    with pytest.raises(JpegError, match=says):
        jpeg_size(data)


DEV = "cam-1"
EID = str(uuid.uuid4())


def _reason(payload: bytes, device: str = DEV) -> str:
    got = check(device, payload)
    assert isinstance(got, SnapRejected), got
    return got.reason


def test_a_good_message_is_accepted_with_its_bytes() -> None:
    got = check(DEV, message(DEV, EID, "best", GOOD))
    assert isinstance(got, SnapAccepted)
    assert got.jpeg == GOOD and got.header.kind == "best" and got.header.event_id == EID


def _head(**over: object) -> bytes:
    doc = json.loads(header(DEV, EID, "best", GOOD).model_dump_json())
    doc.update(over)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (MAX_MESSAGE + 1), "too_large"),
        (GOOD, "not_snapshot"),  # a bare JPEG
        (b'{"v":1}', "not_snapshot"),
        (b"EWS", "not_snapshot"),
        (b"EWS1\xff\xff" + GOOD, "bad_header"),  # header length past the limit
        (b"EWS1\x00\x20" + b"{", "bad_header"),  # header length past the message
        (raw_message(b"not json", GOOD), "bad_header"),
        (raw_message(_head(v=2), GOOD), "bad_header"),
        (raw_message(_head(kind="thumbnail"), GOOD), "bad_header"),
        (raw_message(_head(event_id="../../etc/passwd"), GOOD), "bad_header"),
        (raw_message(_head(event_id=EID.upper()), GOOD), "bad_header"),
        (raw_message(_head(content_type="image/png"), GOOD), "bad_header"),
        (raw_message(_head(width=0), GOOD), "bad_header"),
        (raw_message(_head(extra="x"), GOOD), "bad_header"),
        (raw_message(_head(), GOOD[:-10]), "bad_header"),  # bytes disagree with the header
        (raw_message(_head(bytes=len(GOOD) // 2), GOOD[: len(GOOD) // 2]), "not_jpeg"),
        (raw_message(_head(bytes=100), b"\x89PNG" + b"\x00" * 96), "not_jpeg"),
        (raw_message(_head(width=640), GOOD), "dims_mismatch"),
        (raw_message(_head(height=239), GOOD), "dims_mismatch"),
        (message("cam-2", EID, "best", GOOD), "device_mismatch"),
    ],
)
def test_each_broken_message_has_its_reason(payload: bytes, reason: str) -> None:
    assert _reason(payload) == reason


REF = EventRef(EID, DEV, "boot", "cam0", 7, "start")
END = str(uuid.uuid4())


def _row(event_id: str, kind: str, created: float = 0.0) -> SnapshotRow:
    return SnapshotRow(event_id, kind, DEV, "boot", "cam0", 7, 10, "ab" * 32, 1, 1, 0.0,
                       created, None)  # fmt: skip


@pytest.mark.parametrize(
    ("have", "kind", "want"),
    [
        ([(EID, "start"), (END, "best")], None, (EID, "start")),  # own frame first
        ([(END, "best"), (END, "best_crop")], None, (END, "best")),  # the track's best
        ([(EID, "start_crop"), (END, "best_crop")], None, (END, "best_crop")),  # crops last
        ([(EID, "start"), (END, "best")], "best", (END, "best")),  # exact kind across track
        ([(EID, "start_crop"), (END, "best_crop")], "crop", (END, "best_crop")),
        ([(EID, "start_crop")], "crop", (EID, "start_crop")),
        ([(EID, "start_crop")], "frame", None),
        ([(EID, "start"), (END, "start")], "start", (EID, "start")),  # own wins in a kind
        ([], None, None),
    ],
)
def test_which_snapshot_answers(
    have: list[tuple[str, str]], kind: str | None, want: tuple[str, str] | None
) -> None:
    got = serve.choose(REF, [_row(e, k) for e, k in have], kind)
    assert (None if got is None else (got.event_id, got.kind)) == want


def test_only_a_first_choice_is_immutable() -> None:
    assert serve.exact(REF, _row(EID, "start"), None)
    assert not serve.exact(REF, _row(END, "best"), None)  # a fallback
    assert serve.exact(REF, _row(EID, "best_crop"), "best_crop")
    assert not serve.exact(REF, _row(EID, "start_crop"), "crop")  # best_crop may still come
