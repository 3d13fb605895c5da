"""A structural JPEG check without an image library (Pillow is no dependency of the hub).

It walks the marker segments from SOI to the first scan, reading the SOF (the frame
header, which holds the image's height and width), checks every segment length stays
inside the data, and that the data ends in EOI. It does not decode the entropy-coded
scan: a JPEG that passes can still show garbage, but it cannot be a different file
type, a file cut short, or one whose size disagrees with what the header told the hub.
"""

from __future__ import annotations

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""Start-of-frame markers (baseline, progressive, lossless, arithmetic); not C4/C8/CC."""
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0..7: no length field
_SOS = 0xDA


class JpegError(ValueError):
    """Not a JPEG, or a damaged one; the message says which part is wrong."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the frame header; ``JpegError`` for anything else.

    Walks every header segment up to the first scan (SOS), so a file cut anywhere in its
    headers is refused even with an EOI glued on; a cut inside the scan data is caught
    by the missing EOI (not by decoding)."""
    if not data.startswith(SOI):
        raise JpegError("no SOI marker at the start")
    if not data.rstrip(b"\x00").endswith(EOI):
        raise JpegError("no EOI marker at the end (truncated?)")
    i, n = 2, len(data)
    size: tuple[int, int] | None = None
    while i < n:
        if data[i] != 0xFF:
            raise JpegError(f"expected a marker at byte {i}, found 0x{data[i]:02x}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9):
            raise JpegError(f"marker 0x{marker:02x} before the frame header")
        if i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            raise JpegError(f"segment 0x{marker:02x} at byte {i - 2} runs past the end")
        if marker in _SOF:
            if length < 8:
                raise JpegError("frame header too short")
            height = int.from_bytes(data[i + 3 : i + 5], "big")
            width = int.from_bytes(data[i + 5 : i + 7], "big")
            if width == 0 or height == 0:
                raise JpegError(f"frame header says {width}x{height}")
            size = (width, height)
        if marker == _SOS:
            if size is None:
                raise JpegError("scan data before any frame header")
            if i + length + 2 > n:
                raise JpegError("no scan data after the scan header")
            return size
        i += length
    raise JpegError("the headers end before a frame header and a scan (truncated?)")
