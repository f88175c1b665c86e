"""Ask/tell: the engine as an advisor for devices the profiler cannot drive (docs/design.md §5).

Phones, edge boards and accelerators behind a vendor tool are measured by *their* tools. A :class:`Campaign`
says what to measure next (:meth:`Campaign.ask`), the user measures it anywhere and tells the engine the result
(:meth:`Campaign.tell`), as Optuna's ask/tell does for trials. The steps between are the engine's own
(:class:`acquisition.engine.CampaignLoop`: initial design, fit, verify, stop rule, query), the very code
:func:`acquisition.engine.run_campaign` runs with the built-in profiler as the measurer.

- **The platform** is declared by the user: a name and free-form fingerprint fields (:class:`Platform`); its id
  is derived from the fingerprint as for built-in devices (:func:`profiler.devices.platform_id`) and it is
  stored with kind ``external``. Measurements of different platforms or protocols never mix; ``protocol`` names
  how the user's tool measures (default ``external``).
- **Asks are stored.** A configuration asked for and not told yet stays *pending* in the database, so a crash,
  or a new process (the shell's ``ask``/``tell``), re-asks the same configurations instead of new ones. Within one
  :class:`Campaign` object, asking again without telling hands out the pending configurations not handed out
  yet (never one twice); the engine moves on to its next batch once every pending one is told.
- **Cost.** Every told measurement is charged to the ledger: the ``cost_s`` given to :meth:`Campaign.tell`, else
  the campaign's declared cost (``cost_s=``: seconds per measurement, stored with the campaign, or a function of
  the latency, for this session). Without either, ``tell`` refuses. Budgets in hours count these seconds.
- **Latency.** The value told is stored as the measurement's latency (``min_ms``, the column the engine fits);
  tell the same statistic for every configuration (the minimum or the median over runs, as your tool reports).
- **Bad input** (an unknown key, a configuration outside the family's space, a latency that is not a positive
  number, a missing cost) is a one-line :class:`~acquisition.campaign.CampaignError` naming the value, and
  nothing is stored. :meth:`Campaign.tell_csv` checks every row of a file first and names each bad row by its
  line; it stores all rows in one transaction or none.
- **One writer.** Each call that writes holds the database's run lock (:mod:`acquisition._lock`) while it runs,
  so ``python -m acquisition run`` cannot write the same file at the same moment.

The runnable example is :class:`Campaign`'s.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import IO, Any

from acquisition.campaign import CampaignError, CampaignSpec, setting_fields, spec_defaults
from acquisition.engine import END_STATES, Asked, CampaignLoop, check_resume, open_campaign
from acquisition.stopping import get_stop_rule
from profiler.files import atomic_write

__all__ = ["DEFAULT_PROTOCOL", "Asked", "Campaign", "CampaignStatus", "CsvTold", "Platform", "write_asks_csv"]

DEFAULT_PROTOCOL = "external"  # the protocol id of measurements told without one declared
# new ask/tell campaigns: one protocol (the user's), and sources from the store's other platforms when any
ASK_TELL_DEFAULTS = {"fidelity": "full", "transfer": "auto"}
# the settings a Campaign takes: CampaignSpec's user settings (acquisition.campaign.setting) and two of its own
SETTINGS = (*(f.name for f in setting_fields()), "stop_on_target", "transfer")
LATENCY, COST, FAILED, KEY = "latency_ms", "cost_s", "failed", "key"  # the CSV columns besides the parameters
_PLATFORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\- ]{0,63}$")


class Platform:
    """A device the built-in profiler does not drive, declared by ``name`` and free-form fingerprint fields.

    The fingerprint is ``{"kind": "external", "name": name, **fields}``; its hash is the platform id (as for the
    built-in devices), so the same declaration names the same platform in every session. Field values are JSON
    scalars (text, numbers, booleans).

    Example:
        >>> p = Platform("pixel-8", device="Pixel 8", runtime="tflite 2.16", threads=4)
        >>> p.fingerprint["runtime"], len(p.id), p.id == Platform("pixel-8", threads=4, runtime="tflite 2.16",
        ...                                                          device="Pixel 8").id
        ('tflite 2.16', 12, True)
        >>> Platform("pixel-8", kind="npu")
        Traceback (most recent call last):
        ...
        acquisition.campaign.CampaignError: platform field 'kind' is reserved: choose another field name
    """

    def __init__(self, name: str, **fields: Any) -> None:
        if not isinstance(name, str) or not _PLATFORM_NAME.match(name):
            raise CampaignError(f"platform name {name!r} is not allowed: use 1-64 letters, digits, spaces or "
                                "'_.:+-', starting with a letter or digit")
        for k, v in fields.items():
            if k in ("kind", "name"):
                raise CampaignError(f"platform field {k!r} is reserved: choose another field name")
            ok = v is None or isinstance(v, str | bool | int) or (isinstance(v, float) and math.isfinite(v))
            if not ok:
                raise CampaignError(f"platform field {k}={v!r} is not allowed: expected text, a number or a boolean")
        self.name = name
        self.fields = dict(sorted(fields.items()))

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"kind": "external", "name": self.name, **self.fields}

    @property
    def id(self) -> str:
        from profiler.devices import platform_id

        return platform_id(self.fingerprint)

    @property
    def device(self) -> str:
        """What the ``platforms`` table shows as the device."""
        return f"external:{self.name}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Platform) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.fields.items())
        return f"Platform({self.name!r}{args})"


@dataclass(frozen=True)
class CampaignStatus:
    """Where a campaign stands (:meth:`Campaign.status`).

    ``samples``: configurations measured for training (failed ones too; the budget in samples counts these);
    ``device_hours``: the campaign's bill (:mod:`acquisition.bill`); ``metrics``: the last iteration's verified
    ``spearman``, ``mape``, ``acc10`` and ``n_verify`` (empty before the first fit); ``met``: the stop rule has
    fired (targets met on ``confirm`` consecutive iterations); ``budget_left``: ``samples`` and/or ``hours``
    left; ``pending``: configurations asked for and not told yet.
    """

    name: str
    family: str
    platform: str
    protocol: str
    state: str  # running | met | budget | exhausted | failed | stopped
    samples: int
    failed: int
    pending: int
    iterations: int
    device_hours: float
    metrics: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    met: bool = False
    budget_left: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in END_STATES

    def describe(self) -> str:
        """One line for people: state, samples, hours, ρ against the target, budget left, pending."""
        rho = self.metrics.get("spearman")
        rho_s = ("not fitted yet" if not self.iterations else "rho not verified yet" if rho is None or rho != rho
                 else f"rho {rho:.4f}")
        left = ", ".join(f"{v:.4g} {k}" for k, v in self.budget_left.items())
        return (f"campaign {self.name}: {self.state}; {self.samples} samples, {self.device_hours:.4f} device hours; "
                f"{rho_s} (target {self.targets.get('spearman')})" + (f"; budget left {left}" if left else "")
                + f"; {self.pending} pending")


@dataclass(frozen=True)
class CsvTold:
    """What :meth:`Campaign.tell_csv` stored: measurements told, failures told, and rows left empty (their
    configurations stay pending)."""

    told: int
    failed: int
    left: int


@dataclass(frozen=True)
class LatencyOnly:
    """The timing of a measurement known only by its latency (told by the user's tool, or read from a recorded
    table: ``stop = "recorded"``); the other statistics are not known."""

    min_ms: float
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    n: int | None = None
    timed_s: float | None = None
    warmup_s: float | None = None
    stop: str = "told"


def _external_measurer(platform_id: str, fingerprint: dict[str, Any], device: str, protocol: str) -> Any:
    """What the engine reads of a measurer (:class:`acquisition.engine.CampaignLoop`): no ``measure``, one
    protocol, candidates from the family's space."""
    return SimpleNamespace(platform_id=platform_id, fingerprint=fingerprint, device=SimpleNamespace(spec=device),
                           protocol=SimpleNamespace(id=protocol), supports_protocol=False)


