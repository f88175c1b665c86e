"""Reading the Markdown tables a report writes (tabulate pads cells to align columns: tests read cells, not
padding)."""

from __future__ import annotations

import re

_SEPARATOR = re.compile(r"^\|[\s:|-]+\|$")


def md_rows(md: str) -> list[list[str]]:
    """Every row of every table in ``md`` (headers included, separators not), as stripped cells."""
    out = []
    for line in md.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and not _SEPARATOR.match(line):
            out.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line[1:-1])])
    return out


def md_row(md: str, *first: str) -> list[str]:
    """The first table row whose leading cells are ``first``; AssertionError naming them when there is none."""
    for row in md_rows(md):
        if row[:len(first)] == list(first):
            return row
    raise AssertionError(f"no table row starts with {list(first)}")


def has_row(md: str, *first: str) -> bool:
    return any(row[:len(first)] == list(first) for row in md_rows(md))


def has_cell(md: str, cell: str) -> bool:
    return any(cell in row for row in md_rows(md))
