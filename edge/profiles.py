"""Device profiles: one TOML file per hardware target in ``edge/device_profiles/``.

A profile names the hardware (ISA facts), the runtime and its provider or
delegate, threads, the conversion recipe and the accuracy gate. It is validated
with ``extra="forbid"`` so a misspelt key is an error, not a silent default.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.compat import tomllib
from edge.errors import ProfileError
from edge.models.manifest import format_validation_error
from edge.suggest import did_you_mean

# Inside the package, so a wheel ships them; ``device_profiles/`` at the top of a checkout
# is a link to this folder (the path the README and existing scripts use).
PROFILES_DIR = Path(__file__).with_name("device_profiles")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hardware(_Strict):
    """What the board is, as its users name it, and the ISA facts the recipe relies on."""

    arch: Literal["x86_64", "aarch64", "armv7l"] = Field(description="`uname -m` of the board")
    cpu: str = Field(description="CPU model, e.g. Cortex-A76 or Intel N100")
    cores: int = Field(gt=0, description="CPU cores")
    memory_gb: float = Field(gt=0, description="RAM of the smallest common variant, GB")
    isa: list[str] = Field(
        default_factory=list,
        description="/proc/cpuinfo flags the recipe relies on (avx2, avx512_vnni, asimddp)",
    )
    accelerator: str | None = Field(default=None, description="GPU/NPU/TPU, if any")


class Match(_Strict):
    """How `edge doctor` recognises this machine: all conditions must hold."""

    flags_all: list[str] = Field(default_factory=list, description="CPU flags that must be present")
    flags_none: list[str] = Field(default_factory=list, description="CPU flags that must be absent")
    model_contains: list[str] = Field(
        default_factory=list,
        description="any of these substrings in the CPU or board model name (case-insensitive)",
    )


class Runtime(_Strict):
    name: Literal["onnxruntime", "tflite"] = Field(description="backend in edge.runtime.BACKENDS")
    providers: list[str] = Field(
        default_factory=list,
        description="onnxruntime execution providers or TFLite delegate libraries, in order",
    )
    threads: int = Field(default=1, gt=0, description="inference threads")


class Recipe(_Strict):
    """How the FP32 model is converted for this target."""

    format: Literal["onnx", "tflite"]
    precision: Literal["fp32", "fp16", "int8", "int8-dynamic"]
    per_channel: bool = Field(default=True, description="per-channel weight scales (int8)")
    activation_type: Literal["uint8", "int8"] = Field(default="uint8")
    weight_type: Literal["uint8", "int8"] = Field(default="int8")
    reduce_range: bool = Field(
        default=False, description="7-bit weights: no VPMADDUBSW saturation on AVX2 without VNNI"
    )
    calibration: Literal["minmax", "percentile"] = "minmax"
    percentile: float = Field(default=99.999, gt=90, le=100)
    calibration_samples: int = Field(default=32, gt=0, description="calibration inputs, at most")
    full_integer: bool = Field(
        default=False, description="integer inputs and outputs too (Edge TPU); TFLite only"
    )
    static_shape: bool = Field(default=False, description="fix every input dimension")
    input_size: tuple[int, int] | None = Field(
        default=None, description="(width, height) for image models when static_shape is set"
    )
    float_stem_convs: int = Field(
        default=0,
        ge=0,
        description="static INT8 (ONNX QDQ, or TFLite through TF's converter): keep the first N "
        "convolutions, and the activations and pools between them, in float (the layers that "
        "see the raw image)",
    )
    float_output_convs: bool = Field(
        default=False,
        description="static INT8 TFLite: keep the convolutions that feed the model's outputs, "
        "and the slices, sigmoids, reshapes and transposes after them, in float",
    )
    min_opset: int = Field(default=13, ge=7, description="upgrade older models first")
    supported_ops: list[str] | None = Field(
        default=None, description="ONNX op types the target can run; None: any the runtime runs"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.full_integer and (self.format != "tflite" or self.precision != "int8"):
            raise ValueError("full_integer needs format = 'tflite' and precision = 'int8'")
        if self.full_integer and (self.float_stem_convs or self.float_output_convs):
            raise ValueError(
                "float_stem_convs / float_output_convs need float inputs and outputs; "
                "they cannot go with full_integer"
            )
        if self.float_output_convs and (self.format, self.precision) != ("tflite", "int8"):
            raise ValueError("float_output_convs needs format = 'tflite' and precision = 'int8'")
        if self.static_shape and self.input_size is None:
            raise ValueError("static_shape needs input_size = [width, height]")
        if self.precision == "int8-dynamic" and self.format != "onnx":
            raise ValueError("int8-dynamic is an onnxruntime recipe; use format = 'onnx'")
        return self


class Gate(_Strict):
    """What a converted model must reach against the FP32 model to be accepted."""

    min_task_metric: float = Field(
        default=0.97, ge=0, le=1, description="box F1 / top-1 / segment agreement vs FP32"
    )
    min_cosine: float = Field(default=0.0, ge=-1, le=1, description="output cosine similarity")
    max_size_ratio: float = Field(default=1.0, gt=0, description="converted size / FP32 size")


class Family(_Strict):
    """Recipe and gate changes for one model family (``[families.<decoder type>]``): what
    measured best for those models on this target; the profile's own values elsewhere."""

    why: str = Field(default="", description="what was measured, for the reader")
    recipe: dict[str, object] = Field(
        default_factory=dict, description="recipe keys that replace the profile's [recipe] ones"
    )
    gate: dict[str, float] = Field(
        default_factory=dict, description="gate keys that replace the profile's [gate] ones"
    )


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    hardware: Hardware
    match: Match = Field(default_factory=Match)
    runtime: Runtime
    recipe: Recipe
    gate: Gate = Field(default_factory=Gate)
    families: dict[str, Family] = Field(
        default_factory=dict,
        description="per model family (the manifest's decoder type, e.g. gfl): recipe and gate "
        "changes",
    )

    @model_validator(mode="after")
    def _families_valid(self) -> Profile:
        for name in self.families:
            self.for_family(name)  # a bad key or value fails when the profile is read
        return self

    def for_family(self, decoder_type: str) -> Profile:
        """This profile with the family's recipe and gate changes applied (itself if none)."""
        fam = self.families.get(decoder_type)
        if fam is None or not (fam.recipe or fam.gate):
            return self
        try:
            recipe = Recipe.model_validate(self.recipe.model_dump() | fam.recipe)
            gate = Gate.model_validate(self.gate.model_dump() | fam.gate)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ValueError(f"families.{decoder_type}: {where}: {first['msg']}") from None
        return self.model_copy(update={"recipe": recipe, "gate": gate})

    @model_validator(mode="after")
    def _runtime_runs_format(self) -> Profile:
        wanted = {"onnx": "onnxruntime", "tflite": "tflite"}[self.recipe.format]
        if self.runtime.name != wanted:
            raise ValueError(
                f"recipe.format {self.recipe.format!r} runs on {wanted!r}, "
                f"not {self.runtime.name!r}"
            )
        return self


