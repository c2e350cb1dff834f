"""The CLI's tables stay aligned whatever the names: long, Cyrillic, decomposed, wide."""

import unicodedata

from cli.table import render_table, width

LONG = "Констанция Вольдемаровна Преображенская-Кржижановская"


def column_starts(line: str) -> list[int]:
    """Terminal columns where each cell after the first starts (cells are 2+ spaces apart)."""
    starts, column, gap = [], 0, 0
    for char in line:
        if char == " ":
            gap += 1
        else:
            if gap >= 2:
                starts.append(column)
            gap = 0
        column += width(char)
    return starts


def test_long_cyrillic_names_keep_every_column_aligned() -> None:
    decomposed = unicodedata.normalize("NFD", "Йожеф Ёлкин")  # й and ё as letter + mark
    rows = [
        [f"{LONG} (#1)", 50.0, 49.5, 99],
        ["Иван Петров (#2)", 30.0, 30.5, 101],
        [f"{decomposed} (#3)", 20.0, 20.0, 3],
        ["王芳 (#4)", 0.0, 0.0, 0],
        ["Tab\there (#5)", 0.0, 0.0, 7],
    ]
    lines = render_table(["operator", "configured %", "observed %", "count"], rows).splitlines()

    assert len(lines) == 2 + len(rows)
    ends = {width(line) for line in lines}
    assert ends == {width(lines[0])}  # numbers right-aligned: every line ends in one column
    body = [column_starts(line) for line in lines[2:]]
    assert all(len(starts) == 3 for starts in body)
    assert width(lines[2].split("  ")[0]) == width(f"{LONG} (#1)")  # nothing cut


def test_text_columns_pad_by_terminal_width() -> None:
    decomposed = unicodedata.normalize("NFD", "Йй")
    lines = render_table(["name", "n"], [[decomposed, 1], ["Ab", 2]]).splitlines()
    assert lines[2].index("1") - len(decomposed) == lines[3].index("2") - 2
