"""Budgeted studies and replay (docs/design.md §7): how much profiling each strategy saves, measured over many seeds.

Public API: :class:`Study` / :func:`load_study` / :class:`StudyResult` (studies), :class:`ReplaySource` /
:class:`LiveSource` (where measurements come from), :class:`ReplayTable` / :class:`ReplayOracle` /
:class:`ProtocolCost` / :class:`LedgerCost` (replay costs), :func:`write_report` (PNG curves, Markdown and JSON
summaries).
"""

from studies.replay import LedgerCost, ProtocolCost, ReplayError, ReplayOracle, ReplayTable
from studies.report import write_report
from studies.sources import LiveSource, ReplaySource
from studies.study import Study, StudyError, StudyResult, load_study

__all__ = ["LedgerCost", "LiveSource", "ProtocolCost", "ReplayError", "ReplayOracle", "ReplaySource", "ReplayTable",
           "Study", "StudyError", "StudyResult", "load_study", "write_report"]
