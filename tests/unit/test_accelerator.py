"""Which provider or delegate really runs a model, the CPU fallback and the strict refusal,
on the zoo's real models (blazeface-short in LiteRT, silero-vad in onnxruntime)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.errors import BackendUnavailableError
from edge.models.resolve import ResolvedModel
from edge.pipeline.slots import load_slot
from edge.profiles import get_profile
from edge.runtime import BackendOptions, accelerator_fallbacks, load_backend
from edge.runtime.base import AcceleratorInfo, Backend

Zoo = Callable[[str], ResolvedModel]

# A TFLite external delegate (tensorflow/lite/delegates/external/external_delegate_interface.h)
# reduced to its entry points: CREATE_FAILS makes create return NULL with an error, as a
# delegate with no device attached does; PREPARE_STATUS 1 makes it refuse the graph.
DELEGATE_C = r"""
#include <stdint.h>
#include <stdlib.h>
typedef struct D { void* data_; int (*Prepare)(void*, struct D*); void* copy_from;
                   void* copy_to; void* free_handle; int64_t flags; void* opaque; } D;
static int prepare(void* context, D* d) { (void)context; (void)d; return PREPARE_STATUS; }
D* tflite_plugin_create_delegate(char** k, char** v, int n, void (*report)(const char*)) {
  (void)k; (void)v; (void)n;
  if (CREATE_FAILS) { report("no accelerator attached"); return NULL; }
  D* d = calloc(1, sizeof(D));
  d->Prepare = prepare;
  return d;
}
void tflite_plugin_destroy_delegate(D* d) { free(d); }
"""


@pytest.fixture(scope="module")
def delegates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the test delegates")
    folder = tmp_path_factory.mktemp("delegates")
    src = folder / "delegate.c"
    src.write_text(DELEGATE_C)
    out = {}
    for name, fails, status in (("nodevice", 1, 0), ("works", 0, 0), ("refuses", 0, 1)):
        lib = folder / f"lib{name}.so"
        flags = [f"-DCREATE_FAILS={fails}", f"-DPREPARE_STATUS={status}"]
        subprocess.run([cc, "-shared", "-fPIC", *flags, "-o", str(lib), str(src)], check=True)
        out[name] = lib
    return out


def _runs(be: Backend) -> None:
    spec = be.inputs[0]
    outs = be.run({spec.name: np.zeros(spec.shape, spec.dtype)})
    assert len(outs) == len(be.outputs)


def _one_warning(caplog: pytest.LogCaptureFixture, *parts: str) -> str:
    records = [r for r in caplog.records if r.name == "edge.runtime"]
    assert len(records) == 1, [r.getMessage() for r in records]
    msg = records[0].getMessage()
    assert records[0].levelno == logging.WARNING and "\n" not in msg
    for part in parts:
        assert part in msg, msg
    return msg


def test_accelerator_info_json() -> None:
    info = AcceleratorInfo("tflite", ("libedgetpu.so.1",), "XNNPACK", "delegate missing")
    assert info.to_json() == {
        "backend": "tflite",
        "requested": ["libedgetpu.so.1"],
        "active": "XNNPACK",
        "fallback": "delegate missing",
    }


def test_defaults_report_the_cpu_without_a_fallback(
    zoo_model: Zoo, caplog: pytest.LogCaptureFixture
) -> None:
    before = accelerator_fallbacks.value
    tfl = load_backend(zoo_model("blazeface-short").path)
    assert tfl.accelerator == AcceleratorInfo("tflite", (), "XNNPACK")
    ort = load_backend(zoo_model("silero-vad").path)
    assert ort.accelerator == AcceleratorInfo("onnxruntime", (), "CPUExecutionProvider")
    xnn = load_backend(zoo_model("blazeface-short").path, BackendOptions(providers=("xnnpack",)))
    assert xnn.accelerator.fallback is None and xnn.accelerator.active == "XNNPACK"
    cpu = load_backend(
        zoo_model("silero-vad").path, BackendOptions(providers=("CPUExecutionProvider",))
    )
    assert cpu.accelerator.fallback is None
    assert accelerator_fallbacks.value == before
    assert not [r for r in caplog.records if r.name == "edge.runtime"]


@pytest.mark.parametrize(
    ("library", "reason"),
    [
        ("/nonexistent/libedgetpu.so.1", "cannot be loaded (/nonexistent/libedgetpu.so.1: cannot"),
        ("libc.so.6", "is not a TFLite delegate (the library has no tflite_plugin_create"),
    ],
)
def test_tflite_delegate_that_cannot_load_falls_back_to_the_cpu(
    zoo_model: Zoo,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    library: str,
    reason: str,
) -> None:
    before = accelerator_fallbacks.value
    be = load_backend(zoo_model("blazeface-short").path, BackendOptions(providers=(library,)))
    acc = be.accelerator
    assert acc.backend == "tflite" and acc.requested == (library,) and acc.active == "XNNPACK"
    assert acc.fallback is not None and f"delegate {library!r} {reason}" in acc.fallback
    assert accelerator_fallbacks.value == before + 1
    _one_warning(caplog, library, reason, "running on XNNPACK")
    _runs(be)
    be.close()
    assert "Exception ignored" not in capfd.readouterr().err  # LiteRT's __del__ noise


@pytest.mark.parametrize(
    ("which", "reason"),
    [
        ("nodevice", "failed to start (Failed to load delegate from"),
        ("refuses", "cannot run this model"),
    ],
)
def test_tflite_delegate_that_fails_to_start_or_to_take_the_model_falls_back(
    zoo_model: Zoo,
    delegates: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
    which: str,
    reason: str,
) -> None:
    lib = str(delegates[which])
    before = accelerator_fallbacks.value
    be = load_backend(zoo_model("blazeface-short").path, BackendOptions(providers=(lib,)))
    assert be.accelerator.active == "XNNPACK"
    assert be.accelerator.fallback is not None and reason in be.accelerator.fallback
    assert accelerator_fallbacks.value == before + 1
    _one_warning(caplog, lib, reason)
    _runs(be)
    with pytest.raises(BackendUnavailableError, match=re.escape(reason)):
        load_backend(
            zoo_model("blazeface-short").path, BackendOptions(providers=(lib,), strict=True)
        )


def test_tflite_delegate_that_loads_is_reported_active(
    zoo_model: Zoo, delegates: dict[str, Path]
) -> None:
    lib = str(delegates["works"])
    before = accelerator_fallbacks.value
    be = load_backend(
        zoo_model("blazeface-short").path, BackendOptions(providers=(lib,), strict=True)
    )
    assert be.accelerator == AcceleratorInfo("tflite", (lib,), lib, None)
    assert accelerator_fallbacks.value == before
    _runs(be)
    be.reset_state()  # type: ignore[attr-defined]  # reopens with the same delegate
    _runs(be)


def test_tflite_strict_refuses_a_missing_delegate_in_one_line(zoo_model: Zoo) -> None:
    path = zoo_model("blazeface-short").path
    before = accelerator_fallbacks.value
    with pytest.raises(BackendUnavailableError) as exc:
        load_backend(path, BackendOptions(providers=("libedgetpu.so.1",), strict=True))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path))
    assert "delegate 'libedgetpu.so.1' cannot be loaded" in msg
    assert "install the Edge TPU runtime" in msg and "accelerator_strict = false" in msg
    assert accelerator_fallbacks.value == before


def test_onnx_missing_gpu_providers_report_the_cpu_and_why(
    zoo_model: Zoo, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    wanted = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    before = accelerator_fallbacks.value
    be = load_backend(zoo_model("silero-vad").path, BackendOptions(providers=wanted))
    acc = be.accelerator
    assert acc.backend == "onnxruntime" and acc.requested == wanted
    assert acc.active == "CPUExecutionProvider"
    assert acc.fallback is not None
    assert "'TensorrtExecutionProvider', 'CUDAExecutionProvider' are not in use" in acc.fallback
    assert "not in this onnxruntime build" in acc.fallback
    assert accelerator_fallbacks.value == before + 1
    _one_warning(caplog, "CUDAExecutionProvider", "running on CPUExecutionProvider")
    assert not [w for w in recwarn if "provider" in str(w.message)]  # no onnxruntime warning


def test_onnx_strict_refuses_in_one_line(zoo_model: Zoo) -> None:
    path = zoo_model("silero-vad").path
    with pytest.raises(BackendUnavailableError) as exc:
        load_backend(path, BackendOptions(providers=("CUDAExecutionProvider",), strict=True))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path))
    assert "'CUDAExecutionProvider' is not in use" in msg
    assert "install onnxruntime-gpu" in msg and "accelerator_strict = false" in msg
    with pytest.raises(BackendUnavailableError, match="not an onnxruntime execution provider"):
        load_backend(path, BackendOptions(providers=("Cuda",), strict=True))


def test_profile_delegates_that_cannot_load_fall_back_in_the_daemon_slot(
    models_home: Path,
) -> None:
    coral, jetson = get_profile("coral-dev-board"), get_profile("jetson-orin-nano")
    face = load_slot("face", DetectorConfig(model="blazeface-short"), None, models_home, coral)
    assert face.accelerator.requested == ("libedgetpu.so.1",)
    assert face.accelerator.active == "XNNPACK"
    assert face.accelerator.fallback and "libedgetpu.so.1" in face.accelerator.fallback
    face.close()
    vad = load_slot("vad", DetectorConfig(model="silero-vad"), None, models_home, jetson)
    assert vad.accelerator.active == "CPUExecutionProvider"
    assert vad.accelerator.fallback and "TensorrtExecutionProvider" in vad.accelerator.fallback
    vad.close()
    strict = DetectorConfig(model="blazeface-short", accelerator_strict=True)
    with pytest.raises(BackendUnavailableError, match=re.escape("libedgetpu.so.1")):
        load_slot("face", strict, None, models_home, coral)
