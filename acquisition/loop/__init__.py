"""The campaign loop in named parts, each with a small contract (its module's docstring):

- :mod:`acquisition.loop.design`: the initial design and the probes (what to measure before any model);
- :mod:`acquisition.loop.models`: model choice (plain, ``auto``, transfer);
- :mod:`acquisition.loop.verify`: verification (what the stop rule reads);
- :mod:`acquisition.loop.stop`: the stop decision (the stop rule and the budgets);
- :mod:`acquisition.loop.query`: the batch query with its cost model;
- :mod:`acquisition.loop.measure`: measuring the asks with the built-in measurer (``run``'s own);
- :mod:`acquisition.loop.base`: what they share (an asked configuration, one iteration's data, seed streams).

:class:`acquisition.engine.CampaignLoop` orchestrates them: fit -> verify -> stop? -> query -> measure.
"""
