"""One conversion, end to end: resolve → prepare → convert → evaluate → gate → bundle."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from converters import fallback, onnx_recipes, tflite
from converters import gate as gate_mod
from converters.bundle import bundle_input, write_bundle
from converters.calibration import CalibrationSet, load_set
from converters.errors import CalibrationError, ConversionError, GateFailedError
from converters.evaluate import (
    Report,
    build_report,
    choose_metric,
    evaluate_images,
    evaluate_tensors,
    list_images,
)
from converters.runtime_errors import FAILURES, describe
from edge import progress
from edge.models.manifest import ImageInput, Manifest, read_manifest
from edge.models.resolve import ResolvedModel, resolve
from edge.models.zoo import sha256_file
from edge.profiles import Profile
from edge.runtime import BackendOptions, TensorSpec, load_backend

log = logging.getLogger(__name__)
T = TypeVar("T")

FALLBACK_STEP = 2  # nodes kept in float per --auto-fallback round
FALLBACK_ROUNDS = 8  # at most, by default (--fallback-rounds)


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    profile: Profile
    calibration: Path
    out: Path
    eval_path: Path | None = None
    manifest: Path | None = None
    auto_fallback: bool = False
    threads: int | None = None
    fallback_rounds: int = FALLBACK_ROUNDS


def _resolve(req: Request) -> ResolvedModel:
    if req.manifest is not None:
        m = read_manifest(req.manifest)
        path = Path(req.model)
        if not path.is_file():
            raise ConversionError(f"{path}: model file not found")
        return ResolvedModel(m, path.resolve(), str(req.manifest))
    return resolve(req.model)


def _split(req: Request, detector: bool) -> tuple[Path | None, list[Path]]:
    """Evaluation images; without --eval, every 4th calibration image is held out."""
    if not detector:
        return None, []
    if req.eval_path is not None:
        images = list_images(req.eval_path) if req.eval_path.is_dir() else [req.eval_path]
        if not images:
            raise CalibrationError(f"{req.eval_path}: evaluation set has no images")
        return req.eval_path, images
    if not req.calibration.is_dir():
        return None, []
    images = list_images(req.calibration)
    if len(images) < 4:
        raise CalibrationError(
            f"{req.calibration}: {len(images)} images cannot be split into calibration and "
            "evaluation; add images or pass --eval DIR"
        )
    return None, images[3::4]


def _convert_once(
    prepared: Path, work: Path, profile: Profile, calib: CalibrationSet, exclude: tuple[str, ...]
) -> Path:
    r = profile.recipe
    stem = onnx_recipes.stem_nodes(prepared, r.float_stem_convs) if r.precision == "int8" else ()
    opts = onnx_recipes.QuantOptions.from_recipe(r, (*stem, *exclude))
    dst = work / f"converted-{len(exclude)}.onnx"
    if r.format == "tflite":
        nhwc = np.concatenate([next(iter(f.values())) for f in calib.feeds()], axis=0)
        if nhwc.ndim == 4 and nhwc.shape[1] in (1, 3):
            nhwc = nhwc.transpose(0, 2, 3, 1)
        name = next(iter(calib.samples[0].load()))
        return tflite.convert(prepared, work / "tflite", r, name, nhwc.astype(np.float32))
    if r.precision == "int8":
        return onnx_recipes.quantize_static_int8(prepared, dst, calib, opts)
    if r.precision == "int8-dynamic":
        return onnx_recipes.quantize_dynamic_int8(prepared, dst, opts)
    if r.precision == "fp16":
        return onnx_recipes.convert_fp16(prepared, dst)
    shutil.copyfile(prepared, dst)
    return dst


def run(req: Request, warn: Callable[[str], None] = log.warning) -> tuple[Report, Path]:
    """Convert; write the bundle; raise ``GateFailedError`` (bundle still written) on a miss."""
    t0 = time.perf_counter()
    src = _resolve(req)
    if src.manifest.format != "onnx":
        raise ConversionError(
            f"{src.origin}: edge-convert takes FP32 ONNX models, not {src.manifest.format}"
        )
    family = src.manifest.decoder.type
    profile = req.profile.for_family(family)
    if profile is not req.profile:
        log.info("%s: the %s family's recipe and gate of %s", src.origin, family, profile.name)
        req = replace(req, profile=profile)
    threads = req.threads or profile.runtime.threads
    src_layout = src.manifest.input.layout if isinstance(src.manifest.input, ImageInput) else ""
    fixed = onnx_recipes.static_image_size(src.path, src_layout) if src_layout else None
    conv_manifest = bundle_input(src.manifest, profile, fixed)
    detector, metric_note = choose_metric(src.manifest, src.origin)
    if metric_note:
        warn(f"metric fallback: {metric_note}")
    # a model the target cannot run fails before any data is read
    onnx_recipes.check_ops(
        onnx_recipes.load(src.path), profile.recipe.supported_ops, src.origin, profile.name
    )
    eval_dir, eval_images = _split(req, detector)
    layout = conv_manifest.input.layout if isinstance(conv_manifest.input, ImageInput) else "NCHW"
    with tempfile.TemporaryDirectory(prefix="edgewise-convert-") as tmp:
        work = Path(tmp)
        prepared = onnx_recipes.prepare(
            src.path, work / "prepared.onnx", profile.recipe,
            "NCHW" if profile.recipe.format == "tflite" else layout, src.origin, profile.name,
        )  # fmt: skip
        inputs = calib_inputs(prepared)
        calib_input = conv_manifest.input
        if isinstance(calib_input, ImageInput) and profile.recipe.format == "tflite":
            calib_input = calib_input.model_copy(update={"layout": "NCHW"})  # the ONNX side
        calib = load_set(
            req.calibration, calib_input, inputs, profile.recipe.calibration_samples,
            skip=set(eval_images) if eval_dir is None else set(),
        )  # fmt: skip
        calib.samples[0].load()  # fail fast on a mismatched set, before the long part
        progress.step(f"calibrate: {len(calib.samples)} samples from {req.calibration}")
        exclude: tuple[str, ...] = ()
        int8 = profile.recipe.precision == "int8" and profile.recipe.format == "onnx"
        rounds = req.fallback_rounds if req.auto_fallback and int8 else 0
        record = _fallback_record(calib) if rounds else {}
        if req.auto_fallback and not int8:  # fp16, dynamic INT8 and TFLite have no per-node QDQ
            warn(f"--auto-fallback: the {profile.recipe.format} {profile.recipe.precision} "
                 "recipe keeps no nodes in float; converted without it")  # fmt: skip
        while True:
            kept = f", {len(exclude)} node(s) in float" if exclude else ""
            progress.step(f"quantize: {profile.recipe.format} {profile.recipe.precision}{kept}")
            converted = _guarded(
                "quantization", exclude, _convert_once, prepared, work, profile, calib, exclude
            )
            progress.step(f"evaluate: converted vs FP32, {threads} thread(s)")
            report = _guarded(
                "evaluation", exclude,
                _evaluate, req, src, conv_manifest, converted, calib, eval_images, threads,
            )  # fmt: skip
            report.excluded_nodes = list(exclude)
            if int8:
                report.float_ops = onnx_recipes.float_op_counts(converted)
            failures = gate_mod.check(report, profile.gate)
            verdict = "missed (" + "; ".join(failures) + ")" if failures else "passed"
            progress.step(f"gate: {report.task_metric} {report.task_value:.4f}, {verdict}")
            if record:
                record["rounds"].append({"kept_in_float": list(exclude), "failures": failures,
                                         "task_value": report.task_value,
                                         "cosine_min": report.cosine_min})  # fmt: skip
            if not failures or rounds == 0:
                break
            ranking = _guarded(
                "auto-fallback ranking", exclude, fallback.rank,
                str(prepared), str(converted), calib, FALLBACK_STEP, set(exclude), threads,
            )  # fmt: skip
            record["rounds"][-1] |= {"ranked_by": ranking.method, "scores_db": ranking.scores}
            if ranking.note:
                record["notes"].append(f"{ranking.note}; ranked by weight error instead")
                warn(f"--auto-fallback: {record['notes'][-1]}")
            if not ranking.nodes:
                record["notes"].append("no node left to keep in float")
                warn(f"--auto-fallback: {record['notes'][-1]}")
                break
            log.warning("gate missed (%s); keeping %s in float", "; ".join(failures), ranking.nodes)
            exclude, rounds = exclude + tuple(ranking.nodes), rounds - 1
        report.metric_fallback = metric_note
        report.auto_fallback = record
        report.conversion_s = round(time.perf_counter() - t0, 2)
        report.gate = {"passed": not failures, "failures": failures,
                       **profile.gate.model_dump()}  # fmt: skip
        out = write_bundle(
            req.out, converted, conv_manifest, profile,
            source_sha256=sha256_file(src.path), calibration_digest=calib.digest, report=report,
        )  # fmt: skip
    if failures:
        raise GateFailedError(
            f"{profile.name}: accuracy gate failed: {'; '.join(failures)} "
            f"(report: {out / 'report.md'}); " + _gate_hint(req, report)
        )
    return report, out


def _gate_hint(req: Request, report: Report) -> str:
    hint = "try --auto-fallback or another recipe"
    if req.auto_fallback:
        n = len(report.excluded_nodes)
        hint = f"--auto-fallback kept {n} node(s) in float; "
        hint += "try more --fallback-rounds or another recipe"
    if report.metric_fallback:
        hint += f"; metric fallback: {report.metric_fallback}"
    return hint


def _fallback_record(calib: CalibrationSet) -> dict[str, Any]:
    """What --auto-fallback did, for report.json: the same input gives the same record."""
    picks = fallback.pick_samples(calib)
    return {
        "seed": fallback.SEED,
        "debug_samples": [calib.samples[i].origin for i in picks],
        "step": FALLBACK_STEP,
        "rounds": [],
        "notes": [],
    }


def _guarded(step: str, exclude: tuple[str, ...], fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``; an onnxruntime/onnx failure or running out of memory becomes one
    ``ConversionError`` line naming the step (the traceback is there with --debug)."""
    try:
        return fn(*args)
    except FAILURES as exc:
        kept = f" with {len(exclude)} node(s) kept in float" if exclude else ""
        hint = "; rerun without --auto-fallback, or" if exclude else "; rerun"
        raise ConversionError(
            f"{step}{kept} failed ({describe(exc)}){hint} with --debug for the traceback"
        ) from exc


