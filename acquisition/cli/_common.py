"""Helpers every ``python -m`` command shares: argument types, device options, plug-ins, errors, output files.

``nas`` and ``studies`` build their parsers from these too, so that every command of the project reads the same
way: bad input is a one-line error naming the value (exit code 2), ``--help`` shows every default.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DEFAULT_DB", "CliError", "HelpFormatter", "Parser", "add_device_args", "add_plugin_arg",
           "check_output", "device_from_args", "jobs", "load_plugins", "non_negative_int", "positive_float",
           "positive_int"]

DEFAULT_DB = "acquisition.sqlite"


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


# -- help --------------------------------------------------------------------------------------------------------
def _registry_names(kind: str) -> str:
    """The registered names of ``kind`` (families, models, strategies), entry-point plug-ins included; computed
    only when help is printed, so that building the parser imports nothing heavy."""
    try:
        if kind == "families":
            from profiler.families import list_families

            names = list_families()
        elif kind == "models":
            from surrogates import list_models

            names = list_models()
        elif kind == "stop_rules":
            from acquisition.stopping import list_stop_rules

            names = list_stop_rules()
        else:
            from acquisition.strategies import list_strategies

            names = list_strategies()
    except Exception as exc:  # help must print even when a registry cannot be loaded
        return f"(cannot be listed: {type(exc).__name__}: {exc})"
    return ", ".join(names)


_PLACEHOLDERS = {"{families}": "families", "{models}": "models", "{strategies}": "strategies",
                 "{stop_rules}": "stop_rules"}


def _expand(text: str, *, escape: bool) -> str:
    for token, kind in _PLACEHOLDERS.items():
        if token in text:
            names = _registry_names(kind)
            text = text.replace(token, names.replace("%", "%%") if escape else names)
    return text


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (``(default: X)``) unless its help already says it, and expands the
    ``{families}``, ``{models}`` and ``{strategies}`` placeholders in help texts to the registered names."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = _expand(action.help or "", escape=True)  # argparse %-formats help strings
        default = action.default
        if (not text or default is None or default is False or default == [] or default is argparse.SUPPRESS
                or not action.option_strings or isinstance(action, argparse._CountAction | argparse._StoreConstAction)
                or "%(default)" in text or "default" in text.lower()):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        if f"({shown}" in text:  # already said, e.g. "trials per search (50)"
            return text
        return f"{text} (default: {shown.replace('%', '%%')})"

    def _format_text(self, text: str) -> str:
        if "%(prog)" not in text:  # argparse %-formats a description only when it names %(prog)
            text = text.replace("%%", "%")
        return super()._format_text(_expand(text, escape="%(prog)" in text))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # descriptions are paragraphs: wrap each, keep the blank lines between them
        import textwrap

        paragraphs = text.split("\n\n")
        return "\n\n".join(textwrap.fill(" ".join(p.split()), width, initial_indent=indent, subsequent_indent=indent,
                                         break_on_hyphens=False, break_long_words=False) for p in paragraphs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        # names such as ngboost-ensemble stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


def _default_help(action: argparse.Action) -> None:
    """An option given without help still shows its default in ``--help``."""
    d = action.default
    if (action.help is None and action.option_strings and d is not None and d is not False and d != []
            and d is not argparse.SUPPRESS and not isinstance(action, argparse._CountAction)):
        action.help = "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and whose help shows every default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        action = super().add_argument(*args, **kwargs)
        _default_help(action)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> argparse._ArgumentGroup:  # type: ignore[override]
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_argument(*a: Any, **kw: Any) -> argparse.Action:
            action = add(*a, **kw)
            _default_help(action)
            return action

        group.add_argument = add_argument  # type: ignore[method-assign]
        return group

    def error(self, message: str) -> None:  # type: ignore[override]  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- argument types ----------------------------------------------------------------------------------------------
def int_arg(text: str, ok: Callable[[int], bool], what: str) -> int:
    """An integer argument that satisfies ``ok``; otherwise an argparse error saying it ``must be <what>``."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
    return v


def positive_int(text: str) -> int:
    """An integer > 0."""
    return int_arg(text, lambda v: v > 0, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return int_arg(text, lambda v: v >= 0, "a non-negative integer")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return v


def jobs(text: str) -> int:
    """joblib's ``n_jobs``: an integer > 0, or -1 for every core."""
    return int_arg(text, lambda v: v > 0 or v == -1, "a positive integer or -1")


# -- shared options ----------------------------------------------------------------------------------------------
def add_device_args(p: argparse.ArgumentParser, default: str = "auto", threads: int | None = None) -> None:
    """--device, --threads, --dtype and --input-batch: what a block runs on, which together name the platform."""
    p.add_argument("--device", default=default, help=f"auto | cpu | cuda | cuda:N (default {default})")
    p.add_argument("--threads", type=positive_int, default=threads, help="CPU threads (cpu only, default 1)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="dtype blocks and inputs are converted to (default float32); part of the platform")
    p.add_argument("--input-batch", dest="input_batch", type=positive_int, default=1,
                   help="batch size of each block's input tensor (default 1); part of the platform")


def device_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~profiler.devices.Device` that :func:`add_device_args`' options describe."""
    from profiler.devices import parse_device

    return parse_device(args.device, threads=args.threads, dtype=args.dtype, batch_size=args.input_batch)


def add_plugin_arg(p: argparse.ArgumentParser, what: str = "block families, models or strategies") -> None:
    """--plugin MODULE (repeatable): a module imported first, which may register ``what``."""
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help=f"import MODULE first (it may register {what}); repeatable. Installed plug-ins "
                        "(package entry points) need no --plugin")


def load_plugins(modules: Sequence[str]) -> None:
    """Import each ``--plugin`` module; one that fails is a :class:`CliError` naming it."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise CliError(f"--plugin {name!r} could not be imported: {type(exc).__name__}: {exc}") from None


# -- output files ------------------------------------------------------------------------------------------------
def check_output(path: str, flag: str, *, db: str | None = None) -> None:
    """``path`` can be written (its folder exists and is writable) and is not the database ``db``."""
    parent = os.path.dirname(os.path.abspath(path))
    if db is not None:
        db_files = {os.path.realpath(db + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
        if os.path.realpath(path) in db_files:
            raise CliError(f"{flag} {path!r} is the database itself: choose another file")
    if os.path.isdir(path) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise CliError(f"{flag} {path!r} cannot be written")


def listed(names: Sequence[str], limit: int = 10) -> str:
    """``names`` joined by commas; beyond ``limit``, the first ones and how many more there are."""
    names = [str(n) for n in names]
    if not names:
        return "none"
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more ({len(names)} in all)"


# the names these helpers had when they lived in acquisition/cli.py (nas and studies import some of them)
_Parser = Parser
_positive_int = positive_int
_non_negative_int = non_negative_int
_positive_float = positive_float
_jobs = jobs
_load_plugins = load_plugins
_check_output = check_output
_int_arg = int_arg
