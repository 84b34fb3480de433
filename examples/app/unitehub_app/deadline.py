"""Run a blocking call with a hard deadline.

Some clients cannot be interrupted (psycopg's ``connect_timeout`` is whole
seconds with a 2 s minimum; a query on an established connection can wait
forever). :func:`start` runs the call in a daemon thread; the caller waits at
most until its deadline and moves on. The abandoned thread ends on its own
when the client's socket timeout fires; it never keeps the process alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class DeadlineExceeded(TimeoutError):
    pass


class Pending:
    """The result slot of one call running in its own daemon thread."""

    def __init__(self, fn: Callable[[], Any], name: str):
        self._fn = fn
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._result = self._fn()
        except BaseException as exc:  # handed to the waiting caller
            self._error = exc
        finally:
            self._done.set()

    def result(self, timeout: float) -> Any:
        """The call's result, its exception re-raised, or :class:`DeadlineExceeded`."""
        if not self._done.wait(max(0.0, timeout)):
            raise DeadlineExceeded(f"timed out after {round(timeout * 1000)} ms")
        if self._error is not None:
            raise self._error
        return self._result


def start(fn: Callable[[], Any], name: str = "deadline-call") -> Pending:
    pending = Pending(fn, name)
    pending._thread.start()
    return pending


def call(fn: Callable[[], Any], timeout: float, name: str = "deadline-call") -> Any:
    """Run ``fn`` and return its result within ``timeout`` seconds, or raise :class:`DeadlineExceeded`."""
    return start(fn, name).result(timeout)
