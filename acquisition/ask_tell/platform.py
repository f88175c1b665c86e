"""The device an ask/tell campaign measures: declared by the user (:class:`Platform`), stored with kind
``external``, and what the engine reads of it in place of a measurer (:func:`external_measurer`)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace
from typing import Any

from acquisition.campaign import CampaignError

__all__ = ["DEFAULT_PROTOCOL", "Platform", "external_measurer"]

DEFAULT_PROTOCOL = "external"  # the protocol id of measurements told without one declared
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


def external_measurer(platform_id: str, fingerprint: dict[str, Any], device: str, protocol: str) -> Any:
    """What the engine reads of a measurer (:class:`acquisition.engine.CampaignLoop`): no ``measure``, one
    protocol, candidates from the family's space."""
    return SimpleNamespace(platform_id=platform_id, fingerprint=fingerprint, device=SimpleNamespace(spec=device),
                           protocol=SimpleNamespace(id=protocol), supports_protocol=False)