def _seconds(what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise CampaignError(f"{what}={v!r} is not allowed: expected a number of seconds >= 0")
    return float(v)


def _latency(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise CampaignError(f"latency_ms={v!r} is not allowed: expected a positive, finite number of milliseconds")
    return float(v)


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
    ``transfer``, ``stop_rule``) are the campaign's settings (:class:`~acquisition.campaign.CampaignSpec`;
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
        from acquisition._lock import RunLock
        from acquisition.store import Store
        from profiler.families import get_family

        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise CampaignError(f"unknown setting {unknown[0]!r}: allowed settings are {', '.join(SETTINGS)}")
        self.path = os.fspath(db)
        self.name = name
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise CampaignError(f"cannot open database {self.path!r}: directory {parent!r} does not exist")
        self._cost_fn = cost_s if callable(cost_s) else None
        if cost_s is not None and not callable(cost_s):
            _seconds("cost_s", cost_s)
        stored, plats = None, {}
        if os.path.isfile(self.path):  # read what is stored first: every check runs before anything is written
            with Store(self.path, readonly=True) as ro:
                stored = ro.get_campaign(name) if isinstance(name, str) else None
                plats = {p["id"]: p for p in ro.platforms()}
        if family is None and stored is None:
            raise CampaignError(f"campaign {name!r} is not in {self.path!r}: give family= and platform= to create it")
        self.family = get_family(family if family is not None else stored["family"])
        pid, fingerprint, device = self._platform(platform, stored, plats)
        self.protocol = protocol if protocol is not None else (stored or {}).get("protocol") or DEFAULT_PROTOCOL
        if not isinstance(self.protocol, str) or not 0 < len(self.protocol) <= 64:
            raise CampaignError(f"protocol={self.protocol!r} is not allowed: expected a name of 1-64 characters")
        given = {k: v for k, v in settings.items() if v is not None}
        if cost_s is not None and not callable(cost_s):
            given["cost_s"] = float(cost_s)
        base = dict(stored["spec"]) if stored is not None else {**spec_defaults(), **ASK_TELL_DEFAULTS}
        spec = CampaignSpec.from_dict({**base, **given, "name": name, "family": self.family.name, "device": device})
        spec.validate()
        if spec.fidelity != "full":
            raise CampaignError(f"campaign {name!r} has fidelity={spec.fidelity!r}, which needs the built-in "
                                "profiler (two protocols); ask/tell measures with one: fidelity='full'")
        if stored is not None:
            with Store(self.path, readonly=True) as ro:
                check_resume(ro, spec, pid, self.protocol)
        self._lock = RunLock(self.path)
        self.store: Any = None
        with self._lock:
            self.store = Store(self.path)
            try:
                self.store.ensure_platform(pid, fingerprint, device)
                self.spec = open_campaign(self.store, spec, pid, protocol=self.protocol, reopen=False)
                state = self.store.get_campaign(name)["state"]
                sources = self._sources(pid)
            except BaseException:
                self.store.close()
                raise
        self.platform = pid
        self.loop = CampaignLoop(self.store, self.spec, _external_measurer(pid, fingerprint, device, self.protocol),
                                 self.family, sources=sources, state=state if state in END_STATES else None)
        self._handed: set[tuple[str, str]] = set()  # handed out by ask() in this session, not told yet

    # -- opening ---------------------------------------------------------------------------------------------
    def _platform(self, platform: Platform | str | None, stored: dict[str, Any] | None,
                  plats: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any], str]:
        if isinstance(platform, Platform):
            return platform.id, platform.fingerprint, platform.device
        if platform is None:
            if stored is None:
                raise CampaignError(f"campaign {self.name!r} is not in {self.path!r}: give platform= (a Platform, or "
                                    "the id of a platform in the database) to create it")
            platform = stored["platform"]
        if not isinstance(platform, str):
            raise CampaignError(f"platform={platform!r} is not allowed: expected a Platform or a platform id")
        row = plats.get(platform)
        if row is None:
            known = ", ".join(sorted(plats)) or "none"
            raise CampaignError(f"platform {platform!r} is not in {self.path!r} (platforms: {known}); declare a new "
                                "one with Platform(name, **fields)")
        return platform, row["fingerprint"], row["device"]

    def _sources(self, platform: str) -> list[Any]:
        if self.spec.transfer == "none":
            return []
        from acquisition.transfer import store_sources

        return store_sources(self.store, self.family, platform, "auto")

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
        for a new batch. Empty once the campaign is :attr:`done`, or when everything pending is handed out."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise CampaignError(f"k={k!r} is not allowed: expected a positive integer or None")
        with self._writing():
            asks = self.loop.next_asks()
        fresh = [a for a in asks if (a.key, a.protocol) not in self._handed]
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
            asked, m = self._prepare(key_or_config, self._pending_by_key(), latency_ms=latency_ms, cost_s=cost_s)
            self.loop.tell(asked, m)
        self._handed.discard((asked.key, asked.protocol))

    def tell_failed(self, key_or_config: str | Mapping[str, Any], reason: str, cost_s: float | None = None) -> None:
        """Record that an asked configuration could not be measured (e.g. an operator the device's runtime
        lacks), with ``reason``; it is not asked again and is charged ``cost_s`` (default: the declared constant
        cost)."""
        with self._writing():
            asked, m = self._prepare(key_or_config, self._pending_by_key(), failed=reason, cost_s=cost_s)
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
        params = self.family.space.names
        try:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            if LATENCY not in header:
                raise CampaignError(f"{label} has no {LATENCY!r} column (columns: {', '.join(header) or 'none'})")
            if KEY not in header and not set(params) <= set(header):
                missing = [p for p in params if p not in header]
                raise CampaignError(f"{label} has neither a {KEY!r} column nor the parameter column {missing[0]!r}")
            rows = [(reader.line_num, r) for r in reader]
        except csv.Error as exc:
            raise CampaignError(f"{label} is not a CSV file ({exc})") from None
        with self._writing():
            pending = self._pending_by_key()
            prepared, errors, seen, left, failed = [], [], {}, 0, 0
            for line, row in rows:
                cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if not cells.get(LATENCY) and not cells.get(FAILED):
                    left += 1
                    continue
                try:
                    item = self._parse_row(cells, pending, seen, line)
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

    def _parse_row(self, cells: dict[str, str], pending: dict[str, Asked], seen: dict[str, int],
                   line: int) -> tuple[Asked, Any]:
        space = self.family.space
        config = None
        if any(cells.get(p) for p in space.names):  # parameters given: they must be a configuration of the space
            try:
                config = self.family.validate(space.coerce({p: cells.get(p, "") for p in space.names}))
            except ValueError as exc:
                raise CampaignError(f"configuration outside the {self.family.name!r} space: {exc}") from None
        key = cells.get(KEY) or None
        if key is not None and config is not None and self.family.key(config) != key:
            raise CampaignError(f"key {key!r} does not match the parameters in its row (they have key "
                                f"{self.family.key(config)!r})")
        target: str | dict[str, Any] | None = key if key is not None else config
        if target is None:
            raise CampaignError(f"no {KEY!r} and no parameters: the row names no configuration")
        k = key if key is not None else self.family.key(config)  # type: ignore[arg-type]
        if k in seen:
            raise CampaignError(f"key {k!r} is also on line {seen[k]}")
        latency: Any = cells.get(LATENCY, "")
        if cells.get(FAILED):
            if latency:
                raise CampaignError(f"{LATENCY} {latency!r} and {FAILED} {cells[FAILED]!r}: a row is measured or "
                                    "failed, not both")
        else:
            try:
                latency = float(latency)
            except ValueError:
                raise CampaignError(f"{LATENCY} {latency!r} is not a positive number") from None
            if not math.isfinite(latency) or latency <= 0:
                raise CampaignError(f"{LATENCY} {cells[LATENCY]!r} is not a positive number")
        cost: Any = cells.get(COST) or None
        if cost is not None:
            try:
                cost = float(cost)
            except ValueError:
                raise CampaignError(f"{COST} {cost!r} is not a number of seconds") from None
            if not math.isfinite(cost) or cost < 0:
                raise CampaignError(f"{COST} {cells[COST]!r} is not a number of seconds >= 0")
        item = self._prepare(target, pending, latency_ms=None if cells.get(FAILED) else latency,
                             failed=cells.get(FAILED) or None, cost_s=cost)
        seen[k] = line
        return item

    def _pending_by_key(self) -> dict[str, Asked]:
        """The pending asks by key (stored measurements of them joined the campaign first: see
        :meth:`~acquisition.engine.CampaignLoop.pending`)."""
        out: dict[str, Asked] = {}
        for a in self.loop.pending():
            if a.protocol == self.protocol:
                out.setdefault(a.key, a)
        return out

    def _prepare(self, key_or_config: str | Mapping[str, Any], pending: dict[str, Asked], *,
                 latency_ms: float | None = None, failed: str | None = None,
                 cost_s: float | None = None) -> tuple[Asked, Any]:
        """The ask a told result answers and its measurement, every input checked (nothing stored)."""
        from profiler.worker import Measurement

        asked = self._resolve(key_or_config, pending)
        if failed is None:
            latency_ms = _latency(latency_ms)
        elif not isinstance(failed, str) or not failed.strip():
            raise CampaignError(f"reason={failed!r} is not allowed: say why the configuration could not be measured")
        cost = self._cost(cost_s, latency_ms, failed is not None)
        m = Measurement(family=self.family.name, key=asked.key, config=self.family.validate(asked.config),
                        protocol=asked.protocol, platform=self.platform, status="failed" if failed else "ok",
                        cost_s=cost, reason=failed.strip() if failed else None,
                        timing=None if failed else LatencyOnly(latency_ms),  # type: ignore[arg-type]
                        device_state={"source": "tell"})
        return asked, m

    def _resolve(self, key_or_config: str | Mapping[str, Any], pending: dict[str, Asked]) -> Asked:
        what = "key"
        if isinstance(key_or_config, str):
            key = key_or_config
        elif isinstance(key_or_config, Mapping):
            try:
                key = self.family.key(key_or_config)
            except ValueError as exc:
                raise CampaignError(f"configuration outside the {self.family.name!r} space: {exc}") from None
            what = "configuration with key"
        else:
            raise CampaignError(f"key_or_config={key_or_config!r} is not allowed: expected a key (text) or a "
                                "configuration (a dict)")
        asked = pending.get(key)
        if asked is not None:
            return asked
        if key in self.store.member_keys(self.name):
            raise CampaignError(f"{what} {key!r} is already told: campaign {self.name!r} holds its measurement "
                                "(measurements are never replaced)")
        raise CampaignError(f"unknown {what} {key!r}: campaign {self.name!r} has not asked for it "
                            f"({len(pending)} pending; ask() lists them)")

    def _cost(self, cost_s: float | None, latency_ms: float | None, failed: bool) -> float:
        if cost_s is not None:
            return _seconds("cost_s", cost_s)
        if self._cost_fn is not None and not failed:
            try:
                value = self._cost_fn(latency_ms)  # type: ignore[arg-type]
            except Exception as exc:
                raise CampaignError(f"the cost model failed for latency_ms={latency_ms!r}: "
                                    f"{type(exc).__name__}: {exc}") from None
            return _seconds(f"the cost model's cost_s for latency_ms={latency_ms!r}", value)
        if self.spec.cost_s is not None:
            return float(self.spec.cost_s)
        raise CampaignError("cost_s is missing: give the device seconds the measurement took (cost_s=...), or "
                            "declare a cost per measurement for the campaign (Campaign(..., cost_s=...))")

    # -- status and the predictor ----------------------------------------------------------------------------
    def status(self) -> CampaignStatus:
        """Samples, device hours, the last verified metrics, targets, budget left, state and pending asks."""
        from acquisition.bill import campaign_bill
        from acquisition.loop.stop import budget_left

        if self.store is None:
            raise CampaignError(f"campaign {self.name!r} is closed")
        store, spec = self.store, self.spec
        row = store.get_campaign(self.name)
        members = store.members(self.name, "train")
        keys = {r["key"] for r in members}
        failed = {r["key"] for r in members if r["status"] == "failed"}
        bill_s = campaign_bill(store, self.name).total_s
        its = store.iterations(self.name)
        metrics = ({k: its[-1][k] for k in ("spearman", "spearman_lo", "mape", "acc10", "n_verify")} if its else {})
        targets = {"spearman": spec.target_spearman, "acc10": spec.target_acc10, "mape": spec.target_mape}
        left = {k: v for k, v in budget_left(spec, len(keys), bill_s).items() if k != "exhausted"}
        needed = get_stop_rule(spec.stop_rule).needed(spec)
        met = row["state"] == "met" or any(r["met_streak"] >= needed for r in its)
        return CampaignStatus(self.name, self.family.name, self.platform, self.protocol, row["state"], len(keys),
                              len(failed), len(store.pending_asks(self.name)), len(its), bill_s / 3600, metrics,
                              {k: v for k, v in targets.items() if v is not None}, met, left)

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


# -- CSV -------------------------------------------------------------------------------------------------------
def write_asks_csv(asks: Iterable[Asked], family: Any, out: str | os.PathLike[str] | IO[str]) -> int:
    """Write ``asks`` as CSV to a path (written whole or not at all) or an open text file: ``key``, one column
    per parameter of ``family``, then empty ``latency_ms``, ``cost_s`` and ``failed`` columns to fill in (what
    :meth:`Campaign.tell_csv` reads). Returns the number of rows."""
    names = list(family.space.names)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([KEY, *names, LATENCY, COST, FAILED])
    n = 0
    for a in asks:
        w.writerow([a.key, *(_cell(a.config[p]) for p in names), "", "", ""])
        n += 1
    text = buf.getvalue()
    if hasattr(out, "write"):
        out.write(text)  # type: ignore[union-attr]
        return n
    path = os.fspath(out)  # type: ignore[arg-type]
    with atomic_write(path) as fh:
        fh.write(text)
    return n


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)

