"""Plain-text tables for terminal output: aligned columns, no dependency, copy-paste friendly."""

import unicodedata
from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text, right-aligned numbers; one header rule."""
    cells = [[str(h) for h in headers], *([_cell(v) for v in row] for row in rows)]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]
    lines = [_line(row, widths, numeric) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    parts = [_pad(v, w, right=n) for v, w, n in zip(row, widths, numeric, strict=True)]
    return "  ".join(parts).rstrip()


def width(text: str) -> int:
    """Columns on a terminal: a combining mark (a decomposed `й`) takes none, a wide (CJK)
    character two; `len` would count one for each and shift every column after it."""
    return sum(_columns(c) for c in text)


def _columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _pad(text: str, columns: int, *, right: bool) -> str:
    fill = " " * (columns - width(text))
    return fill + text if right else text + fill


def _cell(value: object) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    # A line break or tab in a name would break the row itself.
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
