"""`edge-convert` end to end on a tiny CNN, profiles, the gate, --auto-fallback, and
`edge doctor`'s profile matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.cli import main
from edge.cli.doctor_cmd import Machine, match_profile, read_machine
from edge.compat import tomllib
from edge.errors import ProfileError
from edge.models.resolve import resolve
from edge.profiles import PROFILES_DIR, all_profiles, get_profile, read_profile
from tests.unit.conv_graphs import calibration_npy, manifest_for, tiny_cnn

EXPECTED = {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "coral-dev-board",
            "intel-n100", "x86-64-avx2", "x86-64-vnni", "arm64-server"}  # fmt: skip


def _custom_profile(tmp_path: Path, **gate: float) -> Path:
    text = (PROFILES_DIR / "x86-64-vnni.toml").read_text()
    text = text.replace('name = "x86-64-vnni"', 'name = "strict"')
    text = text.split("[gate]")[0] + "[gate]\n" + "".join(f"{k} = {v}\n" for k, v in gate.items())
    path = tmp_path / "strict.toml"
    path.write_text(text)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    model = tiny_cnn(tmp_path / "tiny.onnx", opset=12)
    manifest_for(model)
    return model, calibration_npy(tmp_path / "calib.npy")


def test_shipped_profiles_validate() -> None:
    profiles = all_profiles()
    assert set(profiles) >= EXPECTED
    assert profiles["coral-dev-board"].recipe.full_integer
    assert profiles["x86-64-avx2"].recipe.reduce_range  # no VNNI: 7-bit weights
    vnni = profiles["x86-64-vnni"].recipe
    assert (vnni.activation_type, vnni.weight_type, vnni.reduce_range) == ("uint8", "int8", False)


def test_profile_extra_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x86-64-vnni.toml"
    path.write_text((PROFILES_DIR / "x86-64-vnni.toml").read_text() + "\n[extra]\nfoo = 1\n")
    with pytest.raises(ProfileError, match=r"x86-64-vnni\.toml: extra: Extra inputs"):
        read_profile(path)


def test_unknown_profile_lists_names() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'pi-9'.*; choose one of arm64-server"):
        get_profile("pi-9")


def test_unknown_profile_cli_exit(tiny: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    model, calib = tiny
    rc = main([str(model), "--profile", "pi-9", "--calibration", str(calib), "-o", str(tmp_path)])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown profile 'pi-9'" in err[0]


def test_convert_tiny_writes_loadable_bundle(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = tiny
    out = tmp_path / "bundle"
    # a 1 KB model cannot shrink to 0.35× (Q/DQ scales outweigh the saved weight bytes)
    profile = _custom_profile(tmp_path, max_size_ratio=3.0, min_task_metric=0.9)
    rc = main([str(model), "--profile", str(profile), "--calibration", str(calib), "-o", str(out)])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    build = manifest["build"]
    assert build["profile"] == "strict" and len(build["calibration_sha256"]) == 64
    assert build["report"]["gate"]["passed"] is True
    report = json.loads((out / "report.json").read_text())
    assert report["task_metric"] == "top1_agreement" and report["samples"] == 16
    assert (out / "report.md").read_text().startswith("# Conversion report")
    assert (out / "report.png").stat().st_size > 1000
    resolved = resolve(str(out))  # sha256 verified against the manifest
    assert resolved.path.name == "tiny-strict.onnx"


def test_failing_gate_exits_nonzero(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = tiny
    profile = _custom_profile(tmp_path, max_size_ratio=0.01)  # no model shrinks 100×
    rc = main([str(model), "--profile", str(profile), "--calibration", str(calib),
               "-o", str(tmp_path / "b")])  # fmt: skip
    assert rc == 3
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["gate"]["passed"] is False


def test_auto_fallback_keeps_nodes_in_float(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = tiny
    # INT8 reaches cosine ~0.999 here; only keeping nodes in float reaches 0.9999999
    profile = _custom_profile(tmp_path, min_cosine=0.9999999, max_size_ratio=3.0)
    args = [str(model), "--profile", str(profile), "--calibration", str(calib)]
    assert main([*args, "-o", str(tmp_path / "a")]) == 3
    assert main([*args, "-o", str(tmp_path / "b"), "--auto-fallback"]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["excluded_nodes"] and report["cosine_min"] >= 0.9999999


def test_list_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-profiles"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED)


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (Machine("x86_64", "AMD EPYC", "", 2, ["avx2", "avx512_vnni"]), "x86-64-vnni"),
        (Machine("x86_64", "Intel Core i7-4770", "", 4, ["avx2", "fma"]), "x86-64-avx2"),
        (Machine("x86_64", "Intel(R) N100", "", 4, ["avx2", "avx_vnni"]), "intel-n100"),
        (Machine("aarch64", "", "Raspberry Pi 5 Model B Rev 1.0", 4, ["asimd", "asimddp"]),
         "raspberry-pi-5"),
        (Machine("aarch64", "", "Raspberry Pi 4 Model B Rev 1.4", 4, ["asimd"]), "raspberry-pi-4"),
        (Machine("aarch64", "Neoverse-N1", "", 64, ["asimd", "asimddp"]), "arm64-server"),
        (Machine("riscv64", "", "", 4, []), None),
    ],
)  # fmt: skip
def test_doctor_matches_profile(machine: Machine, expected: str | None) -> None:
    assert match_profile(machine)[0] == expected


def test_doctor_reads_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nmodel name : Test CPU\nflags : fpu avx2 avx512_vnni\n")
    m = read_machine(info, tmp_path / "missing-model")
    assert m.cpu == "Test CPU" and {"avx2", "avx512_vnni"} <= set(m.flags) and m.board == ""
    assert tomllib.loads((PROFILES_DIR / "x86-64-vnni.toml").read_text())["name"] == "x86-64-vnni"


@pytest.mark.parametrize("files", [[], ["README.md"]], ids=["empty", "no-toml"])
def test_a_profile_folder_without_profiles_is_an_error_not_an_empty_list(
    files: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # what a wheel without its package data did: an empty table, "choose one of" nothing
    for name in files:
        (tmp_path / name).write_text("not a profile\n")
    monkeypatch.setenv("EDGEWISE_PROFILES", str(tmp_path))
    with pytest.raises(ProfileError, match=r"no device profiles \(\*\.toml\) in .*EDGEWISE_PROF"):
        get_profile("raspberry-pi-5")
    assert main(["--list-profiles"]) != 0
    assert "no device profiles" in capsys.readouterr().err


def test_a_missing_profile_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEWISE_PROFILES", str(tmp_path / "nowhere"))
    with pytest.raises(ProfileError, match="no device profiles"):
        all_profiles()


def test_conversion_stage_lines_on_stderr_only(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, calib = tiny
    profile = _custom_profile(tmp_path, max_size_ratio=0.01)  # the gate misses: say so
    args = [str(model), "--profile", str(profile), "--calibration", str(calib), "--json"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 3
    out, err = capsys.readouterr()
    assert out == ""  # --json: nothing but the document (none: the gate failed)
    stages = [ln.split(":")[1].strip() for ln in err.splitlines() if ln.startswith("edge-convert: ")
              and not ln.startswith("edge-convert: error")]  # fmt: skip
    assert stages == ["calibrate", "quantize", "evaluate", "gate"]
    assert "gate: " in err and "missed (size" in err
    assert main([*args, "-o", str(tmp_path / "b"), "-q"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("edge-convert: error: ")  # -q: the error alone
