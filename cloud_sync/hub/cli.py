"""``edge-hub serve``: MQTT ingest, storage, the API and the dashboard in one process.

Run several with the same ``--group`` on one MQTT 5 broker and one PostgreSQL
database to split the load; each event is stored once.

Secrets never go on the command line (every user sees it in ``ps``): the MQTT password
comes from ``--mqtt-password-file`` or ``EDGE_HUB_MQTT_PASSWORD``, the API token from
``--token-file`` or ``EDGE_HUB_TOKEN`` (``--token`` is kept for old scripts).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cloud_sync.hub import keys_cli
from cloud_sync.hub.errors import HubError
from cloud_sync.mqtt_auth import HUB_TLS, TLSFiles, read_secret_file, tls_context
from edge import __version__, exit_codes, redact
from edge.argparser import ArgumentParser
from edge.errors import run_cli
from edge.wire import DEFAULT_PREFIX

if TYPE_CHECKING:
    from cloud_sync.hub.snapshots.intake import SnapshotConfig

log = logging.getLogger("edge_hub")


class _NoPasswordFlag(argparse.Action):
    """``--mqtt-password VALUE`` is refused without echoing VALUE (argparse would)."""

    def __call__(self, parser: argparse.ArgumentParser, *_a: object, **_k: object) -> None:
        parser.exit(
            2,
            "edge-hub: error: --mqtt-password is not accepted: a password on the command line"
            " is visible to every user (ps); use --mqtt-password-file FILE or"
            " EDGE_HUB_MQTT_PASSWORD\n",
        )


_ROOT_SEGMENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-")


def _root_path(value: str) -> str:
    """``--root-path``: ``/a/b`` (a trailing slash dropped; "" or "/" is the root)."""
    path = value.rstrip("/")
    segments = path.split("/")[1:]
    if path and (
        not path.startswith("/")
        or any(not seg or seg in (".", "..") or set(seg) - _ROOT_SEGMENT for seg in segments)
    ):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give the path the proxy serves the hub under, like /edgewise "
            "(letters, digits and . _ ~ - between slashes)"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: ``--mqtt-password x`` must not be taken for ``--mqtt-password-file``
    p = ArgumentParser(prog="edge-hub", description=__doc__)
    p.add_argument("--version", action="version", version=f"edgewise {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser(
        "serve", help="ingest from MQTT and serve the API and dashboard", allow_abbrev=False
    )
    s.add_argument("--db", default="sqlite:///hub.db", help="sqlite:///FILE or postgresql://…")
    m = s.add_argument_group("broker")
    m.add_argument("--mqtt-host", default="127.0.0.1")
    m.add_argument("--mqtt-port", type=int, default=None, help="default: 1883, with TLS 8883")
    m.add_argument("--mqtt-protocol", choices=("auto", "5", "3.1.1"), default="auto")
    m.add_argument("--mqtt-username", default=None)
    m.add_argument(
        "--mqtt-password-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="file holding the MQTT password (or EDGE_HUB_MQTT_PASSWORD; never a flag)",
    )
    m.add_argument("--mqtt-password", nargs="?", action=_NoPasswordFlag, help=argparse.SUPPRESS)
    m.add_argument(
        "--mqtt-tls", action="store_true", help="TLS, verifying the broker with the system's CAs"
    )
    m.add_argument(
        "--mqtt-tls-ca", type=Path, metavar="FILE", help="TLS: CA that signed the broker's cert"
    )
    m.add_argument(
        "--mqtt-tls-cert", type=Path, metavar="FILE", help="mutual TLS: this hub's certificate"
    )
    m.add_argument("--mqtt-tls-key", type=Path, metavar="FILE", help="mutual TLS: its key")
    m.add_argument(
        "--mqtt-tls-insecure",
        action="store_true",
        help="TLS without the broker host name check (testing only; the chain is still checked)",
    )
    m.add_argument(
        "--client-id",
        default=None,
        help="MQTT client id (default: unguessable, derived from a secret in the database,"
        " the host name and --http-port; stable across restarts)",
    )
    s.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix")
    s.add_argument("--group", default="edge-hub", help="shared-subscription group of the workers")
    s.add_argument("--http-host", default="127.0.0.1")
    s.add_argument("--http-port", type=int, default=8080)
    s.add_argument("--retention-days", type=float, default=None, help="delete older events")
    s.add_argument("--max-payload", type=int, default=1024 * 1024, help="bytes per message")
    g = s.add_argument_group("snapshots")
    g.add_argument(
        "--snapshot-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="store snapshot JPEGs as files here (default: <db file>.snapshots/ beside a"
        " SQLite database; in the database itself for PostgreSQL)",
    )
    g.add_argument(
        "--snapshot-max-age-days", type=float, default=30.0, help="delete older snapshots"
    )
    g.add_argument(
        "--snapshot-max-bytes",
        type=int,
        default=2 * 1024**3,
        help="delete the oldest snapshots past this total (default 2 GiB)",
    )
    g.add_argument(
        "--snapshot-pending-s",
        type=float,
        default=30.0,
        help="how long a snapshot waits for its event to arrive",
    )
    g.add_argument(
        "--snapshot-sweep-s", type=float, default=60.0, help="seconds between retention sweeps"
    )
    s.add_argument(
        "--device-rate-mb",
        type=float,
        default=16.0,
        help="per-device payload MiB/s before refusing",
    )
    s.add_argument(
        "--token", default=None, help="API token (prefer --token-file or EDGE_HUB_TOKEN)"
    )
    s.add_argument("--token-file", type=Path, default=None, metavar="FILE", help="API token file")
    s.add_argument(
        "--no-token",
        action="store_true",
        help="serve the API without a token on a non-loopback --http-host: anyone who reaches"
        " it reads every event and sends commands (behind an authenticating proxy only)",
    )
    s.add_argument(
        "--cookie-secure",
        action="store_true",
        help="always mark the dashboard's session cookie Secure (default: when the request"
        " came over https, or X-Forwarded-Proto says so)",
    )
    s.add_argument(
        "--root-path",
        type=_root_path,
        default="",
        metavar="PATH",
        help="the path a reverse proxy serves the hub under, with the prefix stripped"
        " (e.g. /edgewise for https://example.org/edgewise/): the session cookie's path",
    )
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.add_argument("--debug", action="store_true", help="tracebacks on errors")
    keys_cli.add_commands(sub)  # keys, sign-model, send-model, send
    return p


def broker_tls(args: argparse.Namespace) -> TLSFiles | None:
    """The TLS settings the flags ask for (None: plain TCP), their files checked."""
    files = (args.mqtt_tls_ca, args.mqtt_tls_cert, args.mqtt_tls_key)
    if not (args.mqtt_tls or args.mqtt_tls_insecure or any(files)):
        return None
    tls = TLSFiles(*files, insecure=args.mqtt_tls_insecure)
    tls_context(tls, HUB_TLS)  # reads every file now: one line naming the flag if one is bad
    if tls.insecure:
        log.warning("--mqtt-tls-insecure: the broker's host name is not checked (testing only)")
    return tls


def snapshot_config(args: argparse.Namespace) -> SnapshotConfig:
    """The snapshot flags, checked (one line naming the flag when one is wrong)."""
    from cloud_sync.hub.snapshots.intake import SnapshotConfig
    from cloud_sync.hub.snapshots.storage import default_dir

    for flag, v in (
        ("--snapshot-max-age-days", args.snapshot_max_age_days),
        ("--snapshot-max-bytes", args.snapshot_max_bytes),
        ("--snapshot-pending-s", args.snapshot_pending_s),
        ("--snapshot-sweep-s", args.snapshot_sweep_s),
    ):
        if not math.isfinite(v) or v <= 0:
            raise HubError(f"{flag}: {v} must be a finite number > 0")
    d = default_dir(args.db, args.snapshot_dir)
    if args.snapshot_dir is not None and not args.snapshot_dir.is_dir():
        raise HubError(f"--snapshot-dir {args.snapshot_dir}: no such folder")
    return SnapshotConfig(
        dir=d,
        max_age_days=args.snapshot_max_age_days,
        max_bytes=args.snapshot_max_bytes,
        pending_s=args.snapshot_pending_s,
        sweep_s=args.snapshot_sweep_s,
    )


def broker_password(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The MQTT password: ``--mqtt-password-file`` or ``EDGE_HUB_MQTT_PASSWORD``, not both."""
    from_env = env.get("EDGE_HUB_MQTT_PASSWORD") or None
    if args.mqtt_password_file is not None and from_env is not None:
        raise HubError(
            "--mqtt-password-file and EDGE_HUB_MQTT_PASSWORD are both set; give the password"
            " one way"
        )
    password = from_env
    if args.mqtt_password_file is not None:
        password = read_secret_file(args.mqtt_password_file, "--mqtt-password-file")
    if password is not None and not args.mqtt_username:
        where = "--mqtt-password-file" if from_env is None else "EDGE_HUB_MQTT_PASSWORD"
        raise HubError(f"{where}: a password needs --mqtt-username")
    return password


