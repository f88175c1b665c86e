"""One running coordinator per database: an exclusive ``flock`` on ``<db>.lock``.

The kernel drops the lock when the holding process dies (even by SIGKILL), so a killed run never leaves a stale
lock behind, and a second ``run`` on a database that is being run is refused at once with the holder's pid.
"""

from __future__ import annotations

import fcntl
import os

__all__ = ["DatabaseBusy", "RunLock"]


class DatabaseBusy(RuntimeError):
    """Another process is running a campaign on this database."""


class RunLock:
    def __init__(self, db_path: str) -> None:
        self.path = os.path.abspath(db_path) + ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise DatabaseBusy(f"database {self.path[:-5]!r} is being run by another process (pid {holder}); "
                               "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
