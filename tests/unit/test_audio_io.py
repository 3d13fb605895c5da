"""WAV reading: every PCM width, float WAV, channel mixing, resampling and broken files.

Ground truth: a known sine (or constant) written with the stdlib ``wave`` module
(or a hand-built RIFF header for float/extensible WAVs) must come back within the
format's quantisation step.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge.errors import InputError
from edge.media.audio import read_audio, read_wav

F64 = npt.NDArray[np.float64]


def sine(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> F64:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def to_pcm_bytes(x: F64, bits: int) -> bytes:
    """Interleaved float samples → little-endian PCM bytes."""
    if bits == 8:
        return np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    scale = 2.0 ** (bits - 1)
    ints = np.clip(np.round(x * scale), -scale, scale - 1).astype(np.int64)
    if bits == 24:
        b = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        return np.ascontiguousarray(b).tobytes()
    return ints.astype("<i2" if bits == 16 else "<i4").tobytes()


def write_pcm(path: Path, x: F64, rate: int, bits: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(to_pcm_bytes(x, bits))
    return path


def write_riff(path: Path, fmt: bytes, payload: bytes, declared: int | None = None) -> Path:
    size = len(payload) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def float_fmt(rate: int, channels: int, extensible: bool = False) -> bytes:
    block = 4 * channels
    tag = 0xFFFE if extensible else 3
    base = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, 32)
    if not extensible:
        return base
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return base + struct.pack("<HHI", 22, 32, 0) + struct.pack("<H", 3) + guid_tail


@pytest.mark.parametrize(("bits", "tol"), [(8, 1 / 128), (16, 1 / 32768), (24, 2e-7), (32, 1e-7)])
def test_pcm_widths_round_trip(tmp_path: Path, bits: int, tol: float) -> None:
    x = sine(16000)
    samples, info = read_wav(write_pcm(tmp_path / f"s{bits}.wav", x, 16000, bits))
    assert (info.sample_rate, info.channels, info.bits, info.is_float) == (16000, 1, bits, False)
    assert samples.dtype == np.float32 and samples.shape == x.shape
    assert np.max(np.abs(samples - x)) <= tol


def test_24bit_negative_full_scale(tmp_path: Path) -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.5, 0.999], dtype=np.float64)
    samples, _ = read_wav(write_pcm(tmp_path / "s24.wav", x, 16000, 24))
    np.testing.assert_allclose(samples, x, atol=2e-7)


@pytest.mark.parametrize("extensible", [False, True])
def test_float32_wav(tmp_path: Path, extensible: bool) -> None:
    x = sine(16000).astype("<f4")
    path = write_riff(tmp_path / "f.wav", float_fmt(16000, 1, extensible), x.tobytes())
    samples, info = read_wav(path)
    assert info.is_float and info.bits == 32
    np.testing.assert_array_equal(samples, x)


def test_stereo_is_averaged(tmp_path: Path) -> None:
    left, right = np.full(800, 0.5), np.full(800, -0.25)
    inter = np.stack([left, right], axis=1).reshape(-1)
    samples, info = read_wav(write_pcm(tmp_path / "st.wav", inter, 16000, 16, channels=2))
    assert info.channels == 2 and samples.shape == (800,)
    np.testing.assert_allclose(samples, 0.125, atol=1e-4)


def test_four_channel_float(tmp_path: Path) -> None:
    frames = np.tile(np.array([0.1, 0.2, 0.3, 0.4], dtype="<f4"), 100)
    samples, _ = read_wav(
        write_riff(tmp_path / "q.wav", float_fmt(8000, 4, True), frames.tobytes())
    )
    np.testing.assert_allclose(samples, 0.25, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_resampled_to_16k_keeps_pitch_and_length(tmp_path: Path, rate: int) -> None:
    x = sine(rate, seconds=1.0, freq=440.0)
    out = read_audio(write_pcm(tmp_path / f"r{rate}.wav", x, rate, 16), 16000)
    assert out.dtype == np.float32 and abs(out.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    peak_hz = np.argmax(spectrum) * 16000 / out.size
    assert abs(peak_hz - 440.0) <= 2.0
    mid = out[2000:-2000]  # away from the filter's edges
    np.testing.assert_allclose(mid, sine(16000, seconds=1.0)[2000:-2000], atol=0.01)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_wav(tmp_path / "nope.wav")


def test_not_a_wav_names_sox(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3\x03\x00" + bytes(200))
    with pytest.raises(InputError, match=r"song\.mp3: not a WAV file .*sox in\.mp3"):
        read_wav(path)


def test_compressed_wav_rejected(tmp_path: Path) -> None:
    fmt = struct.pack("<HHIIHH", 0x55, 1, 16000, 2000, 1, 0)  # MP3-in-WAV
    with pytest.raises(InputError, match="compressed"):
        read_wav(write_riff(tmp_path / "c.wav", fmt, bytes(100)))


def test_truncated_data(tmp_path: Path) -> None:
    path = write_pcm(tmp_path / "t.wav", sine(16000), 16000, 16)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_wav(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "h.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")
    with pytest.raises(InputError, match="truncated"):
        read_wav(path)


def test_empty_wav(tmp_path: Path) -> None:
    path = write_pcm(tmp_path / "e.wav", np.zeros(0), 16000, 16)
    with pytest.raises(InputError, match="no audio samples"):
        read_wav(path)
