"""Opening an ask/tell campaign: created in a database or resumed, every check made before anything is written.

Contract: :func:`open_ask_tell` returns an :class:`Opened` campaign (its store open for writing, its
:class:`~acquisition.engine.CampaignLoop` built), or raises a one-line :class:`~acquisition.campaign.CampaignError`
naming the bad value, with nothing stored. A new campaign needs a family and a platform; a stored one keeps its
family, platform, protocol and settings (a different one is refused), save the budgets and ``cost_s``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from acquisition.ask_tell.platform import DEFAULT_PROTOCOL, Platform, external_measurer
from acquisition.ask_tell.telling import check_seconds
from acquisition.campaign import CampaignError, CampaignSpec, setting_fields, spec_defaults
from acquisition.engine import END_STATES, CampaignLoop, check_resume, open_campaign

__all__ = ["ASK_TELL_DEFAULTS", "SETTINGS", "Opened", "open_ask_tell", "stored_campaign"]

# new ask/tell campaigns: one protocol (the user's), and sources from the store's other platforms when any
ASK_TELL_DEFAULTS = {"fidelity": "full", "transfer": "auto"}
# the settings a Campaign takes: CampaignSpec's user settings (acquisition.campaign.setting) and two of its own
SETTINGS = (*(f.name for f in setting_fields()), "stop_on_target", "transfer")


@dataclass
class Opened:
    """An open ask/tell campaign: where it is stored, what it measures, and the engine's loop over it."""

    path: str
    name: str
    family: Any
    platform: str
    protocol: str
    spec: CampaignSpec
    store: Any
    lock: Any
    loop: CampaignLoop
    cost_fn: Callable[[float], float] | None


def stored_campaign(db: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """Campaign ``name``'s row in the database ``db`` (read only), or None when the file or the campaign is missing."""
    from acquisition.store import Store

    path = os.fspath(db)
    if not os.path.isfile(path):
        return None
    with Store(path, readonly=True) as ro:
        return ro.get_campaign(name) if isinstance(name, str) else None


def open_ask_tell(db: str | os.PathLike[str], name: str, *, family: str | None, platform: Platform | str | None,
                  protocol: str | None, cost_s: float | Callable[[float], float] | None,
                  settings: Mapping[str, Any]) -> Opened:
    """Create campaign ``name`` in ``db`` or resume it (see the module docstring)."""
    from acquisition._lock import RunLock
    from acquisition.store import Store
    from profiler.families import get_family

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise CampaignError(f"unknown setting {unknown[0]!r}: allowed settings are {', '.join(SETTINGS)}")
    path = os.fspath(db)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CampaignError(f"cannot open database {path!r}: directory {parent!r} does not exist")
    if cost_s is not None and not callable(cost_s):
        check_seconds("cost_s", cost_s)
    stored, plats = None, {}
    if os.path.isfile(path):  # read what is stored first: every check runs before anything is written
        with Store(path, readonly=True) as ro:
            stored = ro.get_campaign(name) if isinstance(name, str) else None
            plats = {p["id"]: p for p in ro.platforms()}
    if family is None and stored is None:
        raise CampaignError(f"campaign {name!r} is not in {path!r}: give family= and platform= to create it")
    fam = get_family(family if family is not None else stored["family"])
    pid, fingerprint, device = _platform(path, name, platform, stored, plats)
    protocol = protocol if protocol is not None else (stored or {}).get("protocol") or DEFAULT_PROTOCOL
    if not isinstance(protocol, str) or not 0 < len(protocol) <= 64:
        raise CampaignError(f"protocol={protocol!r} is not allowed: expected a name of 1-64 characters")
    spec = _spec(name, fam, device, stored, settings, cost_s)
    if stored is not None:
        with Store(path, readonly=True) as ro:
            check_resume(ro, spec, pid, protocol)
    lock = RunLock(path)
    with lock:
        store = Store(path)
        try:
            store.ensure_platform(pid, fingerprint, device)
            spec = open_campaign(store, spec, pid, protocol=protocol, reopen=False)
            state = store.get_campaign(name)["state"]
            sources = _sources(store, spec, fam, pid)
        except BaseException:
            store.close()
            raise
    loop = CampaignLoop(store, spec, external_measurer(pid, fingerprint, device, protocol), fam, sources=sources,
                        state=state if state in END_STATES else None)
    return Opened(path, name, fam, pid, protocol, spec, store, lock, loop, cost_s if callable(cost_s) else None)


def _spec(name: str, family: Any, device: str, stored: dict[str, Any] | None, settings: Mapping[str, Any],
          cost_s: Any) -> CampaignSpec:
    """The campaign's settings: the stored (or default) ones with those given, checked."""
    given = {k: v for k, v in settings.items() if v is not None}
    if cost_s is not None and not callable(cost_s):
        given["cost_s"] = float(cost_s)
    base = dict(stored["spec"]) if stored is not None else {**spec_defaults(), **ASK_TELL_DEFAULTS}
    spec = CampaignSpec.from_dict({**base, **given, "name": name, "family": family.name, "device": device})
    spec.validate()
    if spec.fidelity != "full":
        raise CampaignError(f"campaign {name!r} has fidelity={spec.fidelity!r}, which needs the built-in "
                            "profiler (two protocols); ask/tell measures with one: fidelity='full'")
    return spec


def _platform(path: str, name: str, platform: Platform | str | None, stored: dict[str, Any] | None,
              plats: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any], str]:
    """The platform's id, fingerprint and device: a declared :class:`Platform`, a stored platform's id, or the
    stored campaign's."""
    if isinstance(platform, Platform):
        return platform.id, platform.fingerprint, platform.device
    if platform is None:
        if stored is None:
            raise CampaignError(f"campaign {name!r} is not in {path!r}: give platform= (a Platform, or "
                                "the id of a platform in the database) to create it")
        platform = stored["platform"]
    if not isinstance(platform, str):
        raise CampaignError(f"platform={platform!r} is not allowed: expected a Platform or a platform id")
    row = plats.get(platform)
    if row is None:
        known = ", ".join(sorted(plats)) or "none"
        raise CampaignError(f"platform {platform!r} is not in {path!r} (platforms: {known}); declare a new "
                            "one with Platform(name, **fields)")
    return platform, row["fingerprint"], row["device"]


def _sources(store: Any, spec: CampaignSpec, family: Any, platform: str) -> list[Any]:
    """Transfer sources: the family's measurements on the store's other platforms (none with transfer='none')."""
    if spec.transfer == "none":
        return []
    from acquisition.transfer import store_sources

    return store_sources(store, family, platform, "auto")
