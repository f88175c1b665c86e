"""MkDocs hook: the command-line reference, generated from the argparse parsers at build time.

A page that holds the line ``<!-- cli: MODULE -->`` (MODULE: ``acquisition``, ``nas`` or ``studies``) gets, in
its place, the ``--help`` of that command and of each of its subcommands, so the reference never drifts from
the code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from typing import Any

_MARK = re.compile(r"^<!-- cli: (\w+) -->$", re.M)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_help(module: str) -> str:
    """The Markdown reference of ``python -m MODULE``: its help, then a section per subcommand."""
    os.environ["COLUMNS"] = "110"  # argparse wraps help text to the terminal width; fix it for stable pages
    parser = importlib.import_module(f"{module}.cli").build_parser()
    parts = [f"```text\n{parser.format_help().rstrip()}\n```"]
    for name, sub in _subparsers(parser).items():
        parts.append(f"### `python -m {module} {name}`\n\n```text\n{sub.format_help().rstrip()}\n```")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _MARK.sub(lambda m: cli_help(m.group(1)), markdown)
