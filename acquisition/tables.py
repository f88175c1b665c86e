"""Tables in reports and on the terminal, drawn by tabulate: GitHub-flavoured Markdown for reports (rendered to
HTML by markdown-it-py), aligned plain text for the command line.

Cells are shown as given (``disable_numparse``): each report formats its own numbers, so ``0.0500`` stays
``0.0500`` and a text such as ``not fitted yet`` sits in a numeric column unchanged.

Example:
    >>> print(markdown_table(["campaign", "ρ"], [["tiny", "0.9712"], ["big", "not fitted yet"]]))
    | campaign   | ρ              |
    |------------|----------------|
    | tiny       | 0.9712         |
    | big        | not fitted yet |
    >>> print(text_table(["platform", "ok"], [["5y57e71c0000", "12"]], indent="  "))
      platform      ok
      5y57e71c0000  12
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

__all__ = ["markdown_table", "text_table"]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (no trailing newline); ``|`` inside a cell is escaped."""
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return tabulate(esc, headers=[str(h).replace("|", "\\|") for h in headers], tablefmt="github",
                    disable_numparse=True)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "") -> str:
    """Columns aligned with two spaces between them, for a terminal; every line starts with ``indent``."""
    text = tabulate([[str(c) for c in r] for r in rows], headers=list(headers), tablefmt="plain",
                    disable_numparse=True)
    return "\n".join(indent + line.rstrip() for line in text.splitlines())
