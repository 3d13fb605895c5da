"""Credentials out of everything the device says: log lines, telemetry, ``/healthz``, replies.

``redact(text)`` masks, wherever they occur in a line of text:

- the password of a URL's userinfo: ``rtsp://admin:pw@cam`` → ``rtsp://admin:***@cam``. The
  user and host stay, so the operator can tell which camera. The password runs to the
  *last* ``@`` before the next blank or the next ``://`` (an unescaped ``@`` or ``/`` in a
  password, which cameras and ffmpeg accept, is still masked whole); a URL without a scheme
  separator of its own (``Path("http://…")`` prints ``http:/…``) counts too.
- a userinfo without a password: ``https://TOKEN@host`` → ``https://***@host``. A lone
  userinfo is how tokens are passed (git remotes, Sentry DSNs); a camera user alone tells
  nothing the host does not.
- the same inside a percent-encoded URL (``rtsp%3A%2F%2Fadmin%3Apw%40cam``).
- the value of a ``name=value`` pair (a URL query or a ``key=value`` log line) whose name
  says secret: password, passwd, pwd, pass, token, access_token, secret, client_secret,
  key, api_key, apikey, signature, sig, X-Amz-Signature, auth, credential, session…
- the credentials of an ``Authorization: Basic|Bearer …`` header.

Masking is idempotent (``redact(redact(x)) == redact(x)``) and errs on the side of masking
too much: a line that merely looks like a URL with a userinfo loses that part.

``redact_json`` applies it to every string of a JSON-like value (``--json`` output,
``/healthz``). ``install`` wires it into a CLI process: every log record (its message, its
arguments, its exception text and stack, extra fields) of every logger, including those of
libraries that add their own handlers later (uvicorn, paho), and uncaught tracebacks.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

MASK = "***"

# scheme "://" (or ":/", as a Path prints it) user [":" password] "@"
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*:/{1,2})"
    r"(?P<user>[^\s:@/?#\[\]'\"<>]*)"
    r"(?::(?P<password>(?:(?!://)\S)*))?"  # greedy: to the last "@" of the word
    r"@"
)
# the same, percent-encoded (a URL inside another URL's query)
_ENCODED_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*%3A(?:%2F){1,2})"
    r"(?P<user>(?:(?!%3A|%40|%2F)[^\s&#])*)"
    r"(?:%3A(?P<password>(?:(?!%2F%2F)[^\s&#])*))?"
    r"%40",
    re.IGNORECASE,
)
# name=value: a query parameter or a key=value pair in a log line
_PAIR_NAME = re.compile(r"(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]{1,64}=")
_PAIR_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s&#;,'\"<>]*")
_AUTH_HEADER = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\s*[:=]\s*(?:basic|bearer|digest|token)?\s*)"
    r"(?P<cred>[^\s,'\"]+)",
    re.IGNORECASE,
)

# a name is secret when, lower-cased and without separators, it ends with one of these ...
_SECRET_SUFFIXES = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "token",
    "secret",
    "apikey",
    "signature",
    "credential",
    "credentials",
    "sessionid",
    "privatekey",
)
# ... or is exactly one of these (short words that end too many harmless names)
_SECRET_NAMES = frozenset({"pass", "key", "sig", "auth", "authorization", "session", "jwt"})
_SEPARATORS = str.maketrans("", "", "_.-")


def is_secret_name(name: str) -> bool:
    """True for parameter names that carry a secret (``token``, ``api_key``,
    ``X-Amz-Signature``, ``client_secret``, ``access_key``…)."""
    low = name.lower()
    bare = low.translate(_SEPARATORS)
    if bare in _SECRET_NAMES or bare.endswith(_SECRET_SUFFIXES):
        return True
    parts = re.split(r"[_.\-]", low)
    return len(parts) > 1 and parts[-1] in ("key", "pass", "sig", "auth")


def _mask_userinfo(m: re.Match[str], sep: str) -> str:
    user, password = m.group("user"), m.group("password")
    at = "%40" if sep == "%3A" else "@"
    if password is None:
        return f"{m.group('scheme')}{MASK}{at}"
    return f"{m.group('scheme')}{user}{sep}{MASK}{at}"


def _mask_pairs(text: str) -> str:
    """Mask the value of each secret ``name=value``. Only a secret's value is skipped over:
    the value of any other name is scanned too (``filename='http://…?token=…'``)."""
    out: list[str] = []
    pos = 0
    for m in _PAIR_NAME.finditer(text):
        if m.start() < pos or not is_secret_name(m.group()[:-1]):
            continue
        v = _PAIR_VALUE.match(text, m.end())
        value = v.group() if v else ""
        if value.strip("'\"") in ("", MASK):
            continue
        quote = value[:1] if value[:1] in ("'", '"') else ""
        out.append(text[pos : m.end()] + quote + MASK + quote)
        pos = m.end() + len(value)
    return "".join(out) + text[pos:] if out else text


def redact(text: str) -> str:
    """``text`` with every credential it holds masked (see the module's docstring)."""
    if not text:
        return text
    if "@" in text:
        text = _USERINFO.sub(lambda m: _mask_userinfo(m, ":"), text)
    if "%40" in text:
        text = _ENCODED_USERINFO.sub(lambda m: _mask_userinfo(m, "%3A"), text)
    if "=" in text:
        text = _mask_pairs(text)
    if "uthorization" in text.lower():
        text = _AUTH_HEADER.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return text


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, scalars) whose strings,
    keys included, are ``redact``-ed."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {(redact(k) if isinstance(k, str) else k): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value


