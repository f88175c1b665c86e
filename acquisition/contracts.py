"""What the engine needs of a measurer, a block family and a store: the contracts, as :class:`typing.Protocol` s.

Anything with these attributes and methods plugs into the loop, whatever its class: the profiler, a replay oracle,
a fleet's pool of devices, ask/tell's description of a device you measure yourself; the built-in and tabular
families and any plug-in family; :class:`acquisition.store.Store`. They are ``runtime_checkable`` (an
``isinstance`` check reads that the names exist, not their signatures); ``tests/test_contracts.py`` holds every
implementation in the project to them.

Example:
    >>> from profiler.families import get_family
    >>> isinstance(get_family("mbconv"), Family)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["CampaignStore", "Family", "Measurer", "MeasuringDevice"]


@runtime_checkable
class Family(Protocol):
    """A family: a named space of configurations, each with a canonical key. A block family also has ``build``
    and ``counts`` (the features' analytic part); a tabular family (a recorded table) has neither."""

    name: str
    space: Any  # a profiler.space.Space: validate, sample, spec

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]: ...

    def key(self, config: Mapping[str, Any]) -> str: ...


@runtime_checkable
class MeasuringDevice(Protocol):
    """What the loop reads of where measurements come from (ask/tell's own device has only this): the platform's
    id and fingerprint, the device's spec (``device.spec``) and the protocol's id (``protocol.id``). Optional:
    ``supports_protocol`` (it measures at the cheap fidelity too) and ``sample`` (a candidate pool of its own)."""

    platform_id: str
    fingerprint: dict[str, Any]
    device: Any
    protocol: Any


@runtime_checkable
class Measurer(MeasuringDevice, Protocol):
    """A device the engine drives itself (``run``): it also measures a configuration of a family."""

    def measure(self, family: Any, config: dict[str, Any], *args: Any) -> Any: ...


@runtime_checkable
class CampaignStore(Protocol):
    """The store's methods the loop calls: the campaign's asks, members, iterations and state, the ledger, and the
    measurements (:class:`acquisition.store.Store` is the one implementation; every state change is one
    transaction)."""

    def ensure_platform(self, platform_id: str, fingerprint: dict[str, Any], device: str) -> None: ...

    def create_campaign(self, name: str, family: str, platform: str, spec: dict[str, Any], **kw: Any) -> None: ...

    def get_campaign(self, name: str) -> dict[str, Any] | None: ...

    def update_campaign_spec(self, name: str, spec: dict[str, Any]) -> None: ...

    def set_campaign_state(self, name: str, state: str) -> None: ...

    def add_asks(self, campaign: str, asks: list[dict[str, Any]]) -> None: ...

    def asks(self, campaign: str, *args: Any) -> list[dict[str, Any]]: ...

    def pending_asks(self, campaign: str) -> list[dict[str, Any]]: ...

    def last_ask_batch(self, campaign: str) -> str | None: ...

    def drop_asks(self, campaign: str, asks: list[dict[str, Any]]) -> int: ...

    def join_stored(self, campaign: str, platform: str, family: str, asks: list[Any]) -> list[Any]: ...

    def record(self, m: Any, **kw: Any) -> int: ...

    def members(self, campaign: str, *args: Any, **kw: Any) -> list[dict[str, Any]]: ...

    def member_keys(self, campaign: str) -> set[str]: ...

    def add_iteration(self, campaign: str, record: dict[str, Any], **kw: Any) -> Any: ...

    def iterations(self, campaign: str) -> list[dict[str, Any]]: ...

    def iteration_count(self, campaign: str) -> int: ...

    def campaign_sources(self, campaign: str) -> list[dict[str, Any]]: ...

    def set_campaign_sources(self, campaign: str, rows: Iterable[dict[str, Any]]) -> None: ...

    def add_predictor(self, campaign: str, path: str, metrics: dict[str, Any]) -> Any: ...

    def charge(self, activity: str, seconds: float, **kw: Any) -> None: ...

    def campaign_costs(self, campaign: str) -> tuple[dict[str, float], int, float]: ...
