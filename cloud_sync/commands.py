"""Cloud commands: ``<prefix>/<device>/cmd/<name>`` in, ``…/cmd/<name>/reply`` out.

Every command is validated in full before anything is changed; a failure at any
step leaves the running state as it was, and the reply (``CommandReplyV1``)
carries the request id and the reason. Commands run off the MQTT loop
(``CommandWorker``): ``config`` and ``snapshot`` in order on one thread, ``model`` on a
thread of its own, one at a time, so a slow download blocks neither the loop nor them.

- ``config``  ``{"toml": "<the complete device config>"}`` → ``DeviceControl.apply_config``.
- ``model``   ``{"detector", "url", "sha256", "manifest", "signature"}``: ``signature``
  is Ed25519 (base64) over the UTF-8 bytes of ``manifest`` (JSON text), checked
  against ``sync.model_public_key`` before any download; the manifest's
  ``sha256`` must equal ``sha256``; the file is fetched over http(s) within a
  wall-clock deadline, a minimum rate and a size cap (``cloud_sync.download``),
  hashed, written beside the manifest in a bundle folder, then handed to
  ``DeviceControl.swap_model`` (which loads it beside the running model and rolls back
  on failure).
- ``snapshot`` ``{"stream"?, "max_bytes"?}`` → the JPEG, base64, in the reply's
  ``result`` (``jpeg_b64``, ``bytes``): one message, matched by request id, no
  extra topic to authorise. Capped at ``SNAPSHOT_MAX_BYTES``.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud_sync import signing
from cloud_sync.download import download
from cloud_sync.schema import CommandReplyV1, CommandV1
from edge.config.sync import MODEL_DOWNLOAD_MIN_BYTES_PER_S, MODEL_DOWNLOAD_TIMEOUT_S
from edge.control import DeviceControl
from edge.errors import EdgeError, InputError, IntegrityError
from edge.redact import redact
from edge.supervise import ComponentHealth, GuardedThread

log = logging.getLogger(__name__)

SNAPSHOT_MAX_BYTES = 512 * 1024
MODEL_MAX_BYTES = 256 * 1024 * 1024


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
        download_timeout_s: float = MODEL_DOWNLOAD_TIMEOUT_S,
        download_min_bytes_per_s: float = MODEL_DOWNLOAD_MIN_BYTES_PER_S,
        model_max_bytes: int = MODEL_MAX_BYTES,
    ) -> None:
        self.control = control
        self.models_dir = data_dir / "models"
        self._public_key = signing.load_public_key(public_key) if public_key else None
        self.download_timeout_s = download_timeout_s
        self.download_min_bytes_per_s = download_min_bytes_per_s
        self.model_max_bytes = model_max_bytes
        self.cancel = threading.Event()  # set by CommandWorker.stop: a download in hand ends
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "config": self._config,
            "model": self._model,
            "snapshot": self._snapshot,
        }

    def refuse(self, name: str, payload: bytes, message: str) -> CommandReplyV1:
        """A refusal of a command without running it, matched to it by its request id."""
        return _reply(_request_id(_json_or_none(payload)), name, False, message)

    def handle(self, name: str, payload: bytes) -> CommandReplyV1:
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _reply("", name, False, f"bad JSON: {exc}; send a CommandV1 object")
        req_id = _request_id(data)
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
                min_bytes_per_s=self.download_min_bytes_per_s,
                cancel=self.cancel,
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


class CommandWorker:
    """Runs commands and sends each reply through ``send``.

    ``config`` and ``snapshot`` run in order on one guarded thread. ``model`` runs on a
    thread of its own (its download may take up to ``sync.model_download_timeout_s``), so
    the others keep being answered meanwhile; one model update at a time: a second one
    while the first runs is refused at once ("busy", naming the one in hand) and may be
    sent again after its reply. ``stop`` cancels a download in hand.

    ``send`` returns False when the reply could not be handed to a connected client
    (``edge.control.ReplyRoute.send`` after its bounded wait); that is logged.
    """

    BACKGROUND = frozenset({"model"})
    """The commands that run on their own thread, one at a time."""

    def __init__(self, handler: CommandHandler, send: Callable[[str, bytes], object]) -> None:
        self.handler = handler
        self._send = send
        self._q: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._thread = GuardedThread("sync-cmd", self._main, stop=self._stop)
        self._lock = threading.Lock()
        self._model: threading.Thread | None = None
        self._model_req: tuple[str, float] = ("", 0.0)  # the model update in hand: id, start
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
        """Stop after the command in hand (waits up to 5 s for it, cancelling a model
        download); queued ones are dropped."""
        self._stop.set()
        self.handler.cancel.set()
        deadline = time.monotonic() + 5.0
        me = threading.current_thread()
        if self._thread.is_alive() and me.name != self._thread.name:
            self._thread.join(5)
        model = self._model
        if model is not None and model.is_alive() and model is not me:
            model.join(max(0.0, deadline - time.monotonic()))

    @property
    def busy(self) -> bool:
        """A model update is in hand."""
        model = self._model
        return model is not None and model.is_alive()

    def health(self) -> list[ComponentHealth]:
        return [self._thread.health()]

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                name, payload = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if name in self.BACKGROUND:
                self._start_background(name, payload)
            else:
                self._run(name, payload)

    def _start_background(self, name: str, payload: bytes) -> None:
        with self._lock:
            if not self.busy:
                self._model_req = (_request_id(_json_or_none(payload)), time.monotonic())
                self._model = threading.Thread(
                    target=self._run_background,
                    args=(name, payload),
                    name="sync-cmd-model",
                    daemon=True,
                )
                self._model.start()
                return
            req, since = self._model_req
        message = (
            f"busy: model update {req!r} is in hand (for {time.monotonic() - since:.0f} s); "
            "send this one again after its reply"
        )
        self._finish(name, self.handler.refuse(name, payload, message))

    def _run(self, name: str, payload: bytes) -> None:
        self._finish(name, self.handler.handle(name, payload))

    def _run_background(self, name: str, payload: bytes) -> None:
        try:
            self._run(name, payload)
        except Exception:  # the handler answers every failure; this is a bug in sending
            log.exception("command %s: the reply could not be sent", name)

    def _finish(self, name: str, reply: CommandReplyV1) -> None:
        log.info("command %s (%s): ok=%s %s", name, reply.id, reply.ok, reply.message)
        with self._lock:
            self.replies = [*self.replies[-15:], reply]
        if self._send(name, reply.model_dump_json(exclude_none=True).encode()) is False:
            with self._lock:
                self.unsent += 1
            log.warning("command %s (%s): reply not sent, no connected broker", name, reply.id)


def _reply(
    req_id: str, name: str, ok: bool, message: str, result: dict[str, Any] | None = None
) -> CommandReplyV1:
    return CommandReplyV1(  # the message goes to the cloud: no credential in it
        id=req_id, command=name[:128] or "?", ok=ok, message=redact(message), result=result
    )


def _json_or_none(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _request_id(data: object) -> str:
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return str(data["id"])[:64]
    return ""


def _first_error(exc: ValidationError) -> str:
    e = exc.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    return f"{loc}: {e['msg']}"
