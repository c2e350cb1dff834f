"""A dependency-free progress bar on stderr, so stdout stays clean for the demo's tables.

On a terminal it redraws one line in place (at most once per percent); elsewhere (CI logs,
pipes) it writes only the final line, so logs do not fill with carriage returns.
"""

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, width: int = 30):
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()
        self.done = 0
        self._shown_percent = -1

    def update(self, done: int) -> None:
        """Set the absolute count; redraws only when the whole percent changes."""
        self.done = min(done, self.total)
        percent = self.done * 100 // self.total
        if self.interactive and percent != self._shown_percent:
            self._shown_percent = percent
            self.stream.write("\r" + self.render())
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write(("\r" if self.interactive else "") + self.render() + "\n")
        self.stream.flush()

    def render(self) -> str:
        filled = self.done * self.width // self.total
        bar = "#" * filled + "." * (self.width - filled)
        percent = self.done * 100 // self.total
        return f"{self.label:<12} [{bar}] {self.done}/{self.total} ({percent}%)"