def profiles_dir() -> Path:
    """``$EDGEWISE_PROFILES`` if set, else the profiles shipped with the package."""
    env = os.environ.get("EDGEWISE_PROFILES")
    return Path(env) if env else PROFILES_DIR


def read_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc})") from None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(str(path), exc)) from None
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name: {profile.name!r} must equal the file name {path.stem!r}")
    return profile


@cache
def _all(folder: Path) -> dict[str, Profile]:
    profiles = {p.stem: read_profile(p) for p in sorted(folder.glob("*.toml"))}
    if not profiles:
        # an empty table and "choose one of" followed by nothing is how a wheel without its
        # package data used to fail; say where the profiles were looked for instead
        where = "$EDGEWISE_PROFILES" if os.environ.get("EDGEWISE_PROFILES") else "the package"
        raise ProfileError(f"no device profiles (*.toml) in {folder} ({where})")
    return profiles


def all_profiles() -> dict[str, Profile]:
    return _all(profiles_dir())


def get_profile(ref: str) -> Profile:
    """A profile by name, or by path to a ``.toml`` file."""
    if ref.endswith(".toml"):
        return read_profile(Path(ref))
    profiles = all_profiles()
    if ref not in profiles:
        raise ProfileError(
            f"unknown profile {ref!r}{did_you_mean(ref, profiles)}; choose one of "
            f"{', '.join(sorted(profiles))} (edge-convert --list-profiles)"
        )
    return profiles[ref]
