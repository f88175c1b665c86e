"""The campaign's first asks and its probes: the part of the loop that knows what to measure before any model.

Contract: :meth:`InitialDesign.ask_missing` and :meth:`InitialDesign.ask_probes` record asks in the store (pending
until measured) and return whether they asked for anything; everything they choose follows from the seed and the
stored state, so a resumed campaign asks for the same configurations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from acquisition.campaign import CampaignSpec
from acquisition.contracts import CampaignStore, Family
from acquisition.fidelity import Fidelity
from acquisition.loop.base import Asked, stream

__all__ = ["InitialDesign"]


class InitialDesign:
    """The holdout validation set, the initial design (the family's probe set with transfer) and each cheap
    batch's full-fidelity probes of one campaign.

    ``draw(n, method, seed, exclude)`` draws candidates (:func:`acquisition.loop.base.sampler`); ``cheap_id`` is
    the cheap fidelity's protocol id, ``None`` when the campaign measures at one fidelity.
    """

    def __init__(self, store: CampaignStore, spec: CampaignSpec, family: Family, draw: Any, fid: Fidelity, full_id: str,
                 cheap_id: str | None) -> None:
        self.store, self.spec, self.family, self.draw, self.fid = store, spec, family, draw, fid
        self.full_id, self.cheap_id = full_id, cheap_id
        self._batches: list[list[Asked]] | None = None  # the validation set and the initial design
        self._done = False

    def batches(self) -> list[list[Asked]]:
        """The holdout validation set (``holdout`` only; its own seed stream, so it never depends on the
        strategy), then the space-filling initial design, shared by every strategy for the same seed (with
        transfer: the family's probe set, the same on every platform, :mod:`acquisition.transfer`)."""
        if self._batches is not None:
            return self._batches
        spec, key = self.spec, self.family.key
        batches: list[list[Asked]] = []
        val_keys: set[str] = set()
        if spec.verification == "holdout":
            val = self.draw(spec.validation_size, "random", stream(spec.seed, "validation"), set())
            batches.append([Asked(key(c), c, "validation", "validation", self.full_id, "validation") for c in val])
            val_keys = {a.key for a in batches[0]}
        if spec.transfer != "none":
            from acquisition.transfer import probe_configs

            init = probe_configs(self.draw, spec.initial_size, val_keys)
        else:
            init = self.draw(spec.initial_size, "sobol", stream(spec.seed, "initial"), val_keys)
        # an auto-fidelity campaign always starts cheap (also on a resume after it switched: the stored cheap
        # rows are found again instead of measuring the design at full fidelity)
        proto = self.cheap_id if self.fid.mode == "auto" and self.cheap_id else self.full_id
        batches.append([Asked(key(c), c, "train", "initial", proto, "initial") for c in init
                        if key(c) not in val_keys])
        self._batches = batches
        return batches

    def ask_missing(self) -> bool:
        """Ask for the part of :meth:`batches` the campaign has neither asked for nor measured (a campaign stored
        before asks were recorded finds its measurements); returns whether it asked for anything."""
        if self._done:
            return False
        spec = self.spec
        asked = {(r["key"], r["protocol"]) for r in self.store.asks(spec.name)}
        asked |= {(r["key"], r["protocol"]) for r in self.store.members(spec.name)}
        for batch in self.batches():
            missing = [a for a in batch if (a.key, a.protocol) not in asked]
            if missing:
                self.store.add_asks(spec.name, [a.as_row() for a in missing])
                return True
        self._done = True
        return False

    def complete(self) -> bool:
        """Whether the whole design is asked for (reads only; :meth:`ask_missing` asks for what is not)."""
        if self._done:
            return True
        asked = {(r["key"], r["protocol"]) for r in self.store.asks(self.spec.name)}
        asked |= {(r["key"], r["protocol"]) for r in self.store.members(self.spec.name)}
        return all((a.key, a.protocol) in asked for batch in self.batches() for a in batch)

    def ask_probes(self, pending: set[str] | None = None) -> bool:
        """Once a cheap batch is measured, ask for its probes: a few of its ok rows, drawn at random, measured
        again at full fidelity (they keep the offset between fidelities measured, :mod:`acquisition.fidelity`).
        ``pending``: the keys asked and not measured yet (a pipelined campaign has a batch in flight): the probes
        are then those of the last batch with none of them. Returns whether it asked for any."""
        if self.cheap_id is None:
            return False
        spec, store = self.spec, self.store
        batch = store.last_ask_batch(spec.name)
        if pending:
            batch = _last_complete_batch(store.asks(spec.name), pending)
        if batch is None:
            return False
        asked = [Asked.from_row(r) for r in store.asks(spec.name, batch)]
        picked = [a for a in asked if a.drawn != "probe"]
        if not picked or any(a.drawn == "probe" for a in asked) or picked[0].protocol != self.cheap_id:
            return False
        rows = store.members(spec.name, "train")
        batch_keys = {a.key for a in picked}
        before = [r for r in rows if r["key"] not in batch_keys]
        n = self.fid.n_probes(before, len(picked))
        rng = np.random.default_rng(stream(spec.seed, "probe", int(batch) if batch.isdigit() else batch))
        ok = {r["key"] for r in rows if r["status"] == "ok"}
        probes = [picked[i] for i in rng.permutation(len(picked)) if picked[i].key in ok][:n]
        if not probes:
            return False
        store.add_asks(spec.name, [Asked(a.key, a.config, "train", "probe", self.full_id, batch).as_row()
                                   for a in probes])
        return True


def _last_complete_batch(asks: list[dict[str, Any]], pending: set[str]) -> str | None:
    """The batch of the most recent ask whose batch has no pending ask (``None``: none is complete)."""
    open_batches = {a["batch"] for a in asks if a["key"] in pending}
    for a in reversed(asks):
        if a["batch"] not in open_batches:
            return a["batch"]
    return None
