"""How an MQTT client checks the broker and proves itself: the TLS context, password files.

One implementation for both sides. The device gives its ``[sync.tls]`` table
(``edge.config.TLSConfig``) and names problems by config key; the hub gives a
``TLSFiles`` built from ``edge-hub serve``'s flags and names them by flag. Every file
is read here, once, before the first connection: a missing or unreadable file, a
certificate without its key or a key that is not the certificate's is a one-line
``ConfigError`` naming the key or flag, not a TLS failure at connect time.

paho's ``tls_set`` reads the same files but says only "No such file or directory"
(or prompts on the terminal for an encrypted key); ``tls_context`` builds the
``ssl.SSLContext`` itself and the client takes it with ``tls_set_context``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.errors import ConfigError


class TLSSettings(Protocol):
    """What a TLS setup needs; ``edge.config.TLSConfig`` and ``TLSFiles`` both have it."""

    @property
    def ca_file(self) -> Path | None: ...
    @property
    def cert_file(self) -> Path | None: ...
    @property
    def key_file(self) -> Path | None: ...
    @property
    def insecure(self) -> bool: ...


@dataclass(frozen=True)
class TLSFiles:
    """TLS settings outside a device config (the hub's flags)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class TLSNames:
    """How errors name each setting: config keys on the device, flags on the hub."""

    ca_file: str
    cert_file: str
    key_file: str
    insecure: str


DEVICE_TLS = TLSNames(
    "sync.tls.ca_file", "sync.tls.cert_file", "sync.tls.key_file", "sync.tls.insecure"
)
HUB_TLS = TLSNames("--mqtt-tls-ca", "--mqtt-tls-cert", "--mqtt-tls-key", "--mqtt-tls-insecure")


def _readable(path: Path, name: str) -> Path:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{name} {path}: cannot read ({exc.strerror or exc})") from None
    return path


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).replace("_", " ").lower()


def _no_passphrase() -> bytes:
    # an encrypted key would make OpenSSL prompt on the terminal; fail instead
    raise ConfigError("encrypted")


def tls_context(tls: TLSSettings, names: TLSNames) -> ssl.SSLContext:
    """A client context that verifies the broker (TLS 1.2 or later): against ``ca_file``,
    else the system's CAs; with ``cert_file`` + ``key_file`` it also presents a client
    certificate (mutual TLS). ``insecure`` skips the host name check only: the chain is
    still verified."""
    if (tls.cert_file is None) != (tls.key_file is None):
        given, missing = (
            (names.cert_file, names.key_file)
            if tls.key_file is None
            else (names.key_file, names.cert_file)
        )
        raise ConfigError(f"{given} needs {missing}: mutual TLS takes a certificate and its key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.ca_file is not None:
        ca = _readable(tls.ca_file, names.ca_file)
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{names.ca_file} {ca}: not a PEM CA certificate ({_reason(exc)})"
            ) from None
    else:
        ctx.load_default_certs()
    if tls.cert_file is not None and tls.key_file is not None:
        cert = _readable(tls.cert_file, names.cert_file)
        key = _readable(tls.key_file, names.key_file)
        try:
            ctx.load_cert_chain(str(cert), str(key), password=_no_passphrase)
        except ConfigError:
            raise ConfigError(
                f"{names.key_file} {key}: the key is encrypted; give an unencrypted key"
                " (readable by this user only, mode 0600)"
            ) from None
        except ssl.SSLError as exc:
            why = _reason(exc)
            if "values mismatch" in why:
                raise ConfigError(
                    f"{names.key_file} {key}: not the private key of {names.cert_file} {cert}"
                ) from None
            raise ConfigError(
                f"{names.cert_file} {cert} / {names.key_file} {key}: not a PEM certificate and"
                f" key ({why})"
            ) from None
    if tls.insecure:
        ctx.check_hostname = False
    return ctx


def read_secret_file(path: Path, name: str) -> str:
    """The secret in ``path`` (one line; surrounding whitespace and the newline dropped)."""
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{name} {path}: cannot read ({why})") from None
    if not value:
        raise ConfigError(f"{name} {path}: the file is empty; put the password in it")
    return value


# --- what a failed handshake means -----------------------------------------------------------
_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ssl.SSLWantReadError)


def tls_failure(exc: OSError, names: TLSNames) -> tuple[str, bool]:
    """A TLS error as one line naming the setting to check, and whether it is permanent
    (a certificate or configuration problem that retrying does not fix) rather than a
    connection cut during the handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or _reason(exc)
        return (
            f"the broker's certificate does not verify ({why}); check {names.ca_file} (the CA"
            f" that signed the broker's certificate) and the host name",
            True,
        )
    if not isinstance(exc, ssl.SSLError) or isinstance(exc, _TRANSIENT):
        return f"TLS connection cut ({exc})", False
    why = _reason(exc)
    if "wrong version number" in why or "record layer failure" in why:
        return f"the broker's port does not speak TLS ({why}); check the port", True
    if "alert" in why:  # the broker refused us: no, an unknown or an expired client cert
        return (
            f"the broker refused the TLS handshake ({why}); check {names.cert_file} and"
            f" {names.key_file} (a certificate its CA signed)",
            True,
        )
    return f"TLS handshake failed ({why})", True


def report_tls_errors(ctx: ssl.SSLContext, on_error: Callable[[OSError], None]) -> None:
    """Make sockets from ``ctx`` pass their handshake and read errors to ``on_error``
    (then raise them as before). paho turns them into a bare "connection failed"; this
    keeps the reason (``SSLContext.sslsocket_class`` is the documented hook)."""

    class _Reporting(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except OSError as exc:
                on_error(exc)
                raise

        def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
            try:
                return super().recv(buflen, flags)
            except ssl.SSLWantReadError:  # no data yet on a non-blocking socket
                raise
            except ssl.SSLError as exc:  # TLS 1.3: a refused client cert arrives here
                on_error(exc)
                raise

    ctx.sslsocket_class = _Reporting
