"""``edge demo``: the whole loop on this machine: broker, hub, daemon on sample media."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from edge.cli.models_cmd import add_home_option


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run a broker, the hub and a daemon on sample media; open the dashboard",
        description="Faces come and go in a sample video, speech and 'okay nabu' in a sample "
        "WAV; events flow through the outbox and MQTT to the hub's dashboard, and each one is "
        "printed as a line on stdout. Every run starts with an empty hub and outbox "
        "(--keep keeps them). A workdir or port another demo holds is refused. Ctrl-C stops it.",
    )
    p.add_argument(
        "--http-port", type=int, default=8080, help="dashboard port (default 8080; 0: a free one)"
    )
    p.add_argument(
        "--mqtt-port", type=int, default=0, help="the demo broker's port (default 0: a free one)"
    )
    p.add_argument(
        "--camera", metavar="SOURCE", help="a camera index (0) or URL instead of the video"
    )
    p.add_argument("--mic", action="store_true", help="the default microphone instead of the WAV")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    p.add_argument("--workdir", type=Path, help="state and logs (default: EDGEWISE_HOME/demo)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the hub's events and the device's outbox from the last run "
        "(default: every run starts empty)",
    )
    p.add_argument(
        "--no-browser", action="store_true", help="do not open the dashboard in a browser"
    )
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge.demo.run import DemoOptions, run_demo
    from edge.models import zoo

    if args.home is not None:
        os.environ["EDGEWISE_HOME"] = str(args.home)  # the hub and daemon processes inherit it
    home = zoo.edgewise_home(args.home)
    opts = DemoOptions(
        workdir=(args.workdir or home / "demo").expanduser().resolve(),
        http_port=args.http_port,
        mqtt_port=args.mqtt_port,
        camera=args.camera,
        mic=args.mic,
        duration=args.duration,
        broker=args.broker,
        quiet=args.quiet,
        keep=args.keep,
        no_browser=args.no_browser,
    )
    return run_demo(opts)
