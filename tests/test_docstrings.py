"""The runnable examples in the public modules' docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "profiler.space", "profiler.files", "profiler.tabular", "profiler.families._base", "profiler.families.mbconv",
    "acquisition.store", "acquisition.contracts", "acquisition.dataset", "acquisition.fitting",
    "acquisition.campaign", "acquisition.report", "acquisition.tables",
    "profiler.repeatability", "profiler.fleet.cluster",
    "acquisition.strategies", "acquisition.strategies._base",
    "surrogates", "surrogates.features", "surrogates.metrics", "surrogates.selection", "surrogates.bundle",
    "surrogates.models", "surrogates.models.linear", "surrogates.models.forest", "surrogates.models.boosting",
    "surrogates.models.ngboost", "surrogates.models.mlp",
    "studies.replay", "studies.sources", "studies.study", "studies._stats", "studies.report", "studies.paper",
    "nas.network", "nas.spaces", "nas.measure", "nas.evaluate", "nas.search", "nas.compare", "nas.accuracy",
    "profiler.decompose", "profiler.glue", "profiler.zoo",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0
