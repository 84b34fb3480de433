"""One JSON object per line on stdout, with every known secret scrubbed out."""

from __future__ import annotations

import datetime
import json
import sys
import threading
from collections.abc import Iterable
from typing import TextIO

REDACTED = "***"


def utc_now_iso() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (longest first) by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class JsonLogger:
    """Writes ``{"ts", "level", "event", <static fields>, <fields>}`` lines."""

    def __init__(self, stream: TextIO | None = None, static: dict | None = None, secrets: Iterable[str] = ()):
        self._stream = stream if stream is not None else sys.stdout
        self._static = dict(static or {})
        # Scrub both the raw value and its JSON-escaped form (quotes, backslashes, non-ASCII).
        self._secrets = [v for s in secrets if s for v in (s, json.dumps(s)[1:-1])]
        self._lock = threading.Lock()

    def log(self, level: str, event: str, **fields: object) -> None:
        record = {"ts": utc_now_iso(), "level": level, "event": event}
        record.update(self._static)
        record.update(fields)
        line = scrub(json.dumps(record, separators=(",", ":"), default=str), self._secrets)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # stdout closed or broken: logging must never break a request

    def info(self, event: str, **fields: object) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: object) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self.log("error", event, **fields)
