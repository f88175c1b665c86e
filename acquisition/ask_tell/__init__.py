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

Like Optuna's ``create_study`` / ``load_study``: :func:`create_campaign` makes a new campaign (refusing a name
already stored), :func:`load_campaign` resumes a stored one (refusing a missing name), and ``Campaign(db, name,
...)`` does either. The package's rooms, each with its contract in its docstring:

- :mod:`~acquisition.ask_tell.platform`: the declared device (:class:`Platform`);
- :mod:`~acquisition.ask_tell.opening`: creating or resuming, every check before anything is written;
- :mod:`~acquisition.ask_tell.telling`: checking what is told (one call or a CSV file) and writing asks as CSV;
- :mod:`~acquisition.ask_tell.status`: where a campaign stands (:class:`CampaignStatus`);
- :mod:`~acquisition.ask_tell.campaign`: :class:`Campaign` itself, which asks, tells and exports through the
  engine's loop.

The runnable examples are :class:`Campaign`'s and :func:`create_campaign`'s.
"""

from __future__ import annotations

from acquisition.ask_tell.campaign import Campaign, create_campaign, load_campaign
from acquisition.ask_tell.opening import ASK_TELL_DEFAULTS, SETTINGS
from acquisition.ask_tell.platform import DEFAULT_PROTOCOL, Platform
from acquisition.ask_tell.status import CampaignStatus
from acquisition.ask_tell.telling import CsvTold, LatencyOnly, write_asks_csv
from acquisition.engine import Asked

__all__ = ["ASK_TELL_DEFAULTS", "DEFAULT_PROTOCOL", "SETTINGS", "Asked", "Campaign", "CampaignStatus", "CsvTold",
           "LatencyOnly", "Platform", "create_campaign", "load_campaign", "write_asks_csv"]
