"""The checks on a signed manifest's ``update`` section (``UpdateInfo``) before a device
installs it: the one definition, used by the ``model`` command before anything is
downloaded (``cloud_sync.ota``) and again by the daemon, under its lock, before it swaps
(``edge.daemon.ota``). docs/security.md says what each check stops.

Versions: a model ``version`` older than the running one is refused unless the update
says ``rollback = true``. Versions are compared as PEP 440 versions (``packaging``);
where either does not parse as one, they cannot be ordered, so the update is refused
unless the two are the same string or it says ``rollback`` (the counter, which the
signer also sets, still has to grow).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version

from edge.errors import IntegrityError
from edge.models.manifest import Manifest, UpdateInfo

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future ``issued_at`` may be (the signer's clock ahead of the device's)."""


def check_update(
    manifest: Manifest,
    *,
    detector: str,
    device_id: str,
    now: datetime,
    last_counter: int,
    running_version: str | None,
) -> UpdateInfo:
    """The manifest's ``update``, or ``IntegrityError`` naming the first check it fails.

    ``last_counter``: the last counter this device accepted for ``detector`` (0: none);
    ``running_version``: the version of the model the detector runs (None: none runs)."""
    u = manifest.update
    if u is None:
        raise IntegrityError(
            "model: the signed manifest has no `update` section (detector, counter, issued_at, "
            "expires_at); sign it as an update (edge-hub sign-model)"
        )
    if u.detector != detector:
        raise IntegrityError(
            f"model: update.detector is {u.detector!r} but the command is for detector "
            f"{detector!r}; sign an update for this detector"
        )
    if u.devices is not None and device_id not in u.devices:
        raise IntegrityError(
            f"model: update.devices does not list this device ({device_id!r}); "
            "sign an update that names it, or none"
        )
    if u.issued_at > now + CLOCK_SKEW:
        raise IntegrityError(
            f"model: update.issued_at {u.issued_at.isoformat()} is more than "
            f"{CLOCK_SKEW.seconds // 60} min after the device's clock ({now.isoformat()}); "
            "check the signer's and the device's clocks"
        )
    if now >= u.expires_at:
        raise IntegrityError(
            f"model: the update expired at {u.expires_at.isoformat()} (device clock "
            f"{now.isoformat()}); sign it again with a later expires_at"
        )
    if u.counter <= last_counter:
        raise IntegrityError(
            f"model: update.counter {u.counter} is not above {last_counter}, the last one this "
            f"device accepted for detector {detector!r} (a replayed or superseded update); "
            "sign a new update, its counter above that"
        )
    if running_version is not None and not u.rollback:
        _not_older(manifest.version, running_version, detector)
    return u


def _not_older(new: str, running: str, detector: str) -> None:
    if new == running:
        return
    try:
        older = Version(new) < Version(running)
    except InvalidVersion:
        raise IntegrityError(
            f"model: cannot order version {new!r} against {running!r}, which detector "
            f"{detector!r} runs (not PEP 440 versions); use versions such as 1.2.0, or sign "
            "the update with rollback = true to install it anyway"
        ) from None
    if older:
        raise IntegrityError(
            f"model: version {new} is older than {running}, which detector {detector!r} "
            "runs; to go back on purpose, sign the update with rollback = true"
        )
