"""Fits in worker processes: several campaigns' fits at once, beside the coordinator's loop.

Contract: a :class:`FitPool` is a context manager around ``workers`` processes (loky's, as joblib runs them:
spawned, never forked from a coordinator that holds SQLite connections and Ray's threads). :meth:`FitPool.submit`
sends a :class:`~acquisition.loop.models.FitJob` (everything one iteration's fit reads) to a worker and returns a
:class:`Ticket`; :meth:`FitPool.ready` says whether the ticket's outcome is there, or is given up on; then
:meth:`Ticket.outcome` is the :class:`~acquisition.loop.models.FitOutcome`, or ``None`` when the worker failed,
died or ran past :attr:`FitPool.hang_s` (the caller then fits in its own process: a fault costs time, never a
result). Workers only compute: they hold no store, so the coordinator stays the single writer, and a fit done in a
worker is the same fit, on the same rows and seeds, as one done in the coordinator.

Why processes: the engine's fits are Python and scikit-learn calls that hold the GIL for much of their time; two
campaigns' committee fits in two threads took 0.3–0.4× the speed of one after the other (``docs/design-notes.md``).

Example:
    >>> import numpy as np
    >>> from acquisition.campaign import CampaignSpec
    >>> from acquisition.loop.models import FitJob
    >>> X = np.random.default_rng(0).uniform(1, 3, (30, 2)); y = np.exp(X[:, 0] - X[:, 1])
    >>> job = FitJob(CampaignSpec(name="c", family="f", model="linear"), None, None, None, X, y, {}, ("random",) * 30)
    >>> with FitPool(1) as pool:
    ...     ticket = pool.submit(job)
    ...     while not pool.ready(ticket):
    ...         pass
    ...     out = ticket.outcome()
    >>> out.name, out.model.predict(X[:2]).shape
    ('linear', (2,))
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

__all__ = ["HANG_S", "FitPool", "Ticket", "default_workers", "prefetch"]

log = logging.getLogger("latency_acquisition")

# a fit not back after this long is given up on (its worker is killed, the coordinator fits itself): campaign fits
# here take well under a minute; a hung worker must not stop a fleet's campaign for good
HANG_S = 300.0
_ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def default_workers(campaigns: int, cores: int | None = None) -> int:
    """How many worker processes fit ``campaigns`` campaigns beside a coordinator: one per campaign, at most one
    per core this process may use; 0 (fit in the coordinator) for a single campaign, whose fit has nothing to
    run beside.

        >>> default_workers(1, 8), default_workers(3, 8), default_workers(3, 2)
        (0, 3, 2)
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if campaigns < 2 else max(1, min(campaigns, cores))


def _warm() -> None:
    import acquisition.loop.models  # noqa: F401 - the fit's imports (scikit-learn, the surrogates)
    import surrogates.models  # noqa: F401


def _die_with_parent() -> None:
    """A worker's initializer: on Linux the worker is killed with the process that started it (a coordinator
    SIGKILLed mid-fit leaves no worker behind holding its pipes; loky's own would wait out their idle timeout)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def prefetch(loop: Any, pool: FitPool) -> bool:
    """Send the fit the next :meth:`~acquisition.engine.CampaignLoop.advance` of ``loop`` needs to ``pool``, on the
    rows measured now; ``True`` once the step may go on: its fit is back (or given up on: it then fits in the
    coordinator), or no fit is due. The next ``advance`` fits on those rows (``loop.ahead_data``; rows told
    meanwhile wait for the fit after it, as in a pipelined step) and adopts the worker's fit."""
    if loop.ahead_data is None:
        rows = loop.fid.labels(loop.store.members(loop.spec.name, "train", status="ok"))
        val = loop.store.members(loop.spec.name, "validation", status="ok")
        if len(rows) < 2 or (loop.spec.verification == "holdout" and len(val) < 3):
            return True  # the design is not measured: nothing to fit
        data = loop.data()
        seen = (len(data.train), float(data.y.sum()))
        if loop._last is not None and loop._last[0] is loop.model and loop._last[2] == seen:
            return True  # the last fit's rows: its model is reused
        loop.ahead_data = data
    return loop.models.prefetch(loop.ahead_data, pool)


class Ticket:
    """A fit sent to a worker: :meth:`outcome` once :meth:`FitPool.ready` says so."""

    def __init__(self, future: Any, pool: FitPool) -> None:
        self.future, self.pool, self.sent = future, pool, time.perf_counter()
        self.given_up = False

    def outcome(self) -> Any:
        """The worker's :class:`~acquisition.loop.models.FitOutcome`; ``None`` if it failed, died or hung (logged)."""
        if self.given_up or not self.future.done():
            self.pool.give_up(self)
            return None
        try:
            return self.future.result()
        except Exception as e:  # a worker's failure costs a refit in the coordinator, not the campaign
            log.warning("a fit in a worker process failed (%s: %s): fitting in the coordinator", type(e).__name__, e)
            return None


class FitPool:
    """``workers`` processes that run :func:`~acquisition.loop.models.run_fit` (see the module docstring);
    ``hang_s``: a fit not back after this many seconds is given up on and its pool restarted."""

    def __init__(self, workers: int, hang_s: float | None = None) -> None:
        if int(workers) < 1:
            raise ValueError(f"workers={workers!r} is not allowed: expected an integer >= 1")
        if hang_s is not None and not hang_s > 0:
            raise ValueError(f"hang_s={hang_s!r} is not allowed: expected seconds > 0")
        self.workers, self.hang_s = int(workers), float(HANG_S if hang_s is None else hang_s)
        self.executor: Any = None
        self.submitted = self.given_up = 0

    def __enter__(self) -> FitPool:
        self._start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> None:
        from joblib.externals.loky import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(self.workers, env=dict(_ONE_THREAD), initializer=_die_with_parent)
        for _ in range(self.workers):  # started and their imports done while the campaigns measure their designs
            self.executor.submit(_warm)

    def submit(self, job: Any) -> Ticket:
        """Fit ``job`` in a worker (:func:`~acquisition.loop.models.run_fit`)."""
        from acquisition.loop.models import run_fit

        if self.executor is None:
            self._start()
        self.submitted += 1
        return Ticket(self.executor.submit(run_fit, job), self)

    def ready(self, ticket: Ticket) -> bool:
        """Whether ``ticket``'s outcome can be taken: the fit is back, or it has run past :attr:`hang_s`."""
        return ticket.future.done() or time.perf_counter() - ticket.sent > self.hang_s

    def worker_pids(self) -> list[int]:
        """The workers' process ids (the fault matrix stops one to hang it)."""
        return sorted(getattr(self.executor, "_processes", None) or {})

    def wait(self, tickets: list[Ticket], timeout: float) -> None:
        """Wait up to ``timeout`` s for the first of ``tickets``' fits to come back."""
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures

        wait_futures([t.future for t in tickets], timeout=timeout, return_when=FIRST_COMPLETED)

    def give_up(self, ticket: Ticket) -> None:
        """Give up on a fit not back (a hung worker): the workers are killed and started again on the next submit
        (the other campaigns' fits still out are fitted by the coordinator)."""
        if ticket.given_up:
            return
        ticket.given_up = True
        self.given_up += 1
        log.warning("a fit in a worker process is not back after %.0f s: its workers are restarted and the "
                    "coordinator fits", time.perf_counter() - ticket.sent)
        self.close()

    def close(self) -> None:
        """Kill the workers: a fit still out is one nobody will adopt (they hold no store)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, kill_workers=True)
            self.executor = None
