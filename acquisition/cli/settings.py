"""The campaign settings' flags, made from :class:`~acquisition.campaign.CampaignSpec`'s fields: one source.

Each user setting is declared once, on the spec (:func:`acquisition.campaign.setting`: default, type, help,
choices); ``run`` and ``ask`` add a flag per setting with :func:`add_setting_args`, each showing the command's own
default. A flag not given is ``None``, so giving one flag never changes another's default.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from acquisition.campaign import setting_fields

__all__ = ["SETTING_NAMES", "add_setting_args", "given_settings"]

#: The CampaignSpec fields a user sets, in the order their flags appear.
SETTING_NAMES = tuple(f.name for f in setting_fields())


def add_setting_args(p: argparse.ArgumentParser | Any, defaults: Mapping[str, Any]) -> None:
    """Add ``--target-spearman``, ``--budget-samples``, ... to ``p``: one flag per setting, its help showing
    ``defaults`` (the command's defaults for a new campaign; the spec's where ``defaults`` has none)."""
    for f in setting_fields():
        m = f.metadata
        shown = defaults.get(f.name, f.default)
        shown = "none" if shown is None else shown
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=m["type"], choices=m["choices"],
                       default=None, help=m["help"].format(default=shown))


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (those left out are absent)."""
    return {name: getattr(args, name) for name in SETTING_NAMES if getattr(args, name, None) is not None}