# -- logging ---------------------------------------------------------------------------

_STD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_FORMATTER = logging.Formatter()


def _redact_arg(arg: object) -> object:
    """An argument whose text holds a credential, as redacted text; any other unchanged
    (its type kept, for ``%d`` and for formatters that read ``record.args``)."""
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, bool | int | float):
        return arg
    text = str(arg)
    clean = redact(text)
    return arg if clean == text else clean


def _scrub_message(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: say so, redacted
        message = f"{record.msg!s} (log arguments that do not fit: {record.args!r})"
        record.msg, record.args = redact(message), None
        return
    clean = redact(message)
    if clean == message:
        return
    # the arguments one by one first: formatters that unpack record.args (uvicorn's
    # access log) keep working; merged only if that is not enough (the format string
    # itself holds the secret, or an argument no longer fits its conversion)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_redact_arg(a) for a in args)
    elif isinstance(args, dict):
        record.args = {k: _redact_arg(v) for k, v in args.items()}
    try:
        merged = record.getMessage()
    except Exception:
        merged = message
    if redact(merged) != merged:
        record.msg, record.args = clean, None


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one log record in place: its message (each argument, or the merged text where
    the format itself holds the secret), the exception text and stack (formatted now, so a
    formatter uses the redacted text), extra fields. A record with nothing to hide is left
    exactly as it was."""
    _scrub_message(record)
    if record.exc_info and not record.exc_text:
        text = _FORMATTER.formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            record.exc_text = clean
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    for k, v in list(vars(record).items()):
        if k not in _STD_ATTRS and isinstance(v, str):
            setattr(record, k, redact(v))
    return record


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record before it is formatted; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed = threading.Lock()
_state: dict[str, bool] = {"factory": False}


def _wrap_factory() -> None:
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)


def _print_exception(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, header: str = ""
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(header + redact(text))
    sys.stderr.flush()


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _print_exception(exc_type, exc, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    _print_exception(args.exc_type, args.exc_value, args.exc_traceback,
                     f"Exception in thread {name}:\n")  # fmt: skip


def install(root: logging.Logger | None = None) -> None:
    """Redact everything this process logs: a ``RedactingFilter`` on each handler of the
    root logger (or ``root``), a log-record factory that redacts every record any logger
    makes (handlers added later, such as uvicorn's, included), and excepthooks that
    redact uncaught tracebacks (``--debug``, threads). Safe to call more than once."""
    logger = root or logging.getLogger()
    for h in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    with _installed:
        if not _state["factory"]:
            _state["factory"] = True
            _wrap_factory()
            # only the interpreter's own hooks: a test runner's (or a debugger's) stay
            if sys.excepthook is sys.__excepthook__:
                sys.excepthook = _excepthook
            if threading.excepthook is threading.__excepthook__:
                threading.excepthook = _thread_excepthook


__all__ = [
    "MASK",
    "RedactingFilter",
    "install",
    "is_secret_name",
    "redact",
    "redact_json",
    "scrub_record",
]