def api_token(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    if args.token_file is not None:
        if args.token:
            raise HubError("--token and --token-file are both set; give the token one way")
        return read_secret_file(args.token_file, "--token-file")
    return args.token or env.get("EDGE_HUB_TOKEN") or None


def check_exposure(host: str, token: str | None, no_token: bool) -> None:
    """A hub without a token answers anyone who reaches it (events, snapshots, commands):
    that is refused on an address other hosts can reach unless ``--no-token`` says so."""
    if token is not None or no_token or _loopback(host):
        return
    raise HubError(
        f"--http-host {host}: other hosts can reach this address and the API has no token;"
        " give --token-file (or EDGE_HUB_TOKEN), or --no-token behind an authenticating proxy"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud_sync.hub.api import Hub
    from cloud_sync.hub.db import open_store
    from cloud_sync.hub.identity import default_client_id
    from cloud_sync.hub.ingest import Ingest, IngestConfig

    if args.retention_days is not None and args.retention_days <= 0:
        raise HubError(f"--retention-days: {args.retention_days} must be > 0")
    snapshots = snapshot_config(args)
    token = api_token(args, os.environ)
    check_exposure(args.http_host, token, args.no_token)
    password = broker_password(args, os.environ)
    tls = broker_tls(args)
    port = args.mqtt_port or (8883 if tls is not None else 1883)
    store = open_store(args.db)
    version = store.migrate()
    log.info("database %s at schema version %d", redact.redact(args.db), version)
    client_id = args.client_id or default_client_id(store, socket.gethostname(), args.http_port)
    cfg = IngestConfig(
        host=args.mqtt_host,
        port=port,
        prefix=args.prefix,
        group=args.group,
        client_id=client_id,
        protocol=args.mqtt_protocol,
        username=args.mqtt_username,
        password=password,
        tls=tls,
        max_payload=args.max_payload,
        retention_days=args.retention_days,
        device_rate_bytes=args.device_rate_mb * 1024 * 1024,
        device_burst_bytes=args.device_rate_mb * 4 * 1024 * 1024,
        snapshots=snapshots,
    )
    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def on_fatal(why: str) -> None:
        fatal.append(why)
        if server is not None:
            server.should_exit = True

    ingest = Ingest(cfg, store)
    log.info(
        "MQTT %s:%d over %s as worker %s (client id %s)",
        cfg.host, cfg.port, "TLS" if tls else "plain TCP", ingest.label,
        "from --client-id" if args.client_id else "derived from the database's secret",
    )  # fmt: skip
    hub = Hub(
        store,
        ingest,
        token=token,
        prefix=args.prefix,
        on_fatal=on_fatal,
        cookie_secure=args.cookie_secure,
        root_path=args.root_path,
    )
    config = uvicorn.Config(
        hub.app,
        host=args.http_host,
        port=args.http_port,
        log_level=args.log_level,
        access_log=args.log_level == "debug",
        lifespan="on",
        # a connection still open this long after SIGTERM is cut: shutdown is bounded
        timeout_graceful_shutdown=3,
    )

    class Server(uvicorn.Server):
        """Tells the hub first when a signal asks it to stop, so that live (SSE) streams
        end at once instead of holding the shutdown open."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            hub.closing.set()
            super().handle_exit(sig, frame)

    server = Server(config)
    # uvicorn re-raises the SIGTERM it handled once it has shut down; with the default
    # handler that kills the process (-15). A stop we asked for and completed is exit 0.
    signal.signal(signal.SIGTERM, lambda _s, _f: None)
    server.run()
    store.close()
    if fatal:
        log.critical("exiting 1: %s", fatal[0])
        return exit_codes.FAILED
    return exit_codes.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact.install()  # every log line, uvicorn's access log included (`?token=`)
    run = getattr(args, "run", serve)
    return run_cli("edge-hub", lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
