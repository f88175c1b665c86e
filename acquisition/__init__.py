"""latency-acquisition's engine: the store, the acquisition loop and ``python -m acquisition``.

The public ask/tell API (:mod:`acquisition.ask_tell`) is importable from here: ``from acquisition import
Campaign, Platform, create_campaign, load_campaign``. It is loaded on first use, so ``import acquisition``
imports nothing heavy (no torch, no scikit-learn).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Asked", "Campaign", "CampaignStatus", "CsvTold", "Platform", "create_campaign", "load_campaign",
           "write_asks_csv"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from acquisition import ask_tell

        return getattr(ask_tell, name)
    raise AttributeError(f"module 'acquisition' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
