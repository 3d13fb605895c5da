"""The accelerator part of ``edge doctor``: which providers and delegates this machine has,
and what each pulled zoo model would really run on with a profile's providers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from edge.profiles import Profile


def available() -> dict[str, Any]:
    """onnxruntime's execution providers and the TFLite delegate libraries found here."""
    from edge.profiles import all_profiles
    from edge.runtime import tflite

    out: dict[str, Any] = {}
    try:
        import onnxruntime

        out["onnxruntime"] = {"providers": list(onnxruntime.get_available_providers())}
    except ImportError:
        out["onnxruntime"] = None
    try:
        library, _ = tflite.import_interpreter_module()
    except EdgeError:
        out["tflite"] = None
        return out
    # Each known delegate (and any a profile names): None where it loads, else why not.
    # Only dlopen and the entry points are checked; creating the delegate could claim
    # the device (an Edge TPU serves one process).
    names = dict.fromkeys(tflite.KNOWN_DELEGATES)
    for p in all_profiles().values():
        if p.runtime.name == "tflite":
            names.update(
                dict.fromkeys(n for n in p.runtime.providers if n.lower() not in tflite.CPU_NAMES)
            )
    delegates: dict[str, str | None] = {tflite.DEFAULT: None}  # built into the interpreter
    delegates.update({n: tflite.probe_delegate(n) for n in names})
    out["tflite"] = {"library": library, "delegates": delegates}
    return out


@contextmanager
def _quiet_fallbacks() -> Iterator[None]:
    """The fallback warnings of the probe loads: doctor reports each reason itself."""
    logger = logging.getLogger("edge.runtime")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def zoo_accelerators(profile: Profile | None, home: Path | None) -> dict[str, Any]:
    """For each zoo model: the accelerator it really gets here with ``profile``'s providers
    (where the profile uses the model's runtime, as the daemon does), or why none.
    Models that are not pulled are not pulled here: doctor does not download."""
    from edge.models import zoo
    from edge.runtime import FORMAT_BACKEND, BackendOptions, load_backend

    out: dict[str, Any] = {}
    with _quiet_fallbacks():
        for name, m in zoo.zoo().items():
            backend = FORMAT_BACKEND[m.format]
            rt = (
                profile.runtime if profile is not None and profile.runtime.name == backend else None
            )
            providers = tuple(rt.providers) if rt is not None else ()
            if not zoo.is_pulled(m, home):
                why = f"not pulled (edge models pull {name})"
                out[name] = {"backend": backend, "requested": list(providers), "error": why}
                continue
            try:
                be = load_backend(
                    zoo.cached_file(m, home), BackendOptions(providers=providers), backend
                )
            except EdgeError as exc:
                out[name] = {"backend": backend, "requested": list(providers), "error": str(exc)}
                continue
            out[name] = be.accelerator.to_json()
            be.close()
    return out


def print_text(avail: dict[str, Any], models: dict[str, Any], profile: str | None) -> None:
    ort = avail.get("onnxruntime")
    print(f"{'providers':<22}{', '.join(ort['providers']) if ort else 'onnxruntime not installed'}")
    tfl = avail.get("tflite")
    if tfl is None:
        print(f"{'delegates':<22}no TFLite interpreter installed")
    else:
        found = [n for n, why in tfl["delegates"].items() if why is None]
        absent = [n for n, why in tfl["delegates"].items() if why is not None]
        print(f"{'delegates':<22}{', '.join(found)} ({tfl['library']})"
              + (f"; not found: {', '.join(absent)}" if absent else ""))  # fmt: skip
    print(f"zoo models run on (with the providers of profile {profile or 'none'}):")
    for name, info in models.items():
        if "error" in info:
            print(f"  {name:<20}{info['backend']}: {info['error']}")
            continue
        line = f"  {name:<20}{info['backend']} on {info['active']}"
        print(line + (f" (fallback: {info['fallback']})" if info["fallback"] else ""))
