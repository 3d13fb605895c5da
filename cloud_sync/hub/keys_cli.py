"""``edge-hub keys``, ``sign-model``, ``send-model`` and ``send``: signed model updates
without writing Python (docs/hub.md, "Model updates, step by step").

- ``keys generate --out DIR``: an Ed25519 pair; the public half in the form a device's
  ``sync.model_public_key`` takes. ``keys public --key FILE``: that form again.
- ``sign-model BUNDLE --key FILE --detector NAME``: the ``model`` command's args, minus
  the url, with ``update`` (counter, expiry, …) signed into the manifest.
- ``send-model SIGNED --url URL --device ID``: through the hub to the device;
  ``--wait`` for its reply (exit 1 if refused, 3 if none came).
- ``send DEVICE NAME --args JSON``: any other command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from cloud_sync.hub import keyfiles, model_signing
from cloud_sync.hub.api_client import (
    DEFAULT_HUB,
    HUB_ENV,
    CommandRefusedError,
    HubClient,
    Sent,
    read_token,
    reply_message,
)
from cloud_sync.hub.errors import HubError
from edge.argparser import ArgumentParser
from edge.wire import COMMAND_RE

WAIT_S = 120.0


def add_commands(sub: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Register the subcommands on ``edge-hub``'s parser; each sets ``run``."""
    keys = sub.add_parser("keys", help="make the Ed25519 key pair that signs model updates")
    ksub = keys.add_subparsers(dest="keys_cmd", required=True)
    g = _leaf(ksub, "generate", "write NAME.pem (private, 0600) and NAME.pub into --out", _gen)
    g.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the keys")
    g.add_argument("--name", default=keyfiles.DEFAULT_NAME, help="file stem (default: %(default)s)")
    g.add_argument("--force", action="store_true", help="replace existing key files")
    p = _leaf(ksub, "public", "print the public key of a private key, as a device takes it", _pub)
    _key_flag(p)

    s = _leaf(sub, "sign-model", "sign a model bundle as an over-the-air update", _sign)
    s.add_argument("bundle", metavar="BUNDLE", help="bundle folder, manifest file or zoo model")
    _key_flag(s)
    s.add_argument("--detector", required=True, help="the device's [detectors.NAME] to update")
    s.add_argument(
        "--counter",
        type=int,
        default=None,
        help="grows with every update of this detector (default: unix time now)",
    )
    s.add_argument(
        "--expires-in",
        default=model_signing.DEFAULT_EXPIRY,
        metavar="DURATION",
        help="devices refuse it after this: 90s, 30m, 12h, 7d, 2w (default: 7d)",
    )
    s.add_argument(
        "--rollback",
        action="store_true",
        help="allow a model version older than the one the device runs",
    )
    s.add_argument(
        "--device",
        action="append",
        dest="devices",
        metavar="ID",
        help="only this device may install it (repeat for more; default: any)",
    )
    s.add_argument("--out", type=Path, default=None, help="write here (default: stdout)")

    m = _leaf(sub, "send-model", "send a signed update to devices through the hub", _send_model)
    m.add_argument("signed", type=Path, metavar="SIGNED", help="sign-model's output (- : stdin)")
    m.add_argument("--url", required=True, help="http(s) URL the device downloads the file from")
    _send_flags(m)

    c = _leaf(sub, "send", "send any command to a device through the hub", _send)
    c.add_argument("device", metavar="DEVICE")
    c.add_argument("name", metavar="NAME", help="command name: config, model, snapshot, …")
    c.add_argument(
        "--args",
        default="{}",
        dest="cmd_args",
        metavar="JSON",
        help="the command's args as a JSON object, or @FILE (default: {})",
    )
    _send_flags(c, device=False)  # fmt: skip


def _leaf(
    sub: argparse._SubParsersAction[ArgumentParser], name: str, help_: str, run: Any
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--debug", action="store_true", help="tracebacks on errors")
    p.set_defaults(run=run, log_level="warning")
    return p


def _key_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", type=Path, default=None, metavar="FILE.pem",
                   help=f"private key (default: the PEM text in ${keyfiles.KEY_ENV}; "
                        f"encrypted keys: ${keyfiles.PASSPHRASE_ENV})")  # fmt: skip


def _send_flags(p: argparse.ArgumentParser, *, device: bool = True) -> None:
    if device:
        p.add_argument("--device", action="append", dest="devices", required=True,
                       metavar="ID", help="device id (repeat for more)")  # fmt: skip
    p.add_argument(
        "--hub",
        default=os.environ.get(HUB_ENV) or DEFAULT_HUB,
        help=f"the hub's URL (default: ${HUB_ENV} or {DEFAULT_HUB})",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file holding the hub's API token (default: $EDGE_HUB_TOKEN)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for the device's reply; exit 1 if it refused, 3 if none came",
    )
    p.add_argument("--timeout", type=float, default=WAIT_S, metavar="S",
                   help="--wait at most this long (default: %(default)g s)")  # fmt: skip


