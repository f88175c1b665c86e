"""Files written whole or not at all: the one way this project writes a report, a bundle, a CSV or a plot.

Everything is written under a temporary name in the target's directory, flushed to disk, then renamed into
place (``os.replace`` is atomic on POSIX and Windows): a reader never sees half a file, and a crash or an
exception leaves the previous file, if any, as it was.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "summary.md")
    >>> with atomic_write(path) as fh:
    ...     _ = fh.write("# a study\\n")
    >>> open(path).read()
    '# a study\\n'
    >>> try:
    ...     with atomic_write(path) as fh:
    ...         _ = fh.write("half")
    ...         raise RuntimeError("interrupted")
    ... except RuntimeError:
    ...     pass
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('# a study\\n', ['summary.md'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary path next to ``path`` (same suffix, so that e.g. matplotlib picks the format) that replaces
    ``path`` when the block succeeds and is removed when it fails."""
    path = os.fspath(path)
    stem, suffix = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=f".tmp{suffix}", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # what was written under the temporary name is on disk before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kw: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` (``mode`` ``"w"`` or ``"wb"``; text is written with
    ``newline=""`` and UTF-8 unless ``open_kw`` says otherwise) and rename it into place when the block
    succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not allowed: expected 'w' or 'wb'")
    if mode == "w":
        open_kw = {"newline": "", "encoding": "utf-8", **open_kw}
    with atomic_path(path) as tmp, open(tmp, mode, **open_kw) as fh:
        yield fh
