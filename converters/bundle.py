"""The bundle: the converted model file, its manifest (with ``build``), and the report.

``edge detect BUNDLE_DIR`` and ``edge run`` load it through ``edge.models.resolve``,
which reads ``manifest.json`` from the folder and verifies the file's sha256.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from converters.evaluate import Report
from converters.report import write_report
from edge.models.manifest import ImageInput, Manifest
from edge.models.zoo import sha256_file
from edge.profiles import Profile


def bundle_input(
    manifest: Manifest, profile: Profile, fixed_size: tuple[int, int] | None = None
) -> Manifest:
    """The source manifest with the input spec the converted model needs. ``fixed_size``:
    the source model's own static (width, height), which the recipe's ``input_size`` does
    not override (``onnx_recipes.fix_input_shapes`` keeps it too)."""
    spec = manifest.input
    if not isinstance(spec, ImageInput):
        return manifest
    update: dict[str, Any] = {}
    if profile.recipe.static_shape and profile.recipe.input_size is not None and not fixed_size:
        w, h = profile.recipe.input_size
        update |= {"width": w, "height": h}
        if spec.resize == "limit_side":
            update["resize"] = "letterbox"
    if profile.recipe.format == "tflite":
        update["layout"] = "NHWC"  # onnx2tf turns NCHW image inputs into NHWC
    if not update:
        return manifest
    return manifest.model_copy(update={"input": spec.model_copy(update=update)})


def write_bundle(
    out: Path,
    model_file: Path,
    manifest: Manifest,
    profile: Profile,
    *,
    source_sha256: str,
    calibration_digest: str,
    report: Report,
) -> Path:
    """Copy the model into ``out`` and write manifest.json and report.{json,md,png}."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".tflite" if profile.recipe.format == "tflite" else ".onnx"
    name = f"{manifest.name}-{profile.name}{suffix}"
    target = out / name
    shutil.copyfile(model_file, target)
    build = {
        "source_sha256": source_sha256,
        "source": manifest.name,
        "source_version": manifest.version,
        "profile": profile.name,
        "recipe": profile.recipe.model_dump(mode="json", exclude_none=True),
        "runtime": profile.runtime.model_dump(mode="json"),
        "calibration_sha256": calibration_digest,
        "report": report.summary(),
    }
    final = manifest.model_copy(
        update={
            "name": f"{manifest.name}-{profile.name}",
            "format": profile.recipe.format,
            "file": name,
            "sha256": sha256_file(target),
            "source": None,
            "build": build,
            "description": f"{manifest.description} — converted for {profile.title}".strip(" —"),
        }
    )
    Manifest.model_validate(final.model_dump())  # the bundle must load as it is written
    doc = final.model_dump(mode="json", exclude_none=True)
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_report(out, report)
    return out