def _warn(text: str) -> None:
    print(f"edge-hub: warning: {text}", file=sys.stderr)


def _emit(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


# --- keys -------------------------------------------------------------------------------------


def _gen(args: argparse.Namespace) -> int:
    passphrase = os.environ.get(keyfiles.PASSPHRASE_ENV) or None
    pair = keyfiles.write_key_pair(args.out, args.name, force=args.force, passphrase=passphrase)
    line = keyfiles.toml_line(pair.public_b64)
    if args.json:
        _emit({"private_key": str(pair.private), "public_key_file": str(pair.public),
               "public_key": pair.public_b64, "encrypted": passphrase is not None,
               "toml": line})  # fmt: skip
        return 0
    print(f"private key: {pair.private} (mode 0600: keep it secret, off every device)")
    print(f"public key:  {pair.public}")
    print("add this to each device's config, under [sync] (or beside the old key, as a list):")
    print(line)
    return 0


def _pub(args: argparse.Namespace) -> int:
    from cloud_sync import signing

    key = keyfiles.load_private_key(args.key, warn=_warn)
    pub = signing.public_b64(key)
    if args.json:
        _emit({"public_key": pub, "toml": keyfiles.toml_line(pub)})
    else:
        print(pub)
    return 0


# --- sign-model -------------------------------------------------------------------------------


def _sign(args: argparse.Namespace) -> int:
    expires_in = model_signing.parse_duration(args.expires_in)
    counter = int(time.time()) if args.counter is None else args.counter
    model_signing.check_options(args.detector, counter, args.devices)
    bundle = model_signing.load_bundle(args.bundle)
    key = keyfiles.load_private_key(args.key, warn=_warn)
    signed = model_signing.sign_bundle(
        bundle, key, detector=args.detector, counter=counter, expires_in=expires_in,
        rollback=args.rollback, devices=args.devices,
    )  # fmt: skip
    text = json.dumps(signed, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise model_signing.SignError(
                f"--out {args.out}: cannot write ({exc.strerror})"
            ) from None
    m = bundle.manifest
    note = (
        f"signed {m.name} {m.version} (sha256 {m.sha256[:12]}…) for detector {args.detector}, "
        f"counter {counter}, expires in {args.expires_in}; serve {bundle.model} over http(s), "
        "then: edge-hub send-model SIGNED --url URL --device ID"
    )
    if args.out is not None and not args.json:
        print(f"{args.out}: {note}")
    else:
        print(f"edge-hub: {note}", file=sys.stderr)
    return 0


# --- send-model, send -------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> HubClient:
    return HubClient(args.hub, read_token(args.token_file))


def _send_model(args: argparse.Namespace) -> int:
    doc = model_signing.read_signed(args.signed)
    origin = "stdin" if str(args.signed) == "-" else str(args.signed)
    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.netloc or len(args.url) > 2048:
        raise model_signing.SignError(
            f"--url: {args.url!r} must be an http:// or https:// URL (at most 2048 characters) "
            "that the device can reach"
        )
    model_signing.check_signed(doc, origin, args.devices)
    return _deliver(args, args.devices, "model", {**doc, "url": args.url})


def _send(args: argparse.Namespace) -> int:
    if not COMMAND_RE.fullmatch(args.name):
        raise HubError(f"NAME: {args.name!r} must match {COMMAND_RE.pattern}")
    text = args.cmd_args
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HubError(f"--args {args.cmd_args}: cannot read it ({exc})") from None
    try:
        cmd_args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HubError(f'--args: not JSON ({exc}); e.g. --args \'{{"stream": "door"}}\'') from None
    if not isinstance(cmd_args, dict):
        raise HubError("--args: must be a JSON object, e.g. {}")
    return _deliver(args, [args.device], args.name, cmd_args)


def _deliver(args: argparse.Namespace, devices: list[str], name: str, cmd: dict[str, Any]) -> int:
    client = _client(args)
    sent: list[Sent] = [client.send(d, name, cmd) for d in dict.fromkeys(devices)]
    out: list[dict[str, Any]] = []
    refused: list[str] = []
    for s in sent:
        row: dict[str, Any] = {"device": s.device, "id": s.id, "topic": s.topic}
        if not args.json:
            print(f"{s.device}: sent {name} command {s.id}", flush=True)
        if args.wait:
            rec = client.wait_reply(s, args.timeout)
            got = rec.get("reply")
            reply: dict[str, Any] = got if isinstance(got, dict) else {}
            row |= {"ok": rec.get("ok") is True, "message": reply_message(rec),
                    "result": reply.get("result")}  # fmt: skip
            if not row["ok"]:
                refused.append(f"{s.device}: {row['message']}")
            elif not args.json:
                print(f"{s.device}: ok: {row['message']}")
        out.append(row)
    if args.json:
        _emit({"commands": out})
    if refused:
        raise CommandRefusedError(f"refused {name}: " + "; ".join(refused))
    return 0
