"""Reading WAV files as mono float32 at a model's sample rate.

The RIFF chunks are parsed here rather than with the stdlib ``wave`` module:
on Python 3.11 ``wave`` rejects IEEE-float WAVs and WAVE_FORMAT_EXTENSIBLE
headers, which sox and most recorders write for 24-bit or multichannel audio.
Channels are averaged; resampling uses soxr (high quality).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from edge.errors import InputError

Audio = npt.NDArray[np.float32]

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_CONVERT_HINT = "convert it with e.g. `sox in.mp3 -r 16000 -c 1 out.wav`"


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What the header says: rate, channels, bits per sample, PCM or float, frames."""

    sample_rate: int
    channels: int
    bits: int
    is_float: bool
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _not_wav(path: Path, why: str) -> InputError:
    return InputError(f"{path}: not a WAV file ({why}); {_CONVERT_HINT}")


def _chunks(path: Path, data: bytes) -> dict[bytes, tuple[int, int]]:
    """Chunk id → (offset, declared size); the data chunk may run past the end (truncated)."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise _not_wav(path, "no RIFF/WAVE header")
    if data[:4] == b"RIFX":
        raise _not_wav(path, "big-endian RIFX is not supported")
    out: dict[bytes, tuple[int, int]] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        out.setdefault(cid, (pos + 8, size))
        pos += 8 + size + (size & 1)
    return out


def _parse_fmt(path: Path, data: bytes, off: int, size: int) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits) from the fmt chunk."""
    if size < 16 or off + 16 > len(data):
        raise InputError(f"{path}: WAV fmt chunk is truncated; the file is damaged")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", data, off)
    if tag == _EXTENSIBLE:
        if size < 40 or off + 40 > len(data):
            raise InputError(f"{path}: WAV extensible fmt chunk is truncated; the file is damaged")
        tag = struct.unpack_from("<H", data, off + 24)[0]  # first 2 bytes of the subformat GUID
    if tag not in (_PCM, _FLOAT):
        raise _not_wav(path, f"format tag {tag:#06x} is compressed; only PCM and float are read")
    if channels < 1 or rate < 1:
        raise InputError(
            f"{path}: WAV header says {channels} channels at {rate} Hz; file is damaged"
        )
    valid = (tag == _PCM and bits in (8, 16, 24, 32)) or (tag == _FLOAT and bits in (32, 64))
    if not valid or block_align != channels * bits // 8:
        kind = "float" if tag == _FLOAT else "PCM"
        raise _not_wav(path, f"unsupported {bits}-bit {kind} (block align {block_align})")
    return tag, channels, rate, bits


def _decode(raw: bytes, tag: int, bits: int) -> npt.NDArray[np.float32]:
    """Interleaved samples → float32 in [-1, 1]."""
    if tag == _FLOAT:
        return np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    if bits == 8:  # 8-bit WAV is unsigned
        u8 = np.frombuffer(raw, dtype=np.uint8)
        return (u8.astype(np.float32) - 128.0) / 128.0
    if bits == 24:  # place the 3 bytes in the high bytes of an int32: sign comes for free
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((b.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = b
        ints = wide.view("<i4").reshape(-1)
        return (ints.astype(np.float64) / 2.0**31).astype(np.float32)
    dtype = "<i2" if bits == 16 else "<i4"
    return (np.frombuffer(raw, dtype=dtype).astype(np.float64) / 2.0 ** (bits - 1)).astype(
        np.float32
    )


def read_wav(path: Path) -> tuple[Audio, WavInfo]:
    """Mono float32 samples at the file's own rate, and its header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    data = path.read_bytes()
    chunks = _chunks(path, data)
    if b"fmt " not in chunks:
        raise _not_wav(path, "no fmt chunk")
    tag, channels, rate, bits = _parse_fmt(path, data, *chunks[b"fmt "])
    if b"data" not in chunks:
        raise InputError(f"{path}: WAV has no data chunk; the file is truncated or damaged")
    off, size = chunks[b"data"]
    block = channels * bits // 8
    if off + size > len(data):
        raise InputError(
            f"{path}: WAV is truncated: the header promises {size} data bytes, "
            f"{len(data) - off} are present; re-export or re-copy the file"
        )
    frames = size // block
    if frames == 0:
        raise InputError(f"{path}: WAV holds no audio samples (empty data chunk)")
    samples = _decode(data[off : off + frames * block], tag, bits).reshape(frames, channels)
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1, dtype=np.float32)
    info = WavInfo(rate, channels, bits, tag == _FLOAT, frames)
    return np.ascontiguousarray(mono, dtype=np.float32), info


def resample(samples: Audio, rate_in: int, rate_out: int) -> Audio:
    """Resample mono float32 audio with soxr (HQ); a no-op when the rates match."""
    if rate_in == rate_out:
        return samples
    out = soxr.resample(samples, rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def read_audio(path: Path, sample_rate: int) -> Audio:
    """A WAV file as mono float32 at ``sample_rate`` (channels averaged, soxr-resampled)."""
    samples, info = read_wav(path)
    return resample(samples, info.sample_rate, sample_rate)
