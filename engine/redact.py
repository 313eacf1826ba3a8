"""Keep secrets out of logs: every plaintext the vault hands out is registered here, and a logging
filter replaces it (and anything that looks like a bearer token or a URL password) with ``***``."""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?=@)", re.I)
_BEARER = re.compile(r"(?P<prefix>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_QUERY_TOKEN = re.compile(r"(?P<prefix>[?&](?:authToken|token|apikey|api_key|password)=)[^&\s]+", re.I)

_known: set[str] = set()
_lock = threading.Lock()


def register(secret: str) -> None:
    """Remember a secret value so that it never reaches a log line."""
    if len(secret) >= 6:  # shorter values would redact ordinary words
        with _lock:
            _known.add(secret)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\g<scheme>***", text)
    text = _BEARER.sub(r"\g<prefix>***", text)
    return _QUERY_TOKEN.sub(r"\g<prefix>***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None:
            # a traceback's text (exception messages may quote a URL or a value): formatted once here,
            # redacted, and kept as exc_text, which formatters print instead of formatting exc_info
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (the root logger by default), and to those of
    uvicorn's loggers, which do not propagate to the root."""
    targets = [logger or logging.getLogger()]
    if logger is None:
        targets += [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    for target in targets:
        for handler in target.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


def redact_url(url: str) -> str:
    """The URL without password or token, for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if ":" in userinfo else netloc
    query = urlencode(
        [(k, "***" if k.lower() in ("authtoken", "password") else v) for k, v in parse_qsl(parts.query)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
