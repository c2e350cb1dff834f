"""A structlog logger that writes the lines of one event-loop iteration with one write.

The worker logs a line per message, and settles a batch of up to 256 in one go: written one
by one, each line was its own write and flush (a system call) on the event loop's thread.
Lines still leave in the same loop iteration they were logged in; outside a running loop (or
on another thread) a line is written at once.
"""

import asyncio
import threading
from typing import TextIO


class LoopBatchedWriter:
    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._pending: list[str] = []
        self._scheduled = False
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)
            if self._scheduled:
                return
            loop = _running_loop()
            self._scheduled = loop is not None
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            lines, self._pending, self._scheduled = self._pending, [], False
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    # structlog calls the method named after the level
    debug = info = warning = warn = error = err = critical = fatal = exception = log = msg


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
