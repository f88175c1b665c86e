"""Where a study's measurements come from: a replayed table (CSV or a store) or a live device.

A source is a small picklable description; :meth:`open` builds the oracle and family inside whichever process
runs a campaign (joblib workers rebuild it instead of receiving a live profiler).

Example:
    >>> import os
    >>> src = ReplaySource(csv=os.path.join("..", "shared", "data", "tfnas_mbconv_latency.csv"),
    ...                    params=["input_hw", "cin", "mid_channels", "se_channels", "cout", "kernel", "stride",
    ...                            "act"], latency_col="latency_ms", where=["device=titan_rtx_bs32_pytorch1.1"])
    >>> src.describe()
    'tfnas_mbconv_latency.csv where device=titan_rtx_bs32_pytorch1.1'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LiveSource", "ReplaySource", "source_from_dict"]


@dataclass
class ReplaySource:
    """A replayed table: a CSV file (``csv`` + column names) or a store's measurements (``store`` + ``family``)."""

    csv: str | None = None
    params: list[str] = field(default_factory=list)
    latency_col: str = "latency_ms"
    unit: str = "ms"
    cost_col: str | None = None
    where: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    duplicates: str = "error"
    bad_rows: str = "error"
    store: str | None = None
    family: str | None = None
    platform: str | None = None
    cost_protocol: str = "adaptive"
    cost_db: str | None = None  # fit the replay cost on this store's ledger (LedgerCost) instead
    kind: str = field(default="replay", init=False)

    def __post_init__(self) -> None:
        from studies.replay import ReplayError

        if (self.csv is None) == (self.store is None):
            raise ReplayError("a replay source needs exactly one of csv= (a table) or store= (a database)")
        if self.store is not None and not self.family:
            raise ReplayError("a replay source from a store needs family=")
        self.csv = os.path.abspath(self.csv) if self.csv else None
        self.store = os.path.abspath(self.store) if self.store else None
        self.cost_db = os.path.abspath(self.cost_db) if self.cost_db else None

    def table(self) -> Any:
        from studies.replay import ReplayTable

        if self.csv is not None:
            return ReplayTable.from_csv(self.csv, params=self.params, latency_col=self.latency_col, unit=self.unit,
                                        cost_col=self.cost_col, where=self.where, categorical=self.categorical,
                                        numeric=self.numeric, duplicates=self.duplicates, bad_rows=self.bad_rows)
        return ReplayTable.from_store(self.store, self.family, platform=self.platform)  # type: ignore[arg-type]

    def open(self) -> tuple[Any, Any]:
        """``(oracle, family)``."""
        from studies.replay import ReplayOracle

        t = self.table()
        return ReplayOracle(t, self.cost_model()), t.family

    def cost_model(self) -> Any:
        """The replay cost: fitted on ``cost_db``'s ledger, else the documented protocol cost."""
        from studies.replay import LedgerCost, ProtocolCost

        return LedgerCost.from_store(self.cost_db) if self.cost_db else ProtocolCost(self.cost_protocol)

    @property
    def parallel_safe(self) -> bool:
        return True

    def describe(self) -> str:
        if self.csv:
            return os.path.basename(self.csv) + (f" where {' and '.join(self.where)}" if self.where else "")
        return f"{os.path.basename(self.store or '')}:{self.family}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LiveSource:
    """A live device: every campaign profiles for real, one at a time (timings distort when two run at once)."""

    family: str = "mbconv"
    device: str = "cpu"
    kind: str = field(default="live", init=False)

    def open(self) -> tuple[Any, Any]:
        from profiler.families import get_family
        from profiler.worker import Profiler

        return Profiler(self.device), get_family(self.family)

    @property
    def parallel_safe(self) -> bool:
        return False

    def describe(self) -> str:
        return f"live {self.family} on {self.device}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_from_dict(d: dict[str, Any]) -> ReplaySource | LiveSource:
    d = dict(d)
    kind = d.pop("kind", "replay")
    return LiveSource(**d) if kind == "live" else ReplaySource(**d)
