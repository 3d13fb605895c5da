"""``edge-hub serve``: MQTT ingest, storage, the API and the dashboard in one process.

Run several with the same ``--group`` on one MQTT 5 broker and one PostgreSQL
database to split the load; each event is stored once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from types import FrameType

from cloud_sync.hub import keys_cli
from cloud_sync.hub.errors import HubError
from edge import redact
from edge.errors import run_cli
from edge.wire import DEFAULT_PREFIX


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-hub", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="ingest from MQTT and serve the API and dashboard")
    s.add_argument("--db", default="sqlite:///hub.db", help="sqlite:///FILE or postgresql://…")
    s.add_argument("--mqtt-host", default="127.0.0.1")
    s.add_argument("--mqtt-port", type=int, default=1883)
    s.add_argument("--mqtt-protocol", choices=("auto", "5", "3.1.1"), default="auto")
    s.add_argument("--mqtt-username", default=None)
    s.add_argument("--client-id", default=None, help="default: edge-hub-<host>-<http port>")
    s.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix")
    s.add_argument("--group", default="edge-hub", help="shared-subscription group of the workers")
    s.add_argument("--http-host", default="127.0.0.1")
    s.add_argument("--http-port", type=int, default=8080)
    s.add_argument("--retention-days", type=float, default=None, help="delete older events")
    s.add_argument("--max-payload", type=int, default=1024 * 1024, help="bytes per message")
    s.add_argument(
        "--device-rate-mb", type=float, default=16.0, help="per-device payload MB/s before refusing"
    )
    s.add_argument("--token", default=None, help="API bearer token (or EDGE_HUB_TOKEN)")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.add_argument("--debug", action="store_true", help="tracebacks on errors")
    keys_cli.add_commands(sub)  # keys, sign-model, send-model, send
    return p


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud_sync.hub.api import Hub
    from cloud_sync.hub.db import open_store
    from cloud_sync.hub.ingest import Ingest, IngestConfig

    if args.retention_days is not None and args.retention_days <= 0:
        raise HubError(f"--retention-days: {args.retention_days} must be > 0")
    token = args.token or os.environ.get("EDGE_HUB_TOKEN") or None
    store = open_store(args.db)
    version = store.migrate()
    logging.getLogger("edge_hub").info(
        "database %s at schema version %d", redact.redact(args.db), version
    )
    cfg = IngestConfig(
        host=args.mqtt_host,
        port=args.mqtt_port,
        prefix=args.prefix,
        group=args.group,
        client_id=args.client_id or f"edge-hub-{socket.gethostname()}-{args.http_port}",
        protocol=args.mqtt_protocol,
        username=args.mqtt_username,
        password=os.environ.get("EDGE_HUB_MQTT_PASSWORD"),
        max_payload=args.max_payload,
        retention_days=args.retention_days,
        device_rate_bytes=args.device_rate_mb * 1024 * 1024,
        device_burst_bytes=args.device_rate_mb * 4 * 1024 * 1024,
    )
    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def on_fatal(why: str) -> None:
        fatal.append(why)
        if server is not None:
            server.should_exit = True

    hub = Hub(store, Ingest(cfg, store), token=token, prefix=args.prefix, on_fatal=on_fatal)
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
        logging.getLogger("edge_hub").critical("exiting 1: %s", fatal[0])
        return 1
    return 0


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
