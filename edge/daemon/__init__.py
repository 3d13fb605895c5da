"""``edge run``: streams, detectors, sinks and the health listener, driven by one config.

SIGTERM/SIGINT stop capture, drain the queues, end open events, flush the sinks
and exit 0 within 5 s. SIGHUP reloads the config, transactionally: the new
config, its models, its data dir (and that dir's lock) and the sinks that can be
opened beside the running ones are built and checked while the old pipeline runs;
any failure, of any kind, leaves the old one running untouched. The daemon
implements ``edge.control.DeviceControl`` for the cloud.

One daemon per data dir (``edge.lock``); a supervisor (``edge.supervisor``) watches
every component, and ``run`` raises ``ComponentFailedError`` (exit 4) when one has failed
for good or nothing is left running: a device must never look "finished" (exit 0)
to its service manager because a part of it died.

``Daemon`` is built in layers, one module each, every one a subclass of the one below:
``generation`` (the state, building a generation from a config), ``report`` (component
health, ``/healthz``, ``/metrics``), ``reload`` (the transactional reload), ``control``
(``DeviceControl``: apply_config, swap_model, snapshot, stats), ``core`` (start, run, stop).
Beside the layers, ``ota`` keeps the OTA record (signed over-the-air model updates,
docs/security.md): applied on every start and reload, written by ``swap_model``.
"""

from __future__ import annotations

from edge.daemon.core import Daemon

__all__ = ["Daemon"]
