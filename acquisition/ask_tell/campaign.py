"""The ask/tell campaign: :class:`Campaign`, :func:`create_campaign` and :func:`load_campaign` (the package's
docstring says how ask/tell works)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from acquisition.ask_tell.opening import open_ask_tell, stored_campaign
from acquisition.ask_tell.platform import Platform
from acquisition.ask_tell.status import CampaignStatus, status_of
from acquisition.ask_tell.telling import FAILED, LATENCY, CsvTold, Teller
from acquisition.campaign import CampaignError
from acquisition.engine import END_STATES, Asked
from acquisition.loop.pipeline import batches, last_batch

__all__ = ["Campaign", "create_campaign", "load_campaign"]


class Campaign:
    """A campaign driven by ask/tell: the engine says what to measure, you measure it and tell the result.

    ``Campaign(db, name, family=..., platform=...)`` creates the campaign in the database ``db`` (a file; created if
    missing), or resumes it: then ``family``, ``platform`` and ``protocol`` may be left out, and a different
    one is refused, as is any other setting than the budgets and ``cost_s`` (one-line
    :class:`~acquisition.campaign.CampaignError` naming both values).

    Parameters:
        platform: a :class:`Platform` (a device you measure), or the id of a platform already in the database
            (e.g. a CPU whose blocks you measure elsewhere).
        protocol: the id of how your tool measures (default ``"external"``); part of every measurement's
            identity, like the platform.
        cost_s: the device seconds charged per told measurement that gives none: a number (stored with the
            campaign) or a function of the latency in ms (this session only).

    The other keyword arguments (``target_spearman``, ``target_acc10``, ``target_mape``, ``budget_hours``,
    ``budget_samples``, ``strategy``, ``model``, ``batch_size``, ``initial_size``, ``validation_size``,
    ``pool_size``, ``seed``, ``confirm``, ``verification``, ``folds``, ``random_share``, ``stop_on_target``,
    ``transfer``, ``stop_rule``, ``pipeline``) are the campaign's settings (:class:`~acquisition.campaign.CampaignSpec`;
    ``None`` keeps the stored value, or the default for a new campaign). ``transfer`` defaults to ``"auto"``: the
    family's measurements on the database's other platforms are priors (:mod:`acquisition.transfer`).

    Use it as a context manager (or call :meth:`close`).

    Example (``my_latency_ms`` stands in for the device's own benchmark tool):

        >>> import os, tempfile
        >>> from acquisition import Campaign, Platform
        >>> from profiler.families import get_family
        >>> fam = get_family("mbconv")
        >>> def my_latency_ms(config):
        ...     c = fam.counts(config)
        ...     return 1e3 * max(c.macs / 20e9, c.bytes_moved / 8e9) + 0.015 * c.layers
        >>> db = os.path.join(tempfile.mkdtemp(), "phone.sqlite")
        >>> phone = Platform("pixel-8", device="Pixel 8", runtime="tflite 2.16", threads=4)
        >>> with Campaign(db, "pixel", family="mbconv", platform=phone, cost_s=2.0) as campaign:
        ...     asked = campaign.ask()  # the initial design
        ...     for a in asked:
        ...         campaign.tell(a.key, my_latency_ms(a.config))  # cost_s: the declared 2 s each
        ...     status = campaign.status()
        >>> len(asked), status.samples, status.pending, round(status.device_hours * 3600, 6), status.state
        (20, 20, 0, 40.0, 'running')

    Driven to its end, the loop is ``while not campaign.done: for a in campaign.ask(): campaign.tell(...)``,
    then ``campaign.export(path)`` (docs/guides/ask-tell.md has it whole, and the shell's ``ask``/``tell``).
    """

    def __init__(self, db: str | os.PathLike[str], name: str = "default", *, family: str | None = None,
                 platform: Platform | str | None = None, protocol: str | None = None,
                 cost_s: float | Callable[[float], float] | None = None, **settings: Any) -> None:
        opened = open_ask_tell(db, name, family=family, platform=platform, protocol=protocol, cost_s=cost_s,
                               settings=settings)
        self.path, self.name, self.family = opened.path, opened.name, opened.family
        self.platform, self.protocol, self.spec = opened.platform, opened.protocol, opened.spec
        self.store: Any = opened.store
        self.loop = opened.loop
        self._lock = opened.lock
        self._teller = Teller(self.store, name, self.family, self.platform, self.spec, opened.cost_fn)
        self._handed: set[tuple[str, str]] = set()  # handed out by ask() in this session, not told yet
        self._thought: str | None = None  # the batch out that ask() last thought ahead beside

    # -- opening and closing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """The database's run lock and one thread for fitting, while one call writes."""
        from threadpoolctl import threadpool_limits

        if self.store is None:
            raise CampaignError(f"campaign {self.name!r} is closed")
        with self._lock, threadpool_limits(limits=1):
            yield

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Campaign {self.name!r}: {self.family.name} on {self.platform}, {self.path}>"

    # -- ask -------------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the campaign has ended (target met, budget spent, candidates exhausted, or failed)."""
        if self.store is None:
            raise CampaignError(f"campaign {self.name!r} is closed")
        return self.store.get_campaign(self.name)["state"] in END_STATES

    def ask(self, k: int | None = None) -> list[Asked]:
        """The next configurations to measure (at most ``k``; all of the current batch by default), each an
        :class:`~acquisition.engine.Asked` with its ``key`` and ``config``.

        The pending ones first (asked before and not told: after a crash or in a new process, the same ones);
        asking again before telling hands out the rest of the batch, never one configuration twice. Once every
        pending configuration is told, the engine takes its next step (fit, verify, stop rule, query) and asks
        for a new batch. Pipelined (``pipeline`` ``auto`` or ``on``, the default), asking again once one batch is
        all handed out gives the next one at once, chosen on what is told so far (the batch out excluded), so a
        device never waits for the engine; a second batch out waits for the first to be told. Empty once the
        campaign is :attr:`done`, or when everything pending is handed out."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise CampaignError(f"k={k!r} is not allowed: expected a positive integer or None")
        with self._writing():
            asks = self.loop.next_asks()
            fresh = [a for a in asks if (a.key, a.protocol) not in self._handed]
            label = last_batch(asks)
            if not fresh and asks and self.spec.pipeline != "off" and len(batches(asks)) == 1 \
                    and label != self._thought:
                # once per batch out, as run's driver: a step that asked for nothing (the budget is spoken for)
                # is not taken again, a fit each, at every ask() until the batch is told
                self._thought = label
                fresh = [a for a in self.loop.ask_ahead() if (a.key, a.protocol) not in self._handed]
        out = fresh if k is None else fresh[:k]
        self._handed.update((a.key, a.protocol) for a in out)
        return out

    def pending(self) -> list[Asked]:
        """Every configuration asked for and not told yet, in the order asked (handed out or not)."""
        if self.store is None:
            raise CampaignError(f"campaign {self.name!r} is closed")
        return [Asked.from_row(r) for r in self.store.pending_asks(self.name)]

    # -- tell ------------------------------------------------------------------------------------------------
    def tell(self, key_or_config: str | Mapping[str, Any], latency_ms: float, cost_s: float | None = None) -> None:
        """Record the measured latency (ms) of an asked configuration, given by its key or its configuration,
        and charge ``cost_s`` device seconds (default: the declared cost) to the ledger, in one transaction."""
        with self._writing():
            asked, m = self._teller.prepare(key_or_config, self._pending_by_key(), latency_ms=latency_ms, cost_s=cost_s)
            self.loop.tell(asked, m)
        self._handed.discard((asked.key, asked.protocol))

    def tell_failed(self, key_or_config: str | Mapping[str, Any], reason: str, cost_s: float | None = None) -> None:
        """Record that an asked configuration could not be measured (e.g. an operator the device's runtime
        lacks), with ``reason``; it is not asked again and is charged ``cost_s`` (default: the declared constant
        cost)."""
        with self._writing():
            asked, m = self._teller.prepare(key_or_config, self._pending_by_key(), failed=reason, cost_s=cost_s)
            self.loop.tell(asked, m)
        self._handed.discard((asked.key, asked.protocol))

    def tell_csv(self, path: str | os.PathLike[str] | IO[str], *, label: str | None = None) -> CsvTold:
        """Tell every measured row of a CSV file: a ``key`` column or one column per parameter, ``latency_ms``,
        optionally ``cost_s`` (else the declared cost) and ``failed`` (a reason, for a configuration that could
        not be measured; its ``latency_ms`` left empty). Rows with neither stay pending. Every row is checked
        first, a bad one named by its line (``measured.csv line 7: latency_ms 'abc' is not a positive number``),
        and all rows are stored in one transaction, or none. ``label`` names the file in errors (default: its name)."""
        label = label or (os.path.basename(os.fspath(path)) if not hasattr(path, "read") else "<csv>")
        if hasattr(path, "read"):
            return self._tell_rows(label, path)  # type: ignore[arg-type]
        try:
            with open(path, newline="") as fh:
                return self._tell_rows(label, fh)
        except OSError as exc:
            raise CampaignError(f"{os.fspath(path)!r} cannot be read: {exc.strerror or exc}") from None

    def _tell_rows(self, label: str, fh: IO[str]) -> CsvTold:
        rows = self._teller.read_csv(label, fh)
        with self._writing():
            pending = self._pending_by_key()
            prepared, errors, seen, left, failed = [], [], {}, 0, 0
            for line, row in rows:
                cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not cells.get(LATENCY) and not cells.get(FAILED):
                    left += 1
                    continue
                try:
                    item = self._teller.parse_row(cells, pending, seen, line)
                except CampaignError as exc:
                    errors.append((line, str(exc)))
                    continue
                failed += item[1].status == "failed"
                prepared.append(item)
            if errors:
                more = (f" (and {len(errors) - 1} more bad row(s): line(s) "
                        f"{', '.join(str(ln) for ln, _ in errors[1:6])}{', ...' if len(errors) > 6 else ''})"
                        if len(errors) > 1 else "")
                raise CampaignError(f"{label} line {errors[0][0]}: {errors[0][1]}{more}; nothing was stored")
            with self.store.transaction():  # all rows or none
                for asked, m in prepared:
                    self.loop.tell(asked, m)
        for asked, _ in prepared:
            self._handed.discard((asked.key, asked.protocol))
        return CsvTold(len(prepared) - failed, failed, left)

    def _pending_by_key(self) -> dict[str, Asked]:
        """The pending asks by key (stored measurements of them joined the campaign first: see
        :meth:`~acquisition.engine.CampaignLoop.pending`)."""
        out: dict[str, Asked] = {}
        for a in self.loop.pending():
            if a.protocol == self.protocol:
                out.setdefault(a.key, a)
        return out

    # -- status and the predictor ----------------------------------------------------------------------------
    def status(self) -> CampaignStatus:
        """Samples, device hours, the last verified metrics, targets, budget left, state and pending asks."""
        if self.store is None:
            raise CampaignError(f"campaign {self.name!r} is closed")
        return status_of(self.store, self.spec, self.name, self.family.name, self.platform, self.protocol)

    def export(self, path: str | os.PathLike[str]) -> str:
        """Export the predictor bundle, fitted on everything told (:func:`surrogates.load_bundle` reads it);
        returns its path."""
        path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise CampaignError(f"bundle path {path!r} cannot be written: directory {parent!r} is not writable")
        with self._writing():
            if self.loop.current_model() is None:
                raise CampaignError(f"campaign {self.name!r} has too few ok measurements to fit a predictor")
            its = self.store.iterations(self.name)
            return self.loop.export(path, its[-1] if its else None)  # type: ignore[return-value]


def create_campaign(db: str | os.PathLike[str], name: str = "default", *, family: str, platform: Platform | str,
                    load_if_exists: bool = False, protocol: str | None = None,
                    cost_s: float | Callable[[float], float] | None = None, **settings: Any) -> Campaign:
    """A new ask/tell campaign ``name`` in the database ``db`` (as Optuna's ``create_study``).

    A campaign of that name already stored is a :class:`~acquisition.campaign.CampaignError`, unless
    ``load_if_exists``: then it is resumed (its family, platform and protocol must match). The other arguments
    are :class:`Campaign`'s.

    Example:
        >>> import os, tempfile
        >>> db = os.path.join(tempfile.mkdtemp(), "board.sqlite")
        >>> with create_campaign(db, "b", family="mbconv", platform=Platform("board"), cost_s=1.0) as c:
        ...     len(c.ask(3))
        3
        >>> create_campaign(db, "b", family="mbconv", platform=Platform("board"))
        Traceback (most recent call last):
        ...
        acquisition.campaign.CampaignError: campaign 'b' is already in ...: load_campaign(db, 'b') resumes it ...
    """
    if not load_if_exists and stored_campaign(db, name) is not None:
        raise CampaignError(f"campaign {name!r} is already in {os.fspath(db)!r}: load_campaign(db, {name!r}) resumes "
                            "it (or create_campaign(..., load_if_exists=True))")
    return Campaign(db, name, family=family, platform=platform, protocol=protocol, cost_s=cost_s, **settings)


def load_campaign(db: str | os.PathLike[str], name: str = "default", *,
                  cost_s: float | Callable[[float], float] | None = None, **settings: Any) -> Campaign:
    """The stored ask/tell campaign ``name`` of the database ``db``, resumed (as Optuna's ``load_study``).

    A missing campaign is a :class:`~acquisition.campaign.CampaignError` naming the campaigns stored. Only the
    budgets and ``cost_s`` may change on resuming (any other setting that differs is refused).

    Example:
        >>> import os, tempfile
        >>> load_campaign(os.path.join(tempfile.mkdtemp(), "none.sqlite"), "b")
        Traceback (most recent call last):
        ...
        acquisition.campaign.CampaignError: campaign 'b' is not in ...: create_campaign(db, 'b', ...) creates it
    """
    if stored_campaign(db, name) is None:
        raise CampaignError(f"campaign {name!r} is not in {os.fspath(db)!r}: create_campaign(db, {name!r}, "
                            "family=..., platform=...) creates it")
    return Campaign(db, name, cost_s=cost_s, **settings)
