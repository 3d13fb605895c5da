"""``edge doctor``: this machine's CPU features, installed runtimes and providers, and the
device profile that matches it."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata as md
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge.cli.models_cmd import add_home_option
from edge.cli.output import emit_json

# The flags the profiles' recipes depend on (x86 `flags`, ARM `Features` in /proc/cpuinfo).
INTERESTING = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
               "asimd", "asimddp", "i8mm", "sve", "fphp")  # fmt: skip


@dataclass
class Machine:
    arch: str
    cpu: str
    board: str
    cores: int
    flags: list[str] = field(default_factory=list)


def read_machine(cpuinfo: Path = Path("/proc/cpuinfo"), dt_model: Path | None = None) -> Machine:
    """CPU model, board model (device tree) and ISA flags of this machine."""
    flags: set[str] = set()
    cpu = ""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key in ("model name", "hardware", "cpu model") and not cpu:
            cpu = value.strip()
    board = ""
    model_file = dt_model or Path("/proc/device-tree/model")
    with contextlib.suppress(OSError):
        board = model_file.read_text(errors="replace").strip("\x00\n ")
    return Machine(platform.machine(), cpu, board, os.cpu_count() or 1, sorted(flags))


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def runtimes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        import onnxruntime

        out["onnxruntime"] = {
            "version": onnxruntime.__version__,
            "providers": list(onnxruntime.get_available_providers()),
        }
    except ImportError:
        out["onnxruntime"] = None
    for dist in ("ai-edge-litert", "tflite-runtime", "onnx", "onnxconverter-common"):
        out[dist] = _version(dist)
    try:
        from converters.tflite import onnx2tf_exe

        out["onnx2tf tool"] = str(onnx2tf_exe()) if onnx2tf_exe().is_file() else None
    except ImportError:
        out["onnx2tf tool"] = None
    return out


def match_profile(machine: Machine) -> tuple[str | None, str]:
    """The best-matching profile name and why: a board-specific profile whose model name
    matches beats a generic one; flags must all be present (and excluded ones absent)."""
    from edge.profiles import all_profiles

    flags = set(machine.flags)
    names = f"{machine.cpu} {machine.board}".lower()
    specific: list[tuple[int, str]] = []
    generic: list[tuple[int, str]] = []
    for p in all_profiles().values():
        m = p.match
        if p.hardware.arch != machine.arch or not set(m.flags_all) <= flags:
            continue
        if set(m.flags_none) & flags:
            continue
        score = len(m.flags_all) + len(m.flags_none)
        if m.model_contains:
            if any(s.lower() in names for s in m.model_contains):
                specific.append((score, p.name))
        else:
            generic.append((score, p.name))
    if specific:
        return max(specific)[1], "board/CPU model and ISA flags match"
    if generic:
        return max(generic)[1], "ISA flags match (generic profile)"
    return None, f"no profile for {machine.arch} with these flags"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="CPU features, runtimes and the matching device profile")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument(
        "--profile",
        metavar="NAME",
        help="show what the zoo models would run on with this profile's providers "
        "(default: the profile that matches this machine)",
    )
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge.cli import doctor_accel
    from edge.profiles import get_profile

    machine = read_machine()
    profile, why = match_profile(machine)
    rts = runtimes()
    chosen = args.profile or profile
    avail = doctor_accel.available()
    models = doctor_accel.zoo_accelerators(get_profile(chosen) if chosen else None, args.home)
    if args.json:
        emit_json(
            {
                "machine": asdict(machine),
                "runtimes": rts,
                "profile": profile,
                "why": why,
                "accelerators": {"available": avail, "profile": chosen, "zoo": models},
            }
        )
        return 0
    shown = [f for f in INTERESTING if f in machine.flags]
    print(f"{'machine':<22}{machine.arch}, {machine.cores} cores, {machine.cpu or 'unknown CPU'}"
          + (f" ({machine.board})" if machine.board else ""))  # fmt: skip
    print(f"{'ISA':<22}{' '.join(shown) or '(none of ' + ', '.join(INTERESTING) + ')'}")
    for name, info in rts.items():
        if isinstance(info, dict):
            print(f"{name:<22}{info['version']}  providers: {', '.join(info['providers'])}")
        else:
            print(f"{name:<22}{info or 'not installed'}")
    print(f"{'profile':<22}{profile or 'none'} ({why})")
    doctor_accel.print_text(avail, models, chosen)
    return 0