def _evaluate(
    req: Request, src: ResolvedModel, conv_m: Manifest, converted: Path,
    calib: CalibrationSet, eval_images: list[Path], threads: int,
) -> Report:  # fmt: skip
    recipe = req.profile.recipe.model_dump(mode="json", exclude_none=True)
    recipe.pop("supported_ops", None)
    if src.manifest.decoder.type in req.profile.families:
        recipe["family"] = src.manifest.decoder.type  # the recipe has the family's changes
    if eval_images:
        probe_m = conv_m.model_copy(update={"format": req.profile.recipe.format})
        measured = evaluate_images(
            (src.manifest, src.path), (probe_m, converted), eval_images, threads
        )
        label = str(req.eval_path or f"{req.calibration} (every 4th image, held out)")
    else:
        data = calib
        label = str(req.calibration)
        if req.eval_path is not None:
            data = load_set(req.eval_path, conv_m.input, calib_inputs(converted), None)
            label = str(req.eval_path)
        measured = evaluate_tensors(src.path, converted, data, threads)
    return build_report(
        measured, profile=req.profile.name, recipe=recipe, source=src.path, converted=converted,
        eval_set=label, threads=threads,
    )  # fmt: skip


def calib_inputs(model: Path) -> list[TensorSpec]:
    """The input specs of ``model`` as onnxruntime or TFLite reports them."""
    b = load_backend(model, BackendOptions(threads=1))
    try:
        return b.inputs
    finally:
        b.close()
