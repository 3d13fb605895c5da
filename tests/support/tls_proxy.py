"""Plain TCP on a free loopback port, forwarded over TLS (optionally with a client
certificate) to a broker: lets a client without TLS options reach a TLS-only listener
that runs unchanged, e.g. `edge-hub serve` against the shipped mosquitto config."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path


class TlsProxy:
    def __init__(
        self,
        target_port: int,
        ca_file: Path,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self._ctx = ssl.create_default_context(cafile=str(ca_file))
        if cert_file is not None:
            self._ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_r, up_w = await asyncio.open_connection(
                *self.target, ssl=self._ctx, server_hostname=self.target[0]
            )
        except (OSError, ssl.SSLError):
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_w)
        await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            dst.close()
            self._writers.discard(dst)

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            for w in list(self._writers):
                w.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> TlsProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
