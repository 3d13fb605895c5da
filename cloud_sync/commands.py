"""Cloud commands: ``<prefix>/<device>/cmd/<name>`` in, ``…/cmd/<name>/reply`` out.

Every command is validated in full before anything is changed; a failure at any
step leaves the running state as it was, and the reply (``CommandReplyV1``)
carries the request id and the reason. Commands run one at a time on their own
thread, so a slow model download never blocks the MQTT loop.

- ``config``  ``{"toml": "<the complete device config>"}`` → ``DeviceControl.apply_config``.
- ``model``   ``{"detector", "url", "sha256", "manifest", "signature"}``: ``signature``
  is Ed25519 (base64) over the UTF-8 bytes of ``manifest`` (JSON text), checked
  against ``sync.model_public_key`` before any download; the manifest's
  ``sha256`` must equal ``sha256``; the file is fetched over http(s) with a
  timeout and a size cap, hashed, written beside the manifest in a bundle
  folder, then handed to ``DeviceControl.swap_model`` (which loads it beside
  the running model and rolls back on failure).
- ``snapshot`` ``{"stream"?, "max_bytes"?}`` → the JPEG, base64, in the reply's
  ``result`` (``jpeg_b64``, ``bytes``): one message, matched by request id, no
  extra topic to authorise. Capped at ``SNAPSHOT_MAX_BYTES``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud_sync import signing
from cloud_sync.schema import CommandReplyV1, CommandV1
from edge.control import DeviceControl
from edge.errors import EdgeError, InputError, IntegrityError
from edge.redact import redact
from edge.supervise import ComponentHealth, GuardedThread

log = logging.getLogger(__name__)

SNAPSHOT_MAX_BYTES = 512 * 1024
MODEL_MAX_BYTES = 256 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 30.0


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConfigArgs(_Args):
    toml: Annotated[str, Field(min_length=1, max_length=1024 * 1024)]


class ModelArgs(_Args):
    detector: Annotated[str, Field(min_length=1, max_length=128)]
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    manifest: Annotated[str, Field(min_length=2, max_length=256 * 1024)]
    signature: Annotated[str, Field(min_length=1, max_length=256)]


class SnapshotArgs(_Args):
    stream: str | None = None
    max_bytes: Annotated[int, Field(gt=0, le=SNAPSHOT_MAX_BYTES)] = SNAPSHOT_MAX_BYTES


class CommandHandler:
    """Validates and runs commands against a ``DeviceControl``; returns the reply."""

    def __init__(
        self,
        control: DeviceControl,
        data_dir: Path,
        *,
        public_key: str | None,
        download_timeout_s: float = DOWNLOAD_TIMEOUT_S,
        model_max_bytes: int = MODEL_MAX_BYTES,
    ) -> None:
        self.control = control
        self.models_dir = data_dir / "models"
        self._public_key = signing.load_public_key(public_key) if public_key else None
        self.download_timeout_s = download_timeout_s
        self.model_max_bytes = model_max_bytes
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "config": self._config,
            "model": self._model,
            "snapshot": self._snapshot,
        }

    def handle(self, name: str, payload: bytes) -> CommandReplyV1:
        req_id = ""
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _reply("", name, False, f"bad JSON: {exc}; send a CommandV1 object")
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            req_id = data["id"][:64]
        try:
            cmd = CommandV1.model_validate(data)
        except ValidationError as exc:
            return _reply(req_id, name, False, f"invalid command: {_first_error(exc)}")
        handler = self._handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return _reply(cmd.id, name, False, f"unknown command {name!r}; known: {known}")
        try:
            result = handler(cmd.args)
        except ValidationError as exc:
            return _reply(cmd.id, name, False, f"invalid args: {_first_error(exc)}")
        except EdgeError as exc:
            return _reply(cmd.id, name, False, str(exc))
        except Exception as exc:  # a daemon bug must not kill the command thread
            log.exception("command %s (%s) failed", name, cmd.id)
            return _reply(cmd.id, name, False, f"internal error: {type(exc).__name__}: {exc}")
        return _reply(cmd.id, name, True, "ok", result)

    # --- the commands -------------------------------------------------------------------------

    def _config(self, raw: dict[str, Any]) -> None:
        args = ConfigArgs.model_validate(raw)
        self.control.apply_config(args.toml)

    def _snapshot(self, raw: dict[str, Any]) -> dict[str, Any]:
        args = SnapshotArgs.model_validate(raw)
        jpeg = self.control.snapshot(args.stream, args.max_bytes)
        if len(jpeg) > args.max_bytes:
            raise InputError(f"snapshot: {len(jpeg)} bytes exceeds max_bytes {args.max_bytes}")
        if not jpeg.startswith(b"\xff\xd8"):
            raise InputError("snapshot: the daemon returned something that is not a JPEG")
        return {"jpeg_b64": base64.b64encode(jpeg).decode(), "bytes": len(jpeg)}

    def _model(self, raw: dict[str, Any]) -> dict[str, Any]:
        args = ModelArgs.model_validate(raw)
        if self._public_key is None:
            raise IntegrityError(
                "model: this device has no sync.model_public_key; add the hub's Ed25519 key"
            )
        manifest_bytes = args.manifest.encode()
        signing.verify(self._public_key, manifest_bytes, args.signature)
        try:
            manifest = json.loads(manifest_bytes)
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"model: manifest is not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("sha256") != args.sha256:
            raise IntegrityError("model: the signed manifest's sha256 differs from args.sha256")
        file_name = manifest.get("file")
        if not isinstance(file_name, str) or not file_name or Path(file_name).name != file_name:
            raise IntegrityError("model: manifest.file must be a plain file name")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.models_dir))
        try:
            digest = download(
                args.url,
                staging / file_name,
                timeout_s=self.download_timeout_s,
                max_bytes=self.model_max_bytes,
            )
            if digest != args.sha256:
                raise IntegrityError(
                    f"model: downloaded file has sha256 {digest[:12]}…, "
                    f"the manifest pins {args.sha256[:12]}…"
                )
            (staging / "manifest.json").write_bytes(manifest_bytes)
            bundle = self.models_dir / f"{manifest.get('name', 'model')}-{args.sha256[:12]}"
            if bundle.exists():
                shutil.rmtree(bundle)
            staging.rename(bundle)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        try:
            result = self.control.swap_model(args.detector, bundle)
        except BaseException:
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        return {"bundle": str(bundle), **result}


def download(url: str, dest: Path, *, timeout_s: float, max_bytes: int) -> str:
    """Fetch ``url`` into ``dest`` within ``timeout_s`` overall and ``max_bytes``; the sha256."""
    deadline = time.monotonic() + timeout_s
    h = hashlib.sha256()
    size = 0
    try:
        # the scheme is checked by ModelArgs (http or https only)
        with urllib.request.urlopen(url, timeout=timeout_s) as resp, dest.open("wb") as out:  # noqa: S310  http(s) only: ModelArgs
            length = resp.headers.get("Content-Length")
            if length is not None and int(length) > max_bytes:
                raise InputError(f"model: {url} is {length} bytes, over the cap of {max_bytes}")
            while True:
                if time.monotonic() > deadline:
                    raise InputError(f"model: download of {url} took longer than {timeout_s:g} s")
                chunk = resp.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(f"model: {url} sent more than the cap of {max_bytes} bytes")
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"model: cannot download {url}: {reason}") from None
    return h.hexdigest()


class CommandWorker:
    """Runs commands in order on one guarded thread and sends each reply through ``send``.

    ``send`` returns False when the reply could not be handed to a connected client
    (``edge.control.ReplyRoute.send`` after its bounded wait); that is logged.
    """

    def __init__(self, handler: CommandHandler, send: Callable[[str, bytes], object]) -> None:
        self.handler = handler
        self._send = send
        self._q: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._thread = GuardedThread("sync-cmd", self._main, stop=self._stop)
        self.replies: list[CommandReplyV1] = []  # the last few, for tests and logs
        self.unsent = 0  # replies that found no connected client

    def start(self) -> None:
        self._thread.start()

    def submit(self, name: str, payload: bytes) -> None:
        try:
            self._q.put_nowait((name, payload))
        except queue.Full:
            log.warning("command %s dropped: %d commands already waiting", name, self._q.qsize())

    def stop(self) -> None:
        """Stop after the command in hand (waits up to 5 s for it); queued ones are dropped."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread().name != self._thread.name:
            self._thread.join(5)

    def health(self) -> list[ComponentHealth]:
        return [self._thread.health()]

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                name, payload = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            reply = self.handler.handle(name, payload)
            log.info("command %s (%s): ok=%s %s", name, reply.id, reply.ok, reply.message)
            self.replies = [*self.replies[-15:], reply]
            if self._send(name, reply.model_dump_json(exclude_none=True).encode()) is False:
                self.unsent += 1
                log.warning("command %s (%s): reply not sent, no connected broker", name, reply.id)


def _reply(
    req_id: str, name: str, ok: bool, message: str, result: dict[str, Any] | None = None
) -> CommandReplyV1:
    return CommandReplyV1(  # the message goes to the cloud: no credential in it
        id=req_id, command=name[:128] or "?", ok=ok, message=redact(message), result=result
    )


def _first_error(exc: ValidationError) -> str:
    e = exc.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    return f"{loc}: {e['msg']}"
