"""Fits in worker processes: several campaigns' fits at once, beside the coordinator's loop; or one campaign's
committee, its fold models spread over the workers.

Contract: a :class:`FitPool` is a context manager around ``workers`` processes (loky's, as joblib runs them:
spawned, never forked from a coordinator that holds SQLite connections and Ray's threads). :meth:`FitPool.submit`
sends a :class:`~acquisition.loop.models.FitJob` (everything one iteration's fit reads) to a worker and returns a
:class:`Ticket`; :meth:`FitPool.ready` says whether the ticket's outcome is there, or is given up on; then
:meth:`Ticket.outcome` is the :class:`~acquisition.loop.models.FitOutcome`, or ``None`` when the worker failed,
died or ran past :attr:`FitPool.hang_s` (the caller then fits in its own process: a fault costs time, never a
result). Workers only compute: they hold no store, so the coordinator stays the single writer, and a fit done in a
worker is the same fit, on the same rows and seeds, as one done in the coordinator. :meth:`FitPool.map` serves a
single campaign, whose fit has nothing to run beside: the coordinator fits, and its committee's fold models (each
a fit of its own, started where the model on all rows ended) run in the workers
(:func:`surrogates.models.committee.members_with`), with the same fallbacks.

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
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["HANG_S", "FitPool", "Ticket", "default_workers", "prefetch", "warm_imports"]

log = logging.getLogger("latency_acquisition")

# a fit not back after this long is given up on (its worker is killed, the coordinator fits itself): campaign fits
# here take well under a minute; a hung worker must not stop a fleet's campaign for good
HANG_S = 300.0
_ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def default_workers(campaigns: int, cores: int | None = None, members: int = 0) -> int:
    """How many worker processes serve the fits of ``campaigns`` campaigns beside a coordinator, at most one per
    core this process may use: one per campaign (each campaign's fit runs in one); for a single campaign, one
    per fold model of its committee (``members``: its folds; 0 when they should not run beside the devices, e.g.
    a CPU platform that may share this machine's cores), which the coordinator's fit spreads over them.

        >>> default_workers(1, 8), default_workers(3, 8), default_workers(3, 2), default_workers(1, 8, members=5)
        (0, 3, 2, 5)
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if campaigns < 2:
        return min(members, cores) if members > 1 and cores > 1 else 0
    return max(1, min(campaigns, cores))


def _warm() -> None:
    import acquisition.loop.models  # noqa: F401 - the fit's imports (scikit-learn, the surrogates)
    import surrogates.models  # noqa: F401


def warm_imports() -> None:
    """Import the fit's modules (scikit-learn's, about a second) in a background thread: a fleet's coordinator does it
    while its actors measure the designs, instead of at its first fit, while they wait."""
    import threading

    threading.Thread(target=_warm, name="warm-imports", daemon=True).start()


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


def _result(future: Any, func: Callable[..., Any], task: tuple[Any, ...]) -> Any:
    """A finished future's result, or ``func(*task)`` computed here when its worker failed."""
    try:
        return future.result()
    except Exception as e:
        log.warning("a fit in a worker process failed (%s: %s): fitting in the coordinator", type(e).__name__, e)
        return func(*task)


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
    ``hang_s``: a fit not back after this many seconds is given up on and its pool restarted; ``lazy``: the workers
    start at :meth:`warm_up` or the first work sent, not on entering the pool."""

    def __init__(self, workers: int, hang_s: float | None = None, lazy: bool = False) -> None:
        if int(workers) < 1:
            raise ValueError(f"workers={workers!r} is not allowed: expected an integer >= 1")
        if hang_s is not None and not hang_s > 0:
            raise ValueError(f"hang_s={hang_s!r} is not allowed: expected seconds > 0")
        self.workers, self.hang_s = int(workers), float(HANG_S if hang_s is None else hang_s)
        self.executor: Any = None
        self.lazy = bool(lazy)
        self.submitted = self.given_up = 0

    def __enter__(self) -> FitPool:
        if not self.lazy:
            self._start()
        return self

    def warm_up(self) -> None:
        """Start the workers (and their imports) now, if they are not running: a ``lazy`` pool's user calls it
        ahead of the first work it will send (a single campaign: from half the rows its fold models go there)."""
        if self.executor is None:
            self._start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _start(self) -> None:
        from joblib.externals.loky import ProcessPoolExecutor

        self.executor = ProcessPoolExecutor(self.workers, env=dict(_ONE_THREAD), initializer=_die_with_parent)
        for _ in range(self.workers):  # started and their imports done while the campaigns measure their designs
            self.executor.submit(_warm)

    def _live(self) -> Any:
        """The executor, started again if it is not running or is broken (a worker died: loky then refuses work)."""
        if self.executor is not None and getattr(getattr(self.executor, "_flags", None), "broken", None) is not None:
            log.warning("a fit worker process died: the fit workers are started again")
            self.close()
        if self.executor is None:
            self._start()
        return self.executor

    def submit(self, job: Any) -> Ticket:
        """Fit ``job`` in a worker (:func:`~acquisition.loop.models.run_fit`)."""
        from acquisition.loop.models import run_fit

        self.submitted += 1
        return Ticket(self._live().submit(run_fit, job), self)

    def map(self, func: Callable[..., Any], tasks: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``[func(*task) for task in tasks]``, the tasks spread over the workers (a single campaign's committee:
        its fold models, :func:`surrogates.models.committee.members_with`). A task whose worker fails or dies is
        run here; so is every task not back after :attr:`hang_s` (the workers are then killed and started again at
        the next call): the results are the same, a fault costs time."""
        from concurrent.futures import wait as wait_futures

        try:
            futures = [self._live().submit(func, *t) for t in tasks]
        except Exception as e:  # the pool cannot take work now: this call runs here, the next starts it again
            log.warning("the fit workers took no work (%s: %s): fitting in the coordinator", type(e).__name__, e)
            self.close()
            return [func(*t) for t in tasks]
        self.submitted += len(futures)
        done, late = wait_futures(futures, timeout=self.hang_s)
        if late:
            self.given_up += 1
            log.warning("%d of %d fits in worker processes are not back after %.0f s: the workers are restarted "
                        "and the coordinator fits them", len(late), len(futures), self.hang_s)
            self.close()
        return [_result(f, func, t) if f in done else func(*t) for f, t in zip(futures, tasks, strict=True)]

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
